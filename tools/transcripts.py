"""The README's terminal transcripts: each made by a real run, and checked against one.

Each transcript in README.rst sits under a marker naming it:

    .. transcript: basic-producer

    .. code-block:: console

        $ python basic/producer.py
        0 2026-11-29 11:10:33.477573 - Basic - Hello World sent
        ...

The scenarios (tools/scenarios.py) run the scripts as the README tells a
reader to, against a broker; a Recorder keeps every transcript by name.
tests/test_readme.py runs them against the throwaway broker and compares;
`make readme` runs them and writes what they printed into README.rst. Only
timestamps, the names the broker generates, the broker's address and its own
words for a refused declaration (RabbitMQ 3 and 4 word it differently) may
differ between two runs.

The cluster section's transcripts (cluster-*) come from tools/node_loss.py, and
tests/test_cluster.py compares them by their shape only (node_loss.shape): where
a node dies among the tasks, and who gets which, differ from run to run.
"""

import contextlib
import os
import re
import shlex
import signal
import subprocess
import time
import urllib.parse

import pika
from processes import ROOT, TIMEOUT
from scenarios import SCENARIOS

SHOWN_HOST = "localhost:5672"
MARKED = re.compile(
    r"^\.\. transcript: (\S+)\n\n\.\. code-block:: console\n\n((?:    .*\n|\n)+)", re.MULTILINE
)


def shown_path(arg):
    """A script run from elsewhere (--resume keeps its file where it runs) by its path
    from the repository's root, as a reader who stays there types it."""
    return os.path.relpath(arg, ROOT) if str(arg).startswith(f"{ROOT}/") else str(arg)


class Recorder:
    """Runs the scripts of one scenario (tools/scenarios.py) and keeps what each printed,
    by transcript name. launch(path, *args, **options) starts a script (a processes.Script)."""

    def __init__(self, launch, broker, url):
        self.launch, self.broker, self.url = launch, broker, url
        self.vhost = pika.URLParameters(url).virtual_host
        self.transcripts = {}

    def keep(self, name, script_or_command, lines):
        """Keep a command and what it printed under name, after what is kept there already
        (one block in the README for several commands run one after the other)."""
        command = script_or_command
        if not isinstance(command, str):  # a script: its command line, as a reader types it
            command = shlex.join(["python", *map(shown_path, script_or_command.command[1:])])
        kept = self.transcripts.setdefault(name, [])
        kept += [self.as_shown(f"$ {command}"), *map(self.as_shown, lines)]

    def as_shown(self, line):
        """A line as a reader's run on localhost:5672, virtual host /, would print it."""
        address = urllib.parse.urlsplit(self.url).netloc.rsplit("@", 1)[-1]
        quoted = urllib.parse.quote(self.vhost, safe="")
        line = line.replace(address, SHOWN_HOST).replace(f"/{quoted}", "/")
        line = line.replace(f" -p {self.vhost}", "")  # a reader's is "/": no -p needed
        for shown in ("vhost {} ", "vhost {}.", "'{}'"):
            line = line.replace(shown.format(self.vhost), shown.format("/"))
        return line

    def start(self, name, path, *args, **options):
        """Start a script that runs until stopped (a consumer); stop() keeps its output.
        options go to launch() (echo=, say)."""
        script = self.launch(path, *args, **options)
        script.name = name
        return script

    def finish(self, name, path, *args, code=0, timeout=TIMEOUT):
        """Run a script that ends by itself (a producer), check its exit code and keep all
        it printed."""
        script = self.start(name, path, *args)
        try:
            script.wait(timeout)
        except subprocess.TimeoutExpired:
            script.kill()
            raise AssertionError(f"{path} did not end\n{script.describe()}") from None
        assert script.process.returncode == code, script.describe()
        self.keep(name, script, script.stdout + script.stderr)
        return script

    def stop(self, script, keep=True):
        """Stop a running script (a consumer) as Ctrl-C would, and keep what it printed
        (keep=False: one the README does not show, as it printed the same as another)."""
        assert script.stop(signal.SIGINT) == 0, script.describe()
        if keep:
            self.keep(script.name, script, script.stdout + script.stderr)

    def ctl(self, name, *args, showing=None):
        """rabbitmqctl, as a reader runs it; here against the test's own virtual host. A
        quorum queue's figures lag by a moment: with showing, ask until a line reads so."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            lines = self.broker.ctl(*args, "-p", self.vhost).splitlines()
            if showing is None or showing in lines:
                break
            assert time.monotonic() < deadline, f"rabbitmqctl never showed {showing!r}: {lines}"
            time.sleep(0.2)  # a poll interval, bounded by the deadline above
        self.keep(name, shlex.join(["sudo", "rabbitmqctl", *args]), lines)
        return lines

    @contextlib.contextmanager
    def raw_channel(self):
        """A channel of plain pika on the scenario's virtual host, closed afterwards."""
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            yield connection.channel()
        finally:
            connection.close()


# Transcripts whose lines may be shared out differently between runs: compared together.
GROUPS = {"workers-consumer-": 3, "rpc-consumer-": 2}
GENERATED = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"), "<time>"),
    (re.compile(r"amq\.gen-[\w-]+"), "amq.gen-<name>"),
    (re.compile(r"in \d+\.\d\d s\b"), "in <seconds> s"),  # confirms: how long, how fast
    (re.compile(r"\([\d,]+ msg/s\)"), "(<rate> msg/s)"),
    # The broker's own words for a PRECONDITION_FAILED differ by version (RabbitMQ 3.10:
    # "received the value 'quorum' of type 'longstr' but current is none"; 4.0: "received
    # 'quorum' but current is 'classic'"); the explanation after them is ours, compared as is.
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


def record(documents):
    """Run every scenario against a throwaway broker and write the transcripts into the
    documents that show them."""
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
    for document in documents:
        document.write_text(with_transcripts(document.read_text(), transcripts))


def record_cluster():
    """The cluster section's transcripts, from a run of tools/node_loss.py."""
    from node_loss import lose_the_leader

    return lose_the_leader().transcripts
