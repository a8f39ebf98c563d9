"""What every measurement shares: the sizes, the queues, the connection, the turns."""

import collections
import contextlib
import signal
import time

import pika

BODY_SIZE = 100  # bytes, every message
REPEATS = 3  # each rate is the best of this many runs
QUEUE = "bench"  # publishing and consuming
BARE_RPC_QUEUE = "bench_rpc"  # the bare RPC server's
THREADED_RPC_QUEUE = "bench_rpc_threaded"  # the bare server's with a worker thread
RPC_QUEUE = "rpc_queue"  # rpc/consumer.py's: fixed there
TASK_QUEUE = "task_queue"  # workers/consumer.py's: fixed there
QUORUM = {
    "x-queue-type": "quorum"
}  # every named queue, as the helpers and the tutorials declare it
BATCH = 100  # confirmed in batches: wait for all confirms of a batch before the next
WINDOW = 1000  # confirmed streaming: at most this many unconfirmed at a time
PREFETCH = 100
ACK_EVERY = 50  # one multiple-ack per this many messages
RPC_CONCURRENCY = 100  # requests under way at once
WORK = 0.02  # seconds of simulated work per task
WORKER_COUNTS = (1, 2, 4)
DEADLINE = 60.0  # the longest any one measurement may take before it is called failed

PERSISTENT = pika.BasicProperties(
    content_type="text/plain", delivery_mode=pika.DeliveryMode.Persistent
)
BODY = b"x" * BODY_SIZE


class BenchError(Exception):
    """A measurement that could not be made: the benchmark says which and exits 1."""


def connect(url):
    return pika.BlockingConnection(pika.URLParameters(url))


@contextlib.contextmanager
def admin_channel(url):
    """A short-lived channel for declaring, purging and deleting queues."""
    connection = connect(url)
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def purge(url, queue=QUEUE):
    with admin_channel(url) as channel:
        channel.queue_purge(queue)


def receive_rate(consumer, what):
    """messages/s: consumer.receive() until its callback has stopped it after consumer.n
    messages (or DEADLINE passed). The clock runs from receive() until it returns."""
    with consumer:
        consumer.connection.call_later(DEADLINE, consumer.stop)
        start = time.perf_counter()
        consumer.receive()
        elapsed = time.perf_counter() - start
    if consumer.received != consumer.n:
        raise BenchError(f"{what}: {consumer.received} of {consumer.n} messages in {DEADLINE:g} s")
    return consumer.n / elapsed


def interleaved(measures, report):
    """The best of REPEATS runs of each measure, taking turns, so that a slow spell of the
    machine falls on all of them rather than on one. Each measure returns {key: rate}."""
    runs = collections.defaultdict(list)
    for _ in range(REPEATS):
        for measure in measures:
            for key, rate in measure().items():
                runs[key].append(rate)
    results = {key: max(rates) for key, rates in runs.items()}
    for key, rate in results.items():
        report(key, rate)
    return results


def stop(script):
    """Stop a script as Ctrl-C would; kill it if it does not stop in time."""
    try:
        script.stop(signal.SIGINT)
    except Exception:  # no clean stop in time: it is killed, and nothing is left running
        script.kill()
