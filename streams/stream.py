"""Stream: common's Queue as a RabbitMQ stream, read from an offset over AMQP 0-9-1 with
pika (no plugin, no other client). What only the streams pattern needs lives here.

A stream is an append-only log: a consumer reads it from where it chooses and takes
nothing away, so every consumer gets every message, and one started tomorrow can read
today's. An ack only lets the broker send more (the prefetch); a nack or reject means
nothing to a stream (before RabbitMQ 4 it closes the connection), so none is ever sent.
"""

import argparse
import contextlib
import logging
import os
import re
from datetime import datetime, timedelta, timezone

import pika

from common import BrokerError, Queue

log = logging.getLogger("streams.stream")  # so named however it is imported
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
    try:
        if span := SPAN.fullmatch(text):
            when = datetime.now(timezone.utc) - timedelta(**{UNITS[span[2]]: int(span[1])})
        else:  # Python 3.10 reads no "Z"; a time with no zone is local (astimezone)
            when = datetime.fromisoformat(re.sub(r"Z$", "+00:00", text)).astimezone(timezone.utc)
        if when.timestamp() >= 0:  # AMQP's timestamps start in 1970
            return when
    except (ValueError, OverflowError):
        pass
    raise argparse.ArgumentTypeError(
        f"expected first, last, next, an offset (0, 1, ...), an ISO time "
        f"(2026-12-06T09:30, from 1970) or a span ago (30s, 10m, 2h, 1d), got {text!r}"
    )


def resume_name(text: str) -> str:
    """An argparse type: the name under which --resume keeps its offset (a file name)."""
    if not RESUME_NAME.fullmatch(text) or text.startswith("."):
        raise argparse.ArgumentTypeError(
            f"expected letters, digits, '_', '-' or '.' (a file name), got {text!r}"
        )
    return text


def stored(store: str) -> int | None:
    """The offset kept in the file store, or None if there is none yet."""
    try:
        with open(store) as kept:
            text = kept.read().strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BrokerError(f"cannot read {store}: {error.strerror}") from None
    if not (text.isascii() and text.isdigit()):
        raise BrokerError(
            f"{store} holds {text[:40]!r}, not an offset: delete it to start at --offset"
        )
    return int(text)


class Stream(Queue):
    """A durable stream, declared with retention: send() appends to it (Queue's send:
    persistent, confirmed). receive() calls callback(offset, body) for each message from
    start (see offset()); with resume, a file NAME.offset keeps the offset of the last
    message handled, and the next run starts after it. A callback that raises stops
    receive() with an error that names the offset: a stream cannot give a message back.
    So does a stream deleted while it is read, since the new one's offsets start again."""

    def __init__(self, url, name, retention, *, start="next", resume=None, **options):
        self.retention, self.start, self.failure = retention, start, ""
        self.store = f"{resume}.offset" if resume else None
        self.last = stored(self.store) if self.store else None  # the last offset handled
        self.expected: int | None = None  # the first offset of a subscription, if known
        self.broke_at: int | None = -1  # where the broker last closed on us (see below)
        super().__init__(url, name, **options)

    def declare(self) -> None:
        # Never exclusive or auto-delete: a stream outlives its readers, that is its use.
        arguments = {"x-queue-type": "stream", **self.retention}
        self.channel.queue_declare(self.queue_name, durable=True, arguments=arguments)
        self.queue = self.queue_name
        self.channel.add_on_cancel_callback(self.cancelled)

    @property
    def subscription(self) -> dict:  # type: ignore[override]
        """Where basic_consume starts: after the last message handled, once there is one
        (after a lost connection too), else at start."""
        self.expected = None if self.last is None else self.last + 1
        return {"x-stream-offset": self.start if self.last is None else self.last + 1}

    def callback(self, offset: int, body: str) -> None:  # type: ignore[override]
        raise NotImplementedError

    def handle(self, channel, method, properties, body):
        offset: int = properties.headers["x-stream-offset"]  # on every delivery of a stream
        if self.last is not None and offset <= self.last:
            return method.delivery_tag  # in hand when the connection was lost: done already
        if self.expected is not None and offset > self.expected:
            log.info(
                f" [!] Offsets {self.expected} to {offset - 1} are no longer in the stream "
                f"(its retention limit dropped them): going on at {offset}"
            )
        self.expected = None
        try:
            self.callback(offset, body.decode("utf-8", errors="replace"))
        except BrokenPipeError:
            raise
        except Exception as error:  # no requeue on a stream: stop, and say where
            again = "" if self.store is None else " or with the same --resume"
            return self.fail(
                f"the message at offset {offset} failed ({error!r}), so the consumer stopped "
                f"before it; once that is fixed, run again with --offset {offset}{again}"
            )
        self.last = offset
        if self.store:
            try:  # written whole, then renamed over the old: a kill leaves one or the other
                with open(f"{self.store}.{os.getpid()}", "w") as new:
                    new.write(f"{offset}\n")
                os.replace(f"{self.store}.{os.getpid()}", self.store)
            except OSError as error:
                return self.fail(f"cannot keep offset {offset} in {self.store}: {error}")
        return method.delivery_tag

    def fail(self, why: str):
        """Stop receive(), which then raises why: the message is neither acked nor
        rejected (a stream has no requeue; closing ends the delivery)."""
        self.failure = why
        self.stop()
        return lambda: None  # for settle(): nothing to send

    def cancelled(self, method_frame) -> None:
        """The broker ended the subscription: the stream was deleted. Subscribing again
        after the last offset handled would skip the messages of a stream made anew."""
        self.fail(
            f"the broker ended the subscription to the stream {self.queue!r}: was it "
            "deleted? A new one's offsets start again at 0: run with --offset first"
            + ("" if self.store is None else f" and delete {self.store}")
        )

    def connection_lost(self, error: Exception) -> None:
        """A message the broker cannot hand to AMQP 0-9-1 makes it close the connection
        (INTERNAL_ERROR) each time it is sent: one appended as plain bytes, not AMQP 1.0,
        by a stream client (rstream, as RabbitMQ's stream tutorial sends it). Reading it
        again would loop for ever: the second time at one place, stop and say so."""
        internal = getattr(error, "reply_code", None) == 541
        if internal and self.broke_at == self.last:
            which, past = "the first message it reads", "N+1"
            if self.last is not None:
                which, past = f"the message at offset {self.last + 1}", str(self.last + 2)
            raise BrokerError(
                f"the broker closes the connection (INTERNAL_ERROR) whenever it sends {which}: "
                "it cannot turn it into AMQP 0-9-1 (appended as plain bytes, not AMQP 1.0?); "
                f"to go on past it, run with --offset {past}"
            )
        self.broke_at = self.last if internal else -1

    def close(self) -> None:
        # As it cancels, pika gives back with a reject what it holds undelivered, and
        # RabbitMQ 3.x closes the connection for it (540): we were leaving, and a stream
        # loses nothing by it.
        with contextlib.suppress(pika.exceptions.ConnectionClosedByBroker):
            super().close()

    def receive(self) -> None:
        super().receive()
        if self.failure:
            raise BrokerError(self.failure)
