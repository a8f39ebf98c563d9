"""RPC: answers in the order asked, shared between servers, errors replied, no spin, no hang."""

import contextlib
import os
import resource
import threading
import time
import uuid

import pika
import pytest
from inprocess import Consuming, bare, broker_version, ready_messages
from processes import TIMEOUT, wait_until

from common.connection import RECONNECTED
from rpc.calls import AWAITING, REPLY_TO, RpcClient, RpcError, RpcServer

QUEUE = "rpc_queue"
QUORUM = {"x-queue-type": "quorum"}  # as the server, and the official tutorial, declare it


def fib_by_doubling(n):
    """(fib(n), fib(n+1)) by fast doubling: a reference independent of the server's loop."""
    if n == 0:
        return 0, 1
    a, b = fib_by_doubling(n // 2)
    c, d = a * (2 * b - a), a * a + b * b
    return (d, c + d) if n % 2 else (c, d)


def got(numbers):
    return [f" [.] Got fib({n}) = {fib_by_doubling(n)[0]}" for n in numbers]


def answers(client):
    return [line for line in client.stdout if line.startswith(" [.] Got")]


def test_answers_come_in_the_order_asked(start):
    server = start("rpc/consumer.py")
    server.wait_for_line(AWAITING)
    numbers = [30, 0, 90, 1, 2, 10000]
    client = start("rpc/producer.py", *map(str, numbers))
    assert client.wait() == 0, client.describe()
    assert client.stdout[: len(numbers)] == [f" [x] Requesting fib({n})" for n in numbers]
    assert answers(client) == got(numbers)
    assert client.stderr == []
    expected = [f" [.] fib({n})" for n in numbers]
    wait_until(lambda: server.stdout[1:] == expected, "the server's lines", server)


def test_two_servers_share_a_batch_of_forty(start):
    servers = [start("rpc/consumer.py") for _ in range(2)]
    for server in servers:
        server.wait_for_line(AWAITING)
    numbers = [10000 - i for i in range(40)]
    client = start("rpc/producer.py", *map(str, numbers))
    assert client.wait() == 0, client.describe()
    assert answers(client) == got(numbers)

    def served():
        return [[line for line in s.stdout if line.startswith(" [.] fib(")] for s in servers]

    wait_until(lambda: sum(map(len, served())) == 40, "40 requests served", *servers)
    assert all(served()), served()


def test_with_no_server_queue_the_client_says_so_at_once(start, broker, amqp_url):
    client = start("rpc/producer.py", "5", "--timeout", "30")
    assert client.wait() == 1, client.describe()  # at once: well within its 30 s
    assert client.stderr == [
        "error: no server is consuming 'rpc_queue' (no such queue): start the server first "
        "(python rpc/consumer.py), then ask again"
    ]
    assert ready_messages(amqp_url, QUEUE) is None  # the client declared no queue of its own


def test_with_no_server_consuming_the_client_gives_up_after_its_timeout(start, amqp_url):
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        connection.channel().queue_declare(QUEUE, durable=True, arguments=QUORUM)
    began = time.monotonic()
    client = start("rpc/producer.py", "5", "--timeout", "1")
    assert client.wait() == 1, client.describe()
    assert 1 <= time.monotonic() - began < 1 + 10  # the timeout, plus start-up on a busy machine
    assert client.stderr == ["error: no reply within 1 s: the server is not running, or too busy"]


def test_waiting_for_a_reply_does_not_spin_the_cpu(start, amqp_url):
    """CPU time of the client over a 3 s wait, read from the kernel: a spinning loop uses ~3 s."""
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        connection.channel().queue_declare(QUEUE, durable=True, arguments=QUORUM)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = start("rpc/producer.py", "5", "--timeout", "3")
    client.wait_for_line(" [x] Requesting fib(5)")
    with open(f"/proc/{client.process.pid}/stat") as stat:  # CPU used up to the wait
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    assert client.wait() == 1, client.describe()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert total - ticks < 0.3, f"{total - ticks:.2f} s of CPU while waiting 3 s"


@pytest.mark.parametrize("n", ["abc", "-3", "10001", "1.5"])
def test_the_client_refuses_what_is_not_a_whole_number_up_to_10000(start, n):
    client = start("rpc/producer.py", n)
    assert client.wait() == 2, client.describe()
    assert client.stderr[0].startswith("usage:")


class Requester:
    """A bare pika client in the test, to send what the real client never would."""

    def __init__(self, url):
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.queue_declare(QUEUE, durable=True, arguments=QUORUM)
        self.replies = {}
        self.channel.basic_consume(REPLY_TO, self.on_reply, auto_ack=True)

    def on_reply(self, channel, method, properties, body):
        self.replies[properties.correlation_id] = (properties.type, body.decode())

    def ask(self, body):
        correlation_id = str(uuid.uuid4())
        properties = pika.BasicProperties(reply_to=REPLY_TO, correlation_id=correlation_id)
        self.channel.basic_publish("", QUEUE, body, properties)
        deadline = time.monotonic() + 10
        while correlation_id not in self.replies and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=deadline - time.monotonic())
        return self.replies.get(correlation_id)


def test_malformed_requests_get_error_replies_and_the_server_goes_on(start, amqp_url):
    server = start("rpc/consumer.py")
    server.wait_for_line(AWAITING)
    requester = Requester(amqp_url)
    for bad in [b"abc", b"-3", b"10001", b"1.5", b"", b" 7", b"\xff\xfe"]:
        kind, text = requester.ask(bad)
        assert kind == "error" and ("whole number" in text or "utf-8" in text), (bad, text)
    assert requester.ask(b"10") == ("result", "55")
    requester.connection.close()
    assert server.process.poll() is None and server.stderr == []


@contextlib.contextmanager
def stand_in_server(url, reply, requests=1):
    """A server in this process: answers each of `requests` requests with
    reply(request) -> [(correlation id, type, body), ...], then stops."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(QUEUE, durable=True, arguments=QUORUM)
    answered = []

    def answer(channel, method, properties, body):
        for correlation_id, kind, text in reply(properties):
            answer = pika.BasicProperties(correlation_id=correlation_id, type=kind)
            channel.basic_publish("", properties.reply_to, text.encode(), answer)
        channel.basic_ack(method.delivery_tag)
        answered.append(properties.correlation_id)
        if len(answered) == requests:
            channel.stop_consuming()

    channel.basic_consume(QUEUE, answer)
    thread = threading.Thread(target=channel.start_consuming, daemon=True)
    thread.start()
    yield
    thread.join(10)
    connection.close()


def test_a_stray_reply_does_not_confuse_the_client(start, amqp_url):
    def stray_first(request):
        return [(str(uuid.uuid4()), "result", "999"), (request.correlation_id, "result", "8")]

    with stand_in_server(amqp_url, stray_first):
        client = start("rpc/producer.py", "6")
        assert client.wait() == 0, client.describe()
    assert answers(client) == [" [.] Got fib(6) = 8"]


def test_a_second_reply_to_a_call_already_answered_is_dropped(start, amqp_url):
    """The reply to fib(6) comes twice, the second time wrong, before fib(7)'s: the
    client keeps the first, as it would drop a reply that comes after it gave up."""
    asked = []

    def first_twice(request):
        asked.append(request.correlation_id)
        if len(asked) == 1:
            return [(asked[-1], "result", "8"), (asked[-1], "result", "999")]
        return [(asked[-1], "result", "13")]

    with stand_in_server(amqp_url, first_twice, requests=2):
        client = start("rpc/producer.py", "6", "7")
        assert client.wait() == 0, client.describe()
    assert answers(client) == got([6, 7])


def test_an_error_reply_is_printed_as_an_error_and_exits_1(start, amqp_url):
    def refuse(request):
        return [(request.correlation_id, "error", "out of order")]

    with stand_in_server(amqp_url, refuse):
        client = start("rpc/producer.py", "6")
        assert client.wait() == 1, client.describe()
    assert client.stderr == ["error: fib(6): the server refused: out of order"]


def test_a_client_that_lost_its_connection_still_gets_its_replies(start, broker, amqp_url):
    server = start("rpc/consumer.py")
    server.wait_for_line(AWAITING)
    with RpcClient(amqp_url, "rpc_queue", timeout=10) as client:
        assert client.request("10") == "55"
        vhost = pika.URLParameters(amqp_url).virtual_host
        broker.ctl("close_all_connections", "-p", vhost, "closed by a test")
        # Lost between two calls: the close reaches the client (rabbitmqctl returns before it
        # does; a close that lands in the middle of a call is another case, not this one).
        deadline = time.monotonic() + TIMEOUT
        while client.connection.is_open and time.monotonic() < deadline:
            with contextlib.suppress(pika.exceptions.AMQPConnectionError):
                client.connection.process_data_events(time_limit=0)
            time.sleep(0.05)  # a poll interval, bounded by the deadline above
        assert client.connection.is_closed
        assert client.request("11") == "89"  # sent again on a new channel, with its consumer


class Failing(RpcServer):
    """A server whose respond() takes a while, and fails with a bug on "0"."""

    delay = 0.0

    def respond(self, body):
        time.sleep(self.delay)
        return str(1 // int(body))  # ZeroDivisionError for "0": a bug, not a refusal


def test_any_exception_in_respond_is_an_error_reply_and_the_server_goes_on(amqp_url, logged):
    with Consuming(Failing(amqp_url, QUEUE)), RpcClient(amqp_url, QUEUE, timeout=10) as client:
        with pytest.raises(RpcError, match="the server failed: ZeroDivisionError"):
            client.request("0")
        assert client.request("1") == "1"
    assert logged.warnings() == [
        "warning: respond() failed (ZeroDivisionError('integer division or modulo by zero')): "
        "the client gets an error reply"
    ]


def test_a_reply_that_is_not_text_is_an_error_reply_and_the_server_goes_on(amqp_url, logged):
    class Careless(RpcServer):
        def respond(self, body):
            return len(body) if body == b"len" else body.decode()  # an int: not a reply

    with Consuming(Careless(amqp_url, QUEUE)), RpcClient(amqp_url, QUEUE, timeout=10) as client:
        with pytest.raises(RpcError, match="the server failed: AttributeError"):
            client.request("len")
        assert client.request("echo") == "echo"
    assert len(logged.warnings()) == 1


def test_a_reply_that_takes_several_heartbeats_keeps_the_connection(amqp_url, logged):
    """respond() runs off the I/O thread, so the heartbeats go on: 1 s apart, and 4 s to answer."""
    url = amqp_url + "?heartbeat=1"
    server = Failing(url, QUEUE)
    server.delay = 4
    with Consuming(server), RpcClient(url, QUEUE, timeout=15) as client:
        assert client.request("1") == "1"
        assert client.request("1") == "1"
    assert RECONNECTED not in logged.lines, logged.lines


def test_a_mandatory_reply_to_a_direct_reply_to_address_comes_back_before_4_2(broker, amqp_url):
    """Why RpcServer.answer() sends no mandatory flag: before RabbitMQ 4.2 the broker
    returns a reply to a direct reply-to address as unroutable (3.10.8 delivers it all
    the same; 4.0.5 delivered it in 3 runs of 6); from 4.2 it is routed, and delivered."""
    with bare(amqp_url) as asking:
        client = asking.channel()
        replies = []
        client.basic_consume(REPLY_TO, lambda *delivery: replies.append(delivery[3]), True)
        client.queue_declare("asked", durable=True)  # 4.3 deprecates transient ones
        client.basic_publish("", "asked", b"question", pika.BasicProperties(reply_to=REPLY_TO))
        with bare(amqp_url) as answering:
            server = answering.channel()
            server.confirm_delivery()
            deadline = time.monotonic() + TIMEOUT
            while (request := server.basic_get("asked", auto_ack=True))[0] is None:
                assert time.monotonic() < deadline, "the request never arrived"
                time.sleep(0.02)  # a poll interval, bounded by the deadline
            try:
                server.basic_publish("", request[1].reply_to, b"answer", mandatory=True)
                returned = False
            except pika.exceptions.UnroutableError:
                returned = True
        if broker_version(broker) < (4, 2):
            assert returned
            return
        assert not returned
        deadline = time.monotonic() + TIMEOUT
        while not replies:
            assert time.monotonic() < deadline, "the reply never arrived"
            asking.process_data_events(time_limit=0.1)
    assert replies == [b"answer"]
