"""RPC: round trips and concurrent calls, the helpers next to bare pika."""

import contextlib
import functools
import multiprocessing
import queue
import statistics
import subprocess
import threading
import time
import uuid

import pika
from processes import ROOT, Script, load

from benchmarks.shared import (
    BARE_RPC_QUEUE,
    DEADLINE,
    QUORUM,
    REPEATS,
    RPC_CONCURRENCY,
    RPC_QUEUE,
    THREADED_RPC_QUEUE,
    BenchError,
    admin_channel,
    connect,
    stop,
)
from rpc.calls import REPLY_TO


def serve_bare_rpc(url, threaded=False):
    """A bare pika RPC server, in a process of its own: replies to each request with its body.

    Prefetch 1 and an ack per request, as rpc/consumer.py does. threaded: each request is
    answered on one long-lived worker thread, and the reply and ack go back to pika's
    thread through add_callback_threadsafe(), as in the helpers (pika's
    examples/basic_consumer_threaded.py does the same with a thread per message), so that
    a long answer does not stop the heartbeats.
    """
    connection = connect(url)
    channel = connection.channel()
    name = THREADED_RPC_QUEUE if threaded else BARE_RPC_QUEUE
    channel.queue_declare(name, durable=True, arguments=QUORUM)
    channel.basic_qos(prefetch_count=1)
    requests = queue.SimpleQueue()

    def answer(method, properties, body):
        reply = pika.BasicProperties(correlation_id=properties.correlation_id)
        channel.basic_publish("", properties.reply_to, body, reply)
        channel.basic_ack(method.delivery_tag)

    def work():
        while True:
            connection.add_callback_threadsafe(functools.partial(answer, *requests.get()))

    def on_request(channel, method, properties, body):
        if threaded:
            requests.put((method, properties, body))
        else:
            answer(method, properties, body)

    if threaded:
        threading.Thread(target=work, daemon=True).start()
    channel.basic_consume(name, on_request)
    channel.start_consuming()


class BareRpcClient:
    """Bare pika RPC over direct reply-to: publish the requests, then wait for every reply."""

    def __init__(self, url, server_queue=BARE_RPC_QUEUE):
        self.connection = connect(url)
        self.channel = self.connection.channel()
        self.channel.basic_consume(REPLY_TO, self.on_reply, auto_ack=True)
        self.server_queue = server_queue
        self.waiting = set()  # correlation ids of the calls under way

    def call_many(self, bodies):
        for body in bodies:
            correlation_id = str(uuid.uuid4())
            self.waiting.add(correlation_id)
            properties = pika.BasicProperties(reply_to=REPLY_TO, correlation_id=correlation_id)
            self.channel.basic_publish("", self.server_queue, body, properties)
        deadline = time.monotonic() + DEADLINE
        while self.waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"bare RPC: no reply within {DEADLINE:g} s")
            self.connection.process_data_events(time_limit=remaining)

    def call(self, body):
        self.call_many([body])

    def on_reply(self, channel, method, properties, body):
        self.waiting.discard(properties.correlation_id)

    def close(self):
        self.connection.close()


def percentiles(times):
    """(p50, p99) of times."""
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return cuts[49], cuts[98]


def timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure_rpc(url, counts, report):
    """RPC round trips and concurrent calls: rpc/producer.py's FibonacciClient against
    rpc/consumer.py run as a reader runs it, and bare pika against a bare server, each
    server in a process of its own. Both pairs run side by side, taking turns call by
    call (round by round), so that both meet the same moments of the machine. The
    concurrent calls are also made to a bare server that answers on a worker thread, as
    the helpers do: what that thread costs is told apart from what the helpers add."""
    fibonacci = load(ROOT / "rpc" / "producer.py", run_name="bench")
    with admin_channel(url) as channel:  # as each server will: before the first request
        for name in (BARE_RPC_QUEUE, THREADED_RPC_QUEUE, RPC_QUEUE):
            channel.queue_declare(name, durable=True, arguments=QUORUM)
    # Its output, a line per request, goes nowhere: reading it would load this process.
    server = Script(ROOT / "rpc" / "consumer.py", "--url", url, url=url, stdout=subprocess.DEVNULL)
    bare_servers = [
        multiprocessing.get_context("spawn").Process(
            target=serve_bare_rpc, args=(url, threaded), daemon=True
        )
        for threaded in (False, True)
    ]
    for bare_server in bare_servers:
        bare_server.start()
    clients = []  # closed at the end, however it ends
    try:
        helpers = fibonacci["FibonacciClient"](url, timeout=DEADLINE)
        clients.append(helpers)
        bare = BareRpcClient(url)
        clients.append(bare)
        threaded = BareRpcClient(url, THREADED_RPC_QUEUE)
        clients.append(threaded)
        sides = {
            "helpers": (lambda: helpers.call(1), lambda: helpers.call_many([1] * RPC_CONCURRENCY)),
            "bare": (lambda: bare.call(b"1"), lambda: bare.call_many([b"1"] * RPC_CONCURRENCY)),
            "threaded": (None, lambda: threaded.call_many([b"1"] * RPC_CONCURRENCY)),
        }
        # The first calls wait in the queues until the servers are up: no need to watch them.
        for _ in range(2):
            for _, call_many in sides.values():
                call_many()
        times = {side: [] for side, (call, _) in sides.items() if call}
        for _ in range(counts["rpc_calls"]):
            for side in times:
                times[side].append(timed(sides[side][0]) * 1000)
        rates = {side: [] for side in sides}
        for _ in range(REPEATS):
            elapsed = dict.fromkeys(sides, 0.0)
            for _ in range(counts["rpc_rounds"]):
                for side, (_, call_many) in sides.items():
                    elapsed[side] += timed(call_many)
            for side in sides:
                rates[side].append(counts["rpc_rounds"] * RPC_CONCURRENCY / elapsed[side])
    finally:
        for client in clients:
            with contextlib.suppress(pika.exceptions.AMQPError):  # lost already: closed
                client.close()
        stop(server)
        for bare_server in bare_servers:
            bare_server.terminate()
            bare_server.join(DEADLINE)
    results = {}
    for side in sides:
        if side in times:
            p50, p99 = percentiles(times[side])
            results[f"rpc_p50_ms_{side}"], results[f"rpc_p99_ms_{side}"] = p50, p99
        results[f"rpc_concurrent_per_s_{side}"] = max(rates[side])
    for key, value in results.items():
        report(key, value)
    return results
