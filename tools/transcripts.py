"""The README's terminal transcripts: each made by a real run, and checked against one.

Each transcript in README.rst sits under a marker naming it:

    .. transcript: basic-producer

    .. code-block:: console

        $ python basic/producer.py
        0 2026-11-29 11:10:33.477573 - Basic - Hello World sent
        ...

The scenarios below run the scripts as the README tells a reader to, against
a broker, and return every transcript by name. tests/test_readme.py runs them
against the throwaway broker and compares; `make readme` runs them and writes
what they printed into README.rst. Only timestamps, the names the broker
generates, the broker's address and its own words for a refused declaration
(RabbitMQ 3 and 4 word it differently) may differ between two runs.

The cluster section's transcripts (cluster-*) come from tools/node_loss.py, and
tests/test_cluster.py compares them by their shape only (node_loss.shape): where
a node dies among the tasks, and who gets which, differ from run to run.
"""

import re
import shlex
import signal
import time
import urllib.parse

import pika
from processes import TIMEOUT, wait_until

from common.consuming import DONE
from common.rpc import AWAITING

SHOWN_HOST = "localhost:5672"
MARKED = re.compile(
    r"^\.\. transcript: (\S+)\n\n\.\. code-block:: console\n\n((?:    .*\n|\n)+)", re.MULTILINE
)


class Recorder:
    """Runs the scripts of one scenario and keeps what each printed, by transcript name."""

    def __init__(self, start, broker, url):
        self.start, self.broker, self.url = start, broker, url
        self.vhost = pika.URLParameters(url).virtual_host
        self.transcripts = {}

    def keep(self, name, command, lines):
        self.transcripts[name] = [self.as_shown(f"$ {command}"), *map(self.as_shown, lines)]

    def as_shown(self, line):
        """A line as a reader's run on localhost:5672, virtual host /, would print it."""
        address = urllib.parse.urlsplit(self.url).netloc.rsplit("@", 1)[-1]
        quoted = urllib.parse.quote(self.vhost, safe="")
        line = line.replace(address, SHOWN_HOST).replace(f"/{quoted}", "/")
        line = line.replace(f" -p {self.vhost}", "")  # a reader's is "/": no -p needed
        for shown in ("vhost {} ", "vhost {}.", "'{}'"):
            line = line.replace(shown.format(self.vhost), shown.format("/"))
        return line

    def finish(self, name, path, *args):
        """Run a script that ends by itself (a producer) and keep all it printed."""
        script = self.start(path, *args)
        script.wait()
        self.keep(name, shlex.join(["python", path, *args]), script.stdout + script.stderr)
        return script

    def stop(self, name, script, *args):
        """Stop a running script (a consumer) as Ctrl-C would, and keep what it printed."""
        assert script.stop(signal.SIGINT) == 0, script.describe()
        path = script.command[1]
        self.keep(name, shlex.join(["python", path, *args]), script.stdout + script.stderr)

    def ctl(self, name, *args, showing=None):
        """rabbitmqctl, as a reader runs it; here against the test's own virtual host. A
        quorum queue's figures lag by a moment: with showing, ask until a line reads so."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            lines = self.broker.ctl(*args, "-p", self.vhost).splitlines()
            if showing is None or showing in lines or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # a poll interval, bounded by the deadline above
        self.keep(name, shlex.join(["sudo", "rabbitmqctl", *args]), lines)


def basic(r):
    r.finish("basic-producer", "basic/producer.py")
    r.ctl("basic-queues", "list_queues", showing="basic\t5")
    consumer = r.start("basic/consumer.py").wait_ready()
    consumer.wait_received(5)
    r.stop("basic-consumer", consumer)


def workers(r):
    workers = [r.start("workers/consumer.py").wait_ready() for _ in range(3)]
    r.ctl("workers-consumers", "list_consumers", "queue_name", "ack_required", "prefetch_count")
    r.finish("workers-producer", "workers/producer.py")
    wait_until(lambda: sum(w.stdout.count(DONE) for w in workers) == 15, "15 done", *workers)
    for i, worker in enumerate(workers, 1):
        r.stop(f"workers-consumer-{i}", worker)


def pubsub(r):
    subscribers = [r.start("pubsub/consumer.py").wait_ready() for _ in range(3)]
    r.ctl("pubsub-exchanges", "list_exchanges", "name", "type")
    r.ctl("pubsub-queues", "list_queues", "name", "exclusive", "messages")
    r.finish("pubsub-producer", "pubsub/producer.py")
    for i, subscriber in enumerate(subscribers, 1):
        subscriber.wait_received(5)
        r.stop(f"pubsub-consumer-{i}", subscriber)
    r.finish("pubsub-producer-alone", "pubsub/producer.py", "-n", "2")


def routing(r):
    blue = r.start("routing/consumer.py", "blue").wait_ready()
    red_green = r.start("routing/consumer.py", "red", "green").wait_ready()
    for key in ("blue", "red", "green"):
        r.finish(f"routing-producer-{key}", "routing/producer.py", key)
    r.ctl("routing-bindings", "list_bindings", "source_name", "routing_key", "destination_name")
    blue.wait_received(5)
    red_green.wait_received(10)
    r.stop("routing-consumer-blue", blue, "blue")
    r.stop("routing-consumer-red-green", red_green, "red", "green")
    r.finish("routing-producer-black", "routing/producer.py", "black", "-n", "2")


TOPIC_KEYS = [
    "quick.orange.rabbit",
    "lazy.orange.elephant",
    "quick.orange.fox",
    "lazy.brown.fox",
    "lazy.pink.rabbit",
    "lazy",
]


def topics(r):
    orange = r.start("topics/consumer.py", "*.orange.*").wait_ready()
    rabbit_lazy = r.start("topics/consumer.py", "*.*.rabbit", "lazy.#").wait_ready()
    for key in TOPIC_KEYS:
        r.finish(f"topics-producer-{key}", "topics/producer.py", key, "-n", "2")
    orange.wait_received(6)
    rabbit_lazy.wait_received(10)
    r.stop("topics-consumer-orange", orange, "*.orange.*")
    r.stop("topics-consumer-rabbit-lazy", rabbit_lazy, "*.*.rabbit", "lazy.#")
    r.finish("topics-producer-unmatched", "topics/producer.py", "quick.brown.fox", "-n", "2")


def rpc(r):
    servers = [r.start("rpc/consumer.py") for _ in range(2)]
    for server in servers:
        server.wait_for_line(AWAITING)
    r.ctl("rpc-queues", "list_queues", "name", "durable", "consumers", showing="rpc_queue\ttrue\t2")
    r.finish("rpc-producer", "rpc/producer.py", "0", "1", "2", "30", "90")
    for i, server in enumerate(servers, 1):
        r.stop(f"rpc-consumer-{i}", server)
    r.finish("rpc-producer-alone", "rpc/producer.py", "30", "--timeout", "2")


def errors(r):
    """The errors the Troubleshooting section explains, each as a reader meets it."""
    r.finish("errors-refused", "basic/producer.py", "--url", "amqp://guest:secret@localhost:5673/")
    wrong_password = r.url.replace("guest:guest@", "guest:secret@")
    r.finish("errors-password", "basic/consumer.py", "--url", wrong_password)
    nowhere = r.url.rsplit("/", 1)[0] + "/nowhere"
    r.finish("errors-vhost", "basic/consumer.py", "--url", nowhere)
    r.finish("errors-no-server", "rpc/producer.py", "30")
    connection = pika.BlockingConnection(pika.URLParameters(r.url))  # older, or someone else's
    channel = connection.channel()
    limited = {"x-queue-type": "quorum", "x-max-length": 10}
    channel.queue_declare("basic", durable=True, arguments=limited)
    channel.queue_declare("task_queue", durable=True)  # classic, as this repository once did
    connection.close()
    r.finish("errors-precondition", "basic/producer.py")
    r.finish("errors-queue-type", "workers/producer.py")


SCENARIOS = {f.__name__: f for f in (basic, workers, pubsub, routing, topics, rpc, errors)}

# Transcripts whose lines may be shared out differently between runs: compared together.
GROUPS = {"workers-consumer-": 3, "rpc-consumer-": 2}
GENERATED = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"), "<time>"),
    (re.compile(r"amq\.gen-[\w-]+"), "amq.gen-<name>"),
    # The broker's own words for a PRECONDITION_FAILED differ by version (RabbitMQ 3:
    # "received 'quorum' but current is 'classic'"; 4: "received the value 'quorum' of type
    # 'longstr' but current is none"); the explanation after them is ours, compared as is.
    (re.compile(r"received .+? but current is .+? \(this script"), "received ... (this script"),
]


def normalized(lines):
    """Lines with what may differ between two runs made alike, in an order that does not vary."""
    result = []
    for line in lines:
        for pattern, placeholder in GENERATED:
            line = pattern.sub(placeholder, line)
        result.append(line)
    return result


def comparable(transcripts):
    """name -> normalized lines; a group's members merged and sorted (who got what varies)."""
    merged = {}
    for name, lines in transcripts.items():
        group = next((prefix for prefix in GROUPS if name.startswith(prefix)), None)
        if group:
            merged.setdefault(group, []).extend(normalized(lines))
        elif name.endswith(("-bindings", "-queues", "-exchanges", "-consumers")):  # any order
            merged[name] = normalized(lines[:1]) + sorted(normalized(lines[1:]))
        else:
            merged[name] = normalized(lines)
    return {name: sorted(lines) if name in GROUPS else lines for name, lines in merged.items()}


def with_transcripts(text, transcripts):
    """text with every marked transcript replaced by the one recorded under its name."""

    def recorded(match):
        lines = transcripts[match.group(1)]
        body = "".join(f"    {line}\n" if line else "\n" for line in lines)
        return f".. transcript: {match.group(1)}\n\n.. code-block:: console\n\n{body}\n"

    return MARKED.sub(recorded, text)


def shown(text):
    """name -> lines of every marked transcript in text."""
    return {
        name: [line[4:] for line in block.rstrip("\n").split("\n")]
        for name, block in MARKED.findall(text)
    }


def record(readme):
    """Run every scenario against a throwaway broker and write the transcripts into readme."""
    from processes import Scripts
    from throwaway import start_broker

    broker = start_broker()
    transcripts = {}
    try:
        for scenario in SCENARIOS.values():
            vhost = broker.add_vhost()
            url = broker.url(vhost)
            scripts = Scripts(url)
            recorder = Recorder(scripts.start, broker, url)
            try:
                scenario(recorder)
            finally:
                scripts.kill()
                broker.delete_vhost(vhost)
            transcripts.update(recorder.transcripts)
    finally:
        broker.stop()
    transcripts.update(record_cluster())
    readme.write_text(with_transcripts(readme.read_text(), transcripts))


def record_cluster():
    """The cluster section's transcripts, from a run of tools/node_loss.py."""
    from node_loss import lose_the_leader

    return lose_the_leader().transcripts
