"""The connection to RabbitMQ, and what a failure to connect means, in words. A URL
may list several brokers (a cluster's nodes); no password is ever printed."""

import logging
import os
import re
import ssl
import threading
import time
from urllib.parse import unquote, urlsplit

import pika
from pika.adapters.utils.connection_workflow import AMQPConnectorException
from pika.exceptions import AMQPConnectionError

from common.errors import reason

log = logging.getLogger(__name__)

BLOCKED_TIMEOUT = 30  # seconds; ?blocked_connection_timeout=N in the URL says otherwise
QUEUE_TYPES = ("quorum", "classic")
RECONNECTED = " [*] Reconnected to the broker"  # logged by whoever lost its connection
LOGIN_REFUSED = (
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
)


class BrokerError(Exception):
    """A problem outside the program (no broker, refused login): one line for the user."""


class Refused(BrokerError):
    """The broker refused the login or the virtual host: trying again will not help."""


def broker_urls(url: str) -> list[str]:
    """The URLs in url: one, or several separated by commas (the nodes of a cluster).
    Only a comma before amqp:// or amqps:// separates: one in a password does not."""
    parts = re.split(r",\s*(?=amqps?://)", url, flags=re.IGNORECASE)
    return [one for one in (part.strip().rstrip(",") for part in parts) if one]


def without_password(url: str) -> str:
    """The URL (or each of several) as it is safe to print: all but the password."""
    urls = broker_urls(url)
    if len(urls) > 1:
        return ", ".join(map(without_password, urls))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:  # beyond repair: show none of it
        return "(the URL)"
    if "@" in parts.path + parts.query + parts.fragment:  # a password in the wrong place
        return "(the URL)"
    userinfo, at, host_and_port = parts.netloc.rpartition("@")
    user = unquote(userinfo.split(":", 1)[0])
    return f"{parts.scheme}://{user}{at}{host_and_port}{parts.path}"


def parameters(url: str) -> pika.URLParameters:
    """pika's parameters for one URL, with the default that the helpers add."""
    result = pika.URLParameters(url)
    if result.blocked_connection_timeout is None:
        # A broker short of memory or disk blocks publishers: give up then, not hang.
        result.blocked_connection_timeout = BLOCKED_TIMEOUT
    return result


def connect(
    url: str, retry_for: float = 0.0, stopping: threading.Event | None = None
) -> pika.BlockingConnection:
    """Open a connection to the broker at url, or raise BrokerError saying what to check.

    While no URL answers, try them all again, in order, with growing pauses, for up
    to retry_for seconds; a stopping event set (Ctrl-C) ends that: KeyboardInterrupt.
    A refused login or virtual host is final at once (the nodes of a cluster share
    their users), and so, for its URL only, is a failed TLS handshake or a host name
    that cannot be one.
    """
    urls = broker_urls(url)
    if not urls:
        raise BrokerError("no broker URL given")
    reasons: dict[str, str] = {}  # url -> why it failed, the last time it was tried
    deadline, pause = time.monotonic() + retry_for, 0.5
    while True:
        for one in urls:
            try:
                return pika.BlockingConnection(parameters(one))
            except LOGIN_REFUSED as error:
                raise Refused(f"cannot connect to {failures({one: reason(error, one)})}") from None
            except (ssl.SSLError, UnicodeError) as error:  # before OSError: SSLError is one
                reasons[one] = reason(error, one)
                urls = [other for other in urls if other != one]  # no use trying it again
            except (AMQPConnectionError, OSError, AMQPConnectorException) as error:
                reasons[one] = reason(error, one)  # this one does not answer: the next may
        left = deadline - time.monotonic()
        if not urls or left <= 0:
            raise BrokerError(f"cannot connect to {failures(reasons)}")
        if pause == 0.5:
            where = ", ".join(map(without_password, urls))
            log.info(f" [!] No broker answers at {where} yet: trying for {retry_for:g} s")
        if stopping is None:
            time.sleep(min(pause, left))
        elif stopping.wait(min(pause, left)):  # Ctrl-C while consuming only sets it
            raise KeyboardInterrupt
        pause = min(pause * 2, 5.0)


def failures(reasons: dict[str, str]) -> str:
    """url -> reason, in words: the reason once if every URL failed alike."""
    if len(set(reasons.values())) == 1:
        return f"{', '.join(map(without_password, reasons))}: {next(iter(reasons.values()))}"
    return "; ".join(f"{without_password(url)}: {why}" for url, why in reasons.items())


class Connection:
    """One connection and one channel, with publisher confirms; open() declares what this
    side needs, again after a lost connection. queue_type, of the named queues: "quorum"
    (replicated on a cluster's nodes) or "classic"; None reads QUEUE_TYPE, else "quorum"."""

    def __init__(self, url: str, *, queue_type: str | None = None, retry_for: float = 0.0):
        self.url, self.retry_for = url, retry_for
        self.queue_type = queue_type or os.environ.get("QUEUE_TYPE") or "quorum"
        if self.queue_type not in QUEUE_TYPES:
            raise BrokerError(
                f"queue type {self.queue_type!r} (from QUEUE_TYPE, or queue_type=): "
                "expected quorum or classic"
            )
        self.open()

    confirms = True  # publisher confirms on the channel: each publish waits for the broker
    stopping: threading.Event | None = None  # a consumer's: Ctrl-C ends a wait for the broker

    def open(self) -> None:
        self.connection = connect(self.url, self.retry_for, self.stopping)
        self.channel = self.connection.channel()
        if self.confirms:
            self.channel.confirm_delivery()
        self.declare()

    def declare(self) -> None:
        """Declare the queues and exchanges this side needs: each kind says."""

    def declare_queue(self, name: str) -> str:
        """Declare the queue and return its name (the broker's choice when name is "")."""
        if name == "":  # server-named, exclusive: it goes away with this connection
            return self.channel.queue_declare("", exclusive=True).method.queue
        # As RabbitMQ's tutorials declare it, so that their clients and ours share it. The
        # type is always said: with none, a queue takes the virtual host's default type.
        of_type = {"x-queue-type": self.queue_type}
        return self.channel.queue_declare(name, durable=True, arguments=of_type).method.queue

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
