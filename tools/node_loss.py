"""The README's cluster section, run for real: workers on a quorum queue, and the node
that leads the queue killed in the middle.

lose_the_leader() starts tools/cluster.py as a reader does, runs the workers pattern
on it (quorum queues, the default) with every node's URL, and beside it confirms/producer.py's
three strategies on a queue the same node leads; kills that node while the producers are
half-way (as a crash would: SIGKILL to a local node's process, docker kill of a
container), then a second node (no majority left), stops the cluster with Ctrl-C, and
returns what it saw. tests/test_cluster.py checks that; `make readme`
writes its transcripts into docs/cluster.rst.
"""

import os
import re
import shlex
import signal
import time
import urllib.error
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from json import loads

from broker import BOOT_TIMEOUT, Broker, BrokerUnavailable
from cluster import READY
from container import engine, remove_owned
from processes import Scripts, wait_until
from scenarios import idle

from common import BrokerError, Queue
from common.connection import RECONNECTED
from confirms.bulk import publish_many

MESSAGES = 200
KILL_AFTER = 100  # sent and confirmed: the producer is half-way
DELAY = "0.1"  # seconds of work per task: the workers are mid-task at the kill, and busy after
RIDE_THROUGH = 60.0  # seconds for what follows the kill: far more than it takes
# confirms/producer.py's three strategies, all at once beside the workers', through the kill:
# enough messages that the kill lands in the middle of each, few enough to end soon after.
# About 6 to 10 s each on 4.3.6 containers at rest (async ran 20,000 in 1.7 s there).
CONFIRMS_RUNS = {"each": 1_000, "batch": 20_000, "async": 100_000}
CONFIRMS_WAIT = 180.0  # seconds for them to end after the kill: they send again what was lost
NO_MAJORITY_WAIT = 3.0  # seconds publish_many() waits for an answer that may never come
NODE = re.compile(r"^ +node (\d): (\S+) +(amqp://\S+) +management (\S+) .* (pid|container) (\S+)$")
UP = re.compile(r"^ \[\*\] The cluster is up, in (?:(/\S+)|containers of .* network (\S+))$")


@dataclass
class Node:
    name: str
    url: str
    api: Broker
    kind: str  # "pid" (a local node) or "container"
    handle: str  # its pid, or its container's name
    container: object = None  # docker-py's, found beforehand: the kill then lands at once

    def kill(self):
        """As a crash would: kill -9 PID, or docker kill CONTAINER (SIGKILL too)."""
        if self.container:
            self.container.kill("SIGKILL")
        else:
            os.kill(int(self.handle), signal.SIGKILL)


@dataclass
class Observed:
    sent: list = field(default_factory=list)  # bodies confirmed, in order
    received: list = field(default_factory=list)  # bodies received, by any worker
    leader: int = 0  # the index of the node killed, which led the queue
    reconnected_after: float = 0.0  # seconds from the kill to the worker's reconnection
    received_after_reconnecting: int = 0  # by that worker
    producer_code: int | None = None
    producer_reconnected: bool = False
    sent_again: int | None = None  # the number of the task the producer published again
    worker_codes: list = field(default_factory=list)  # after Ctrl-C
    left_in_queue: int | None = None  # once the workers stopped: unacked ones come back
    without_majority: str = ""  # what publish_many() said with two nodes of three dead
    confirms: dict = field(default_factory=dict)  # strategy -> its producer, through the kill
    confirms_counted: list = field(default_factory=list)  # the confirms consumer's lines
    command_code: int | None = None
    owner: int = 0  # the pid of tools/cluster.py: its containers and network are labelled so
    path: str = ""  # "local" or "container", as cluster.py printed
    folder: str = ""  # the local nodes'
    network: str = ""  # the containers'
    nodes: list = field(default_factory=list)  # Node, as printed
    transcripts: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)  # what -> seconds since the start
    began: float = field(default_factory=time.monotonic)

    def mark(self, what):
        self.seconds[what] = round(time.monotonic() - self.began, 1)

    def done_twice(self):
        """The numbers of the tasks received more than once."""
        return sorted(int(body.split()[0]) for body, n in Counter(self.received).items() if n > 1)


def lose_the_leader():
    """Run the scenario; return an Observed. Every process it started ends with it."""
    scripts = Scripts("amqp://127.0.0.1")  # each worker is given its node's URL
    start = scripts.start
    seen = Observed()
    command = start("tools/cluster.py")
    try:
        command.wait_for_line(READY, timeout=3 * BOOT_TIMEOUT)
        seen.mark("cluster up")
        seen.owner = command.process.pid
        nodes = seen.nodes = [parse(line) for line in command.stdout if NODE.match(line)]
        seen.path = "container" if nodes[0].kind == "container" else "local"
        up = next(UP.match(line) for line in command.stdout if UP.match(line))
        seen.folder, seen.network = up.groups("")
        run_the_workers(start, nodes, seen)
        seen.mark("no-majority checked")
    finally:
        try:
            for script in scripts.started[1:]:  # whatever still runs if the scenario failed
                script.kill()
            seen.command_code = command.stop(signal.SIGINT, timeout=60)
            seen.mark("cluster stopped")
        finally:
            if command.process.poll() is None:  # even Ctrl-C did not stop it
                command.kill()  # its local nodes die with it, its containers do not
                if seen.path != "local":  # containers, or not known yet
                    remove_left(command.process.pid)
    seen.transcripts["cluster-command"] = ["$ python tools/cluster.py", *command.stdout]
    return seen


def remove_left(pid):
    try:
        remove_owned(pid)
    except BrokerUnavailable:  # no Docker engine here: no containers either
        pass


def parse(line):
    number, name, url, api_url, kind, handle = NODE.match(line).groups()
    found = engine(timeout=60).containers.get(handle) if kind == "container" else None
    return Node(name, url, Broker(url, api_url), kind, handle, found)


def run_the_workers(start, nodes, seen):
    """Everything between the cluster's start and its stop, as the README tells it."""
    exported = ",".join(node.url for node in nodes)  # AMQP_URL, as cluster.py says to set it

    def from_node(i):  # every node's URL, node i's first: a script connects there
        return ",".join(node.url for node in nodes[i:] + nodes[:i])

    def start_on(i, path, *args):
        on_node = [] if i == 0 else ["--url", from_node(i)]
        return start(path, *args, *on_node, url=exported)

    workers = [start_on(0, "workers/consumer.py", "--delay", DELAY).wait_ready()]
    seen.leader = leader_of("task_queue", nodes)  # where it was declared, unless 4.x balances
    workers.append(start_on(seen.leader or 1, "workers/consumer.py", "--delay", DELAY))
    workers[1].wait_ready()
    doomed = workers[0 if seen.leader == 0 else 1]  # the worker on the leader's node
    # The confirms queue led from the same node: a policy puts a new quorum queue's leader
    # on the node its declaring client is on. Declared once before its three producers
    # start, which would otherwise declare it at the same moment.
    local = {"pattern": "^confirms$", "definition": {"queue-leader-locator": "client-local"}}
    nodes[0].api.api("PUT", "/api/policies/%2F/confirms-local", {**local, "apply-to": "queues"})
    with Queue(from_node(seen.leader), "confirms"):
        pass
    led_from = leader_of("confirms", nodes)
    assert led_from == seen.leader, f"confirms is led from node {led_from + 1}, not the doomed one"
    seen.confirms = {
        strategy: start_on(
            seen.leader, "confirms/producer.py", "--strategy", strategy, "-n", f"{n}"
        )
        for strategy, n in CONFIRMS_RUNS.items()
    }
    wait_until_publishing(from_node(seen.leader), seen.confirms.values())
    producer = start_on(seen.leader, "workers/producer.py", "-n", str(MESSAGES))
    wait_until(lambda: len(producer.sent()) >= KILL_AFTER, "half sent", producer)
    ended = [  # their summary line printed: done
        s for s, confirming in seen.confirms.items() if confirming.printed_line_starting(f"{s}: ")
    ]
    if ended:  # the kill would prove nothing for them
        raise AssertionError(f"confirms runs ended before the kill: {ended}; give them more")
    killed = time.monotonic()  # from the kill asked: docker kill returns once it is dead
    nodes[seen.leader].kill()
    seen.mark("leader killed")
    doomed.wait_for_line(RECONNECTED, timeout=RIDE_THROUGH)
    seen.reconnected_after = time.monotonic() - killed
    seen.producer_code = producer.wait(RIDE_THROUGH)
    seen.mark("producer done")
    alive = [i for i in range(len(nodes)) if i != seen.leader]
    count_the_confirms_runs(start_on, alive[0], seen)
    seen.producer_reconnected = RECONNECTED in producer.stdout
    if seen.producer_reconnected:  # the task it published again: the next one it says sent
        again = producer.stdout[producer.stdout.index(RECONNECTED) :]
        seen.sent_again = next(int(line.split()[0]) for line in again if line.endswith(" sent"))
    seen.sent = producer.sent()

    with Queue(from_node(alive[0]), None) as observer:

        def waiting():  # tasks in the queue, not delivered yet
            return observer.channel.queue_declare("task_queue", passive=True).method.message_count

        def everything_done():  # a task still under way at Ctrl-C goes back to the queue
            received = {body for w in workers for body in w.received()}
            # and none waits: a task sent twice (its first confirm lost with the leader), or
            # given back by the killed node's worker, may come after every body was seen
            return set(seen.sent) <= received and all(map(idle, workers)) and waiting() == 0

        wait_until(everything_done, "every sent task done", *workers, timeout=RIDE_THROUGH)
        seen.mark("every task done")
        seen.worker_codes = [worker.stop(signal.SIGINT) for worker in workers]
        seen.mark("workers stopped")
        seen.left_in_queue = waiting()
    seen.received = [body for worker in workers for body in worker.received()]
    after = doomed.stdout[doomed.stdout.index(RECONNECTED) :]
    seen.received_after_reconnecting = sum(line.endswith(" received") for line in after)
    nodes[alive[0]].kill()  # one node of three left: no majority
    try:
        publish_many(from_node(alive[1]), "task_queue", ["x"], timeout=NO_MAJORITY_WAIT)
        seen.without_majority = "confirmed"
    except BrokerError as error:
        seen.without_majority = str(error)
    other = workers[1] if doomed is workers[0] else workers[0]
    for name, script in [
        ("cluster-worker-dead-node", doomed),
        ("cluster-worker-other-node", other),
        ("cluster-producer", producer),
    ]:
        shown = shlex.join(["python", *script.command[1:]])
        seen.transcripts[name] = [f"$ {shown}", *excerpt(script.stdout + script.stderr)]


def count_the_confirms_runs(start_on, node, seen):
    """Wait for the confirms producers to end, then count what they sent with
    confirms/consumer.py on a node that is alive."""

    def ended():  # each printed its summary, or an error
        confirms = seen.confirms.items()
        return all(p.printed_line_starting(f"{s}: ") or p.stderr for s, p in confirms)

    wait_until(ended, "the confirms runs ended", *seen.confirms.values(), timeout=CONFIRMS_WAIT)
    for confirming in seen.confirms.values():
        confirming.wait()  # its exit, and the rest of its output
    seen.mark("confirms sent")
    counter = start_on(node, "confirms/consumer.py").wait_ready()
    counted = [f"{s} of {n}: {n} received: none missing" for s, n in CONFIRMS_RUNS.items()]

    def all_counted():
        return all(any(line.startswith(c) for line in counter.stdout) for c in counted)

    wait_until(all_counted, "the confirms runs counted", counter, timeout=RIDE_THROUGH)
    assert counter.stop(signal.SIGINT) == 0, counter.describe()
    seen.confirms_counted = [line for line in counter.stdout if " received: " in line]
    seen.mark("confirms counted")


def wait_until_publishing(url, producers, least=100):
    """Wait until the confirms queue holds more than least messages: its producers are
    under way (they print nothing until the end: the queue is asked, not their output)."""
    deadline = time.monotonic() + RIDE_THROUGH
    with Queue(url, None) as observer:
        declare = observer.channel.queue_declare  # passive: it only asks
        while declare("confirms", passive=True).method.message_count <= least:
            if time.monotonic() > deadline:
                raise AssertionError("\n\n".join(producer.describe() for producer in producers))
            time.sleep(0.05)  # a poll interval, bounded by the deadline: no event to wait on


def leader_of(queue, nodes):
    """The index of the node that leads queue, as the management API says."""
    path = "/api/queues/%2F/" + urllib.parse.quote(queue, safe="")
    deadline = time.monotonic() + RIDE_THROUGH
    while True:
        try:
            leader = loads(nodes[0].api.api("GET", path)).get("leader")
            return [node.name for node in nodes].index(leader)
        except (urllib.error.HTTPError, ValueError):  # not listed yet, or no leader yet
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)  # a poll interval, bounded by the deadline above


def excerpt(lines, around=2):
    """The lines worth showing: the first few, those near a notice (" [*] Reconnected",
    " [!]"), and the last two, with "..." for what is left out."""
    keep = set(range(3)) | set(range(len(lines) - 2, len(lines)))
    for i, line in enumerate(lines):
        if line.startswith((RECONNECTED, " [!]")):
            keep |= set(range(i - around, i + around + 1))
    shown, last = [], -1
    for i in sorted(k for k in keep if 0 <= k < len(lines)):
        if i > last + 1:
            shown.append("...")
        shown.append(lines[i])
        last = i
    return shown


# A notice that one run prints and another may not: whether the broker refuses a
# message depends on when the producer's retry meets the election of a new leader.
MAY_VARY = {" [!] The broker refused a message (nack): sending it again"}
NUMBERS = re.compile(r"\d+")
# What tools/cluster.py prints differently when its nodes are containers and when they are
# local nodes: where they are, their names, how to kill one or run rabbitmqctl on node 1.
# Written alike, so that a run on either has the shape of the documents' transcript. No
# line of the workers' or the producer's matches these.
BY_PATH = [
    (r"^( \[\*\] The cluster is up, in ).+$", r"\1<a folder, or containers>"),
    (r"\bnode\d+-\d+@localhost\b|\brabbit@rmq\d+-\d+\b", "<node>"),
    (r"  (?:pid \d+|container rmq\d+-\d+)$", "  <pid, or container>"),
    (r"^( \[\*\] rabbitmqctl on node 1)\b.*:$", r"\1 <where>:"),
    (r"^     .*\brabbitmqctl (?:.+ )?(list_queues .+)$", r"     <rabbitmqctl on node 1> \1"),
    (r"^( \[\*\] To make a node die: )(?:kill -9 PID|docker kill CONTAINER)$", r"\1<kill>"),
]


def shape(lines):
    """What every run of the scenario prints alike: its notices (" [*]", " [!]") in order,
    and the set of its lines, every number (message, time, port, pid) written N, and what
    differs between containers and local nodes (BY_PATH) written alike."""
    lines = [line for line in lines if line not in MAY_VARY]
    for pattern, alike in BY_PATH:
        lines = [re.sub(pattern, alike, line) for line in lines]
    lines = [NUMBERS.sub("N", line) for line in lines]
    notices = [line for line in lines if line.startswith((" [*]", " [!]"))]
    in_order = [line for i, line in enumerate(notices) if i == 0 or line != notices[i - 1]]
    return in_order, sorted(set(lines))
