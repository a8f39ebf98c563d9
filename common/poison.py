"""Poison messages: a message whose callback keeps failing is set aside in DEAD_LETTERS,
with why, instead of coming back forever. Consumer.handle() hands a failure to failed()."""

import contextlib
import copy
import logging

import pika

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # deliveries of a message whose callback fails, before it is set aside
DEAD_LETTERS = "dead_letters"


def attempts(method, properties, counted: bool) -> tuple[int, int]:
    """Which delivery of the message this is, and the last one it gets. A quorum queue
    (counted) counts in x-delivery-count the deliveries that came back: rejected, or held
    by a consumer lost. A classic one counts none: only redelivered, so a message gets two."""
    count = (properties.headers or {}).get("x-delivery-count")
    if count is not None or counted:
        return (count or 0) + 1, MAX_ATTEMPTS
    return (2 if method.redelivered else 1), 2


def failed(consumer, channel, method, properties, body, error) -> None:
    """The consumer's callback raised: give the message back (rejected, so that RabbitMQ
    counts the failed delivery), or after its last attempt set it aside, with why."""
    counted = consumer.queue_type == "quorum" and bool(consumer.queue_name)  # "": classic
    attempt, limit = attempts(method, properties, counted)
    last = attempt >= limit
    fate = f"it goes to the queue {DEAD_LETTERS!r}" if last else "it goes back to the queue"
    log.warning(f"failed ({error!r}), attempt {attempt} of {limit}: {fate}")
    if not last:
        channel.basic_reject(method.delivery_tag, requeue=True)
        return
    aside = copy.copy(properties)  # the same message: its id, type, reply_to and the rest
    counts = ("x-delivery-count", "x-acquired-count")  # the broker's, of the old delivery
    headers = {k: v for k, v in (properties.headers or {}).items() if k not in counts}
    why = {"error": repr(error)[:500], "queue": consumer.queue, "attempts": attempt}
    aside.headers, aside.delivery_mode = {**headers, **why}, pika.DeliveryMode.Persistent.value
    if not exists(consumer.connection, DEAD_LETTERS):  # if it is, of whatever type: as it is
        consumer.declare_queue(DEAD_LETTERS)  # not yet: this side's type
    try:
        channel.basic_publish("", DEAD_LETTERS, body, aside)
    except pika.exceptions.NackError:  # not taken (a quorum queue electing a leader)
        channel.basic_reject(method.delivery_tag, requeue=True)  # try again later
        return
    channel.basic_ack(method.delivery_tag)


def exists(connection, queue) -> bool:
    """Whether the queue is there: a passive declaration only asks (a 404 closes it)."""
    probe = connection.channel()
    with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
        probe.queue_declare(queue, passive=True)
        probe.close()
        return True
    return False
