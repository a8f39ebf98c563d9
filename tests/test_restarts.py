"""The broker restarted, or closing connections, under running scripts: confirmed
messages survive, and consumers reconnect or stop cleanly. (Split from test_faults.py,
and the broker stopped or killed into test_crashes.py, so that make test-restarts's two
workers share them.)"""

import signal
import time

import pytest

from common.connection import RECONNECTED

pytestmark = pytest.mark.restarts  # make test-restarts: apart, for time


def test_persistent_messages_survive_a_broker_restart(start, restartable):
    producer = start("basic/producer.py")
    assert producer.wait() == 0, producer.describe()
    restartable.restart()
    consumer = start("basic/consumer.py")
    assert consumer.wait_received(5) == producer.sent()


@pytest.mark.parametrize(
    ("consumer_args", "producer_args"),
    [
        (["basic/consumer.py"], ["basic/producer.py", "-n", "2"]),
        (["routing/consumer.py", "blue"], ["routing/producer.py", "blue", "-n", "2"]),
    ],
    ids=["basic", "routing"],
)
def test_a_consumer_reconnects_when_the_broker_closes_its_connection(
    start, restartable, queue_type, consumer_args, producer_args
):
    consumer = start(*consumer_args).wait_ready()
    restartable.ctl("close_all_connections", "--global", "closed by a test")
    consumer.wait_for_line(RECONNECTED)
    producer = start(*producer_args)
    assert producer.wait() == 0, producer.describe()
    assert producer.sent() and consumer.wait_received(2) == producer.sent()
    assert consumer.stdout.count(RECONNECTED) == 1
    # It said that it lost the broker, and why (the broker's words), before it was back.
    said = " [!] Lost the broker (the broker closed the connection: CONNECTION_FORCED - "
    lost = [i for i, line in enumerate(consumer.stdout) if line.startswith(said)]
    assert len(lost) == 1 and lost[0] < consumer.stdout.index(RECONNECTED), consumer.describe()
    assert "closed by a test" in consumer.stdout[lost[0]]
    assert consumer.stop() == 0 and consumer.stderr == []


def test_a_consumer_rides_through_a_broker_restart(start, restartable, queue_type):
    worker = start("workers/consumer.py", "--delay", "0").wait_ready()
    restartable.restart()
    worker.wait_for_line(RECONNECTED, timeout=30)
    producer = start("workers/producer.py", "-n", "3")
    assert producer.wait() == 0, producer.describe()
    assert worker.wait_received(3) == producer.sent()
    assert worker.stop() == 0 and worker.stderr == []


def test_a_consumer_started_while_the_broker_is_down_waits_for_it(start, restartable):
    restartable.ctl("stop_app")
    try:
        consumer = start("basic/consumer.py")
        consumer.wait_until_printed(" [!] No broker answers at")
    finally:
        restartable.ctl("start_app")
        restartable.wait_until_listening()
    consumer.wait_ready(timeout=30)
    producer = start("basic/producer.py", "-n", "1")
    assert producer.wait() == 0, producer.describe()
    assert consumer.wait_received(1) == producer.sent()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_while_waiting_for_a_lost_broker_exits_at_once(start, restartable, sig):
    """Lost while consuming, waiting up to --retry (30 s) for the broker: a stop ends it."""
    consumer = start("basic/consumer.py").wait_ready()
    restartable.ctl("stop_app")
    try:
        consumer.wait_until_printed(" [!] No broker answers at")
        began = time.monotonic()
        assert consumer.stop(sig) == 0, consumer.describe()
        assert time.monotonic() - began < 5  # not the 30 s of --retry
        assert consumer.stderr == [], consumer.describe()
    finally:
        restartable.ctl("start_app")
        restartable.wait_until_listening()
