"""The helpers in common/, used the way a pattern uses them, checked on the broker itself."""

import json
import urllib.parse

import pika
import pytest
from inprocess import bare, broker_version, get_all, queue_info

from common import Exchange, Queue
from common.connection import without_password
from common.errors import reason


def test_a_named_queue_is_a_durable_quorum_queue_and_its_messages_persistent(broker, amqp_url):
    with Queue(amqp_url, "kept") as queue:
        assert queue.send("hello") is True
    info = queue_info(broker, amqp_url, "kept")
    assert (info["durable"], info["exclusive"], info["type"]) == (True, False, "quorum")
    [(properties, body)] = get_all(amqp_url, "kept")
    assert (properties.delivery_mode, body) == (2, b"hello")


def test_a_classic_queue_on_request(broker, amqp_url):
    with Queue(amqp_url, "local", queue_type="classic") as queue:
        assert queue.send("hello") is True
    assert queue_info(broker, amqp_url, "local")["type"] == "classic"


def test_classic_queues_for_every_pattern_by_the_environment(broker, amqp_url, monkeypatch):
    monkeypatch.setenv("QUEUE_TYPE", "classic")
    with Queue(amqp_url, "task_queue") as queue:
        assert queue.send("hello") is True
    assert queue_info(broker, amqp_url, "task_queue")["type"] == "classic"


def test_queue_type_classic_is_classic_where_the_default_type_is_quorum(broker, monkeypatch):
    """A queue declared with no type takes the virtual host's default (RabbitMQ 4 lets an
    operator make it quorum): so the helpers always say the type."""
    vhost = broker.add_vhost(default_queue_type="quorum")
    try:
        url = broker.url(vhost)
        with bare(url) as plain:
            plain.channel().queue_declare("untyped", durable=True)
        untyped = "quorum" if broker_version(broker) >= (4, 0) else "classic"
        assert queue_info(broker, url, "untyped")["type"] == untyped
        monkeypatch.setenv("QUEUE_TYPE", "classic")
        with Queue(url, "task_queue"):
            pass
        info = queue_info(broker, url, "task_queue")
        assert (info["type"], info["arguments"]) == ("classic", {"x-queue-type": "classic"})
    finally:
        broker.delete_vhost(vhost)


def test_a_queue_with_no_name_is_server_named_and_exclusive(broker, amqp_url):
    with Queue(amqp_url, "") as queue:
        assert queue.queue.startswith("amq.gen-")
        info = queue_info(broker, amqp_url, queue.queue)
        assert (info["exclusive"], info["auto_delete"]) == (True, False)


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


def test_exchange_routes_by_key_and_reports_the_unroutable(amqp_url, logged):
    with Exchange(amqp_url, "colours", "direct", queue="blue-and-red") as consumer:
        consumer.bind("blue", "red")
        with Exchange(amqp_url, "colours", "direct") as producer:
            assert producer.send("sky", routing_key="blue") is True
            assert producer.send("grass", routing_key="green") is False
        [warning] = logged.warnings()
        assert warning.startswith("warning: unroutable") and "'green'" in warning
        assert consumer.channel.basic_get(consumer.queue, auto_ack=True)[2] == b"sky"
        assert consumer.channel.basic_get(consumer.queue, auto_ack=True)[0] is None


def test_the_exchange_is_declared_durable_by_whoever_comes_first(broker, amqp_url):
    Exchange(amqp_url, "either-first", "topic").close()
    vhost = urllib.parse.quote(pika.URLParameters(amqp_url).virtual_host, safe="")
    # The list, not /api/exchanges/VHOST/NAME: on 3.10 that one fails (500) on a node
    # without the metrics collector, as the throwaway nodes are (broker.NODE_CONFIG).
    [info] = [e for e in json.loads(broker.api("GET", f"/api/exchanges/{vhost}"))
              if e["name"] == "either-first"]  # fmt: skip
    assert (info["type"], info["durable"]) == ("topic", True)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:s3cret@host:5672/%2F", "amqp://guest@host:5672/%2F"),
        ("amqps://me:s3cret@host/vhost?heartbeat=5", "amqps://me@host/vhost"),
        ("amqp://host/", "amqp://host/"),
        ("amqp://a:s3cret@one/,amqp://b:s3cret@two/", "amqp://a@one/, amqp://b@two/"),
        # A password that is not percent-encoded, whose "/", "?" or "#" ends the host part
        # early: the rest of it lands in the path, query or fragment, so none is shown.
        ("amqp://guest:123/s3cret@host/", "(the URL)"),
        ("amqp://guest:123?s3cret@host/", "(the URL)"),
        ("amqp://guest:123#s3cret@host/", "(the URL)"),
        ("amqp://guest:s3cret@host:port/", "(the URL)"),
    ],
)
def test_a_url_is_printed_without_its_password(url, shown):
    """What a library caller prints: the command line refuses the malformed ones earlier."""
    assert without_password(url) == shown


def test_a_refused_guest_login_from_another_machine_names_the_localhost_rule():
    """A package install lets guest in only over loopback, the official Docker image from
    anywhere, and the broker refuses a wrong password in the same words: from another
    machine, the line names both causes."""
    refused = pika.exceptions.ProbableAuthenticationError()
    line = reason(refused, "amqp://guest:guest@rabbit.example.com/")
    assert "check the password" in line and "loopback_users" in line
    for here in ("localhost", "127.0.0.1", "[::1]"):
        assert "check them" in reason(refused, f"amqp://guest:guest@{here}/")
    assert "check them" in reason(refused, "amqp://me:pw@rabbit.example.com/")


def test_global_qos_on_a_quorum_queue_is_refused_before_4_3(broker, amqp_url):
    """Why the helpers set a prefetch per consumer: before RabbitMQ 4.3 a quorum queue
    refuses a global one, closing the connection; 4.3 takes it, as a per-consumer one."""
    with Queue(amqp_url, "qos"):
        pass
    with bare(amqp_url) as connection:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1, global_qos=True)
        if broker_version(broker) >= (4, 3):
            channel.basic_consume("qos", lambda *delivery: None)
            return
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as refused:
            channel.basic_consume("qos", lambda *delivery: None)
        assert "does not support global qos" in refused.value.reply_text


def test_rabbitmq_4_has_exchange_types_beyond_the_four(broker, amqp_url):
    """The README names the four classic exchange types, and that RabbitMQ 4 adds a few."""
    with bare(amqp_url) as connection:
        if broker_version(broker) >= (4, 0):
            connection.channel().exchange_declare("nearby", "x-local-random")
            return
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as refused:
            connection.channel().exchange_declare("nearby", "x-local-random")
        assert "x-local-random" in refused.value.reply_text
