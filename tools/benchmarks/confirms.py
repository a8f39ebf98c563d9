"""Publisher confirms: each strategy of confirms/producer.py, publish_many() on a
SelectConnection, next to bare pika doing the same strategy on the same kind of
connection, and bare pika publishing with no confirms on it, the ceiling."""

import functools
import itertools
import time

import pika

from benchmarks.shared import BATCH, BODY, PERSISTENT, QUEUE, WINDOW, BenchError, interleaved, purge
from confirms.bulk import publish_many

STRATEGIES = {"each": (1, False), "batch": (BATCH, True), "async": (WINDOW, False)}


def bare_select(url, n, window, batch, confirms=True):
    """messages/s: bare pika on a SelectConnection, n persistent messages to the queue:
    at most window unconfirmed at a time, each confirm letting one more go (batch: the
    next window once every confirm of the last is in). Mandatory, as publish_many() is.
    confirms=False: no confirm mode, and the clock stops once a queue.declare sent after
    the last message is answered. The clock starts as the connection opens, as ours."""
    purge(url)
    sent, unconfirmed, elapsed = 0, set(), []

    def send(channel):
        nonlocal sent
        while sent < n and (not confirms or len(unconfirmed) < window):
            channel.basic_publish("", QUEUE, BODY, PERSISTENT, mandatory=True)
            sent += 1
            if confirms:
                unconfirmed.add(sent)
        if not confirms:
            channel.queue_declare(QUEUE, passive=True, callback=lambda frame: finish(channel))

    def on_confirm(frame):
        tag = frame.method.delivery_tag
        unconfirmed.difference_update(
            {t for t in unconfirmed if t <= tag} if frame.method.multiple else {tag}
        )
        if isinstance(frame.method, pika.spec.Basic.Nack):  # pika would take a raise for a loss
            channel.connection.close()
        elif sent == n and not unconfirmed:
            finish(channel)
        elif not batch or not unconfirmed:
            send(channel)

    def finish(channel):
        elapsed.append(time.perf_counter() - started)
        channel.connection.close()

    def on_channel(opened):
        nonlocal channel
        channel = opened
        if confirms:
            channel.confirm_delivery(on_confirm, callback=lambda frame: send(channel))
        else:
            send(channel)

    channel, started = None, time.perf_counter()  # the connection's opening counts, as ours
    connection = pika.SelectConnection(
        pika.URLParameters(url),
        on_open_callback=lambda opened: opened.channel(on_open_callback=on_channel),
        on_close_callback=lambda closed, why: closed.ioloop.stop(),
    )
    connection.ioloop.start()
    if not elapsed:
        raise BenchError("bare pika on a SelectConnection: refused (nack), or the connection lost")
    return n / elapsed[0]


def ours(url, n, window, batch):
    """messages/s: confirms.bulk.publish_many(), as confirms/producer.py calls it."""
    purge(url)
    done = publish_many(url, QUEUE, [BODY.decode()] * n, window=window, batch=batch)
    if done.confirmed != n:
        raise BenchError("publish_many() confirmed fewer messages than it sent")
    return n / done.seconds


def measure_confirms(url, counts, report):
    """Each strategy, ours and bare, and bare with no confirms, the runs interleaved; the
    pair in turn in either order, since the first of two back to back runs a little
    faster (measured: by up to a fifth)."""
    n, turn = counts["confirms"], itertools.count()

    def pair(name, count, window, batch):
        runs = [
            (f"confirms_{name}_bare_per_s", lambda: bare_select(url, count, window, batch)),
            (f"confirms_{name}_ours_per_s", lambda: ours(url, count, window, batch)),
        ]
        return dict((key, run()) for key, run in runs[:: 1 if next(turn) % 2 else -1])

    measures = [lambda: {"confirms_unconfirmed_per_s": bare_select(url, n, 0, False, False)}]
    for name, (window, batch) in STRATEGIES.items():
        count = counts["publish_one_by_one"] if name == "each" else n
        measures.append(functools.partial(pair, name, count, window, batch))
    return interleaved(measures, report)
