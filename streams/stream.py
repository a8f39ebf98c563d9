"""Stream: common's Queue as a RabbitMQ stream, read from an offset over AMQP 0-9-1 with
pika (no plugin, no other client). What only the streams pattern needs lives here.

A stream is an append-only log: a consumer reads it from where it chooses and takes
nothing away, so every consumer gets every message, and one started tomorrow can read
today's. An ack only lets the broker send more (the prefetch); a nack or reject means
nothing to a stream (before RabbitMQ 4 it closes the connection), so none is ever sent.
"""

import argparse
import contextlib
import os
import re
from datetime import datetime, timedelta, timezone

import pika

from common import Queue

NAMED = ("first", "last", "next")  # the broker's own offsets: see offset()
SPAN = re.compile(r"(\d{1,6})([smhd])")  # "10m": that long ago
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
RESUME_NAME = re.compile(r"[\w.-]{1,100}")


def offset(text: str) -> str | int | datetime:
    """An argparse type: where to start reading. first (the oldest message kept), last
    (the last chunk written), next (only what comes from now on), an offset (0, 1, ...),
    an ISO time (2026-12-06T09:30, local unless it says) or a span ago (30s, 10m, 2h, 1d).
    Checked here: RabbitMQ 3.x closes the connection on an offset it cannot read."""
    if text in NAMED:
        return text
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    if span := SPAN.fullmatch(text):
        ago = timedelta(**{UNITS[span[2]]: int(span[1])})
        return datetime.now(timezone.utc) - ago
    try:
        return datetime.fromisoformat(text).astimezone(timezone.utc)  # naive: local time
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected first, last, next, an offset (0, 1, ...), an ISO time "
            f"(2026-12-06T09:30) or a span ago (30s, 10m, 2h, 1d), got {text!r}"
        ) from None


def resume_name(text: str) -> str:
    """An argparse type: the name under which --resume keeps its offset (a file name)."""
    if not RESUME_NAME.fullmatch(text) or text.startswith("."):
        raise argparse.ArgumentTypeError(
            f"expected letters, digits, '_', '-' or '.' (a file name), got {text!r}"
        )
    return text


class Stream(Queue):
    """A durable stream, declared with retention: send() appends to it (Queue's send:
    persistent, confirmed). receive() calls callback(offset, body) for each message from
    start (see offset()); with resume, a file NAME.offset keeps the offset of the last
    message handled, and the next run starts after it. A callback that raises stops
    receive() with an error that names the offset: a stream cannot give a message back."""

    def __init__(self, url, name, retention, *, start="next", resume=None, **options):
        self.retention, self.start, self.failure = retention, start, ""
        self.last: int | None = None  # the offset of the last message handled
        self.store = f"{resume}.offset" if resume else None
        if self.store and os.path.exists(self.store):
            with open(self.store) as stored:
                self.last = int(stored.read())
        super().__init__(url, name, **options)

    def declare(self) -> None:
        # Never exclusive or auto-delete: a stream outlives its readers, that is its use.
        arguments = {"x-queue-type": "stream", **self.retention}
        self.channel.queue_declare(self.queue_name, durable=True, arguments=arguments)
        self.queue = self.queue_name

    @property
    def subscription(self) -> dict:  # type: ignore[override]
        """Where basic_consume starts: after the last message handled, once there is one
        (after a lost connection too), else at start."""
        return {"x-stream-offset": self.start if self.last is None else self.last + 1}

    def callback(self, offset: int, body: str) -> None:  # type: ignore[override]
        raise NotImplementedError

    def handle(self, channel, method, properties, body):
        offset: int = properties.headers["x-stream-offset"]  # on every delivery of a stream
        try:
            self.callback(offset, body.decode("utf-8", errors="replace"))
        except BrokenPipeError:
            raise
        except Exception as error:  # no requeue on a stream: stop, and say where
            self.failure = (
                f"the message at offset {offset} failed ({error!r}), so the consumer stopped "
                f"before it; once that is fixed, run again with --offset {offset}"
                + ("" if self.store is None else " or with the same --resume")
            )
            self.stop()
            return lambda: None  # neither acked nor rejected: closing ends it
        self.last = offset
        if self.store:  # written whole, then renamed over the old: never half a number
            with open(f"{self.store}.new", "w") as new:
                new.write(f"{offset}\n")
            os.replace(f"{self.store}.new", self.store)
        return method.delivery_tag

    def close(self) -> None:
        # As it cancels, pika gives back with a reject what it holds undelivered, and
        # RabbitMQ 3.x closes the connection for it (540): we were leaving, and a stream
        # loses nothing by it.
        with contextlib.suppress(pika.exceptions.ConnectionClosedByBroker):
            super().close()

    def receive(self) -> None:
        super().receive()
        if self.failure:
            raise SystemExit(f"error: {self.failure}")
