"""Publishing on a BlockingConnection: bare pika with no confirms, bare pika confirming
each message, and Queue.send(), which confirms each."""

import time

from benchmarks.shared import BODY, PERSISTENT, QUEUE, BenchError, connect, interleaved, purge
from common import Queue


def publish_bare(url, n):
    """messages/s: bare pika, BlockingConnection, persistent messages to a durable queue,
    no publisher confirms. The clock stops once a synchronous call sent after the last
    message has come back, so the broker has them all."""
    purge(url)
    connection = connect(url)
    channel = connection.channel()
    start = time.perf_counter()
    for _ in range(n):
        channel.basic_publish("", QUEUE, BODY, PERSISTENT)
    channel.queue_declare(QUEUE, passive=True)  # a round trip behind the last message
    elapsed = time.perf_counter() - start
    connection.close()
    return n / elapsed


def publish_one_by_one(url, n, turn=100):
    """messages/s of bare pika with confirm_delivery() and of the project's path,
    Queue(url, "bench").send(body) (confirm, and mandatory): both wait for each message's
    confirm before the next. Each confirm waits for the broker's disk, whose pace the rest
    of the machine sways, so the two take turns every `turn` messages: both meet the same
    moments of the disk."""
    purge(url)
    connection = connect(url)
    channel = connection.channel()
    channel.confirm_delivery()
    text = BODY.decode()
    elapsed = {"bare": 0.0, "helpers": 0.0}
    with Queue(url, QUEUE) as queue:
        for sent in range(0, n, turn):
            count = min(turn, n - sent)
            start = time.perf_counter()
            for _ in range(count):
                channel.basic_publish("", QUEUE, BODY, PERSISTENT)
            elapsed["bare"] += time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(count):
                if not queue.send(text):
                    raise BenchError("Queue.send(): a message came back unroutable")
            elapsed["helpers"] += time.perf_counter() - start
    connection.close()
    return {
        "publish_bare_confirmed_per_s": n / elapsed["bare"],
        "publish_helpers_per_s": n / elapsed["helpers"],
    }


def measure_publishing(url, counts, report):
    """Every publishing figure, the runs of each interleaved with the others'."""
    n, one_by_one = counts["publish"], counts["publish_one_by_one"]
    return interleaved(
        [
            lambda: {"publish_bare_unconfirmed_per_s": publish_bare(url, n)},
            lambda: publish_one_by_one(url, one_by_one),
        ],
        report,
    )
