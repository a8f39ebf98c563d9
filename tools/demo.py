"""Watch every pattern in one terminal: the README's walkthrough, run for real.

Run:      make demo        or   python tools/demo.py [PATTERN ...] [--svg FILE]
Observe:  per pattern, a header says what to watch for; the scripts run as the
          README's section tells a reader to run them (tools/scenarios.py: the
          same steps its transcripts come from), each line labelled by the
          process that printed it; a check line says what happened, worked out
          from that output.

The broker is the one at AMQP_URL (else localhost:5672) if it answers; else a
throwaway one, started as the tests start theirs and removed at the end. On a
broker of yours, it refuses a pattern's queue that is in use (messages
waiting, or consumers), and at the end deletes what it declared: the queues and
exchanges that were there before it ran stay.
"""

import argparse
import inspect
import itertools
import os
import shlex
import signal
import sys

import pika
from broker import BrokerUnavailable, claim, present, release
from processes import ROOT, Scripts, load
from rich.console import Console
from rich.text import Text
from scenarios import PATTERNS
from throwaway import users_broker_or_throwaway
from transcripts import Recorder, shown_path

from common.cli import DEFAULT_URL
from common.connection import broker_urls, without_password
from common.errors import reason
from common.poison import DEAD_LETTERS

COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta"]


def topology(patterns=PATTERNS):
    """The named queues and exchanges these patterns declare, read from their files."""
    names = set()
    for pattern in patterns:
        constants = load(ROOT / pattern / "producer.py")  # main() does not run
        if constants.get("QUEUE"):
            names.add(("queue", constants["QUEUE"]))
        if constants.get("STREAM"):
            names.add(("stream", constants["STREAM"]))
        if constants.get("EXCHANGE"):
            names.add(("exchange", constants["EXCHANGE"]))
    return names


def delete_all(url):
    """make clean-broker: delete every queue and exchange the patterns declare."""
    try:
        found = present(url, topology() | {("queue", DEAD_LETTERS)})
        release(url, found, missing=found)
    except pika.exceptions.AMQPError as error:
        print(f"error: {reason(error, url)}", file=sys.stderr)
        return 1
    names = ", ".join(f"{kind} {name}" for kind, name in sorted(found)) or "nothing"
    print(f"Deleted from {without_password(url)}: {names}")
    return 0


class Stage(Recorder):
    """One pattern's scenario, its scripts' output printed as it comes, each line labelled
    with the name of the step (the README's transcript) minus the pattern's."""

    def __init__(self, console, url, broker):
        self.console, self.scripts = console, Scripts(url)
        self.colours = itertools.cycle(COLOURS)
        super().__init__(self.scripts.start, broker, url)

    def start(self, name, path, *args, **options):
        label, style = name.split("-", 1)[1], next(self.colours)

        def echo(script, line):
            self.console.print(Text.assemble((f"[{label}] ", f"bold {style}"), (line, style)))

        echo(None, "$ " + shlex.join(["python", shown_path(path), *args]))
        return super().start(name, path, *args, echo=echo, **options)

    def ctl(self, name, *args, showing=None):
        command = shlex.join(["rabbitmqctl", *args])
        if self.broker is None:  # the user's own: rabbitmqctl runs on its machine, as root
            self.console.print(Text(f"[demo] on the broker's machine, try: {command}", "dim"))
            return []
        lines = super().ctl(name, *args, showing=showing)
        for line in [f"$ {command}", *lines]:
            self.console.print(Text.assemble(("[rabbitmqctl] ", "bold"), line))
        return lines


def main(argv=None):
    options = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_argument(
        "patterns",
        nargs="*",
        choices=[[], *PATTERNS],
        metavar="PATTERN",
        help=f"which patterns (default: all): {', '.join(PATTERNS)}",
    )
    options.add_argument("--svg", metavar="FILE", help="also save the run as a picture")
    options.add_argument(
        "--delete",
        action="store_true",
        help="only delete the patterns' queues and exchanges from the broker (make clean-broker)",
    )
    args = options.parse_args(argv)
    if args.delete:
        return delete_all(broker_urls(os.environ.get("AMQP_URL", DEFAULT_URL))[0])
    # In a terminal a long line stays one line (soft_wrap). In the picture, which the
    # README shrinks to its column, lines wrap at 110 columns so the text stays readable.
    width = 110 if args.svg else None
    console = Console(soft_wrap=not args.svg, highlight=False, record=bool(args.svg), width=width)
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.default_int_handler)
    broker, stage, missing = None, None, None
    code = 0
    try:
        url, broker = users_broker_or_throwaway(console.print, "this demo")
        patterns = args.patterns or list(PATTERNS)
        names = topology(patterns)
        missing = None if broker else claim(url, names)
        for name in patterns:
            console.rule(f"[bold]{name}")
            console.print(inspect.getdoc(PATTERNS[name]))
            stage = Stage(console, url, broker)
            try:
                summary = PATTERNS[name](stage)
            finally:
                stage.scripts.stop()
            console.print(Text(f"✓ {name}: {summary}", style="bold green"))
    except BrokerUnavailable as error:
        console.print(Text(f"error: {error}", style="bold red"))
        code = 1
    except AssertionError as error:  # a check of the scenario, or an event that did not come
        console.print(Text(f"✗ {name}: {str(error).splitlines()[0]}", style="bold red"))
        code = 1
    except KeyboardInterrupt:
        console.print("Interrupted: stopping everything.")
        code = 130
    finally:
        for stop in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C: let the clean-up end
            signal.signal(stop, signal.SIG_IGN)
        if stage:
            stage.scripts.stop()
        if broker:
            broker.stop()
        elif missing is not None:  # leave the broker as the demo found it
            release(url, names, missing)
    if args.svg:
        console.save_svg(args.svg, title="make demo")
    return code


if __name__ == "__main__":
    sys.exit(main())
