"""A pattern copied out of the repository, as the README shows: its folder's files and
common/ in a folder of their own, run with nothing but Python and pika; and without
common/, the error the README says it stops at."""

import shutil
from pathlib import Path

import pika
import pytest
from processes import ROOT, Script

from common.consuming import READY
from rpc.calls import AWAITING

# pattern -> the consumer's arguments, the producer's, and what the producer prints last
COPIED = {
    "basic": ([], ["-n", "2"], None),
    "workers": (["--delay", "0"], ["-n", "2"], None),
    "pubsub": ([], ["-n", "2"], None),
    "routing": (["blue"], ["blue", "-n", "2"], None),
    "topics": (["#"], ["quick.orange.rabbit", "-n", "2"], None),
    "rpc": ([], ["30"], " [.] Got fib(30) = 832040"),  # rpc/calls.py comes along
    "confirms": ([], ["-n", "2"], "async: 2 confirmed"),  # and confirms/bulk.py
    "streams": (["--offset", "first"], ["-n", "2"], None),  # and streams/stream.py
}
UNUSED = "amqp://guest:guest@127.0.0.1:1/%2F"  # never reached: the import fails first


def copied(pattern, tmp_path, url, with_common=True):
    """The pattern's files (and common/) in a folder of their own, and how to run a script
    there with nothing but pika: -S, no site-packages, so neither this repository's
    installed common/ nor anything else installed here; PYTHONPATH brings in pika."""
    mine = tmp_path / "mine"
    mine.mkdir()
    for script in (ROOT / pattern).glob("*.py"):
        shutil.copy(script, mine)
    if with_common:
        shutil.copytree(ROOT / "common", mine / "common")
    only_pika = tmp_path / "site"  # in place of site-packages: pika alone
    only_pika.mkdir()
    (only_pika / "pika").symlink_to(Path(pika.__file__).parent)
    return {"cwd": mine, "env": {"PYTHONPATH": str(only_pika)}, "url": url}


@pytest.mark.parametrize("pattern", COPIED)
def test_a_copied_pattern_runs_with_only_pika(tmp_path, amqp_url, pattern):
    run = copied(pattern, tmp_path, amqp_url)
    consumer_args, producer_args, last = COPIED[pattern]
    consumer = Script("-S", "consumer.py", *consumer_args, **run)
    try:
        consumer.wait_for_line(AWAITING if pattern == "rpc" else READY)
        producer = Script("-S", "producer.py", *producer_args, **run)
        assert producer.wait() == 0, producer.describe()
        if pattern == "streams":  # "<offset> <body> received"
            assert consumer.wait_received(2) == [
                f"{i} {body}" for i, body in enumerate(producer.sent())
            ]
        elif last is None:
            assert consumer.wait_received(2) == producer.sent()
        else:
            assert producer.stdout[-1].startswith(last), producer.describe()
        assert consumer.stop() == 0 and consumer.stderr == [], consumer.describe()
    finally:
        consumer.kill()


@pytest.mark.parametrize("pattern", ["basic", "rpc"])  # rpc: through rpc/calls.py
def test_a_copy_without_common_stops_at_what_the_readme_says(tmp_path, pattern):
    """Outside the repository's environment (where common/ is installed, and a copy
    without it would still run), a copy without common/ names what it misses."""
    script = Script("-S", "producer.py", "1", **copied(pattern, tmp_path, UNUSED, False))
    assert script.wait() == 1
    assert script.stderr[-1] == "ModuleNotFoundError: No module named 'common'", script.describe()
    assert script.stdout == []


def test_a_copy_s_help_says_how_to_run_it_there(tmp_path):
    run = copied("workers", tmp_path, UNUSED)
    helped = Script("-S", "producer.py", "--help", **run)
    assert helped.wait() == 0, helped.describe()
    assert "Run:      python producer.py [-n 15] [--url URL]" in helped.stdout
