"""The broker stopped, or killed as a crash would, under a producer: every message it
printed as sent is there when the broker is back. (A file of its own, so that make
test-restarts's two workers share the restart tests.)"""

import pytest

from common import Queue

pytestmark = pytest.mark.restarts  # make test-restarts: apart, for time


@pytest.mark.parametrize("kill", [False, True], ids=["stopped", "killed"])
def test_confirmed_messages_survive_the_broker_stopped_or_killed(
    start, restartable, amqp_url, queue_type, kill
):
    """The broker's process (or container) stopped, or killed as a crash would: it comes
    back with its data on the same port, and every message printed as sent is there.

    A queue declared a moment before a crash may come back empty or not at all: its
    registration was not on disk yet. A quorum queue then came back empty (RabbitMQ 4.3)
    or unusable (3.10, 4.0, "name_not_registered" in the log); a classic one was gone,
    with its messages, once in a run with three brokers at once on two cores (3.10.8).
    So the queue is there, and has seen a restart, before."""
    with Queue(amqp_url, "basic"):
        pass
    restartable.restart()
    producer = start("basic/producer.py")
    assert producer.wait() == 0, producer.describe()
    restartable.shut_down(kill=kill)
    restartable.start_again()
    consumer = start("basic/consumer.py")
    assert consumer.wait_received(5, timeout=30) == producer.sent()
