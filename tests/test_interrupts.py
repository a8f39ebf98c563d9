"""Any script, interrupted at any moment, keeps the contract (docs/conventions.rst):
Ctrl-C (SIGINT) or SIGTERM, at a random moment of a run, ends a producer with 130 (0 if
it had just finished) and a consumer with 0, with nothing on stderr (no error: line, no
traceback), and loses nothing: what a producer printed as sent is in its queue, and what
a consumer had not finished is back in its queue.

TRIES runs in all, spread over the scripts, several at once. `make test` leaves them out
(about half a minute); `make test-interrupts` runs them, and CI does on every broker.
INTERRUPT_SEED=N replays a run's random choices (each failure says its seed).
"""

import itertools
import os
import random
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from inprocess import get_all
from processes import Scripts, wait_until

from common import Queue
from common.consuming import DONE

pytestmark = pytest.mark.interrupts
TRIES = 200  # in all, producers and consumers
PRODUCER_TRIES = 150
AT_ONCE = 4
LONG_RUN = "100000"  # messages: far more than a producer sends before it is interrupted
REQUESTS = 200  # the RPC client's
# Each producer; the queue that catches what it sends (bound here for the exchanges); and
# the line that says it is done (a short run can end before the signal comes).
PRODUCERS = [
    (["basic/producer.py", "-n", LONG_RUN], "basic", None),
    (["workers/producer.py", "-n", LONG_RUN], "task_queue", None),
    (["pubsub/producer.py", "-n", LONG_RUN], "caught-pubsub", None),
    (["routing/producer.py", "blue", "-n", LONG_RUN], "caught-routing", None),
    (["topics/producer.py", "quick.orange.rabbit", "-n", LONG_RUN], "caught-topics", None),
    # A line per message only up to 20 messages; "each" spreads them over a while.
    (["confirms/producer.py", "--strategy", "each", "-n", "20"], "confirms", "each: "),
    (["rpc/producer.py", *["20"] * REQUESTS], None, " [.] Got fib(20) = 6765"),
    (["streams/producer.py", "-n", LONG_RUN], None, None),  # a stream: no basic_get to check
]
BINDINGS = [("pubsub", "fanout", ""), ("routing", "direct", "blue"), ("topics", "topic", "#")]
FILLED = 200  # messages waiting for the consumers of a queue
CONSUMERS = [  # each, its queue (None: exclusive, gone with it), whether it says DONE
    (["basic/consumer.py"], "basic", False),
    (["workers/consumer.py", "--delay", "0.01"], "task_queue", True),
    (["pubsub/consumer.py"], None, False),
    (["routing/consumer.py", "blue"], None, False),
    (["topics/consumer.py", "#"], None, False),
    (["rpc/consumer.py"], None, False),
    (["confirms/consumer.py"], None, False),
    (["streams/consumer.py", "--offset", "first"], None, False),
]
SEED = int(os.environ.get("INTERRUPT_SEED") or random.randrange(10**6))


@dataclass
class Interrupted:
    script: object
    code: int
    signal: signal.Signals
    queue: str | None = None
    lost: set = frozenset()  # messages a consumer had not finished, not back in the queue

    def describe(self):
        lost = f"\nlost: {sorted(self.lost)[:5]}" if self.lost else ""
        return f"{self.script.describe()}{lost}\n(INTERRUPT_SEED={SEED})"


def interrupt(script, chance, most):
    """Once script has printed a random number of lines, from 1 up to most, signal it
    with SIGINT or SIGTERM, at random; return its exit code and the signal. Not before its
    first line: until Python has loaded pika and run() has set its handlers, a signal does
    what Python does by default."""
    stop = chance.choice([signal.SIGINT, signal.SIGTERM])
    enough = chance.randint(1, most)
    wait_until(lambda: len(script.stdout) >= enough, f"{enough} lines", script)
    return script.stop(stop), stop


def test_a_producer_interrupted_at_any_moment_keeps_the_contract(amqp_url, start, report):
    with Queue(amqp_url, None) as setup:
        for exchange, kind, key in BINDINGS:
            setup.channel.exchange_declare(exchange, kind, durable=True)
            queue = f"caught-{exchange}"
            setup.channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
            setup.channel.queue_bind(queue, exchange, key)
    start("rpc/consumer.py").wait_until_printed(" [x] Awaiting RPC requests")
    scripts = Scripts(amqp_url)

    def one(numbered):
        number, (command, queue, last) = numbered
        script = scripts.start(*command)
        try:
            most = 19 if queue == "confirms" else 40  # its 20 lines, and its summary
            code, stop = interrupt(script, random.Random(SEED + number), most)
        finally:
            script.kill()
        finished = sum(line.startswith(last or "\0") for line in script.stdout)
        done = finished == (REQUESTS if queue is None else 1)
        return Interrupted(script, code, stop, queue), {0, 130} if done else {130}

    tries = enumerate(itertools.islice(itertools.cycle(PRODUCERS), PRODUCER_TRIES))
    with ThreadPoolExecutor(AT_ONCE) as pool:
        runs = list(pool.map(one, tries))
    wrong = [run.describe() for run, codes in runs if run.code not in codes or run.script.stderr]
    assert wrong == [], "\n\n".join(wrong[:3])
    for queue in {run.queue for run, _ in runs if run.queue}:
        there = {body.decode() for _, body in get_all(amqp_url, queue)}
        sent = {body for run, _ in runs if run.queue == queue for body in run.script.sent()}
        assert sent <= there, f"{queue}: {len(sent - there)} printed as sent, not there ({SEED})"
    by_signal = {
        s.name: sum(run.signal is s for run, _ in runs) for s in (signal.SIGINT, signal.SIGTERM)
    }
    report(f"interrupts: {len(runs)} producers, {by_signal}, seed {SEED}: none wrong or lost")


def test_a_consumer_interrupted_at_any_moment_keeps_the_contract(broker, report):
    def one(numbered):
        number, (command, queue, says_done) = numbered
        vhost = broker.add_vhost()
        url = broker.url(vhost)
        try:
            bodies = [f"{i} waiting" for i in range(FILLED)] if queue else []
            if queue:
                with Queue(url, queue) as filler:
                    for body in bodies:
                        filler.send(body)
            script = Scripts(url).start(*command)
            try:  # from READY to some messages in: progress is its lines
                code, stop = interrupt(script, random.Random(-SEED - number), 20 if queue else 1)
            finally:
                script.kill()
            back = {body.decode() for _, body in get_all(url, queue)} if queue else set()
            lost = set(bodies) - set(done(script.stdout, says_done)) - back
            return Interrupted(script, code, stop, queue, lost)
        finally:
            broker.delete_vhost(vhost)

    tries = enumerate(itertools.islice(itertools.cycle(CONSUMERS), TRIES - PRODUCER_TRIES))
    with ThreadPoolExecutor(AT_ONCE) as pool:
        runs = list(pool.map(one, tries))
    wrong = [run.describe() for run in runs if run.code != 0 or run.script.stderr or run.lost]
    assert wrong == [], "\n\n".join(wrong[:3])
    report(f"interrupts: {len(runs)} consumers, seed {SEED}: all 0, every unfinished one back")


def done(lines, says_done):
    """The bodies a consumer finished: basic's once received (it acks as its callback
    returns), a worker's once it printed DONE after them."""
    return [
        line.removesuffix(" received")
        for i, line in enumerate(lines)
        if line.endswith(" received") and (not says_done or lines[i + 1 : i + 2] == [DONE])
    ]
