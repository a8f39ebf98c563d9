"""A pattern copied out of the repository, as the README shows: its two scripts and
common/ in a folder of their own, run with nothing but Python and pika."""

import shutil
from pathlib import Path

import pika
from processes import ROOT, Script


def test_a_copied_pattern_runs_with_only_pika(tmp_path, amqp_url):
    mine = tmp_path / "mine"
    mine.mkdir()
    for script in (ROOT / "workers").glob("*.py"):
        shutil.copy(script, mine)
    shutil.copytree(ROOT / "common", mine / "common")
    only_pika = tmp_path / "site"  # in place of site-packages: pika alone
    only_pika.mkdir()
    (only_pika / "pika").symlink_to(Path(pika.__file__).parent)
    # -S: no site-packages, so neither this repository's installed common/ nor anything
    # else installed here; PYTHONPATH brings in pika.
    run = {"cwd": mine, "env": {"PYTHONPATH": str(only_pika)}, "url": amqp_url}
    consumer = Script("-S", "consumer.py", "--delay", "0", **run)
    try:
        consumer.wait_ready()
        producer = Script("-S", "producer.py", "-n", "2", **run)
        assert producer.wait() == 0, producer.describe()
        assert consumer.wait_received(2) == producer.sent()
        assert consumer.stop() == 0 and consumer.stderr == []
    finally:
        consumer.kill()
