"""A pattern copied out of the repository, as the README shows: its folder's files and
common/ in a folder of their own, run with nothing but Python and pika."""

import shutil
from pathlib import Path

import pika
import pytest
from processes import ROOT, Script

from common.consuming import READY
from rpc.calls import AWAITING

# pattern -> the consumer's arguments, the producer's, and what the producer prints last
COPIED = {
    "workers": (["--delay", "0"], ["-n", "2"], None),
    "rpc": ([], ["30"], " [.] Got fib(30) = 832040"),  # rpc/calls.py comes along
    "confirms": ([], ["-n", "2"], "async: 2 confirmed"),  # and confirms/bulk.py
}


@pytest.mark.parametrize("pattern", COPIED)
def test_a_copied_pattern_runs_with_only_pika(tmp_path, amqp_url, pattern):
    mine = tmp_path / "mine"
    mine.mkdir()
    for script in (ROOT / pattern).glob("*.py"):
        shutil.copy(script, mine)
    shutil.copytree(ROOT / "common", mine / "common")
    only_pika = tmp_path / "site"  # in place of site-packages: pika alone
    only_pika.mkdir()
    (only_pika / "pika").symlink_to(Path(pika.__file__).parent)
    # -S: no site-packages, so neither this repository's installed common/ nor anything
    # else installed here; PYTHONPATH brings in pika.
    run = {"cwd": mine, "env": {"PYTHONPATH": str(only_pika)}, "url": amqp_url}
    consumer_args, producer_args, last = COPIED[pattern]
    consumer = Script("-S", "consumer.py", *consumer_args, **run)
    try:
        consumer.wait_for_line(AWAITING if pattern == "rpc" else READY)
        producer = Script("-S", "producer.py", *producer_args, **run)
        assert producer.wait() == 0, producer.describe()
        if last is None:
            assert consumer.wait_received(2) == producer.sent()
        else:
            assert producer.stdout[-1].startswith(last), producer.describe()
        assert consumer.stop() == 0 and consumer.stderr == [], consumer.describe()
    finally:
        consumer.kill()
