"""The benchmark, at a tiny scale: it runs end to end and writes every figure."""

import json
import math

from processes import Script

HEADLINES = [
    "helpers_vs_raw_publish",
    "helpers_vs_raw_consume",
    "helpers_vs_raw_stream",
    "helpers_vs_raw_rpc_concurrent",
    "helpers_vs_threaded_rpc_concurrent",
    "confirms_each_vs_bare",
    "confirms_batch_vs_bare",
    "confirms_async_vs_bare",
    "confirms_async_vs_unconfirmed",
    "rpc_p50_ms",
    "rpc_concurrent_per_s",
    "workers_efficiency_4",
]
RAW = [
    "publish_bare_unconfirmed_per_s",
    "publish_bare_confirmed_per_s",
    "publish_helpers_per_s",
    "confirms_unconfirmed_per_s",
    *(
        f"confirms_{name}_{who}_per_s"
        for name in ("each", "batch", "async")
        for who in ("bare", "ours")
    ),
    "consume_bare_prefetch_1_per_s",
    "consume_bare_prefetch_100_per_s",
    "consume_bare_multiple_ack_per_s",
    "consume_bare_auto_ack_per_s",
    "consume_helpers_per_s",
    "stream_bare_per_s",
    "stream_bare_multiple_ack_per_s",
    "stream_helpers_per_s",
    "rpc_p50_ms_helpers",
    "rpc_p50_ms_bare",
    "rpc_concurrent_per_s_helpers",
    "rpc_concurrent_per_s_bare",
    "rpc_concurrent_per_s_threaded",
    "workers_1_per_s",
    "workers_2_per_s",
    "workers_4_per_s",
    "workers_efficiency_4",
]


def positive_number(value):
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def test_the_benchmark_runs_and_writes_every_figure(amqp_url, tmp_path):
    path = tmp_path / "bench.json"
    run = Script("tools/bench.py", "--scale", "0.01", "--json", str(path), url=amqp_url)
    assert run.wait(30) == 0, run.describe()
    results = json.loads(path.read_text())

    assert set(HEADLINES) <= results.keys()
    assert set(RAW) <= results["raw"].keys()
    figures = {key: results[key] for key in HEADLINES} | results["raw"]
    assert [key for key, value in figures.items() if not positive_number(value)] == []
    assert set(results["machine"]) == {"nproc", "python", "pika", "rabbitmq"}
    assert results["machine"]["rabbitmq"] not in ("", "?")
    # The targets are printed next to the figures they are about.
    output = "\n".join(run.stdout)
    assert "≥ 0.95" in output and "≤ 1.2" in output, output
