"""What a queue counts of a delivery that came back, and what it does with a message that
keeps coming back, on the broker at hand (CI: 3.10.8, 4.0.5 and 4.3.6, each queue type).
docs/helpers.rst says exactly what these tests show; a new version that counts otherwise
fails here first."""

import ast
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import pika
import pytest
from inprocess import TIMEOUT, broker_version, documented_policy, get_all, ready_messages

from common import Queue
from common.poison import DEAD_LETTERS

WAYS = ["rejected", "nacked", "stopped", "killed", "lost"]
# A child that takes the message and is killed with it, as a crash or an out-of-memory
# kill would: the broker sees only its connection end, with the delivery unacknowledged.
KILLED = """
import os, signal, sys, pika
channel = pika.BlockingConnection(pika.URLParameters(sys.argv[1])).channel()
method, properties, body = channel.basic_get(sys.argv[2])
count = (properties.headers or {}).get("x-delivery-count")
print((method.redelivered, None if count is None else int(count)), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def send(url, queue, body):
    with Queue(url, queue) as producer:
        assert producer.send(body) is True


def take(url, queue):
    """The queue's next delivery, unacknowledged: (connection, channel, method,
    properties, body). Waits for it: what a lost connection held comes back a moment
    after the loss, when the broker has noticed it."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    deadline = time.monotonic() + TIMEOUT
    while True:
        method, properties, body = channel.basic_get(queue)
        if method is not None:
            return connection, channel, method, properties, body
        assert time.monotonic() < deadline, f"nothing came back to {queue!r} within {TIMEOUT} s"
        time.sleep(0.02)  # a poll interval, bounded by the deadline: the broker has no event


def lose(connection):
    """End the connection as a crash does: the socket closes, with no AMQP goodbye."""
    sock = connection._impl._transport._sock  # pika has no public way to do this
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def killed(url, queue):
    """(redelivered, x-delivery-count) of the delivery that a process took, then died of."""
    child = subprocess.run(
        [sys.executable, "-c", KILLED, url, queue], capture_output=True, text=True, timeout=30
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    return ast.literal_eval(child.stdout)


def give_back(way, connection, channel, method):
    """Give a delivery back to its queue, the given way."""
    if way == "rejected":  # what the helpers do when a callback raises
        channel.basic_reject(method.delivery_tag, requeue=True)
    elif way == "nacked":
        channel.basic_nack(method.delivery_tag, requeue=True)
    elif way == "lost":
        lose(connection)
        return
    connection.close()  # "stopped": Ctrl-C, the helpers close with the delivery unacked


def counts(version, queue_type, way):
    """What a delivery says, (redelivered, x-delivery-count), after one came back the given
    way (None: the first delivery)."""
    if way is None:  # RabbitMQ 3 sends a count of 0 on a quorum queue's first delivery
        return (False, 0 if queue_type == "quorum" and version < (4, 0) else None)
    if queue_type == "classic":
        return (True, None)  # classic queues count nothing, on every version
    if version >= (4, 3) and way == "nacked":
        return (True, None)  # 4.3: a nack with requeue is not a failure
    return (True, 1)


@pytest.mark.parametrize("way", WAYS)
def test_what_a_delivery_that_came_back_counts(broker, amqp_url, queue_type, way):
    send(amqp_url, "counted", "again")
    version = broker_version(broker)
    first = killed(amqp_url, "counted") if way == "killed" else delivery(amqp_url, "counted", way)
    assert first == counts(version, queue_type, None)
    assert delivery(amqp_url, "counted") == counts(version, queue_type, way)


def delivery(url, queue, way="stopped"):
    """(redelivered, x-delivery-count) of the queue's next delivery, given back the way."""
    connection, channel, method, properties, _ = take(url, queue)
    seen = (method.redelivered, (properties.headers or {}).get("x-delivery-count"))
    give_back(way, connection, channel, method)
    return seen


def came_back(broker, url, queue):
    """After a crash: whether the queue has its message back (True), or dropped it (False),
    once the broker has noticed that the connection ended."""
    vhost = pika.URLParameters(url).virtual_host
    deadline = time.monotonic() + TIMEOUT
    while ready_messages(url, queue) == 0:
        if vhost not in broker.ctl("list_connections", "--quiet", "vhost").split():
            # Noticed: given back, or dropped. A quorum queue's return is a replicated
            # write: give it a moment (paid once, at the drop) before calling it dropped.
            settled = time.monotonic() + 2.0
            while time.monotonic() < settled:
                if ready_messages(url, queue):
                    return True
                time.sleep(0.05)  # a poll interval, bounded by the moment above
            return False
        assert time.monotonic() < deadline, f"a connection to {vhost!r} still listed"
        time.sleep(0.05)  # a poll interval, bounded by the deadline: no event to wait on
    return True


def crashes_until_gone(broker, url, queue, most):
    """Deliver the queue's message to a consumer that crashes with it, again and again:
    how many deliveries the queue made of it (most + 1: it was still there after most)."""
    for delivery in range(1, most + 1):
        connection, _, _, _, _ = take(url, queue)
        lose(connection)
        if not came_back(broker, url, queue):
            return delivery
    return most + 1


def default_limit(version, queue_type):
    """The deliveries a quorum queue makes of a message before dropping it, with no policy:
    RabbitMQ 4 sets a delivery limit of 20 by default; 3.10 has none, nor has a classic
    queue (None: it comes back forever)."""
    return 21 if queue_type == "quorum" and version >= (4, 0) else None


def test_a_message_that_crashes_its_consumer_every_time_with_no_policy(
    broker, amqp_url, queue_type
):
    """No exception for the helpers to see: the consumer's process dies (a crash, an
    out-of-memory kill). The broker alone decides, and on RabbitMQ 4 it drops the
    message after the default limit, silently: nothing is left anywhere."""
    send(amqp_url, "task_queue", "deadly")
    limit = default_limit(broker_version(broker), queue_type) or 26  # 26: still there
    assert crashes_until_gone(broker, amqp_url, "task_queue", 25) == limit
    assert ready_messages(amqp_url, DEAD_LETTERS) is None  # nowhere: dropped


def test_with_a_dead_letter_policy_a_message_that_crashes_its_consumer_21_times_is_kept(
    broker, amqp_url, queue_type
):
    """The policy needs no change to how the queue is declared, so the official tutorials'
    clients still share it. A classic queue has no delivery limit: the policy cannot
    help there, and the message comes back for ever."""
    vhost = urllib.parse.quote(pika.URLParameters(amqp_url).virtual_host, safe="")
    broker.api("PUT", f"/api/policies/{vhost}/keep-dropped", documented_policy("keep-dropped"))
    with Queue(amqp_url, DEAD_LETTERS):
        pass
    send(amqp_url, "task_queue", "deadly")
    if queue_type == "classic":
        assert crashes_until_gone(broker, amqp_url, "task_queue", 25) == 26
        return
    assert crashes_until_gone(broker, amqp_url, "task_queue", 25) == 21
    assert [body for _, body in get_all(amqp_url, DEAD_LETTERS)] == [b"deadly"]
