"""The scripts share their queues with clients written the way RabbitMQ's own tutorials
write them (durable quorum queues: hello, task_queue, rpc_queue), in both directions and
with no setting: whoever declares first, the other's declaration is the same."""

import pika
import pytest
from inprocess import get_all
from test_rpc import QUEUE as RPC_QUEUE
from test_rpc import answers, got, stand_in_server

from rpc.calls import AWAITING

AS_THE_TUTORIALS_DO = {"x-queue-type": "quorum"}
PATTERNS = [("basic", "basic", []), ("workers", "task_queue", ["--delay", "0"])]


def tutorial_channel(url):
    connection = pika.BlockingConnection(pika.URLParameters(url))
    return connection, connection.channel()


@pytest.mark.parametrize(("pattern", "queue", "options"), PATTERNS, ids=["basic", "workers"])
def test_a_tutorial_producer_first_then_our_consumer(start, amqp_url, pattern, queue, options):
    connection, channel = tutorial_channel(amqp_url)
    channel.queue_declare(queue=queue, durable=True, arguments=AS_THE_TUTORIALS_DO)
    persistent = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
    channel.basic_publish(exchange="", routing_key=queue, body=b"Hello!", properties=persistent)
    connection.close()
    consumer = start(f"{pattern}/consumer.py", *options)
    assert consumer.wait_received(1) == ["Hello!"]
    assert consumer.stop() == 0 and consumer.stderr == []


@pytest.mark.parametrize(("pattern", "queue", "options"), PATTERNS, ids=["basic", "workers"])
def test_our_producer_first_then_a_tutorial_consumer(start, amqp_url, pattern, queue, options):
    producer = start(f"{pattern}/producer.py", "-n", "2")
    assert producer.wait() == 0, producer.describe()
    connection, channel = tutorial_channel(amqp_url)
    channel.queue_declare(queue=queue, durable=True, arguments=AS_THE_TUTORIALS_DO)
    connection.close()
    assert [body.decode() for _, body in get_all(amqp_url, queue)] == producer.sent()


def test_our_rpc_server_answers_a_tutorial_client(start, amqp_url):
    """The tutorial's client: an exclusive reply queue of its own, and rpc_queue not declared."""
    server = start("rpc/consumer.py")
    server.wait_for_line(AWAITING)
    connection, channel = tutorial_channel(amqp_url)
    callback_queue = channel.queue_declare(queue="", exclusive=True).method.queue
    request = pika.BasicProperties(reply_to=callback_queue, correlation_id="fib-30")
    channel.basic_publish(exchange="", routing_key=RPC_QUEUE, body=b"30", properties=request)
    replies = channel.consume(callback_queue, auto_ack=True, inactivity_timeout=15)
    method, properties, body = next(replies)
    connection.close()
    assert (properties.correlation_id, body) == ("fib-30", b"832040")


def test_our_rpc_client_asks_a_tutorial_server(start, amqp_url):
    """The stand-in server declares rpc_queue as the tutorial's server does."""

    def fib_of_6(request):
        return [(request.correlation_id, "result", "8")]

    with stand_in_server(amqp_url, fib_of_6):
        client = start("rpc/producer.py", "6")
        assert client.wait() == 0, client.describe()
    assert answers(client) == got([6])
