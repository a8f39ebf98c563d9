"""The helpers in common/, used the way a pattern uses them, checked on the broker itself."""

import json
import urllib.parse

import pika
import pytest

from common import Exchange, Queue


def queue_info(broker, url, name):
    vhost = urllib.parse.quote(pika.URLParameters(url).virtual_host, safe="")
    return json.loads(broker.api("GET", f"/api/queues/{vhost}/{urllib.parse.quote(name)}"))


def get_one(url, queue):
    with Queue(url, None) as reader:
        method, properties, body = reader.channel.basic_get(queue, auto_ack=True)
    return properties, body


def test_a_named_queue_is_durable_and_its_messages_persistent(broker, amqp_url):
    with Queue(amqp_url, "kept") as queue:
        assert queue.send("hello") is True
    info = queue_info(broker, amqp_url, "kept")
    assert (info["durable"], info["exclusive"], info["type"]) == (True, False, "classic")
    properties, body = get_one(amqp_url, "kept")
    assert (properties.delivery_mode, body) == (2, b"hello")


def test_a_quorum_queue_on_request(broker, amqp_url):
    with Queue(amqp_url, "replicated", queue_type="quorum") as queue:
        assert queue.send("hello") is True
    assert queue_info(broker, amqp_url, "replicated")["type"] == "quorum"


def test_a_queue_with_no_name_is_server_named_and_exclusive(broker, amqp_url):
    with Queue(amqp_url, "") as queue:
        assert queue.queue.startswith("amq.gen-")
        info = queue_info(broker, amqp_url, queue.queue)
        assert (info["exclusive"], info["auto_delete"]) == (True, False)


def test_receive_holds_at_most_prefetch_unacked_messages(amqp_url):
    ready_during_first_message = []

    class Counting(Queue):
        def callback(self, body):
            with Queue(amqp_url, None) as observer:
                declared = observer.channel.queue_declare("limited", passive=True)
            ready_during_first_message.append(declared.method.message_count)
            raise KeyboardInterrupt  # one look is enough: stop as Ctrl-C would

    with Queue(amqp_url, "limited") as producer:
        for i in range(5):
            producer.send(str(i))
    with Counting(amqp_url, "limited", prefetch=2) as consumer:
        consumer.receive()
    assert ready_during_first_message == [3]  # two delivered and unacked, three waiting


def test_exchange_fans_out_to_every_bound_queue(amqp_url):
    subscribers = [Exchange(amqp_url, "news", "fanout", queue="") for _ in range(2)]
    for subscriber in subscribers:
        subscriber.bind()
    with Exchange(amqp_url, "news", exchange_type="fanout") as publisher:
        assert publisher.queue is None  # a publisher needs no queue of its own
        assert publisher.send("extra, extra") is True
    for subscriber in subscribers:  # exclusive queues: only their own connection reads them
        method, properties, body = subscriber.channel.basic_get(subscriber.queue, auto_ack=True)
        assert (properties.delivery_mode, body) == (2, b"extra, extra")
        subscriber.close()


def test_exchange_routes_by_key_and_reports_the_unroutable(amqp_url, capsys):
    with Exchange(amqp_url, "colours", "direct", queue="blue-and-red") as consumer:
        consumer.bind("blue", "red")
        with Exchange(amqp_url, "colours", "direct") as producer:
            assert producer.send("sky", routing_key="blue") is True
            assert producer.send("grass", routing_key="green") is False
        assert "unroutable" in capsys.readouterr().err
        assert consumer.channel.basic_get(consumer.queue, auto_ack=True)[2] == b"sky"
        assert consumer.channel.basic_get(consumer.queue, auto_ack=True)[0] is None


def test_the_exchange_is_declared_durable_by_whoever_comes_first(broker, amqp_url):
    Exchange(amqp_url, "either-first", "topic").close()
    vhost = urllib.parse.quote(pika.URLParameters(amqp_url).virtual_host, safe="")
    info = json.loads(broker.api("GET", f"/api/exchanges/{vhost}/either-first"))
    assert (info["type"], info["durable"]) == ("topic", True)


def test_receive_acks_only_after_the_callback_returns(amqp_url):
    class Failing(Queue):
        def callback(self, body):
            raise RuntimeError("the work failed")

    with Queue(amqp_url, "work") as producer:
        producer.send("job")
    with Failing(amqp_url, "work") as consumer, pytest.raises(RuntimeError):
        consumer.receive()
    properties, body = get_one(amqp_url, "work")  # not acked, so back in the queue
    assert body == b"job"
