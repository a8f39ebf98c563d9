"""Benchmark: what the helpers in common/ cost, next to bare pika, on one broker.

Run:      make bench     or   python tools/bench.py [--json FILE] [--chart FILE] [--scale X]
Observe:  one table: publish and consume rates (messages/s), each strategy of
          publisher confirms next to bare pika doing the same, RPC latency and
          rate, reading a stream from its first message, and how well 1, 2
          and 4 workers share tasks; the ratios that
          matter, each next to its target. --scale 1 takes a little over a minute
          on two cores; --scale 0.01 is a quick check that everything runs.

The measurements are in tools/benchmarks/, one module per section. Every figure
is measured in this one run, against the one broker, with
messages of BODY_SIZE bytes; each rate is the best of REPEATS runs, so a
moment of noise on the machine does not decide it. Each measurement says in
its docstring what it measures.

The broker is the one at AMQP_URL (else localhost:5672) if it answers; else a
throwaway one, started as the tests start theirs and removed at the end.
Either way it must be on this machine: the figures are meant to show the
client and the broker, not a network.
"""

import argparse
import json
import os
import platform
import signal
import sys
import time
import urllib.parse

import pika
from benchmarks.confirms import measure_confirms
from benchmarks.consume import measure_consuming
from benchmarks.publish import measure_publishing
from benchmarks.report import FIGURES, about, chart, number, ratios, table
from benchmarks.rpc import measure_rpc
from benchmarks.shared import (
    BARE_RPC_QUEUE,
    BODY_SIZE,
    QUEUE,
    QUORUM,
    REPEATS,
    RPC_QUEUE,
    TASK_QUEUE,
    THREADED_RPC_QUEUE,
    BenchError,
    admin_channel,
    connect,
)
from benchmarks.streams import STREAM, measure_streams
from benchmarks.workers import measure_all_workers
from broker import BrokerUnavailable, claim, release
from rich.console import Console
from throwaway import users_broker_or_throwaway

from common.cli import DEFAULT_URL

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

# At --scale 1; each at least its minimum, so that a tiny scale still measures something.
COUNTS = {
    "publish": (5000, 20),  # messages per publishing run
    "confirms": (20000, 20),  # the same with publish_many(): faster, so more, for steadier rates
    "publish_one_by_one": (800, 20),  # the same, one confirm at a time: slower, fewer
    "consume": (4000, 20),  # messages per consuming run
    "stream": (100_000, 20),  # messages in the stream, each read from the first
    "rpc_calls": (1000, 20),  # sequential calls, for the latency
    "rpc_rounds": (5, 1),  # rounds of RPC_CONCURRENCY concurrent calls
    "tasks_per_worker": (50, 2),  # tasks per workers run: this many for each worker
}


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
    } | {("stream", STREAM)}

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
            ("Publisher confirms", measure_confirms),
            ("Consuming", measure_consuming),
            ("Streams", measure_streams),
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
