"""The demo: every pattern in one terminal, its checks computed from the scripts' output."""

import glob
import importlib.metadata
import importlib.util
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import pika
import pytest
from broker import free_port
from container import owned
from inprocess import ready_messages
from processes import ROOT, TIMEOUT, wait_until
from processes import Script as Process
from scenarios import CONFIRMS_RUN
from throwaway import choose, describe

from common import Exchange, Queue
from common.consuming import READY

SUMMARIES = {
    "basic": "✓ basic: the consumer received the 5 messages the producer sent, in order",
    "workers": "✓ workers: 6 tasks, each done once, by the three: ",
    "pubsub": "✓ pubsub: 3 subscribers each received all 5 messages; alone, the producer was told",
    "routing": "✓ routing: blue reached one consumer, red and green the other, black nobody",
    "topics": "✓ topics: *.orange.* got 3 keys, *.*.rabbit and lazy.# got 5, quick.brown.fox none",
    "rpc": "✓ rpc: 5 answers, in order, from both servers (",
}
# Each line is labelled with its step's name in the README (its transcript), less the pattern.
LABELS = {
    "basic": ["[consumer] ", "[producer] "],
    "workers": ["[consumer-1] ", "[consumer-2] ", "[consumer-3] ", "[producer] "],
    "pubsub": ["[consumer-1] ", "[consumer-3] ", "[producer] ", "[producer-alone] "],
    "routing": ["[consumer-blue] ", "[consumer-red-green] ", "[producer-black] "],
    "topics": ["[consumer-orange] ", "[producer-unmatched] "],
    "rpc": ["[consumer-1] ", "[consumer-2] ", "[producer] ", "[producer-alone] "],
}


def demo(*patterns, url):
    return Process("tools/demo.py", *patterns, url=url)


def assert_shown(run, patterns):
    output = "\n".join(run.stdout)
    for pattern in patterns:
        assert SUMMARIES[pattern] in output, output
        for label in LABELS[pattern]:
            assert any(line.startswith(label) for line in run.stdout), (label, output)
    assert "✗" not in output and "Traceback" not in output + "\n".join(run.stderr)


def test_two_patterns_and_the_broker_left_as_found(amqp_url):
    with Queue(amqp_url, "task_queue"):  # the reader's own, there before the demo
        pass
    run = demo("basic", "workers", url=amqp_url)
    assert run.wait(60) == 0, run.describe()
    assert_shown(run, ["basic", "workers"])
    assert not any("pubsub" in line for line in run.stdout)
    assert ready_messages(amqp_url, "basic") is None  # the demo made it, and deleted it
    assert ready_messages(amqp_url, "task_queue") == 0  # it was there: it stays


def test_every_pattern_in_one_run(amqp_url):
    run = demo(url=amqp_url)
    assert run.wait(30 + CONFIRMS_RUN) == 0, run.describe()  # the confirms' runs, the most
    assert_shown(run, SUMMARIES)


def descendants(pid):
    """Every process below pid, read from /proc."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in glob.glob(f"/proc/{parent}/task/*/children"):
            try:
                with open(task) as listing:
                    children = [int(c) for c in listing.read().split()]
            except OSError:  # the task ended while we looked
                continue
            found += children
            todo += children
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except OSError:
        return False


def test_ctrl_c_in_the_middle_stops_every_process(amqp_url):
    run = demo("workers", "pubsub", url=amqp_url)
    ready = f"[consumer-3] {READY}"  # printed by worker 3 itself: it runs
    wait_until(lambda: ready in run.stdout, "no worker 3", run)
    children = descendants(run.process.pid)
    assert len(children) >= 3
    try:  # it stops its scripts (5 s at most) and cleans the broker up: a deadline for all
        code = run.stop(signal.SIGINT, timeout=2 * TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the demo did not end\n{run.describe()}") from None
    assert code == 130, run.describe()
    assert [pid for pid in children if alive(pid)] == []


def test_with_no_broker_answering_it_brings_its_own(tmp_path):
    """The throwaway broker, a container or a local node as choose() says here, is
    started, used and removed again: no container, process or folder is left."""
    path = choose()[0]  # the demo inherits THROWAWAY, which the tests' own choice set
    run = demo("basic", url=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")
    code = run.wait(90)
    assert code == 0, run.describe()
    said = f"No broker answers there: starting a throwaway one for this demo, {describe(path)}"
    assert run.stdout[0] == said, run.describe()
    assert_shown(run, ["basic"])
    folders = os.path.join(tempfile.gettempdir(), f"rabbitmq-test-{run.process.pid}-*")
    assert glob.glob(folders) == []  # its folder, or its certificates' (tools/)
    if path == "container":
        assert owned(run.process.pid) == ([], [])  # labelled with the demo's pid (container.py)
    else:
        node = f"test-{run.process.pid}-"  # the local node's name starts so (localnode.py)
        left = subprocess.run(["pgrep", "-f", node], capture_output=True, text=True).stdout
        assert left == ""


def test_the_demo_picture_is_made_by_the_documented_command():
    makefile = (ROOT / "Makefile").read_text()
    assert "tools/demo.py workers routing --svg images/demo.svg" in makefile
    assert (ROOT / "images" / "demo.svg").read_text().lstrip().startswith("<svg")


def test_it_refuses_a_queue_in_use_and_leaves_its_messages(amqp_url):
    with Queue(amqp_url, "basic") as mine:
        mine.send("a message of the reader's own")
    run = demo("basic", url=amqp_url)
    assert run.wait(TIMEOUT) == 1, run.describe()
    said = "\n".join(run.stdout)
    assert "the queue 'basic'" in said and "is in use (1 message, 0 consumers)" in said
    assert "`make clean-broker` deletes" in said
    assert ready_messages(amqp_url, "basic") == 1


def test_it_refuses_a_stream_that_is_there_already(amqp_url):
    """Even empty: what the demo appends would stay in the reader's stream."""
    with Queue(amqp_url, None) as mine:
        stream = {"x-queue-type": "stream", "x-max-length-bytes": 1_000_000}
        mine.channel.queue_declare("events", durable=True, arguments=stream)
    run = demo("streams", url=amqp_url)
    assert run.wait(TIMEOUT) == 1, run.describe()
    said = "\n".join(run.stdout)
    assert "the stream 'events' is at" in said and "`make clean-broker` deletes" in said


def test_make_clean_broker_deletes_what_the_patterns_declare_and_nothing_else(amqp_url):
    with Queue(amqp_url, "basic"), Queue(amqp_url, "mine") as mine:
        stream = {"x-queue-type": "stream", "x-max-length-bytes": 1_000_000}
        mine.channel.queue_declare("events", durable=True, arguments=stream)
    with Exchange(amqp_url, "pubsub", "fanout"):
        pass
    run = demo("--delete", url=amqp_url)
    assert run.wait(TIMEOUT) == 0, run.describe()
    assert run.stdout[-1].endswith(": exchange pubsub, queue basic, stream events"), run.stdout
    assert ready_messages(amqp_url, "basic") is None
    assert ready_messages(amqp_url, "events") is None
    assert ready_messages(amqp_url, "mine") == 0
    gone = pytest.raises(pika.exceptions.ChannelClosedByBroker)  # the exchange: 404
    with Queue(amqp_url, None) as client, gone:
        client.channel.exchange_declare("pubsub", "fanout", passive=True)


def test_it_runs_with_only_what_make_demo_installs(tmp_path, amqp_url):
    """make demo installs requirements-demo.txt (pika, rich) and this repository's common/,
    no more: run with those alone (-S: no site-packages), it works all the same."""
    light = tmp_path / "site"
    light.mkdir()
    for module in modules_of(requirements("requirements-demo.txt")):
        found = importlib.util.find_spec(module)
        where = Path(found.origin).parent if found.submodule_search_locations else found.origin
        (light / Path(where).name).symlink_to(where)
    run = Process(
        "-S", "tools/demo.py", "basic", url=amqp_url, env={"PYTHONPATH": f"{light}:{ROOT}"}
    )
    assert run.wait(60) == 0, run.describe()
    assert_shown(run, ["basic"])


def requirements(name):
    """The distributions a requirements file names, with those of the files it includes."""
    names = []
    for line in (ROOT / name).read_text().splitlines():
        if line.startswith("-r "):
            names += requirements(line.split()[1])
        elif line and not line.startswith(("#", "-")):
            names.append(re.match(r"[A-Za-z0-9_.-]+", line).group())
    return names


def modules_of(distributions):
    """The top-level modules of the distributions and of everything they require, from
    the files each installed (Python 3.10's packages_distributions() misses some)."""
    needed, todo = set(), list(distributions)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name not in needed:
            needed.add(name)
            requires = importlib.metadata.requires(name) or []
            todo += [
                re.match(r"[A-Za-z0-9_.-]+", r).group() for r in requires if "extra ==" not in r
            ]
    modules = set()
    for name in needed:
        try:
            files = importlib.metadata.distribution(name).files or []
        except importlib.metadata.PackageNotFoundError:  # for another Python (a marker)
            continue
        for path in files:
            first = path.parts[0]
            if not first.endswith((".dist-info", ".data", ".pth")) and first not in (
                "..",
                "__pycache__",
            ):
                modules.add(first.removesuffix(".py"))
    return modules
