"""Any script, interrupted at any moment, keeps the contract (docs/conventions.rst):
Ctrl-C (SIGINT) or SIGTERM, at a random moment of a run, ends a producer with 130 and a
consumer with 0, with nothing on stderr (no error: line, no traceback), and loses
nothing: what a producer printed as sent is in its queue, and what a consumer had not
finished is back in its queue.

TRIES runs in all, spread over every script, several at once. `make test` leaves them
out (about half a minute); `make test-interrupts` runs them, and CI does on every broker.
"""

import itertools
import random
import signal
from concurrent.futures import ThreadPoolExecutor

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
# Each producer, and the queue that catches what it sends (bound here for the exchanges).
PRODUCERS = [
    (["basic/producer.py", "-n", LONG_RUN], "basic"),
    (["workers/producer.py", "-n", LONG_RUN], "task_queue"),
    (["pubsub/producer.py", "-n", LONG_RUN], "caught-pubsub"),
    (["routing/producer.py", "blue", "-n", LONG_RUN], "caught-routing"),
    (["topics/producer.py", "quick.orange.rabbit", "-n", LONG_RUN], "caught-topics"),
    # A line per message only up to 20 messages; "each" spreads them over a while.
    (["confirms/producer.py", "--strategy", "each", "-n", "20"], "confirms"),
    (["rpc/producer.py", *["20"] * 200], None),  # " [x] Requesting fib(20)" per request
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
]


def interrupt(script, progress, most):
    """Once progress() (a count of lines) reaches a random number from 1 up to most,
    signal script with SIGINT or SIGTERM, at random; return its exit code and the signal.
    Not before its first line: until Python has loaded pika and the script has set its
    handlers (common.cli.run()), a signal does what Python does by default."""
    stop = random.choice([signal.SIGINT, signal.SIGTERM])
    enough = random.randint(1, most)
    wait_until(lambda: progress() >= enough, f"progress {enough}", script)
    return script.stop(stop), stop


def test_a_producer_interrupted_at_any_moment_keeps_the_contract(amqp_url, report):
    with Queue(amqp_url, None) as setup:
        for exchange, kind, key in BINDINGS:
            setup.channel.exchange_declare(exchange, kind, durable=True)
            queue = f"caught-{exchange}"
            setup.channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
            setup.channel.queue_bind(queue, exchange, key)
    scripts = Scripts(amqp_url)
    scripts.start("rpc/consumer.py").wait_until_printed(" [x] Awaiting RPC requests")

    def one(producer):
        command, queue = producer
        script = scripts.start(*command)
        try:
            most = 19 if queue == "confirms" else 40
            code, stop = interrupt(script, lambda: len(script.stdout), most)
            return command[0], queue, code, stop, script.sent(), script
        finally:
            script.kill()

    tries = itertools.islice(itertools.cycle(PRODUCERS), PRODUCER_TRIES)
    with ThreadPoolExecutor(AT_ONCE) as pool:
        runs = list(pool.map(one, tries))
    wrong = [r[-1].describe() for r in runs if r[2] not in expected(r[-1]) or r[-1].stderr]
    assert wrong == [], "\n\n".join(wrong[:3])
    for queue in {queue for _, queue, *_ in runs if queue}:
        there = {body.decode() for _, body in get_all(amqp_url, queue)}
        sent = {body for _, q, _, _, bodies, _ in runs if q == queue for body in bodies}
        assert sent - there == set(), f"{queue}: {len(sent - there)} printed as sent, not there"
    by_signal = {s.name: sum(r[3] is s for r in runs) for s in (signal.SIGINT, signal.SIGTERM)}
    report(f"interrupts: {len(runs)} producers, {by_signal}: 130 (or 0 once done), none lost")


def expected(producer):
    """130; or, once it printed its summary (a short confirms run can end first), 0 too:
    the signal came as it finished, or after."""
    return {0, 130} if producer.printed_line_starting("each: ") else {130}


def test_a_consumer_interrupted_at_any_moment_keeps_the_contract(broker, report):
    def one(consumer):
        command, queue, says_done = consumer
        vhost = broker.add_vhost()
        url = broker.url(vhost)
        try:
            bodies = [f"{i} waiting" for i in range(FILLED)] if queue else []
            if queue:
                with Queue(url, queue) as filler:
                    for body in bodies:
                        filler.send(body)
            script = Scripts(url).start(*command)
            try:  # from its start to some messages in: progress is its lines
                code, stop = interrupt(
                    script, lambda: len(script.stdout), 20 if queue else 1
                )  # for some, READY only
            finally:
                script.kill()
            back = {body.decode() for _, body in get_all(url, queue)} if queue else set()
            lost = set(bodies) - set(done(script.stdout, says_done)) - back
            return code, bool(script.stderr), lost, stop, script
        finally:
            broker.delete_vhost(vhost)

    tries = itertools.islice(itertools.cycle(CONSUMERS), TRIES - PRODUCER_TRIES)
    with ThreadPoolExecutor(AT_ONCE) as pool:
        runs = list(pool.map(one, tries))
    wrong = [
        f"{r[-1].describe()}\nlost: {sorted(r[2])[:5]}" for r in runs if r[:3] != (0, False, set())
    ]
    assert wrong == [], "\n\n".join(wrong[:3])
    report(f"interrupts: {len(runs)} consumers: all 0, every unfinished message back")


def done(lines, says_done):
    """The bodies a consumer finished: basic's once received (it acks as its callback
    returns), a worker's once it printed DONE after them."""
    return [
        line.removesuffix(" received")
        for i, line in enumerate(lines)
        if line.endswith(" received") and (not says_done or lines[i + 1 : i + 2] == [DONE])
    ]
