"""Quorum queues on a three-node cluster: the workers pattern rides through the loss of
the node that leads its queue, and loses nothing.

One run of node_loss.lose_the_leader() (about 35 s alone), several checks. Run them
alone with `make test-cluster`. They need rabbitmq-server on this machine: the cluster is
three local nodes, started by tools/cluster.py as a reader starts it.
"""

import os

import pytest
from node_loss import KILL_AFTER, MESSAGES, NO_MAJORITY_WAIT, lose_the_leader, shape
from readme import DOCUMENTS
from throwaway import installed
from transcripts import shown

pytestmark = pytest.mark.cluster
RECONNECT_WITHIN = 10.0  # seconds; it takes well under one when the node's process dies


# One run for all these tests: `make test` gives each test file to one xdist worker
# (--dist loadfile), so this starts one cluster in all.
@pytest.fixture(scope="session")
def run():
    if not installed():
        pytest.skip("rabbitmq-server is not installed: the cluster is three local nodes of it")
    return lose_the_leader()


def test_every_confirmed_task_is_done_at_least_once(run, report):
    assert run.producer_code == 0, run.transcripts["cluster-producer"]
    assert run.producer_reconnected  # it was on the killed node: it rode through
    assert sorted(run.sent, key=lambda body: int(body.split()[0])) == run.sent
    assert len(set(run.sent)) == MESSAGES  # and the broker confirmed every task
    assert set(run.sent) - set(run.received) == set()
    assert run.worker_codes == [0, 0]
    assert run.left_in_queue == 0  # every task acknowledged: done, not just received
    twice = run.done_twice()
    report(
        f"cluster: {MESSAGES} tasks on a quorum queue, its leader killed after {KILL_AFTER} "
        f"were sent: all done, {len(twice)} of them twice {twice}; the producer sent "
        f"{run.sent_again} again"
    )


def test_the_worker_on_the_dead_node_goes_on_from_another(run, report):
    assert run.reconnected_after < RECONNECT_WITHIN
    assert run.received_after_reconnecting > 0
    report(f"cluster: the worker on the killed node reconnected in {run.reconnected_after:.2f} s")


def test_the_cluster_stops_cleanly_and_leaves_nothing_behind(run, report):
    assert run.command_code == 0
    assert run.transcripts["cluster-command"][-1] == " [*] Cluster stopped and removed"
    assert not os.path.exists(run.folder)
    assert [pid for pid in run.pids if os.path.exists(f"/proc/{pid}")] == []
    assert processes_naming(run.folder) == []
    phases = ", ".join(f"{what} {seconds:g}" for what, seconds in run.seconds.items())
    report(f"cluster: seconds from the start: {phases}")


def test_without_a_majority_nothing_is_confirmed(run):
    # Refused at once, or held without an answer, as the timing of the loss falls out.
    refused = "of 1 messages, the broker refused 1 (nack)"
    held = f"not every confirm came within {NO_MAJORITY_WAIT:g} s"
    assert run.without_majority in (refused, held)


def processes_naming(folder):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if folder.encode() in f.read():
                    found.append(pid)
        except OSError:  # it ended meanwhile
            pass
    return found


def test_the_readme_shows_what_such_a_run_prints(run):
    in_readme = shown("".join(document.read_text() for document in DOCUMENTS))
    names = {name for name in in_readme if name.startswith("cluster-")}
    assert names == set(run.transcripts)
    for name in names:
        assert shape(in_readme[name]) == shape(run.transcripts[name]), name
