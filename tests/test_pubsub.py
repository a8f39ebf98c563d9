"""Publish/subscribe: every subscriber receives every message."""

from collections import Counter

from routes import deliveries


def test_every_subscriber_receives_every_message_in_order(start):
    received = deliveries(start, "pubsub", [[]] * 3, [[]], [[]] * 3)
    assert received == [Counter({"": 5})] * 3


def test_with_no_subscriber_each_message_is_reported_unroutable(start):
    producer = start("pubsub/producer.py", "-n", "3")
    assert producer.wait() == 0, producer.describe()
    assert producer.sent() == []
    assert len(producer.stderr) == 3
    assert all("unroutable" in line and "'pubsub'" in line for line in producer.stderr)


def test_subscribers_queues_go_away_with_them(start, broker, amqp_url):
    import json
    import urllib.parse

    vhost = urllib.parse.quote(amqp_url.rsplit("/", 1)[1], safe="")
    subscriber = start("pubsub/consumer.py").wait_ready()
    assert subscriber.stop() == 0
    names = [q["name"] for q in json.loads(broker.api("GET", f"/api/queues/{vhost}"))]
    assert names == []
