"""Faults injected on purpose: a broker that never answers, long tasks, TLS, the topology,
alarms; restarts are in test_restarts.py."""

import json
import os
import signal
import time
import urllib.parse

import pika
import pytest
from broker import free_port
from inprocess import Consuming, get_all, wait_until_acked, wait_until_ready
from processes import TIMEOUT

from common import Queue
from common.connection import RECONNECTED
from common.consuming import DONE
from common.poison import DEAD_LETTERS
from rpc.calls import AWAITING


def test_a_consumer_gives_up_after_retrying_for_the_time_it_was_given(start, amqp_url):
    address = f"127.0.0.1:{free_port()}"
    began = time.monotonic()
    consumer = start("basic/consumer.py", "--retry", "2", url=f"amqp://guest:guest@{address}/")
    assert consumer.wait() == 1, consumer.describe()
    assert 2 <= time.monotonic() - began < 2 + 5
    notice = f" [!] No broker answers at amqp://guest@{address}/ yet: trying for 2 s"
    assert consumer.stdout == [notice]
    assert len(consumer.stderr) == 1 and consumer.stderr[0].startswith("error: ")


def test_a_task_longer_than_several_heartbeats_keeps_its_connection(start, amqp_url):
    """A 2 s heartbeat and a 7 s task: the work runs off the I/O thread, so heartbeats go on."""
    url = amqp_url + "?heartbeat=2"
    worker = start("workers/consumer.py", "--delay", "7", url=url).wait_ready()
    task = start("workers/producer.py", "-n", "1", url=url)
    assert task.wait() == 0, task.describe()
    worker.wait_for_line(DONE, timeout=7 + TIMEOUT)
    probe = start("workers/producer.py", "-n", "1", url=url)
    assert probe.wait() == 0, probe.describe()
    worker.wait_received(2)
    assert worker.stop() == 0 and worker.stderr == []
    assert worker.received() == task.sent() + probe.sent()  # no redelivery, no duplicate
    assert RECONNECTED not in worker.stdout


def test_amqps_works_with_the_ca_named_by_ssl_cert_file(start, broker, amqp_url):
    if broker.tls_port is None:
        pytest.skip(f"no TLS listener on this broker ({broker.kind}): the local node has one")
    vhost = urllib.parse.urlsplit(amqp_url).path
    url = f"amqps://guest:guest@localhost:{broker.tls_port}{vhost}"
    trusted = {"SSL_CERT_FILE": str(broker.ca_file)}
    consumer = start("basic/consumer.py", url=url, env=trusted).wait_ready()
    producer = start("basic/producer.py", "-n", "2", url=url, env=trusted)
    assert producer.wait() == 0, producer.describe()
    assert consumer.wait_received(2) == producer.sent()
    untrusted = start("basic/producer.py", "-n", "1", url=url)
    assert untrusted.wait() == 1
    assert untrusted.stderr[0].startswith("error: ") and "SSL_CERT_FILE" in untrusted.stderr[0]
    # Trusted, but named otherwise: the certificate is for localhost, not for 127.0.0.1.
    elsewhere = url.replace("@localhost:", "@127.0.0.1:")
    mismatch = start("basic/producer.py", "-n", "1", url=elsewhere, env=trusted)
    assert mismatch.wait() == 1
    [line] = mismatch.stderr
    assert "mismatch" in line and "'127.0.0.1'" in line and "SSL_CERT_FILE" not in line, line


def test_everything_declared_is_durable_or_exclusive(start, broker, amqp_url):
    """RabbitMQ 4.3 refuses transient queues that are not exclusive: none is declared."""
    consumers = [
        start("basic/consumer.py"),
        start("workers/consumer.py"),
        start("pubsub/consumer.py"),
        start("routing/consumer.py", "blue"),
        start("topics/consumer.py", "#"),
    ]
    for consumer in consumers:
        consumer.wait_ready()
    start("rpc/consumer.py").wait_for_line(AWAITING)
    client = start("rpc/producer.py", "1")
    assert client.wait() == 0, client.describe()
    vhost = urllib.parse.quote(urllib.parse.unquote(amqp_url.rsplit("/", 1)[1]), safe="")
    queues = json.loads(broker.api("GET", f"/api/queues/{vhost}"))
    exchanges = json.loads(broker.api("GET", f"/api/exchanges/{vhost}"))
    assert len(queues) == 6  # basic, task_queue, rpc_queue, and three exclusive ones
    assert [q["name"] for q in queues if not (q["durable"] or q["exclusive"])] == []
    assert [e["name"] for e in exchanges if not e["durable"]] == []
    assert {"pubsub", "routing", "topics"} <= {e["name"] for e in exchanges}


def test_the_password_appears_nowhere(start, amqp_url):
    """Every line of a run with a wrong password, and of a run that works."""
    secret = "Pa55-w0rd-" + os.urandom(4).hex()
    url = amqp_url.replace("guest:guest@", f"guest:{secret}@")
    failed = start("workers/consumer.py", "--retry", "0", url=url)
    assert failed.wait() == 1
    helped = start("basic/producer.py", "--help", url=url)
    assert helped.wait() == 0
    for script in (failed, helped):
        assert secret not in "\n".join(script.stdout + script.stderr)


def test_sigterm_during_a_reconnection_wait_exits_cleanly(start):
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    consumer = start("basic/consumer.py", url=url)
    consumer.wait_until_printed(" [!] No broker answers at")
    assert consumer.stop(signal.SIGTERM) == 0  # a consumer ends so, even before it started
    assert not any("Traceback" in line for line in consumer.stderr), consumer.describe()


def test_ctrl_c_while_messages_flow_exits_cleanly_every_time(start):
    """The stop comes at a random moment of pika's work: it must never break the connection."""
    producer = start("basic/producer.py", "-n", "3000")
    for attempt in range(8):
        consumer = start("basic/consumer.py").wait_ready()
        consumer.wait_received(1 + attempt * 7)
        assert consumer.stop(signal.SIGINT if attempt % 2 else signal.SIGTERM) == 0, (
            consumer.describe()
        )
        assert consumer.stderr == [], consumer.describe()
    assert producer.wait(60) == 0


@pytest.mark.parametrize("script", ["basic/producer.py", "confirms/producer.py"])
def test_a_broker_that_blocks_publishers_is_an_error_not_a_hang(
    start, restartable, amqp_url, script
):
    """A memory alarm blocks every publisher; the producer gives up after its blocked
    timeout, with one line (confirms/producer.py's publish_many() too: not a reconnection,
    which the broker would block again, for as long as the alarm lasts)."""
    restartable.ctl("set_vm_memory_high_watermark", "0.0000001")
    try:
        producer = start(script, "-n", "1", url=amqp_url + "?blocked_connection_timeout=2")
        assert producer.wait(30) == 1, producer.describe()
    finally:
        restartable.ctl("set_vm_memory_high_watermark", "0.4")
    assert len(producer.stderr) == 1 and "short of memory or disk" in producer.stderr[0]


def alarm(broker, on):
    """Raise or clear a memory alarm on the node, and wait until the node says so."""
    broker.ctl("set_vm_memory_high_watermark", "0.0000001" if on else "0.4")
    deadline = time.monotonic() + TIMEOUT
    while ("memory" in broker.ctl("eval", "rabbit_alarm:get_alarms().")) != on:
        assert time.monotonic() < deadline, f"the memory alarm not {'on' if on else 'off'}"
        time.sleep(0.1)  # a poll interval, bounded by the deadline: no event to wait on


def test_a_memory_alarm_longer_than_the_blocked_timeout_loses_nothing(
    start, restartable, amqp_url, logged, report
):
    """A memory alarm blocks every connection that publishes, a consumer's too: the RPC
    server's replies and the set-aside messages go on consuming connections. pika drops
    a connection blocked for longer than its blocked timeout (2 s here); the consumer
    connects again, and what it held comes back, to be answered or set aside again. A
    worker, which publishes nothing, goes on through the alarm. When it clears every
    task is done, every request answered, the poison message set aside (perhaps more
    than once: docs/helpers.rst says why), and no script died."""
    url = amqp_url + "?blocked_connection_timeout=2"
    tasks, calls = [f"task {i}" for i in range(5)], [f"call {n}" for n in range(5)]
    with Queue(amqp_url, "task_queue") as sender:  # before the alarm, which blocks senders
        for task in tasks:
            sender.send(task)
        for queue in ("rpc_queue", "replies", "jobs"):
            sender.declare_queue(queue)
        for n, call in enumerate(calls):
            asking = pika.BasicProperties(reply_to="replies", correlation_id=call)
            sender.send(str(n), routing_key="rpc_queue", properties=asking)
        sender.send("poison", routing_key="jobs")

    class Failing(Queue):
        def callback(self, body):
            raise ValueError("cannot digest this")

    alarm(restartable, on=True)
    try:
        worker = start("workers/consumer.py", "--delay", "0.1", url=url)
        server = start("rpc/consumer.py", url=url)
        with Consuming(Failing(url, "jobs")):
            assert sorted(set(worker.wait_received(len(tasks)))) == tasks  # in the alarm
            server.wait_for_line(RECONNECTED)  # blocked by a reply, dropped, back
            logged.wait_for(RECONNECTED)  # blocked by the dead letter, dropped, back
            alarm(restartable, on=False)
            wait_until_ready(amqp_url, "jobs", 0)
            wait_until_acked(restartable, amqp_url, "jobs")
    finally:
        alarm(restartable, on=False)
    replies, aside = [], []
    deadline = time.monotonic() + TIMEOUT
    while {properties.correlation_id for properties, _ in replies} != set(calls):
        replies += get_all(amqp_url, "replies")
        assert time.monotonic() < deadline, f"answered only {replies}"
        time.sleep(0.1)  # a poll interval, bounded by the deadline: no event to wait on
    aside = [body for _, body in get_all(amqp_url, DEAD_LETTERS)]
    assert aside and set(aside) == {b"poison"}
    wait_until_acked(restartable, amqp_url, "rpc_queue")
    wait_until_acked(restartable, amqp_url, "task_queue")
    assert server.process.poll() is None and worker.process.poll() is None
    assert server.stderr == worker.stderr == [], server.describe() + worker.describe()
    report(
        f"alarm: {len(replies)} replies to {len(calls)} calls, the poison message set "
        f"aside {len(aside)} time(s)"
    )
