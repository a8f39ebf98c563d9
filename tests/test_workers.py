"""Work queues: tasks shared fairly between workers, and nothing lost when one dies; on
classic and quorum queues alike (queue_type sets QUEUE_TYPE for the scripts)."""

import signal
import urllib.parse
from collections import Counter

import pika
import pytest
from inprocess import broker_version, get_all
from processes import TIMEOUT, wait_until

from common.connection import RECONNECTED
from common.consuming import DONE


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


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_a_worker_whose_queue_is_deleted_says_so_and_goes_on(
    start, broker, amqp_url, queue_type, busy
):
    """The broker cancels the consumers of a deleted queue: the worker declares it again.
    Busy with a task then, it goes on too: the task went with the queue, and does not come
    back as a timed-out one would (test_a_task_longer_than_the_consumer_timeout_...)."""
    worker = start_worker(start, 3 if busy else 0)
    if busy:
        produce(start, 1)
        worker.wait_received(1)  # and working on it for 3 s
    vhost = urllib.parse.quote(pika.URLParameters(amqp_url).virtual_host, safe="")
    broker.api("DELETE", f"/api/queues/{vhost}/task_queue")
    worker.wait_for_line(
        " [!] The broker cancelled the subscription to 'task_queue' (its queue deleted, or a "
        "consumer_timeout?): subscribing again"
    )
    worker.wait_for_line(RECONNECTED)
    before = worker.received()
    sent = produce(start, 2)
    assert worker.wait_received(len(before) + 2) == before + sent
    assert worker.stop() == 0 and worker.stderr == []


def test_a_task_longer_than_the_consumer_timeout_ends_the_worker_once(
    start, broker, amqp_url, queue_type, consumer_timeout
):
    """A task of 30 s, a consumer_timeout of 3 s: the broker takes the task back (RabbitMQ
    4.3 cancels the subscription, older versions close the channel). The worker says so
    in one line that names consumer_timeout and exits 1, having worked on the task once,
    not again and again; the task waits for another worker. On 4.3 a classic queue has no
    consumer timeout any more: the task is simply done."""
    no_deadline = queue_type == "classic" and broker_version(broker) >= (4, 3)
    worker = start_worker(start, 6 if no_deadline else 30)  # 30: it ends long before
    [task] = produce(start, 1)
    if no_deadline:
        worker.wait_for_line(DONE, timeout=6 + TIMEOUT)
        assert worker.stop() == 0 and worker.stderr == [], worker.describe()
        return
    assert worker.wait(TIMEOUT) == 1, worker.describe()
    assert worker.received() == [task]  # once
    assert len(worker.stderr) == 1 and "consumer_timeout" in worker.stderr[0], worker.describe()
    assert worker.stderr[0].startswith("error: a message was not acknowledged within")
    [(properties, _)] = get_all(amqp_url, "task_queue")
    # What the timeout counted. Before 4.3: the delivery of a closed channel, as any other.
    # On 4.3 nothing; but the worker saw the task again, and gave it back as it stopped,
    # which counts: two deliveries, one counted. A classic queue counts nothing.
    headers = properties.headers or {}
    if queue_type == "classic":
        assert "x-delivery-count" not in headers
    elif broker_version(broker) >= (4, 3):
        assert (headers["x-acquired-count"], headers["x-delivery-count"]) == (2, 1)
    else:
        assert headers["x-delivery-count"] == 1
