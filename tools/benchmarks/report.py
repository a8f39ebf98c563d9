"""The report: every figure, its label, the targets, and the table and the chart."""

from rich.table import Table

from benchmarks.confirms import STRATEGIES
from benchmarks.shared import (
    ACK_EVERY,
    BATCH,
    BODY_SIZE,
    PREFETCH,
    REPEATS,
    RPC_CONCURRENCY,
    WINDOW,
    WORK,
    WORKER_COUNTS,
)

# (key in "raw", label, unit): every figure, in the order of the table and the chart.
FIGURES = [
    ("publish_bare_unconfirmed_per_s", "publish, bare pika, no confirms", "msg/s"),
    ("publish_bare_confirmed_per_s", "publish, bare pika, confirm each", "msg/s"),
    ("publish_helpers_per_s", "publish, Queue.send() (confirm each)", "msg/s"),
    ("confirms_unconfirmed_per_s", "confirms, bare pika, no confirms", "msg/s"),
    ("confirms_each_bare_per_s", "confirms, bare pika, each", "msg/s"),
    ("confirms_each_ours_per_s", "confirms, publish_many(), each", "msg/s"),
    ("confirms_batch_bare_per_s", f"confirms, bare pika, batches of {BATCH}", "msg/s"),
    ("confirms_batch_ours_per_s", f"confirms, publish_many(), batches of {BATCH}", "msg/s"),
    ("confirms_async_bare_per_s", f"confirms, bare pika, async, window {WINDOW}", "msg/s"),
    ("confirms_async_ours_per_s", f"confirms, publish_many(), async, window {WINDOW}", "msg/s"),
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
    ("stream_bare_per_s", f"stream from first, bare pika, prefetch {PREFETCH}", "msg/s"),
    (
        "stream_bare_multiple_ack_per_s",
        f"stream from first, bare pika, multiple-ack per {ACK_EVERY}, prefetch {PREFETCH}",
        "msg/s",
    ),
    ("stream_helpers_per_s", f"stream from first, Stream.receive(), prefetch {PREFETCH}", "msg/s"),
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
        "helpers_vs_raw_stream",
        f"stream: Stream.receive() / bare pika, ack each, prefetch {PREFETCH}",
        0.95,
        True,
    ),
    (
        "helpers_vs_raw_rpc_concurrent",
        f"RPC, {RPC_CONCURRENCY} at once: FibonacciClient / bare pika",
        0.85,  # bare pika answers on pika's thread, which ours must not: see the next
        True,
    ),
    *(
        (f"confirms_{name}_vs_bare", f"confirms {name}: publish_many() / bare pika", 0.95, True)
        for name in STRATEGIES
    ),
    ("confirms_async_vs_unconfirmed", "confirms async: publish_many() / no confirms", 0.75, True),
    ("workers_efficiency_4", "4 workers: rate / (4 / work per task)", 0.9, True),
    ("helpers_vs_raw_rpc_p50", "RPC p50: FibonacciClient / bare pika", 1.2, False),
    (
        "helpers_vs_threaded_rpc_concurrent",
        f"RPC, {RPC_CONCURRENCY} at once: FibonacciClient / bare pika on a worker thread",
        0.95,
        True,
    ),
]


# The report


def ratios(raw):
    """The headline figures, each a ratio or the project's own figure."""
    return {
        **{
            f"confirms_{name}_vs_bare": raw[f"confirms_{name}_ours_per_s"]
            / raw[f"confirms_{name}_bare_per_s"]
            for name in STRATEGIES
        },
        "confirms_async_vs_unconfirmed": raw["confirms_async_ours_per_s"]
        / raw["confirms_unconfirmed_per_s"],
        "helpers_vs_raw_publish": raw["publish_helpers_per_s"]
        / raw["publish_bare_confirmed_per_s"],
        "helpers_vs_raw_consume": raw["consume_helpers_per_s"]
        / raw["consume_bare_prefetch_100_per_s"],
        "helpers_vs_raw_stream": raw["stream_helpers_per_s"] / raw["stream_bare_per_s"],
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
        ("Publishing, BlockingConnection", [k for k in raw if k.startswith("publish_")]),
        (
            "Publisher confirms, SelectConnection: each beside its bare twin",
            [k for k in raw if k.startswith("confirms_")],
        ),
        ("Consuming", [k for k in raw if k.startswith("consume_")]),
    ]
    figure, axes = plt.subplots(
        3, 1, figsize=(8, 9), dpi=100, gridspec_kw={"height_ratios": [3, 7, 5]}
    )
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
        "Bare pika (blue) and this repository's code (orange)\n"
        f"{BODY_SIZE}-byte messages, best of {REPEATS}; RabbitMQ {on['rabbitmq']}, "
        f"pika {on['pika']}, Python {on['python']}, {on['nproc']} CPUs",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
