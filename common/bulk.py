"""publish_many(): many messages, every one confirmed, without waiting for each confirm.

Publisher.send() waits for the broker's confirm of each message before the next:
simple, but slow. publish_many() keeps up to `window` messages unconfirmed at
once on pika's non-blocking SelectConnection, and returns only when the broker
has confirmed them all. Unlike send(), it does not publish again: a message the
broker refused (nack) or could not route, or a lost connection, is an error that
says how many of the messages were not confirmed.
"""

import collections
from typing import Any

import pika

from common.connection import LOGIN_REFUSED, BrokerError, broker_urls, failures, parameters, reason
from common.publishing import PERSISTENT_TEXT

CLOSE_GRACE = 5.0  # seconds to wait for the broker to close the connection, after a time-out


def publish_many(
    url: str,
    routing_key: str,
    bodies: list[str],
    *,
    exchange: str = "",
    window: int = 1000,
    batch: bool = False,
    timeout: float = 60.0,
) -> int:
    """Publish every body (str) with confirms, `window` at most unconfirmed at a time.

    Streamed (the default), each confirm lets another message go; batch=True sends
    `window` messages and waits for all their confirms before the next batch, the
    other strategy of RabbitMQ's publisher-confirms guide. url may name several
    brokers (the nodes of a cluster): the first that answers is used, and timeout
    counts for each one tried.

    Returns how many the broker confirmed: all of them. Raises BrokerError if the
    broker refused (nacked) or could not route any of them, or if the confirms
    did not all come within timeout seconds.
    """
    if not bodies:
        return 0
    run = BulkPublish(exchange, routing_key, [body.encode() for body in bodies], window, batch)
    for one in broker_urls(url):
        run.start(one, timeout)
        if run.channel is not None or run.refused:  # it answered (done, well or not), or said no
            break
    if run.channel is None and run.unreachable:
        raise BrokerError(f"cannot connect to {failures(run.unreachable)}")
    if run.error:
        raise BrokerError(run.error)
    if run.nacked or run.returned:
        problems = [f"the broker refused {run.nacked} (nack)"] if run.nacked else []
        if run.returned:
            problems.append(f"no queue took {run.returned} (routing key {routing_key!r})")
        raise BrokerError(f"of {len(bodies)} messages, {' and '.join(problems)}")
    return run.acked


class BulkPublish:
    """One publish_many(): what is sent and confirmed so far, and pika's callbacks."""

    def __init__(self, exchange, routing_key, bodies, window, batch):
        self.exchange, self.routing_key, self.bodies = exchange, routing_key, bodies
        self.window, self.batch = window, batch
        self.sent = self.acked = self.nacked = self.returned = 0
        self.unconfirmed: collections.deque[int] = collections.deque()  # tags, as published
        self.channel: Any = None  # once open
        self.error, self.closing = None, False
        self.refused, self.unreachable = False, {}  # url -> why it did not answer

    def start(self, url, timeout):
        """Connect to url and publish, until done, refused or timed out."""
        self.url, self.error = url, None  # a time-out while opening another is not this one's
        self.connection = pika.SelectConnection(
            parameters(url),
            on_open_callback=lambda opened: opened.channel(on_open_callback=self.on_channel),
            on_open_error_callback=self.on_failed,
            on_close_callback=lambda closed, why: closed.ioloop.stop(),
        )
        timer = self.connection.ioloop.call_later(timeout, lambda: self.give_up(timeout))
        try:
            self.connection.ioloop.start()
        finally:
            self.connection.ioloop.remove_timeout(timer)
            self.connection.ioloop.close()

    def on_channel(self, channel):
        self.channel = channel
        channel.add_on_return_callback(self.on_return)
        channel.add_on_close_callback(self.on_channel_closed)
        channel.confirm_delivery(self.on_confirm, callback=lambda frame: self.publish())

    def publish(self):
        while (
            not self.closing
            and self.sent < len(self.bodies)
            and len(self.unconfirmed) < self.window
        ):
            body = self.bodies[self.sent]
            self.channel.basic_publish(
                self.exchange, self.routing_key, body, PERSISTENT_TEXT, mandatory=True
            )
            self.sent += 1
            self.unconfirmed.append(self.sent)  # in confirm mode tags count from 1

    def on_confirm(self, frame):
        method = frame.method
        if method.multiple:  # one confirm for every tag up to this one
            done = 0
            while self.unconfirmed and self.unconfirmed[0] <= method.delivery_tag:
                self.unconfirmed.popleft()
                done += 1
        else:
            self.unconfirmed.remove(method.delivery_tag)
            done = 1
        if isinstance(method, pika.spec.Basic.Ack):
            self.acked += done
        else:
            self.nacked += done
        if self.acked + self.nacked == len(self.bodies):
            self.close()
        elif not self.batch or not self.unconfirmed:
            self.publish()

    def on_return(self, *returned):
        self.returned += 1

    def on_channel_closed(self, channel, why):
        if not self.closing:  # not our own close(): the broker's doing
            self.error = f"the broker closed the channel: {why}"
            self.close()

    def on_failed(self, connection, error):
        # A refused login: the nodes of a cluster share their users, no use trying another.
        self.refused = isinstance(error, LOGIN_REFUSED)
        self.unreachable[self.url] = reason(error, self.url)
        connection.ioloop.stop()

    def give_up(self, timeout):
        if self.acked + self.nacked < len(self.bodies):  # else only the close is late
            self.error = f"not every confirm came within {timeout:g} s"
        if not self.connection.is_open:  # still opening: nothing sent, nothing to close
            self.connection.ioloop.stop()
            return
        self.close()
        # The broker may not answer the close for a minute either (a quorum queue without
        # its majority holds the channel): stop waiting. pika has no public way to drop
        # the socket at once; it closes when the connection is garbage-collected.
        self.connection.ioloop.call_later(CLOSE_GRACE, self.connection.ioloop.stop)

    def close(self):
        self.closing = True
        if self.connection.is_open:
            self.connection.close()
