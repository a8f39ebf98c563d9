"""Queue.receive() on each queue type: prefetch, acks after the work, dead letters, a stop,
and a lost connection; checked on the broker itself."""

import collections
import contextlib
import logging
import threading
import time
import urllib.error
import urllib.parse

import pika
import pytest
from inprocess import (
    TIMEOUT,
    Call,
    Consuming,
    Seen,
    documented_policy,
    get_all,
    queue_info,
    ready_messages,
    wait_until_acked,
    wait_until_ready,
)

from common import Queue
from common.connection import RECONNECTED
from common.consuming import READY
from common.poison import DEAD_LETTERS, MAX_ATTEMPTS


def send(url, queue, *bodies, **properties):
    with Queue(url, queue) as producer:
        for body in bodies:
            assert producer.send(body, properties=pika.BasicProperties(**properties)) is True


class Holding(Queue):
    """A consumer whose callback records each message and holds the first ones it is
    told to, until released: meanwhile nothing is acked."""

    def __init__(self, *args, hold=1, **options):
        self.handled, self.hold, self.release = Seen(), hold, threading.Event()
        super().__init__(*args, **options)

    def callback(self, body):
        self.handled.add(body)
        if len(self.handled.items) <= self.hold:
            assert self.release.wait(TIMEOUT)


def test_receive_holds_at_most_prefetch_unacked_messages(amqp_url, queue_type):
    send(amqp_url, "limited", *map(str, range(5)))
    with Consuming(Holding(amqp_url, "limited", prefetch=2)) as consumer:
        consumer.handled.wait_for(1, "the first message")
        wait_until_ready(amqp_url, "limited", 3)  # two delivered and unacked, three waiting
        consumer.release.set()
        assert consumer.handled.wait_for(5, "every message") == ["0", "1", "2", "3", "4"]


def until(condition, what):
    """Wait for the consumer's own state, which has no event to wait on."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_every_message_worked_on_is_acked(broker, amqp_url, queue_type):
    """Ten messages worked on while pika's thread is busy: their acks pile up, go as one
    (multiple=True) once it is free, and leave none of the ten unacked."""
    send(amqp_url, "burst", *map(str, range(10)))
    with Consuming(Holding(amqp_url, "burst", prefetch=10)) as consumer:
        consumer.handled.wait_for(1, "the first message")
        until(lambda: consumer.tasks.qsize() == 9, "the other nine did not wait behind it")
        busy, free = threading.Event(), threading.Event()

        def hold_pikas_thread():
            busy.set()
            free.wait(TIMEOUT)

        consumer.connection.add_callback_threadsafe(hold_pikas_thread)
        assert busy.wait(TIMEOUT), "pika's thread did not run the callback"
        consumer.release.set()
        until(lambda: len(consumer.outbox) == 10, "the ten acks did not pile up")
        free.set()
        wait_until_acked(broker, amqp_url, "burst")


def test_a_message_is_acked_only_once_its_callback_returns(amqp_url, queue_type):
    send(amqp_url, "acked", "slow", "quick")
    with Consuming(Holding(amqp_url, "acked", prefetch=10)) as consumer:
        consumer.handled.wait_for(1, "the first message")
        wait_until_ready(amqp_url, "acked", 0)
    # Stopped mid-callback: neither message was acked, so both went back to the queue.
    assert [body for _, body in get_all(amqp_url, "acked")] == [b"slow", b"quick"]
    consumer.release.set()


def test_a_message_whose_callback_keeps_failing_goes_to_the_dead_letters(
    broker, amqp_url, queue_type, logged
):
    handled = Seen()

    class Picky(Queue):
        def callback(self, body):
            if body == "poison":
                raise ValueError("cannot digest this")
            handled.add(body)

    send(amqp_url, "jobs", "poison", message_id="m-1", correlation_id="c-1")
    send(amqp_url, "jobs", "fine")
    with Consuming(Picky(amqp_url, "jobs")):
        handled.wait_for(1, "the good message")
        # The consumer declares DEAD_LETTERS itself: the test only asks, declaring nothing.
        wait_until_ready(amqp_url, DEAD_LETTERS, 1)
    assert handled.items == ["fine"]
    [(properties, body)] = get_all(amqp_url, DEAD_LETTERS)
    assert body == b"poison"
    assert (properties.message_id, properties.correlation_id) == ("m-1", "c-1")
    assert properties.delivery_mode == 2
    # A classic queue counts no deliveries, on any version (the next test): the consumer
    # knows only that a message was delivered before, so it gives a message two.
    attempts = MAX_ATTEMPTS if queue_type == "quorum" else 2
    assert properties.headers["attempts"] == attempts
    assert properties.headers["queue"] == "jobs"
    assert "cannot digest this" in properties.headers["error"]
    info = queue_info(broker, amqp_url, DEAD_LETTERS)
    assert (info["type"], info["durable"]) == (queue_type, True)
    warnings = logged.warnings()
    assert len(warnings) == attempts and "goes to the queue 'dead_letters'" in warnings[-1]
    assert f"attempt {attempts} of {attempts}" in warnings[-1]
    assert ready_messages(amqp_url, "jobs") == 0  # not requeued forever


def test_a_body_that_is_not_utf8_does_not_crash_the_consumer(amqp_url, queue_type):
    with Queue(amqp_url, "bytes") as producer:
        producer.channel.basic_publish("", "bytes", b"caf\xe9 \xff")
    with Consuming(Holding(amqp_url, "bytes", hold=0)) as consumer:
        assert consumer.handled.wait_for(1, "the message") == ["caf\ufffd \ufffd"]


def test_a_stopped_consumer_starts_no_callback_and_gives_every_message_back(amqp_url, queue_type):
    send(amqp_url, "held", *map(str, range(5)))
    consuming = Consuming(Holding(amqp_url, "held", prefetch=5))
    consumer = consuming.consumer
    consumer.handled.wait_for(1, "the first message")
    until(lambda: consumer.tasks.qsize() == 4, "the other four did not wait behind it")
    consuming.stop()  # receive() has returned; the connection is still open
    consumer.release.set()  # the first callback ends; the four behind it must not start
    until(consumer.tasks.empty, "the worker thread did not get through its four tasks")
    consumer.close()  # the broker takes back all five: none was acked
    assert [body for _, body in get_all(amqp_url, "held")] == [b"0", b"1", b"2", b"3", b"4"]
    assert consumer.handled.items == ["0"]


def test_a_channel_the_broker_closes_ends_receive_with_the_brokers_reason(amqp_url, queue_type):
    """Neither silence nor a reconnecting loop: when the broker closes the consumer's
    channel (here for an ack of a delivery it never made; a consumer_timeout has a test
    of its own, in test_workers.py), receive() raises the broker's reason, which run()
    prints as an error: line, and the message held goes back to the queue."""
    send(amqp_url, "closed", "held")
    consumer = Holding(amqp_url, "closed", prefetch=1)
    receiving = Call(consumer.receive)
    consumer.handled.wait_for(1, "the message")
    consumer.connection.add_callback_threadsafe(lambda: consumer.channel.basic_ack(999))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="unknown delivery tag 999"):
        receiving.result()
    consumer.release.set()
    consumer.close()
    assert [body for _, body in get_all(amqp_url, "closed")] == [b"held"]


def test_after_a_lost_connection_each_message_is_worked_on_once_more_at_most(
    broker, amqp_url, queue_type, logged
):
    """The messages delivered but not yet worked on when the connection is lost are
    delivered again: the consumer drops its old copies instead of working on both."""
    send(amqp_url, "flaky", *map(str, range(5)))
    with Consuming(Holding(amqp_url, "flaky", prefetch=5)) as consumer:
        consumer.handled.wait_for(1, "the first message")
        wait_until_ready(amqp_url, "flaky", 0)  # the other four wait in the consumer
        vhost = pika.URLParameters(amqp_url).virtual_host
        broker.ctl("close_all_connections", "-p", vhost, "closed by a test")
        logged.wait_for(RECONNECTED)
        consumer.release.set()
        consumer.handled.wait_for(6, "the five delivered again")
        wait_until_ready(amqp_url, "flaky", 0)
    # "0" was mid-callback when the connection went: it is worked on again, as it must be.
    assert collections.Counter(consumer.handled.items) == {"0": 2, "1": 1, "2": 1, "3": 1, "4": 1}


@pytest.mark.parametrize("loss", ["queue deleted", "connection closed"])
def test_after_losing_its_subscription_mid_stream_a_consumer_goes_on_acking(
    broker, amqp_url, queue_type, logged, loss
):
    """Acks under way when the subscription goes must not hold up those on the next one:
    more than a prefetch's worth of messages after it are all worked on."""
    handled = Seen()

    class Steady(Queue):
        def callback(self, body):
            handled.add(body)
            time.sleep(0.001)  # the work: long enough for acks to be under way at the loss

    send(amqp_url, "stream", *map(str, range(200)))
    vhost = pika.URLParameters(amqp_url).virtual_host
    with Consuming(Steady(amqp_url, "stream", prefetch=10)):
        handled.wait_for(20, "the first messages")
        if loss == "queue deleted":
            broker.api("DELETE", f"/api/queues/{urllib.parse.quote(vhost, safe='')}/stream")
        else:
            broker.ctl("close_all_connections", "-p", vhost, "closed by a test")
        logged.wait_for(RECONNECTED)
        after = [f"after {i}" for i in range(50)]
        send(amqp_url, "stream", *after)
        handled.wait_until(lambda items: set(after) <= set(items), "the 50 sent after")


def test_an_ack_whose_wake_up_is_lost_with_a_cancelled_subscription_holds_up_nothing(
    broker, amqp_url, logged
):
    """The moment the test above can only hope to hit, made certain: a message is finished
    while the broker cancels the subscription, and its ack's wake-up of the I/O thread is
    lost when the old connection closes. The next subscription must still ack: more than
    a prefetch's worth of messages after it are all worked on."""
    handled, finishing = Seen(), threading.Event()

    class Finishing(Queue):
        def callback(self, body):
            handled.add(body)
            if body == "held":
                assert finishing.wait(TIMEOUT)

    class Between(logging.Handler):
        """On the I/O thread, after the cancel and before the old connection is closed:
        let "held" finish, and wait until the worker has moved on to the next message."""

        def emit(self, record):
            if "cancelled the subscription" in record.getMessage():
                finishing.set()
                handled.wait_until(lambda items: "then" in items, "the message after 'held'")

    send(amqp_url, "cancelled", "held", "then")
    vhost = urllib.parse.quote(pika.URLParameters(amqp_url).virtual_host, safe="")
    between, helpers = Between(), logging.getLogger("common")
    helpers.addHandler(between)
    try:
        with Consuming(Finishing(amqp_url, "cancelled", prefetch=10)):
            handled.wait_for(1, "'held', in its callback")
            wait_until_ready(amqp_url, "cancelled", 0)  # "then" delivered too, behind it
            broker.api("DELETE", f"/api/queues/{vhost}/cancelled")
            logged.wait_for(RECONNECTED)
            after = [f"after {i}" for i in range(30)]
            send(amqp_url, "cancelled", *after)
            handled.wait_until(lambda items: set(after) <= set(items), "the 30 sent after")
    finally:
        helpers.removeHandler(between)


def test_a_queue_deleted_again_before_the_subscription_is_declared_once_more(
    broker, amqp_url, queue_type, logged
):
    """A deleted queue cancels its consumers before it is gone, so declaring it again can
    meet the old one, which then vanishes before the subscription (CI saw it, on 4.0.5):
    made certain here by deleting the queue again right after it was declared again."""
    handled = Seen()

    class Counting(Queue):
        def callback(self, body):
            handled.add(body)

    vhost = urllib.parse.quote(pika.URLParameters(amqp_url).virtual_host, safe="")
    deleted = []

    class DeleteAgain(logging.Handler):
        def emit(self, record):  # on the consuming thread: declared, not yet subscribed
            if record.getMessage() == RECONNECTED and not deleted:
                deleted.append(True)
                with contextlib.suppress(urllib.error.HTTPError):  # gone already: the race
                    broker.api("DELETE", f"/api/queues/{vhost}/again")

    again, helpers = DeleteAgain(), logging.getLogger("common")
    with Consuming(Counting(amqp_url, "again")):
        logged.wait_for(READY)
        helpers.addHandler(again)
        try:
            broker.api("DELETE", f"/api/queues/{vhost}/again")
            logged.wait_for(RECONNECTED, count=2)
        finally:
            helpers.removeHandler(again)
        send(amqp_url, "again", "after")
        handled.wait_for(1, "the message sent after")
    assert deleted


def test_an_operator_policy_sets_poison_messages_aside_with_the_broker_alone(broker, amqp_url):
    """docs/helpers.rst's policy: the quorum queue counts the deliveries and moves the
    message to dead_letters after MAX_ATTEMPTS, for any client, ours or not."""
    vhost = urllib.parse.quote(pika.URLParameters(amqp_url).virtual_host, safe="")
    broker.api("PUT", f"/api/policies/{vhost}/poison", documented_policy("poison"))
    with Queue(amqp_url, DEAD_LETTERS), Queue(amqp_url, "task_queue") as client:
        client.send("poison")
        deliveries = 0
        while True:
            method, properties, body = client.channel.basic_get("task_queue")
            if method is None:
                break
            deliveries += 1
            client.channel.basic_reject(method.delivery_tag, requeue=True)  # a failure
            assert deliveries <= MAX_ATTEMPTS
    assert deliveries == MAX_ATTEMPTS
    assert [body for _, body in get_all(amqp_url, DEAD_LETTERS)] == [b"poison"]
