"""Work queues: tasks shared fairly between workers, and nothing lost when one dies; on
classic and quorum queues alike (queue_type sets QUEUE_TYPE for the scripts)."""

import signal
import urllib.parse
from collections import Counter

import pika
import pytest
from processes import wait_until

from common.connection import RECONNECTED


def start_worker(start, delay):
    return start("workers/consumer.py", "--delay", str(delay)).wait_ready()


def produce(start, n):
    producer = start("workers/producer.py", "-n", str(n))
    assert producer.wait() == 0, producer.describe()
    assert len(producer.sent()) == n
    return producer.sent()


def wait_for_total(workers, n):
    wait_until(
        lambda: sum(len(w.received()) for w in workers) >= n,
        f"{n} tasks not received by the workers together",
        *workers,
    )
    return [w.received() for w in workers]


def test_workers_share_fifteen_tasks_evenly_each_exactly_once(start, queue_type):
    workers = [start_worker(start, 0.2) for _ in range(3)]
    sent = start("workers/producer.py")  # the default: 15 tasks
    assert sent.wait() == 0, sent.describe()
    shares = wait_for_total(workers, 15)
    assert Counter(task for share in shares for task in share) == Counter(sent.sent())
    assert [len(share) for share in shares] == [5, 5, 5]


def test_a_slow_worker_does_not_hoard_tasks(start, queue_type):
    slow = start_worker(start, 5.0)
    fast = start_worker(start, 0.05)
    sent = produce(start, 10)
    slow_share, fast_share = wait_for_total([slow, fast], 10)
    # Prefetch 1: the slow worker holds one task; round-robin would have given it five.
    assert len(slow_share) == 1
    assert sorted(slow_share + fast_share) == sorted(sent)


def test_a_worker_killed_mid_task_loses_nothing(start, queue_type):
    doomed = start_worker(start, 60)
    sent = produce(start, 3)
    assert doomed.wait_received(1) == sent[:1]
    doomed.process.kill()  # SIGKILL: no chance to ack, nack or close
    doomed.wait()
    survivor = start_worker(start, 0)
    assert survivor.wait_received(3) == sent  # the killed worker's task first, as it was queued


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_worker_stopped_mid_task_exits_cleanly_and_gives_the_task_back(start, queue_type, sig):
    stopped = start_worker(start, 60)
    sent = produce(start, 1)
    assert stopped.wait_received(1) == sent
    assert stopped.stop(sig) == 0
    assert stopped.stderr == []
    assert start_worker(start, 0).wait_received(1) == sent


def test_a_worker_whose_queue_is_deleted_says_so_and_goes_on(start, broker, amqp_url, queue_type):
    """The broker cancels the consumers of a deleted queue: the worker declares it again."""
    worker = start_worker(start, 0)
    vhost = urllib.parse.quote(pika.URLParameters(amqp_url).virtual_host, safe="")
    broker.api("DELETE", f"/api/queues/{vhost}/task_queue")
    worker.wait_for_line(
        " [!] The broker cancelled the subscription to 'task_queue' (was the queue deleted?): "
        "subscribing again"
    )
    worker.wait_for_line(RECONNECTED)
    sent = produce(start, 2)
    assert worker.wait_received(2) == sent
    assert worker.stop() == 0 and worker.stderr == []
