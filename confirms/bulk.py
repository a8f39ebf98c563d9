"""publish_many(): many messages, each confirmed, in one of the three strategies of
RabbitMQ's publisher-confirms tutorial, on pika's asynchronous SelectConnection:

- window=1: publish one message, wait for its confirm, then the next;
- batch=True: publish `window` messages, then wait for all their confirms;
- otherwise streamed: at most `window` unconfirmed at a time, each confirm letting
  another go.

pika's BlockingConnection can do only the first: its publish waits for the confirm.
What was not confirmed when the connection was lost is published again on a new one,
and so is what the broker refused (a nack): a message may arrive twice, none is lost.
"""

import collections
import dataclasses
import functools
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import pika

from common.connection import (
    LOGIN_REFUSED,
    RECONNECTED,
    BrokerError,
    broker_urls,
    failures,
    parameters,
)
from common.errors import BLOCKED, reason
from common.publishing import PERSISTENT_TEXT, RESEND_FOR

log = logging.getLogger("confirms.bulk")  # so named however it is imported
CLOSE_GRACE = 5.0  # seconds to wait for the broker to answer our close


@dataclasses.dataclass
class Outcome:
    """What publish_many() did: messages confirmed, refused (nacked, then sent again),
    returned (no queue took them), and sent again after a lost connection."""

    confirmed: int = 0
    nacked: int = 0
    returned: int = 0
    resent: int = 0
    seconds: float = 0.0


def drop(connection):
    """A close not answered in time: drop the connection, as pika's own heartbeat check
    drops a peer gone silent. Its close callback follows (Run.on_closed)."""
    if connection.is_closing:
        unanswered = pika.exceptions.StreamLostError("the broker did not answer the close")
        connection._terminate_stream(unanswered)  # pika has no public way to drop it


def publish_many(
    url,
    routing_key,
    bodies,
    *,
    exchange="",
    window=1000,
    batch=False,
    on_confirmed=None,
    timeout=RESEND_FOR,
) -> Outcome:
    """Publish every body (str) until the broker has confirmed each; on_confirmed(i) as
    body i is. A broker lost for more than timeout seconds, or one that confirms nothing
    for that long (a quorum queue without its majority; a full one that refuses), is a
    BrokerError that says how many are not confirmed."""
    run = Run(exchange, routing_key, [body.encode() for body in bodies], window, batch)
    run.timeout, run.on_confirmed = timeout, on_confirmed
    started = lost_at = time.monotonic()
    pause, progress = 0.1, -1  # progress: confirmed when the broker was last lost
    while run.todo or run.unconfirmed:
        for one in broker_urls(url):
            run.connect(one)
            if run.opened or run.refused:
                break
        if run.failure:  # raised in a callback (on_confirmed): the caller's to see
            raise run.failure
        if not (run.todo or run.unconfirmed):
            break  # all confirmed, whatever went wrong after
        if run.error or run.refused or not run.ever_opened:  # at the start: no retry
            raise BrokerError(run.error or f"cannot connect to {failures(run.unreachable)}")
        if run.opened:  # it ran, and lost the broker, or the broker refused a message
            if run.refused_here:
                log.info(" [!] The broker refused messages (nack): sending them again")
            else:
                log.info(f" [!] Lost the broker: trying again for up to {timeout:g} s")
            if run.outcome.confirmed > progress:  # again with nothing done: no new time
                lost_at, pause, progress = time.monotonic(), 0.1, run.outcome.confirmed
        if time.monotonic() - lost_at > timeout:
            raise BrokerError(run.gave_up(timeout))
        time.sleep(pause)
        pause = min(pause * 2, 2.0)
    run.outcome.seconds = time.monotonic() - started
    return run.outcome


class Run:
    """One publish_many(): what waits to be published, what waits for its confirm (by
    delivery tag), and pika's callbacks, for one connection after another."""

    def __init__(self, exchange, routing_key, bodies, window, batch):
        self.exchange, self.routing_key, self.bodies = exchange, routing_key, bodies
        self.window, self.batch = window, batch
        self.todo = collections.deque(range(len(bodies)))  # indexes of bodies, in order
        self.unconfirmed: dict[int, int] = {}  # delivery tag -> index, in publishing order
        self.outcome, self.error, self.refused = Outcome(), None, False
        self.unreachable: dict[str, str] = {}  # url -> why it did not answer
        self.failure: BaseException | None = None
        self.returned: collections.Counter = collections.Counter()  # bodies no queue took
        self.ever_opened = self.refused_here = self.opened = False
        self.timeout: float = RESEND_FOR
        self.on_confirmed: Callable[[int], object] | None = None
        self.channel: Any = None

    def connect(self, url):
        """Publish on a connection to url until done, lost, or refused."""
        self.url, self.opened, self.closing, self.refused_here = url, False, False, False
        self.connection = pika.SelectConnection(
            parameters(url),
            on_open_callback=self.on_open,
            on_open_error_callback=self.on_failed,
            on_close_callback=self.on_closed,
        )
        self.connection.ioloop.call_later(self.timeout, self.unanswered)
        self.connection.ioloop.start()
        self.connection.ioloop.close()

    def unanswered(self):
        """A broker that has not let us in within the timeout: one that does not answer."""
        if not self.opened:
            self.unreachable[self.url] = f"no answer within {self.timeout:g} s"
            self.connection.ioloop.stop()  # pika has no public way to drop the socket now

    def on_open(self, connection):
        if self.ever_opened:
            log.info(RECONNECTED)
        self.opened = self.ever_opened = True
        self.last_ack = time.monotonic()
        connection.channel(on_open_callback=self.on_channel)
        self.watch()

    def on_channel(self, channel):
        self.channel, self.tag = channel, 0  # a new channel counts its tags from 1
        channel.add_on_return_callback(self.on_return)
        channel.add_on_close_callback(self.on_channel_closed)
        channel.confirm_delivery(self.on_confirm, callback=lambda frame: self.publish())

    def publish(self):
        while self.todo and len(self.unconfirmed) < self.window and not self.closing:
            index = self.todo[0]
            self.channel.basic_publish(
                self.exchange, self.routing_key, self.bodies[index], PERSISTENT_TEXT, mandatory=True
            )
            self.todo.popleft()  # only now: a publish that raised leaves it to do
            self.tag += 1
            self.unconfirmed[self.tag] = index

    def on_confirm(self, frame):
        method = frame.method
        last, tags = method.delivery_tag, [method.delivery_tag]
        if method.multiple:  # every tag up to this one: the first ones, in tag order
            tags = list(itertools.takewhile(lambda tag: tag <= last, self.unconfirmed))
        settled = [self.unconfirmed.pop(tag) for tag in tags]
        if isinstance(method, pika.spec.Basic.Ack):
            self.last_ack = time.monotonic()
            if self.returned:  # confirmed, but no queue took it: not "confirmed" to us
                settled = [index for index in settled if not self.took_back(index)]
            self.outcome.confirmed += len(settled)
            try:
                for index in settled if self.on_confirmed else ():
                    self.on_confirmed(index)  # type: ignore[misc]
            except BaseException as error:  # pika would take it for a lost connection
                self.failure = error
                self.close()
                return
        else:  # refused: sent again on a fresh connection (a channel refused once, after a
            # quorum queue lost its leader, say, goes on refusing), after a pause
            self.outcome.nacked += len(settled)
            self.todo.extendleft(sorted(settled, reverse=True))
            self.refused_here = True
            self.close()
            return
        self.publish_more()

    def publish_more(self):
        """After a confirm: close when all are confirmed, else publish as the strategy says
        (a batch once every confirm of the last is in)."""
        if not self.todo and not self.unconfirmed:
            self.close()
        elif not self.batch or not self.unconfirmed:
            self.publish()

    def took_back(self, index):
        """Whether body index is one the broker returned (no queue took it): once each."""
        if self.returned[self.bodies[index]] > 0:
            self.returned[self.bodies[index]] -= 1
            return True
        return False

    def on_return(self, channel, method, properties, body):
        self.outcome.returned += 1  # the broker confirms it next: no queue took it
        self.returned[body] += 1

    def on_channel_closed(self, channel, why):
        # The channel alone, by the broker: its reason is final. With the connection: lost.
        if isinstance(why, pika.exceptions.ChannelClosedByBroker):
            self.error = f"the broker closed the channel: {why}"
            self.close()

    def on_closed(self, connection, why):
        if isinstance(why, pika.exceptions.ConnectionBlockedTimeout):  # an alarm: final
            self.error = BLOCKED
        if self.unconfirmed and not (self.error or self.failure):  # lost: sent out again
            self.outcome.resent += len(self.unconfirmed)
            self.todo.extendleft(reversed(list(self.unconfirmed.values())))
            self.unconfirmed.clear()
        connection.ioloop.stop()

    def on_failed(self, connection, error):
        # A refused login: the nodes of a cluster share their users, no use trying another.
        while getattr(error, "exceptions", None) or getattr(error, "exception", None):
            error = (getattr(error, "exceptions", None) or [error])[-1]  # pika's wrappings
            error = getattr(error, "exception", None) or error
        self.refused = isinstance(error, LOGIN_REFUSED)
        self.unreachable[self.url] = reason(error, self.url)
        connection.ioloop.stop()

    def watch(self):
        """Every tenth of the timeout: a broker that confirms nothing for that long is
        given up on (refusals, a nack each, are no confirms)."""
        if self.connection.is_closed or self.closing:
            return
        if time.monotonic() - self.last_ack > self.timeout:
            self.error = self.gave_up(self.timeout)
            self.close()
        self.connection.ioloop.call_later(self.timeout / 10, self.watch)

    def gave_up(self, timeout):
        """Why publish_many() gives up, in words: how many are not confirmed."""
        left = len(self.todo) + len(self.unconfirmed)
        if not (self.refused_here or self.opened):
            return f"lost the broker for {timeout:g} s: {left} messages not confirmed"
        refused = f", {self.outcome.nacked} refused (nack)" if self.outcome.nacked else ""
        return f"no confirm in {timeout:g} s: {left} not confirmed{refused}"

    def close(self):
        self.closing = True
        if self.connection.is_open:
            self.connection.close()
        # The broker may not answer the close: after a quorum queue lost its leader, a
        # channel of RabbitMQ 3.10.8 refused a message and then never answered anything.
        self.connection.ioloop.call_later(CLOSE_GRACE, functools.partial(drop, self.connection))
