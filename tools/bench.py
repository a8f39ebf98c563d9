"""Benchmark: what the helpers in common/ cost, next to bare pika, on one broker.

Run:      make bench     or   python tools/bench.py [--json FILE] [--chart FILE] [--scale X]
Observe:  one table: publish and consume rates (messages/s), RPC latency and
          rate, and how well 1, 2 and 4 workers share tasks; the ratios that
          matter, each next to its target. --scale 1 takes a little over a minute
          on two cores; --scale 0.01 is a quick check that everything runs.

Every figure is measured in this one run, against the one broker, with
messages of BODY_SIZE bytes; each rate is the best of REPEATS runs, so a
moment of noise on the machine does not decide it. Each measurement says in
its docstring what it measures.

The broker is the one at AMQP_URL (else localhost:5672) if it answers; else a
throwaway one, started as the tests start theirs and removed at the end.
Either way it must be on this machine: the figures are meant to show the
client and the broker, not a network.
"""

import argparse
import collections
import contextlib
import functools
import json
import multiprocessing
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import pika
from broker import BrokerUnavailable, claim, release
from processes import OUTPUT, ROOT, Script, load, wait_until
from rich.console import Console
from rich.table import Table
from throwaway import users_broker_or_throwaway

from common import Queue
from common.cli import DEFAULT_URL
from common.consuming import DONE
from confirms.bulk import publish_many
from rpc.calls import REPLY_TO

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
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

# At --scale 1; each at least its minimum, so that a tiny scale still measures something.
COUNTS = {
    "publish": (5000, 20),  # messages per publishing run
    "publish_one_by_one": (800, 20),  # the same, one confirm at a time: slower, fewer
    "consume": (4000, 20),  # messages per consuming run
    "rpc_calls": (1000, 20),  # sequential calls, for the latency
    "rpc_rounds": (5, 1),  # rounds of RPC_CONCURRENCY concurrent calls
    "tasks_per_worker": (50, 2),  # tasks per workers run: this many for each worker
}

PERSISTENT = pika.BasicProperties(
    content_type="text/plain", delivery_mode=pika.DeliveryMode.Persistent
)
BODY = b"x" * BODY_SIZE

# (key in "raw", label, unit): every figure, in the order of the table and the chart.
FIGURES = [
    ("publish_bare_unconfirmed_per_s", "publish, bare pika, no confirms", "msg/s"),
    ("publish_bare_confirmed_per_s", "publish, bare pika, confirm each", "msg/s"),
    ("publish_helpers_per_s", "publish, Queue.send() (confirm each)", "msg/s"),
    (
        "publish_confirmed_batches_per_s",
        f"publish, publish_many(), confirms in batches of {BATCH}",
        "msg/s",
    ),
    (
        "publish_confirmed_streaming_per_s",
        f"publish, publish_many(), confirms streamed, window {WINDOW}",
        "msg/s",
    ),
    ("consume_bare_prefetch_1_per_s", "consume, bare pika, ack each, prefetch 1", "msg/s"),
    (
        "consume_bare_prefetch_100_per_s",
        f"consume, bare pika, ack each, prefetch {PREFETCH}",
        "msg/s",
    ),
    (
        "consume_bare_multiple_ack_per_s",
        f"consume, bare pika, multiple-ack per {ACK_EVERY}, prefetch {PREFETCH}",
        "msg/s",
    ),
    ("consume_bare_auto_ack_per_s", "consume, bare pika, auto-ack (unsafe)", "msg/s"),
    ("consume_helpers_per_s", f"consume, Queue.receive(), prefetch {PREFETCH}", "msg/s"),
    ("rpc_p50_ms_bare", "RPC round trip p50, bare pika", "ms"),
    ("rpc_p99_ms_bare", "RPC round trip p99, bare pika", "ms"),
    ("rpc_p50_ms_helpers", "RPC round trip p50, FibonacciClient.call()", "ms"),
    ("rpc_p99_ms_helpers", "RPC round trip p99, FibonacciClient.call()", "ms"),
    ("rpc_concurrent_per_s_bare", f"RPC, {RPC_CONCURRENCY} at once, bare pika", "calls/s"),
    (
        "rpc_concurrent_per_s_threaded",
        f"RPC, {RPC_CONCURRENCY} at once, bare pika, answered on a worker thread",
        "calls/s",
    ),
    (
        "rpc_concurrent_per_s_helpers",
        f"RPC, {RPC_CONCURRENCY} at once, FibonacciClient.call_many()",
        "calls/s",
    ),
    *(
        figure
        for n in WORKER_COUNTS
        for figure in [
            (f"workers_{n}_per_s", f"{n} worker{'s' * (n > 1)}, {WORK:g} s per task", "tasks/s"),
            (f"workers_efficiency_{n}", f"{n} worker{'s' * (n > 1)}, efficiency", ""),
        ]
    ),
]

# (key, what it compares, target, whether higher is better): printed, never enforced.
TARGETS = [
    ("helpers_vs_raw_publish", "Queue.send() / bare pika, both confirm each", 0.95, True),
    ("helpers_vs_raw_consume", f"Queue.receive() / bare pika, prefetch {PREFETCH}", 0.95, True),
    (
        "helpers_vs_raw_rpc_concurrent",
        f"RPC, {RPC_CONCURRENCY} at once: FibonacciClient / bare pika",
        0.95,
        True,
    ),
    ("confirmed_vs_unconfirmed_publish", "best confirmed / bare unconfirmed", 0.75, True),
    ("workers_efficiency_4", "4 workers: rate / (4 / work per task)", 0.9, True),
    ("helpers_vs_raw_rpc_p50", "RPC p50: FibonacciClient / bare pika", 1.2, False),
    (
        "helpers_vs_threaded_rpc_concurrent",
        f"RPC, {RPC_CONCURRENCY} at once: FibonacciClient / bare pika on a worker thread",
        0.95,
        True,
    ),
]


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


# Publishing


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


def publish_confirmed(url, n, batch):
    """messages/s: confirms.bulk.publish_many() on a SelectConnection, confirms streamed with
    WINDOW unconfirmed at most, or in batches of BATCH, each confirmed before the next."""
    purge(url)
    bodies = [BODY.decode()] * n
    start = time.perf_counter()
    window = BATCH if batch else WINDOW
    if publish_many(url, QUEUE, bodies, window=window, batch=batch).confirmed != n:
        raise BenchError("publish_many() confirmed fewer messages than it sent")
    return n / (time.perf_counter() - start)


def measure_publishing(url, counts, report):
    """Every publishing figure, the runs of each interleaved with the others'."""
    n, one_by_one = counts["publish"], counts["publish_one_by_one"]
    return interleaved(
        [
            lambda: {"publish_bare_unconfirmed_per_s": publish_bare(url, n)},
            lambda: publish_one_by_one(url, one_by_one),
            lambda: {"publish_confirmed_batches_per_s": publish_confirmed(url, n, batch=True)},
            lambda: {"publish_confirmed_streaming_per_s": publish_confirmed(url, n, batch=False)},
        ],
        report,
    )


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


# Consuming


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
    with Sink(url, n, prefetch) as sink:
        sink.connection.call_later(DEADLINE, sink.stop)
        start = time.perf_counter()
        sink.receive()
        elapsed = time.perf_counter() - start
    if sink.received != n:
        raise BenchError(f"Queue.receive(): {sink.received} of {n} messages in {DEADLINE:g} s")
    return n / elapsed


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


# RPC


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


# Workers


def stop(script):
    """Stop a script as Ctrl-C would; kill it if it does not stop in time."""
    try:
        script.stop(signal.SIGINT)
    except Exception:  # no clean stop in time: it is killed, and nothing is left running
        script.kill()


def measure_workers(url, n_workers, tasks):
    """tasks/s of n_workers running workers/consumer.py --delay WORK, sharing the tasks of
    workers/producer.py -n tasks: from the first task received to the last done, as the
    workers print them. The best of REPEATS batches, each done before the next is sent."""
    purge(url, TASK_QUEUE)  # nothing left from earlier runs
    lines = []  # (when, line) of every line any worker printed
    lock = threading.Lock()

    def record(script, line):
        with lock:
            lines.append((time.perf_counter(), line))
        with OUTPUT:
            OUTPUT.notify_all()  # so wait_until sees lines[] as it is now

    args = ["--delay", str(WORK), "--url", url]
    crew = [
        Script(ROOT / "workers" / "consumer.py", *args, url=url, echo=record)
        for _ in range(n_workers)
    ]
    rates = []
    try:
        for worker in crew:
            worker.wait_ready()
        for _ in range(REPEATS):
            with lock:
                start = len(lines)
            # Its "sent" lines go nowhere: reading them would load this process.
            producer = Script(
                ROOT / "workers" / "producer.py",
                *["-n", str(tasks), "--url", url],
                url=url,
                stdout=subprocess.DEVNULL,
            )
            if producer.wait(DEADLINE) != 0:
                raise BenchError(f"workers/producer.py failed:\n{producer.describe()}")

            def batch(start=start):
                with lock:
                    return lines[start:]

            def done(batch=batch):
                return sum(line == DONE for _, line in batch()) >= tasks

            wait_until(done, f"{tasks} tasks not done", *crew, timeout=DEADLINE + tasks * WORK)
            first = min(t for t, line in batch() if line.endswith(" received"))
            last = max(t for t, line in batch() if line == DONE)
            rates.append(tasks / (last - first))
    finally:
        for worker in crew:
            stop(worker)
    return max(rates)


def measure_all_workers(url, counts, report):
    """Workers' rates and efficiency: the rate over the most n workers could do, n / WORK.
    Each worker has the same number of tasks, so each run takes about as long."""
    results = {}
    for n in WORKER_COUNTS:
        rate = measure_workers(url, n, n * counts["tasks_per_worker"])
        results[f"workers_{n}_per_s"] = rate
        results[f"workers_efficiency_{n}"] = rate / (n / WORK)
        report(f"workers_{n}_per_s", rate)
        report(f"workers_efficiency_{n}", results[f"workers_efficiency_{n}"])
    return results


# The report


def ratios(raw):
    """The headline figures, each a ratio or the project's own figure."""
    confirmed = max(  # the best of the safe ways: every message confirmed
        raw["publish_bare_confirmed_per_s"],
        raw["publish_confirmed_batches_per_s"],
        raw["publish_confirmed_streaming_per_s"],
    )
    return {
        "helpers_vs_raw_publish": raw["publish_helpers_per_s"]
        / raw["publish_bare_confirmed_per_s"],
        "helpers_vs_raw_consume": raw["consume_helpers_per_s"]
        / raw["consume_bare_prefetch_100_per_s"],
        "confirmed_vs_unconfirmed_publish": confirmed / raw["publish_bare_unconfirmed_per_s"],
        "rpc_p50_ms": raw["rpc_p50_ms_helpers"],
        "rpc_concurrent_per_s": raw["rpc_concurrent_per_s_helpers"],
        "workers_efficiency_4": raw["workers_efficiency_4"],
        "helpers_vs_raw_rpc_p50": raw["rpc_p50_ms_helpers"] / raw["rpc_p50_ms_bare"],
        "helpers_vs_raw_rpc_concurrent": raw["rpc_concurrent_per_s_helpers"]
        / raw["rpc_concurrent_per_s_bare"],
        "helpers_vs_threaded_rpc_concurrent": raw["rpc_concurrent_per_s_helpers"]
        / raw["rpc_concurrent_per_s_threaded"],
    }


def number(value, unit=""):
    if unit == "":  # a ratio: three places, so that 0.895 does not pass for 0.90
        return f"{value:.3f}"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:,.0f} {unit}"


def verdicts(results):
    """(label, the figure, its bound as "≥ 0.95", met) for every target."""
    for key, label, target, higher in TARGETS:
        value = results[key]
        met = value >= target if higher else value <= target
        yield label, number(value), f"{'≥' if higher else '≤'} {target:g}", met


def about(results):
    """Where the run was made, and how long it took: one line."""
    machine = results["machine"]
    return (
        f"{results['settings']['seconds']:g} s; {machine['nproc']} CPUs, Python "
        f"{machine['python']}, pika {machine['pika']}, RabbitMQ {machine['rabbitmq']}"
    )


def table(results):
    """Every figure, then every target with the figure it is about."""
    raw = results["raw"]
    out = Table(title=f"Benchmark, scale {results['settings']['scale']:g}")
    out.add_column("measurement")
    out.add_column("result", justify="right")
    out.add_column("target", justify="right")
    out.add_column("")
    previous = None
    for key, label, unit in FIGURES:
        section = key.split("_")[0]
        if previous and section != previous:
            out.add_section()
        previous = section
        out.add_row(label, number(raw[key], unit))
    out.add_section()
    for label, value, bound, met in verdicts(results):
        out.add_row(label, value, bound, "[green]met[/]" if met else "[red]missed[/]")
    return out


def rst_table(results):
    """The run's figures and targets as an RST table, for docs/benchmarks.rst: the same
    labels as the table printed here and the chart, the same numbers."""
    rows = [(label, number(results["raw"][key], unit)) for key, label, unit in FIGURES]
    for label, value, bound, met in verdicts(results):
        rows.append((label, f"{value} ({bound}: {'met' if met else 'missed'})"))
    width = [max(len(row[i]) for row in rows) for i in (0, 1)]
    rule = f"{'=' * width[0]}  {'=' * width[1]}"
    lines = [rule, *(f"{a:<{width[0]}}  {b:>{width[1]}}" for a, b in rows), rule]
    return f"{about(results)}:\n\n" + "\n".join(lines)


def chart(results, path):
    """A PNG, 800 px wide: the publishing and consuming rates as bars, messages/s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raw, on = results["raw"], results["machine"]
    labels = {key: label for key, label, _ in FIGURES}
    groups = [
        (
            "Publishing (persistent, durable quorum queue)",
            [k for k in raw if k.startswith("publish_")],
        ),
        ("Consuming", [k for k in raw if k.startswith("consume_")]),
    ]
    figure, axes = plt.subplots(2, 1, figsize=(8, 6.5), dpi=100)
    for ax, (title, keys) in zip(axes, groups, strict=True):
        names = [labels[k].split(", ", 1)[1] for k in keys]
        values = [raw[k] for k in keys]
        colours = ["tab:blue" if "bare pika" in name else "tab:orange" for name in names]
        bars = ax.barh(names, values, color=colours)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=9)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_xlabel("messages/s")
        ax.set_xlim(0, max(values) * 1.18)
        ax.tick_params(axis="y", labelsize=9)
    figure.suptitle(
        "Bare pika (blue) and the helpers in common/ (orange)\n"
        f"{BODY_SIZE}-byte messages, best of {REPEATS}; RabbitMQ {on['rabbitmq']}, "
        f"pika {on['pika']}, Python {on['python']}, {on['nproc']} CPUs",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def machine(url):
    """What the figures were measured on."""
    connection = connect(url)
    # pika keeps the broker's Connection.Start properties on the connection underneath.
    version = connection._impl.server_properties.get("version", b"?")
    connection.close()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "pika": pika.__version__,
        "rabbitmq": version.decode() if isinstance(version, bytes) else str(version),
    }


# The broker


def check_local(url):
    host = urllib.parse.urlsplit(url).hostname or "localhost"
    if host not in LOCAL_HOSTS:
        raise BenchError(
            f"the benchmark measures a broker on this machine, not one at {host!r}: "
            "set AMQP_URL to amqp://...@localhost:5672/..., or leave it unset"
        )


class BenchBroker:
    """Where the benchmark runs: a fresh virtual host on a throwaway broker; or the broker
    at url as it is, if the queues the benchmark uses there are idle and empty. At the end
    the throwaway broker is stopped, or the queues are left as they were found: deleted
    if the benchmark declared them, else emptied."""

    QUEUES = {
        ("queue", name)
        for name in (QUEUE, BARE_RPC_QUEUE, THREADED_RPC_QUEUE, RPC_QUEUE, TASK_QUEUE)
    }

    def __init__(self, console):
        check_local(os.environ.get("AMQP_URL", DEFAULT_URL))
        self.url, self.throwaway = users_broker_or_throwaway(console.print, "the benchmark")
        if not self.throwaway:
            self.missing = claim(self.url, self.QUEUES)
        else:
            try:
                check_local(self.throwaway.url("/"))
                self.url = self.throwaway.url(self.throwaway.add_vhost("bench"))
            except BaseException:
                self.throwaway.stop()
                raise
        with admin_channel(self.url) as channel:
            channel.queue_declare(QUEUE, durable=True, arguments=QUORUM)
            channel.queue_declare(TASK_QUEUE, durable=True, arguments=QUORUM)

    def close(self):
        if self.throwaway:
            self.throwaway.stop()
        else:
            release(self.url, self.QUEUES, self.missing)


def main(argv=None):
    options = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_argument("--json", metavar="FILE", help="write every figure to FILE as JSON")
    options.add_argument("--chart", metavar="FILE", help="draw the rates as a PNG")
    options.add_argument(
        "--scale", type=float, default=1.0, help="how many messages, times (default: 1)"
    )
    args = options.parse_args(argv)
    if not args.scale > 0:
        options.error("--scale must be more than 0")
    counts = {key: max(least, round(n * args.scale)) for key, (n, least) in COUNTS.items()}
    # 100 columns when the output is not a terminal (a file, a CI log), so no label wraps.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 100)
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)
    labels = {key: (label, unit) for key, label, unit in FIGURES}

    def report(key, value):
        label, unit = labels[key]
        console.print(f"  {label}: {number(value, unit)}")

    broker = None
    try:
        broker = BenchBroker(console)
        started = time.perf_counter()
        raw = {}
        for title, measure in [
            ("Publishing", measure_publishing),
            ("Consuming", measure_consuming),
            ("RPC", measure_rpc),
            ("Workers", measure_all_workers),
        ]:
            console.rule(f"[bold]{title}")
            section_started = time.perf_counter()
            raw.update(measure(broker.url, counts, report))
            console.print(f"  [dim]({time.perf_counter() - section_started:.1f} s)")
        results = {
            **ratios(raw),
            "raw": {key: raw[key] for key, _, _ in FIGURES},
            "machine": machine(broker.url),
            "settings": {
                "scale": args.scale,
                "body_bytes": BODY_SIZE,
                "repeats": REPEATS,
                "counts": counts,
                "seconds": round(time.perf_counter() - started, 1),
            },
        }
    except (BenchError, BrokerUnavailable, AssertionError) as error:
        console.print(f"[bold red]error: {error}")
        return 1
    except KeyboardInterrupt:
        console.print("Interrupted: stopping everything.")
        return 130
    finally:
        if broker:
            broker.close()
    console.print(table(results))
    console.print(about(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
    if args.chart:
        chart(results, args.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
