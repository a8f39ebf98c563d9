"""Consuming: manual acks after the work, a prefetch limit, poison messages set aside. The
I/O thread (receive()) keeps the connection and its heartbeats; a worker thread runs each
callback(), in order; the acks go back to the I/O thread (pika is not thread-safe)."""

import contextlib
import functools
import logging
import os
import queue
import signal
import sys
import threading

import pika

from common.connection import RECONNECTED, BrokerError, Connection
from common.errors import lost
from common.poison import failed

log = logging.getLogger(__name__)

READY = " [*] Waiting for messages. To exit press CTRL+C"  # once consuming
DONE = " [x] Done"  # a worker, once a task is done
TIMED_OUT = (  # one line on every version: RabbitMQ 4.3 cancels, older ones close the channel
    "a message was not acknowledged within the broker's consumer_timeout (30 minutes by "
    "default): the broker took it back and ended the subscription to {queue!r}"
)


class Consumer(Connection):
    """receive() calls callback() for each message of self.queue until stopped."""

    ready = READY
    queue_name: str | None = None  # the queue a subclass declares ("": server-named)
    queue: str | None = None  # and its name, once declared
    subscription: dict | None = None  # basic_consume's arguments: a stream's offset, say

    def __init__(self, url: str, *, prefetch: int = 10, **options):
        self.prefetch, self.timed_out = prefetch, False
        self.held: dict = {}  # delivery tag -> (body, message id): on this channel, in work
        self.taken: set = set()  # what was held when the broker cancelled: see on_message()
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
        A lost connection is opened again, and consuming goes on; so does a consumer that
        the broker cancelled (its queue deleted, say), but not one that timed out."""
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
        except pika.exceptions.ChannelClosedByBroker as error:  # before 4.3: consumer_timeout?
            if "delivery acknowledgement" in error.reply_text:
                raise BrokerError(TIMED_OUT.format(queue=self.queue)) from None
            raise
        finally:
            for stop, handler in handlers.items():
                signal.signal(stop, handler)

    def consume(self) -> None:
        cancelled = False  # by the broker, the last time round
        while True:
            try:
                self.channel.basic_qos(prefetch_count=self.prefetch)  # per consumer
                self.channel.basic_consume(self.queue, self.on_message, arguments=self.subscription)
                cancelled = False
                if self.ready:
                    log.info(self.ready)
                    self.ready = ""  # once: a reconnection says so itself
                self.tick()
                self.channel.start_consuming()  # until a tick stops it, or the broker cancels
                if self.stopping.is_set():
                    return  # stopped: close() gives back what is unacked
                if self.timed_out:  # see on_message()
                    raise BrokerError(TIMED_OUT.format(queue=self.queue))
                log.info(
                    f" [!] The broker cancelled the subscription to {self.queue!r} (its queue "
                    "deleted, or a consumer_timeout?): subscribing again"
                )
                self.taken = set(self.held.values())
                self.close()
                cancelled = True
            except pika.exceptions.ChannelClosedByBroker as error:
                # A deleted queue cancels its consumers before it is gone: declared again
                # in between, it said "declared" and then was not there. Declare it again.
                if not (cancelled and error.reply_code == 404):
                    raise
                self.close()
            except pika.exceptions.AMQPConnectionError as error:
                if self.stopping.is_set():
                    return  # lost while stopping: stopped all the same
                self.connection_lost(error)
                log.info(
                    f" [!] Lost the broker ({lost(error)}): trying again for up to "
                    f"{self.retry_for:g} s"
                )
            self.open()  # the tasks of the lost channel are dropped: see work()
            self.held = {}
            log.info(RECONNECTED)

    def connection_lost(self, error: Exception) -> None:
        """The connection was lost while consuming, and is about to be opened again: a
        subclass may raise instead (a stream's consumer, for one message that ends it)."""

    def tick(self) -> None:
        """Every 0.2 s while consuming (a signal only sets the flag): stop if stopped."""
        self.flush()  # also what a wake-up lost with an old connection left
        if self.stopping.is_set():
            self.channel.stop_consuming()
        else:
            self.connection.call_later(0.2, self.tick)

    def on_message(self, channel, method, properties, body) -> None:
        """On the I/O thread. A message held when the broker cancelled, delivered again:
        the cancel was RabbitMQ 4.3's consumer_timeout, which took it back (a deleted
        queue's messages are gone). Subscribing again would time out again, forever."""
        seen = (body, properties.message_id)
        if method.redelivered and seen in self.taken:
            self.timed_out = True
            channel.stop_consuming()  # not worked on again: closing gives it back
            return
        self.held[method.delivery_tag] = seen  # until its callback returns
        self.tasks.put((channel, method, properties, body))

    def work(self) -> None:
        """The worker thread: handle() each message, in order, off the I/O thread."""
        while True:
            channel, method, properties, body = self.tasks.get()
            if self.stopping.is_set() or not channel.is_open:
                continue  # stopped, or its channel lost: the broker delivers it again
            try:
                done = self.handle(channel, method, properties, body)
                if channel is self.channel:
                    self.held.pop(method.delivery_tag, None)
                self.settle(channel, done)
            except BrokenPipeError:  # whoever read our output is gone (`consumer.py | head`)
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                self.stop()  # not the message's fault: it stays unacked

    def handle(self, channel, method, properties, body):
        """Run callback(); return the delivery tag to ack, or what to do instead."""
        try:
            self.callback(body.decode("utf-8", errors="replace"))  # not UTF-8: shown, no crash
            return method.delivery_tag  # only now: the work is done
        except BrokenPipeError:
            raise
        except Exception as error:  # whatever the callback raised: again, or set aside
            return functools.partial(failed, self, channel, method, properties, body, error)

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
