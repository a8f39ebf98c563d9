"""The helpers in common/, used the way a pattern uses them, checked on the broker itself."""

import json
import socket
import threading
import time
import urllib.parse

import pika
import pytest
from throwaway import free_port

from common import BrokerError, Exchange, Queue
from common.broker import DEAD_LETTERS, MAX_ATTEMPTS
from common.bulk import publish_many

TIMEOUT = 15.0


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


def test_quorum_queues_for_every_pattern_by_the_environment(broker, amqp_url, monkeypatch):
    monkeypatch.setenv("QUEUE_TYPE", "quorum")
    with Queue(amqp_url, "task_queue") as queue:
        assert queue.send("hello") is True
    assert queue_info(broker, amqp_url, "task_queue")["type"] == "quorum"


def test_send_after_a_lost_connection_reconnects_and_loses_nothing(broker, amqp_url, capsys):
    vhost = pika.URLParameters(amqp_url).virtual_host
    with Queue(amqp_url, "resent") as producer:
        assert producer.send("before") is True
        broker.ctl("close_all_connections", "-p", vhost, "closed by a test")
        assert producer.send("after") is True
    lost = " [!] Lost the broker: trying again for up to 30 s\n"
    assert capsys.readouterr().out == lost + " [*] Reconnected to the broker\n"
    assert [get_one(amqp_url, "resent")[1] for _ in range(2)] == [b"before", b"after"]


def test_a_queue_with_no_name_is_server_named_and_exclusive(broker, amqp_url):
    with Queue(amqp_url, "") as queue:
        assert queue.queue.startswith("amq.gen-")
        info = queue_info(broker, amqp_url, queue.queue)
        assert (info["exclusive"], info["auto_delete"]) == (True, False)


class Consuming:
    """A consumer's receive() on a thread of this test, stopped at the end as Ctrl-C would."""

    def __init__(self, consumer):
        self.consumer = consumer
        self.thread = threading.Thread(target=consumer.receive, daemon=True)
        self.thread.start()

    def __enter__(self):
        return self.consumer

    def __exit__(self, *exc_info):
        self.consumer.stop()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        self.consumer.close()


def ready_messages(url, queue):
    with Queue(url, None) as observer:
        return observer.channel.queue_declare(queue, passive=True).method.message_count


def test_receive_holds_at_most_prefetch_unacked_messages(amqp_url):
    first_message = threading.Event()
    release = threading.Event()

    class Holding(Queue):
        def callback(self, body):
            first_message.set()
            release.wait(TIMEOUT)  # hold the first message: nothing is acked meanwhile

    with Queue(amqp_url, "limited") as producer:
        for i in range(5):
            producer.send(str(i))
    with Consuming(Holding(amqp_url, "limited", prefetch=2)):
        assert first_message.wait(TIMEOUT)
        ready = ready_messages(amqp_url, "limited")
        release.set()
    assert ready == 3  # two delivered and unacked, three waiting


def test_a_message_whose_callback_keeps_failing_goes_to_the_dead_letters(amqp_url, capsys):
    handled = []

    class Picky(Queue):
        def callback(self, body):
            if body == "poison":
                raise ValueError("cannot digest this")
            handled.append(body)

    with Queue(amqp_url, "jobs") as producer:
        labelled = pika.BasicProperties(message_id="m-1", correlation_id="c-1")
        producer.send("poison", properties=labelled)
        producer.send("fine")
    with Consuming(Picky(amqp_url, "jobs")):
        deadline = time.monotonic() + TIMEOUT
        while ready_dead_letters(amqp_url) < 1:
            assert time.monotonic() < deadline, capsys.readouterr().err
            time.sleep(0.05)  # a poll interval, bounded by the deadline above
    assert handled == ["fine"]
    with Queue(amqp_url, None) as reader:
        method, properties, body = reader.channel.basic_get(DEAD_LETTERS, auto_ack=True)
    assert body == b"poison"
    assert (properties.message_id, properties.correlation_id) == ("m-1", "c-1")
    assert properties.headers["attempts"] == MAX_ATTEMPTS
    assert properties.headers["queue"] == "jobs"
    assert "cannot digest this" in properties.headers["error"]
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == MAX_ATTEMPTS and "goes to the queue 'dead_letters'" in warnings[-1]
    assert ready_messages(amqp_url, "jobs") == 0  # not requeued forever


def ready_dead_letters(url):
    with Queue(url, DEAD_LETTERS) as observer:  # declares it, durable, if it is not there yet
        return observer.channel.queue_declare(DEAD_LETTERS, passive=True).method.message_count


def test_a_body_that_is_not_utf8_does_not_crash_the_consumer(amqp_url):
    handled = []
    acked = threading.Event()

    class Recording(Queue):
        def callback(self, body):
            handled.append(body)

        def ack(self, channel, delivery_tag):
            super().ack(channel, delivery_tag)
            acked.set()

    with Queue(amqp_url, "bytes") as producer:
        producer.channel.basic_publish("", "bytes", b"caf\xe9 \xff")
    with Consuming(Recording(amqp_url, "bytes")):
        assert acked.wait(TIMEOUT)
    assert handled == ["caf\ufffd \ufffd"]
    assert ready_messages(amqp_url, "bytes") == 0  # acked: closing gave nothing back


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


def test_publish_many_confirms_every_message_with_a_window(amqp_url):
    with Queue(amqp_url, "volume"):  # declares the queue
        pass
    bodies = [f"{i} bulk" for i in range(2500)]
    assert publish_many(amqp_url, "volume", bodies, window=100) == 2500
    assert ready_messages(amqp_url, "volume") == 2500
    with Queue(amqp_url, None) as reader:
        method, properties, body = reader.channel.basic_get("volume", auto_ack=True)
    assert (body, properties.delivery_mode) == (b"0 bulk", 2)


def test_publish_many_reports_what_no_queue_took(amqp_url):
    with pytest.raises(BrokerError, match="no queue took 3"):
        publish_many(amqp_url, "nobody-binds-this", ["a", "b", "c"])


def test_publish_many_uses_the_first_of_several_brokers_that_answers(amqp_url):
    with Queue(amqp_url, "volume"):  # declares the queue
        pass
    nobody = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    assert publish_many(f"{nobody},{amqp_url}", "volume", ["a", "b"]) == 2
    assert ready_messages(amqp_url, "volume") == 2


def test_publish_many_to_a_port_that_never_answers_gives_up_in_time():
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}/%2F"
        began = time.monotonic()
        with pytest.raises(BrokerError):
            publish_many(url, "volume", ["a"], timeout=1)
        assert time.monotonic() - began < 8  # the time-out, and the 5 s grace at most


def test_publish_many_with_no_broker_is_a_broker_error():
    url = f"amqp://guest:secret@127.0.0.1:{free_port()}/%2F"
    with pytest.raises(BrokerError, match="cannot connect") as error:
        publish_many(url, "volume", ["a"])
    assert "secret" not in str(error.value)
