"""Topics: "*" matches exactly one word, "#" zero or more, and a message arrives once per queue."""

from collections import Counter

import pika
import pytest
from inprocess import broker_release
from routes import deliveries

from common import Exchange

CONSUMERS = {
    "one middle word": ["*.orange.*"],
    "two bindings": ["*.*.rabbit", "lazy.#"],
    "everything": ["#"],
    "exact": ["quick.orange.rabbit"],
    "one word after": ["lazy.*"],
}
PROBES = ["x.orange.x", "x.x.rabbit", "anything", "quick.orange.rabbit", "lazy.x"]
# routing key -> the consumers it reaches
ROUTES = {
    "quick.orange.rabbit": ["one middle word", "two bindings", "everything", "exact"],
    "lazy.orange.elephant": ["one middle word", "two bindings", "everything"],
    "quick.orange.fox": ["one middle word", "everything"],
    "lazy.brown.fox": ["two bindings", "everything"],  # lazy.* wants one word, not two
    "lazy": ["two bindings", "everything"],  # lazy.# matches zero words
    "lazy.pink.rabbit": ["two bindings", "everything"],  # matches both bindings: arrives once
    "quick.orange.male.rabbit": ["everything"],  # * is one word, not two
    "orange": ["everything"],
    "lazy.cat": ["two bindings", "everything", "one word after"],
}


def test_each_consumer_receives_exactly_the_keys_its_bindings_match(start):
    producers = [[key, "-n", "1"] for key in ROUTES]
    probes = [[key] for key in PROBES]
    received = deliveries(start, "topics", list(CONSUMERS.values()), producers, probes)
    expected = [
        Counter({key: 1 for key, reached in ROUTES.items() if name in reached})
        for name in CONSUMERS
    ]
    assert by_name(received) == by_name(expected)  # names make a failure readable


def by_name(counters):
    return dict(zip(CONSUMERS, counters, strict=True))


def test_a_key_no_binding_matches_is_reported_unroutable(start):
    start("topics/consumer.py", "*.orange.*").wait_ready()
    producer = start("topics/producer.py", "quick.brown.fox", "-n", "1")
    assert producer.wait() == 0, producer.describe()
    assert producer.sent() == []
    assert "unroutable" in producer.stderr[0] and "'quick.brown.fox'" in producer.stderr[0]


def test_the_broker_refuses_three_hashes_in_a_binding_key_from_4_3(broker, amqp_url):
    """What the consumer's command line refuses on every version (tests/test_cli.py): two
    "#" are bound everywhere; three are refused from RabbitMQ 4.3.5, with the reason."""
    with Exchange(amqp_url, "topics", "topic", queue="") as consumer:
        consumer.bind("#.x.#")
        if broker_release(broker) < (4, 3, 5):
            consumer.bind("#.#.#")
            return
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            consumer.bind("#.#.#")
        assert "at most 2 are allowed" in refused.value.reply_text
