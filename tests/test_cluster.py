"""Quorum queues on a three-node cluster: the workers pattern, and the confirms pattern's
three strategies, ride through the loss of the node that leads their queues, and lose
nothing.

One run of node_loss.lose_the_leader() (about 25 s alone, 35 s in containers), several
checks. `make test` leaves them out; `make test-cluster` runs them. The cluster is started by
tools/cluster.py as a reader starts it: three containers when the tests' throwaway broker
is a container (tools/throwaway.py: RABBITMQ_IMAGE, THROWAWAY=container), else three
local nodes of rabbitmq-server.
"""

import os
import re

import pytest
from broker import answers
from container import engine, owned
from node_loss import CONFIRMS_RUNS, KILL_AFTER, MESSAGES, NO_MAJORITY_WAIT, lose_the_leader, shape
from readme import DOCUMENTS
from throwaway import choose
from transcripts import shown

from common.connection import RECONNECTED

pytestmark = pytest.mark.cluster
RECONNECT_WITHIN = 10.0  # seconds; it takes well under one when the node's process dies


# One run for all these tests: `make test` gives each test file to one xdist worker
# (--dist loadfile), so this starts one cluster in all.
@pytest.fixture(scope="session")
def run():
    return lose_the_leader()


def test_the_cluster_runs_where_the_throwaway_broker_does(run):
    assert run.path == choose()[0]
    assert len(run.nodes) == 3


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
    if run.path == "container":  # what docker ps -a and docker network ls would list
        assert [node.handle for node in run.nodes if in_docker("containers", node.handle)] == []
        assert run.network and not in_docker("networks", run.network)
        containers, networks = owned(run.owner)  # anything else labelled with its pid
        assert containers == networks == []
    else:
        assert run.folder and not os.path.exists(run.folder)
        pids = [int(node.handle) for node in run.nodes]
        assert [pid for pid in pids if os.path.exists(f"/proc/{pid}")] == []
        assert processes_naming(run.folder) == []
    assert [node.url for node in run.nodes if answers(node.url)] == []  # what a reader sees
    phases = ", ".join(f"{what} {seconds:g}" for what, seconds in run.seconds.items())
    report(f"cluster: seconds from the start: {phases}")


def test_each_confirms_strategy_rides_through_the_leader_kill(run, report):
    """confirms/producer.py, each strategy at once, on the queue that the killed node led:
    each loses the broker mid-run, connects to another node, sends again what was not
    confirmed, and the consumer finds none missing."""
    for strategy, producer in run.confirms.items():
        n = CONFIRMS_RUNS[strategy]
        assert producer.process.returncode == 0, producer.describe()
        assert RECONNECTED in producer.stdout, producer.describe()  # it rode through the kill
        [summary] = [line for line in producer.stdout if line.startswith(f"{strategy}: ")]
        assert summary.startswith(f"{strategy}: {n} confirmed in "), summary
        assert summary.endswith(" sent again") and " 0 returned" in summary, summary
        [counted] = [line for line in run.confirms_counted if line.startswith(f"{strategy} of")]
        assert counted.startswith(f"{strategy} of {n}: {n} received: none missing"), counted
        report(f"cluster, confirms: {summary}; {counted.split(': ', 2)[2]}")


def test_without_a_majority_nothing_is_confirmed(run):
    # Refused (and sent again) or held without an answer, as the timing of the loss falls.
    said = rf"no confirm in {NO_MAJORITY_WAIT:g} s: 1 not confirmed(, \d+ refused \(nack\))?"
    assert re.fullmatch(said, run.without_majority), run.without_majority


def in_docker(kind, name):
    """Whether the Docker engine has a container or a network of that name."""
    import docker

    try:
        getattr(engine(), kind).get(name)
        return True
    except docker.errors.NotFound:
        return False


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
