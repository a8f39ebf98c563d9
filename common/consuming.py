"""Consuming: manual acks after the work, a prefetch limit, poison messages set aside. The
I/O thread (receive()) keeps the connection and its heartbeats; a worker thread runs each
callback(), in order; the acks go back to the I/O thread (pika is not thread-safe)."""

import contextlib
import copy
import functools
import logging
import os
import queue
import signal
import sys
import threading

import pika

from common.connection import RECONNECTED, Connection

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # deliveries of a message whose callback fails, before it is set aside
DEAD_LETTERS = "dead_letters"
READY = " [*] Waiting for messages. To exit press CTRL+C"  # once consuming
DONE = " [x] Done"  # a worker, once a task is done


def attempts(method, properties, counted: bool) -> tuple[int, int]:
    """Which delivery of the message this is, and the last one it gets. A quorum queue
    (counted) counts the deliveries that came back, in x-delivery-count: rejected, or
    held by a consumer that stopped or lost its connection. A classic queue counts none
    (RabbitMQ 3.10 to 4.3): it says only whether it delivered the message before, for
    whatever reason, so there a message gets two."""
    count = (properties.headers or {}).get("x-delivery-count")
    if count is not None or counted:
        return (count or 0) + 1, MAX_ATTEMPTS
    return (2 if method.redelivered else 1), 2


class Consumer(Connection):
    """receive() calls callback() for each message of self.queue until stopped."""

    ready = READY
    queue_name: str | None = None  # the queue a subclass declares ("": server-named)
    queue: str | None = None  # and its name, once declared

    def __init__(self, url: str, *, prefetch: int = 10, **options):
        self.prefetch = prefetch
        self.stopping: threading.Event = threading.Event()
        self.outbox: list = []  # (channel, delivery tag or function) for the I/O thread
        self.outbox_lock = threading.Lock()
        super().__init__(url, **options)

    def callback(self, body: str) -> None:
        """What to do with one message: each consumer says. An exception is a failure."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop receive() soon, from any thread (a signal handler only sets the flag: this
        takes pika's locks); what is not acked goes back to the queue."""
        self.stopping.set()
        with contextlib.suppress(pika.exceptions.AMQPError):  # closed: nothing to stop
            self.connection.add_callback_threadsafe(self.tick)  # now, not at the next tick

    def receive(self) -> None:
        """Consume until SIGINT or SIGTERM (or stop()), calling callback() per message.
        A lost connection is opened again, and consuming goes on; so does a consumer
        that the broker cancelled (its queue deleted, say), once declared again."""
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            # The signal only raises a flag: an exception raised in the middle of
            # pika reading a frame would leave the connection unusable, even to close.
            for stop in (signal.SIGINT, signal.SIGTERM):
                handlers[stop] = signal.signal(stop, lambda signum, frame: self.stopping.set())
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()  # I/O thread -> worker thread
        threading.Thread(target=self.work, daemon=True).start()
        try:
            self.consume()
        finally:
            for stop, handler in handlers.items():
                signal.signal(stop, handler)

    def consume(self) -> None:
        while True:
            try:
                self.channel.basic_qos(prefetch_count=self.prefetch)  # per consumer
                self.channel.basic_consume(self.queue, self.on_message)
                if self.ready:
                    log.info(self.ready)
                    self.ready = ""  # once: a reconnection says so itself
                self.tick()
                self.channel.start_consuming()  # until a tick stops it, or the broker cancels
                if self.stopping.is_set():
                    return  # stopped: close() gives back what is unacked
                log.info(
                    f" [!] The broker cancelled the subscription to {self.queue!r} (was the "
                    "queue deleted?): subscribing again"
                )
                self.close()
            except pika.exceptions.AMQPConnectionError:
                if self.stopping.is_set():
                    return  # lost while stopping: stopped all the same
            self.open()  # the tasks of the lost channel are dropped: see work()
            log.info(RECONNECTED)

    def tick(self) -> None:
        """Every 0.2 s while consuming (a signal only sets the flag): stop if stopped."""
        self.flush()  # also what a wake-up lost with an old connection left
        if self.stopping.is_set():
            self.channel.stop_consuming()
        else:
            self.connection.call_later(0.2, self.tick)

    def on_message(self, channel, method, properties, body) -> None:
        self.tasks.put((channel, method, properties, body))

    def work(self) -> None:
        """The worker thread: handle() each message, in order, off the I/O thread."""
        while True:
            channel, method, properties, body = self.tasks.get()
            if self.stopping.is_set() or not channel.is_open:
                continue  # stopped, or its channel lost: the broker delivers it again
            try:
                self.settle(channel, self.handle(channel, method, properties, body))
            except BrokenPipeError:  # whoever read our output is gone (`consumer.py | head`)
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                self.stop()  # not the message's fault: it stays unacked

    def handle(self, channel, method, properties, body):
        """Run callback(); return the delivery tag to ack, or what to do instead."""
        try:
            # errors="replace": a body that is not UTF-8 is shown, not a crash.
            self.callback(body.decode("utf-8", errors="replace"))
            return method.delivery_tag  # only now: the work is done
        except BrokenPipeError:
            raise
        except Exception as error:  # whatever the callback raised: again, or set aside
            return functools.partial(self.failed, channel, method, properties, body, error)

    def settle(self, channel, done) -> None:
        """Hand done (a delivery tag to ack, or a function) to the I/O thread."""
        with self.outbox_lock:
            self.outbox.append((channel, done))
            first = len(self.outbox) == 1  # else a wake-up is on its way already
        if first:  # a wake-up lost with its connection: the next tick flushes instead
            with contextlib.suppress(pika.exceptions.AMQPError):
                channel.connection.add_callback_threadsafe(self.flush)

    def flush(self) -> None:
        """On the I/O thread: everything done so far, in order; acks in a row as one."""
        with self.outbox_lock:
            done, self.outbox = self.outbox, []
        last = None  # (channel, tag): acks not sent yet
        for channel, then in done:
            if last and (channel is not last[0] or not isinstance(then, int)):
                self.ack(*last)
                last = None
            if isinstance(then, int):
                last = (channel, then)
            elif channel.is_open:  # else the broker delivers the message again
                then()
        if last:
            self.ack(*last)

    @staticmethod
    def ack(channel, delivery_tag) -> None:  # this one and all before it
        if channel.is_open:  # else it was lost, and the broker delivers them again
            channel.basic_ack(delivery_tag, multiple=True)

    def failed(self, channel, method, properties, body, error) -> None:
        """The callback raised: give the message back (rejected, so that RabbitMQ counts
        the failed delivery), or after MAX_ATTEMPTS set it aside in DEAD_LETTERS, with why."""
        counted = self.queue_type == "quorum" and bool(self.queue_name)  # server-named: classic
        attempt, limit = attempts(method, properties, counted)
        last = attempt >= limit
        fate = f"it goes to the queue {DEAD_LETTERS!r}" if last else "it goes back to the queue"
        log.warning(f"failed ({error!r}), attempt {attempt} of {limit}: {fate}")
        if not last:
            channel.basic_reject(method.delivery_tag, requeue=True)
            return
        aside = copy.copy(properties)  # the same message: its id, type, reply_to and the rest
        headers = {k: v for k, v in (properties.headers or {}).items() if k != "x-delivery-count"}
        why = {"error": repr(error)[:500], "queue": self.queue, "attempts": attempt}
        aside.headers, aside.delivery_mode = {**headers, **why}, pika.DeliveryMode.Persistent.value
        probe = self.connection.channel()
        try:
            probe.queue_declare(DEAD_LETTERS, passive=True)  # there already, of whatever type
        except pika.exceptions.ChannelClosedByBroker:
            self.declare_queue(DEAD_LETTERS)  # not yet: this side's type
        finally:
            if probe.is_open:
                probe.close()
        try:
            channel.basic_publish("", DEAD_LETTERS, body, aside)
        except pika.exceptions.NackError:  # not taken (a quorum queue electing a leader)
            channel.basic_reject(method.delivery_tag, requeue=True)  # try again later
            return
        channel.basic_ack(method.delivery_tag)
