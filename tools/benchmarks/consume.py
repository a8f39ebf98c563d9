"""Consuming: bare pika with each way of acking, next to Queue.receive()."""

import time

from benchmarks.shared import (
    ACK_EVERY,
    BODY,
    DEADLINE,
    PREFETCH,
    QUEUE,
    WINDOW,
    BenchError,
    connect,
    interleaved,
    purge,
    receive_rate,
)
from common import Queue
from confirms.bulk import publish_many


def prefill(url, n):
    """Put n persistent messages in the queue, all confirmed, to consume next."""
    purge(url)
    publish_many(url, QUEUE, [BODY.decode()] * n, window=WINDOW)


def consume_bare(url, n, prefetch=None, ack_every=1, auto_ack=False):
    """messages/s: bare pika consuming n messages from a prefilled queue.

    Manual acks, one per message (ack_every=1) or one multiple-ack per
    ack_every; or auto_ack, where the broker forgets each message as it sends
    it. The clock runs from basic_qos to the last message handled.
    """
    prefill(url, n)
    connection = connect(url)
    channel = connection.channel()
    received = 0

    def on_message(channel, method, properties, body):
        nonlocal received
        received += 1
        if not auto_ack and (received % ack_every == 0 or received == n):
            channel.basic_ack(method.delivery_tag, multiple=ack_every > 1)
        if received == n:
            channel.stop_consuming()

    connection.call_later(DEADLINE, channel.stop_consuming)
    start = time.perf_counter()
    if prefetch:
        channel.basic_qos(prefetch_count=prefetch)
    channel.basic_consume(QUEUE, on_message, auto_ack=auto_ack)
    channel.start_consuming()
    elapsed = time.perf_counter() - start
    connection.close()
    if received != n:
        raise BenchError(f"bare consumer: {received} of {n} messages within {DEADLINE:g} s")
    return n / elapsed


class Sink(Queue):
    """The project's consumer, whose callback does nothing: it stops after n messages."""

    ready = ""  # print nothing when consuming starts

    def __init__(self, url, n, prefetch):
        super().__init__(url, QUEUE, prefetch=prefetch)
        self.n, self.received = n, 0

    def callback(self, body):
        self.received += 1
        if self.received == self.n:
            self.stop()


def consume_helpers(url, n, prefetch=PREFETCH):
    """messages/s: the project's path, a Queue subclass's receive(): callbacks on a worker
    thread, each ack sent by the I/O thread through add_callback_threadsafe. The clock
    runs from receive() until it returns, after the n-th message."""
    prefill(url, n)
    return receive_rate(Sink(url, n, prefetch), "Queue.receive()")


def measure_consuming(url, counts, report):
    """Every consuming figure, the runs of each interleaved with the others'."""
    n = counts["consume"]
    return interleaved(
        [
            lambda: {"consume_bare_prefetch_1_per_s": consume_bare(url, n, prefetch=1)},
            lambda: {"consume_bare_prefetch_100_per_s": consume_bare(url, n, prefetch=PREFETCH)},
            lambda: {
                "consume_bare_multiple_ack_per_s": consume_bare(
                    url, n, prefetch=PREFETCH, ack_every=ACK_EVERY
                )
            },
            lambda: {"consume_bare_auto_ack_per_s": consume_bare(url, n, auto_ack=True)},
            lambda: {"consume_helpers_per_s": consume_helpers(url, n)},
        ],
        report,
    )
