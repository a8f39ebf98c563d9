"""What every script shares on the command line: --url, number checks, and run().

run() keeps the command-line conventions (docs/conventions.rst) in one
place: output flushed line by line, what the helpers log shown on the
terminal, SIGTERM treated like Ctrl-C, and a broker problem printed as one
``error:`` line with exit code 1 instead of a traceback.
"""

import argparse
import io
import logging
import math
import os
import re
import signal
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

import pika

from common.connection import BrokerError, broker_urls
from common.errors import BLOCKED, hint

DEFAULT_URL = "amqp://guest:guest@localhost:5672/%2F"
RETRY_FOR = 30.0  # seconds a consumer keeps trying to reach the broker: a restart fits
LOGGERS = ("common", "confirms", "rpc", "streams")  # the helpers', and the patterns' own modules'
MAX_SECONDS = 86400  # for any option in seconds: a day is plenty, and sleep() has limits


def amqp_url(text: str) -> str:
    """An argparse type: an amqp:// or amqps:// URL that pika can use, or several
    separated by commas (the nodes of a cluster)."""
    try:
        for url in broker_urls(text) or [""]:
            parts = urlsplit(url)
            if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
                raise ValueError
            if "@" in parts.path + parts.query or parts.fragment:
                raise ValueError  # "#", "?" or "/" in a password: the rest of it would show
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
            pika.URLParameters(url)
    except Exception:  # pika raises several kinds for a bad query string
        # The URL itself is not shown: a malformed one may show its password anywhere.
        raise argparse.ArgumentTypeError(
            "not a broker URL (expected amqp://user:password@host:5672/vhost or amqps://..., "
            "several separated by commas; in a password write / # ? @ as %2F %23 %3F %40)"
        ) from None
    return text


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from low to high (no upper limit if high is None)."""
    bounds = f"of at least {low}" if high is None else f"from {low} to {high}"

    def check(text: str) -> int:
        digits = text.isascii() and text.isdigit() and len(text) <= 9
        if not digits or not low <= int(text) <= (high or math.inf):
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {text!r}")
        return int(text)

    return check


count = whole_number(1)  # how many messages to send


def routing_key(text: str) -> str:
    """An argparse type: a routing or binding key, at most 255 bytes as AMQP allows."""
    if (size := len(text.encode())) > 255:
        raise argparse.ArgumentTypeError(f"a key is at most 255 bytes, this one is {size}")
    return text


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, from 0 to a day."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_SECONDS:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds from 0 to {MAX_SECONDS}, got {text!r}"
        )
    return value


class MoreUrls(argparse.Action):
    """--url given again adds a URL (another node of a cluster) instead of replacing it."""

    def __call__(self, parser, namespace, url, option_string=None):
        if getattr(namespace, "url_given", False):  # not the first: add it
            url = f"{getattr(namespace, self.dest)},{url}"
        setattr(namespace, self.dest, url)
        namespace.url_given = True


def as_started(doc: str) -> str:
    """The docstring with its Run: line's script as it was started: `python producer.py`
    in a copy of the pattern's folder, `python workers/producer.py` here."""
    started = sys.argv[0]

    def named(path: re.Match) -> str:
        same = os.path.basename(path.group()) == os.path.basename(started)
        return started if same else path.group()

    return re.sub(r"(?<=python )\S+\.py", named, doc, count=1)


def parser(doc: str | None, consumer: bool = False) -> argparse.ArgumentParser:
    """An argument parser whose help is the script's docstring, with --url already added,
    and for a consumer --retry."""
    result = argparse.ArgumentParser(
        description=as_started(doc or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Named queues are durable quorum queues, as RabbitMQ's tutorials declare "
        "them; QUEUE_TYPE=classic in the environment makes them classic queues.",
    )
    result.add_argument(
        "--url",
        type=amqp_url,
        action=MoreUrls,
        default=os.environ.get("AMQP_URL", DEFAULT_URL),
        help="the broker (default: $AMQP_URL, else amqp://guest:guest@localhost:5672/%%2F); "
        "for amqps://, SSL_CERT_FILE may name the CA certificate to trust. For a cluster, "
        "give --url once per node, or the URLs separated by commas: the first that answers "
        "is used",
    )
    if consumer:
        result.add_argument(
            "--retry",
            type=seconds,
            default=RETRY_FOR,
            metavar="SECONDS",
            help="while no broker answers, at the start or after losing it, keep trying "
            f"this long before giving up with an error (default: {RETRY_FOR:g})",
        )
    return result


def run(main: Callable[[], object], consumer: bool = False) -> None:
    """Run main() the way every script runs it: exit 0 when done, 1 with an error: line
    when the broker is the problem, and on Ctrl-C or SIGTERM 0 for a consumer (that is
    how it ends) but 130 for a producer (it did not finish)."""
    for stream in (sys.stdout, sys.stderr):  # `consumer.py > file` fills the file line by line
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    show_logs()
    # Ctrl-C and SIGTERM both raise KeyboardInterrupt, even where a shell started us
    # with SIGINT ignored (`consumer.py &`); Queue.receive() turns them into a flag.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.default_int_handler)
    code: int | str = 0
    try:
        main()
    except BrokerError as error:
        code = f"error: {error}"
    except pika.exceptions.ChannelClosedByBroker as error:
        text = " ".join(error.reply_text.split())  # the broker's text may hold line breaks
        code = f"error: the broker refused: {text}{hint(text)}"
    except pika.exceptions.ConnectionBlockedTimeout:
        code = f"error: {BLOCKED}"
    except pika.exceptions.AMQPError as error:
        code = f"error: lost the broker: {error!r}"
    except BrokenPipeError:  # whoever read our output is gone (`producer.py | head -1`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    except KeyboardInterrupt:
        code = 0 if consumer else 130
    finally:  # the outcome is known: a Ctrl-C from now on changes nothing (no traceback)
        for stop in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop, signal.SIG_IGN)
    sys.exit(code)


def show_logs() -> None:
    """Show the helpers' logs as the scripts print: notices on stdout, warnings on stderr."""
    notices = logging.StreamHandler(sys.stdout)
    notices.addFilter(lambda record: record.levelno < logging.WARNING)
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(logging.Formatter("warning: %(message)s"))
    for name in LOGGERS:
        helpers = logging.getLogger(name)
        helpers.setLevel(logging.INFO)
        helpers.handlers = [notices, warnings]
    logging.raiseExceptions = False  # output gone (`consumer.py | head`): no traceback
