"""Watch every pattern in one terminal: the real scripts, their output side by side.

Run:      make demo        or   python tools/demo.py [PATTERN ...] [--svg FILE]
Observe:  per pattern, a header says what to watch for; the consumer and
          producer scripts run as a reader runs them, each line labelled by the
          process that printed it; a check line says what happened, worked out
          from that output.

The broker is the one at AMQP_URL (else localhost:5672) if it answers; else a
throwaway one, started as the tests start theirs and removed at the end.
"""

import argparse
import itertools
import signal
import sys

from processes import TIMEOUT, Script, wait_until
from rich.console import Console
from rich.text import Text
from throwaway import BrokerUnavailable, users_broker_or_throwaway

from common.consuming import DONE, READY
from common.rpc import AWAITING

COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta"]


class Failed(Exception):
    """A check that did not hold: the demo says which and exits 1."""


class Stage:
    """One pattern's processes, their labelled output, and what they printed."""

    def __init__(self, console, url):
        self.console, self.url = console, url
        self.scripts = []
        self.colours = itertools.cycle(COLOURS)

    def start(self, label, path, *args):
        style = next(self.colours)

        def echo(script, line):
            self.console.print(Text.assemble((f"[{label}] ", f"bold {style}"), (line, style)))

        script = Script(path, *args, url=self.url, echo=echo)
        script.label = label
        self.scripts.append(script)
        return script

    def consumer(self, label, path, *args, ready=READY):
        script = self.start(label, path, *args)
        self.wait(lambda: ready in script.stdout, f"{label} did not start", script)
        return script

    def finish(self, label, path, *args):
        script = self.start(label, path, *args)
        code = script.wait(TIMEOUT)
        if code != 0:
            raise Failed(f"{label} exited with code {code}")
        return script

    def wait(self, condition, what, *scripts):
        try:
            wait_until(condition, what, *scripts)
        except AssertionError:
            raise Failed(f"{what} within {TIMEOUT:g} s") from None

    def stop(self):
        """Stop every process still running, as Ctrl-C would; kill what does not stop."""
        for script in self.scripts:
            if script.process.poll() is None:
                script.process.send_signal(signal.SIGINT)
        for script in self.scripts:
            try:
                script.wait(TIMEOUT)
            except Exception:  # no clean stop in time: no process is left behind either way
                script.kill()


def ours(script, producer):
    """What script received of the messages this producer run sent (not earlier leftovers)."""
    sent = set(producer.sent())
    return [body for body in script.received() if body in sent]


def basic(stage):
    consumer = stage.consumer("consumer", "basic/consumer.py")
    producer = stage.finish("producer", "basic/producer.py")
    stage.wait(lambda: len(ours(consumer, producer)) == 5, "5 messages not received", consumer)
    if ours(consumer, producer) != producer.sent():
        raise Failed("the messages arrived out of order")
    return "the consumer received 5 of 5 messages, in order"


def done_by(worker):
    """The tasks a worker finished: each 'received' line followed by ' [x] Done'."""
    lines = worker.stdout
    return [line[: -len(" received")] for line, after in itertools.pairwise(lines) if after == DONE]


def workers(stage):
    crew = [
        stage.consumer(f"worker {i}", "workers/consumer.py", "--delay", "0.5") for i in (1, 2, 3)
    ]
    producer = stage.finish("producer", "workers/producer.py", "-n", "9")
    doomed = crew[1]
    # Stop worker 2 while it works on a task: it has received it, and not said Done.
    stage.wait(lambda: doomed.stdout[-1].endswith(" received"), "worker 2 never worked", doomed)
    in_flight = doomed.received()[-1]
    stage.console.print(
        Text(f"[demo] stopping worker 2 in the middle of task {in_flight.split()[0]}", style="bold")
    )
    doomed.stop(signal.SIGTERM)
    if doomed.stdout[-1] == DONE:
        raise Failed("worker 2 finished its task before it was stopped")
    survivors = [crew[0], crew[2]]
    finished = lambda: {t for w in crew for t in done_by(w)} >= set(producer.sent())  # noqa: E731
    stage.wait(finished, "not every task was done", *crew)
    taker = next(w for w in survivors if in_flight in done_by(w))
    return (
        f"worker 2 was stopped in mid-task; its task ({in_flight.split()[0]}) went to "
        f"{taker.label}: all 9 tasks done, none lost"
    )


def pubsub(stage):
    subscribers = [stage.consumer(f"subscriber {i}", "pubsub/consumer.py") for i in (1, 2, 3)]
    producer = stage.finish("producer", "pubsub/producer.py")
    everyone = lambda: all(len(ours(s, producer)) == 5 for s in subscribers)  # noqa: E731
    stage.wait(everyone, "not every subscriber received every message", *subscribers)
    return "3 subscribers each received 5 of 5 messages"


def receive_all(stage, sent, expected):
    """Wait until each consumer has received what the producers of its keys sent."""
    for consumer, keys in expected.items():
        wanted = {body for key in keys for body in sent[key].sent()}
        stage.wait(
            lambda c=consumer, w=wanted: w <= set(c.received()),
            f"{consumer.label} missed messages",
            consumer,
        )


def routing(stage):
    blue = stage.consumer("consumer blue", "routing/consumer.py", "blue")
    red_green = stage.consumer("consumer red green", "routing/consumer.py", "red", "green")
    sent = {
        key: stage.finish(f"producer {key}", "routing/producer.py", key, "-n", "3")
        for key in ("blue", "red", "green", "black")
    }
    receive_all(stage, sent, {blue: ["blue"], red_green: ["red", "green"]})
    unroutable = sum("unroutable" in line for line in sent["black"].stderr)
    strays = set(blue.received()) & set(sent["red"].sent() + sent["green"].sent())
    if strays or unroutable != 3:
        raise Failed("a message went where it was not bound")
    return (
        "blue reached only consumer blue, red and green only consumer red green, "
        f"black nobody ({unroutable} unroutable)"
    )


def topics(stage):
    orange = stage.consumer("consumer *.orange.*", "topics/consumer.py", "*.orange.*")
    lazy = stage.consumer(
        "consumer *.*.rabbit lazy.#", "topics/consumer.py", "*.*.rabbit", "lazy.#"
    )
    keys = ["quick.orange.rabbit", "lazy.orange.elephant", "lazy", "quick.brown.fox"]
    sent = {
        key: stage.finish(f"producer {key}", "topics/producer.py", key, "-n", "1") for key in keys
    }
    receive_all(stage, sent, {orange: keys[:2], lazy: keys[:3]})
    if sent["quick.brown.fox"].sent():
        raise Failed("quick.brown.fox matched a binding it should not")
    return (
        "*.orange.* got 2 keys, *.*.rabbit and lazy.# got 3 (lazy.# matched plain lazy), "
        "quick.brown.fox matched nothing"
    )


def rpc(stage):
    ready = AWAITING
    servers = [stage.consumer(f"rpc server {i}", "rpc/consumer.py", ready=ready) for i in (1, 2)]
    client = stage.finish("rpc client", "rpc/producer.py", "0", "1", "2", "30", "90")
    answers = [line for line in client.stdout if line.startswith(" [.] Got")]
    if answers != [
        f" [.] Got fib({n}) = {v}"
        for n, v in [(0, 0), (1, 1), (2, 1), (30, 832040), (90, 2880067194370816120)]
    ]:
        raise Failed("the answers were wrong or out of order")
    shares = [sum(line.startswith(" [.] fib(") for line in s.stdout) for s in servers]
    return f"5 answers, in the order asked; the servers answered {shares[0]} and {shares[1]}"


PATTERNS = {f.__name__: f for f in (basic, workers, pubsub, routing, topics, rpc)}
HEADERS = {
    "basic": "One producer, one queue, one consumer: five messages sent, five received.",
    "workers": "Three workers share nine tasks. Worker 2 is stopped in the middle of a task:\n"
    "watch that task go to another worker.",
    "pubsub": "A fanout exchange: each of three subscribers receives every message.",
    "routing": "A direct exchange: blue to one consumer, red and green to the other;\n"
    "nobody bound black, so the producer reports it unroutable.",
    "topics": "A topic exchange: * is one word, # zero or more.\n"
    "quick.brown.fox matches no binding.",
    "rpc": "Two RPC servers share five requests; the client prints the answers in order.",
}


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
    args = options.parse_args(argv)
    # soft_wrap: a long line stays one line; the picture is wide enough for every line.
    width = 170 if args.svg else None
    console = Console(soft_wrap=True, highlight=False, record=bool(args.svg), width=width)
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.default_int_handler)
    broker, stage = None, None
    code = 0
    try:
        url, broker = users_broker_or_throwaway(console.print, "this demo")
        for name in args.patterns or PATTERNS:
            console.rule(f"[bold]{name}")
            console.print(HEADERS[name])
            stage = Stage(console, url)
            try:
                summary = PATTERNS[name](stage)
            finally:
                stage.stop()
            console.print(Text(f"✓ {name}: {summary}", style="bold green"))
    except BrokerUnavailable as error:
        console.print(Text(f"error: {error}", style="bold red"))
        code = 1
    except Failed as error:
        console.print(Text(f"✗ {name}: {error}", style="bold red"))
        code = 1
    except KeyboardInterrupt:
        console.print("Interrupted: stopping everything.")
        code = 130
    finally:
        if stage:
            stage.stop()
        if broker:
            broker.stop()
    if args.svg:
        console.save_svg(args.svg, title="make demo")
    return code


if __name__ == "__main__":
    sys.exit(main())
