"""Streams: reading a stream from its first message, bare pika next to Stream.receive()."""

import time

from benchmarks.shared import (
    ACK_EVERY,
    BODY,
    DEADLINE,
    PREFETCH,
    WINDOW,
    BenchError,
    admin_channel,
    connect,
    interleaved,
    receive_rate,
)
from confirms.bulk import publish_many
from streams.stream import Stream

STREAM = "bench_stream"
RETENTION = {"x-max-length-bytes": 1_000_000_000}  # a stream needs a limit: see streams/


def prefill(url, n):
    """A stream of n messages, all confirmed: read again and again, since reading a stream
    takes nothing away."""
    with admin_channel(url) as channel:
        channel.queue_delete(STREAM)
        channel.queue_declare(
            STREAM, durable=True, arguments={"x-queue-type": "stream", **RETENTION}
        )
    publish_many(url, STREAM, [BODY.decode()] * n, window=WINDOW)


def read_bare(url, n, ack_every=1):
    """messages/s: bare pika reading n messages from offset first, prefetch PREFETCH, with
    an ack for each (a stream needs them to send more), or one multiple-ack per ack_every.
    From basic_qos to the n-th message."""
    connection = connect(url)
    channel = connection.channel()
    received = 0

    def on_message(channel, method, properties, body):
        nonlocal received
        received += 1
        if received % ack_every == 0 or received == n:
            channel.basic_ack(method.delivery_tag, multiple=ack_every > 1)
        if received == n:
            channel.stop_consuming()  # the last of the stream: nothing waits to be rejected

    connection.call_later(DEADLINE, channel.stop_consuming)
    start = time.perf_counter()
    channel.basic_qos(prefetch_count=PREFETCH)
    channel.basic_consume(STREAM, on_message, arguments={"x-stream-offset": "first"})
    channel.start_consuming()
    elapsed = time.perf_counter() - start
    connection.close()
    if received != n:
        raise BenchError(f"bare stream reader: {received} of {n} messages in {DEADLINE:g} s")
    return n / elapsed


class Reader(Stream):
    """streams/'s consumer, whose callback does nothing: it stops after n messages."""

    ready = ""

    def __init__(self, url, n):
        super().__init__(url, STREAM, RETENTION, start="first", prefetch=PREFETCH)
        self.n, self.received = n, 0

    def callback(self, offset, body):
        self.received += 1
        if self.received == self.n:
            self.stop()


def read_helpers(url, n):
    """messages/s: Stream.receive() from offset first, prefetch PREFETCH: callbacks on a
    worker thread, acks from the I/O thread. From receive() until it returns."""
    return receive_rate(Reader(url, n), "Stream.receive()")


def measure_streams(url, counts, report):
    """Both ways of reading, taking turns, over one stream filled once."""
    n = counts["stream"]
    prefill(url, n)
    try:
        return interleaved(
            [
                lambda: {"stream_bare_per_s": read_bare(url, n)},
                lambda: {"stream_bare_multiple_ack_per_s": read_bare(url, n, ACK_EVERY)},
                lambda: {"stream_helpers_per_s": read_helpers(url, n)},
            ],
            report,
        )
    finally:
        with admin_channel(url) as channel:
            channel.queue_delete(STREAM)
