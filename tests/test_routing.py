"""Routing: a direct exchange delivers a message to exactly the queues bound with its key."""

from collections import Counter

import pytest
from routes import deliveries

N = 2
CONSUMERS = [["blue"], ["red", "green"], ["blue", "red"], ["black"]]
PROBES = [["blue"], ["green"], ["red"], ["black"]]
KEYS = ["blue", "red", "green", "orange"]  # orange: bound by nobody
EXPECTED = [
    Counter({"blue": N}),
    Counter({"red": N, "green": N}),
    Counter({"blue": N, "red": N}),
    Counter(),  # bound to black, which no producer of the matrix sends
]


def test_each_consumer_receives_exactly_the_messages_of_its_keys(start):
    producers = [[key, "-n", str(N)] for key in KEYS]
    assert deliveries(start, "routing", CONSUMERS, producers, PROBES) == EXPECTED


def test_a_key_nobody_binds_is_reported_unroutable(start):
    start("routing/consumer.py", "blue").wait_ready()
    producer = start("routing/producer.py", "orange", "-n", "2")
    assert producer.wait() == 0, producer.describe()
    assert producer.sent() == []
    assert len(producer.stderr) == 2
    assert all("unroutable" in line and "'orange'" in line for line in producer.stderr)


@pytest.mark.parametrize(
    "args",
    [[], ["k" * 256], ["blue", "-n", "0"], ["blue", "-n", "x"]],
    ids=["no key", "key over 255 bytes", "n=0", "n=x"],
)
def test_producer_usage_errors(start, args):
    producer = start("routing/producer.py", *args)
    assert producer.wait() == 2, producer.describe()
    assert producer.stderr[0].startswith("usage:")
