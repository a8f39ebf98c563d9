"""Pattern scripts run as real subprocesses, their output read line by line as it comes."""

import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from common.consuming import READY

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 15.0  # the longest any test waits for one event
OUTPUT = threading.Condition()  # notified on every line any script prints


def load(path, run_name="loaded"):
    """A script's names, as `python path` would define them but without running main():
    its own folder first on sys.path, so that a module beside it imports."""
    sys.path.insert(0, str(Path(path).parent))
    try:
        return runpy.run_path(str(path), run_name=run_name)
    finally:
        sys.path.remove(str(Path(path).parent))


def wait_until(condition, what, *scripts, timeout=TIMEOUT):
    """Wait until condition() holds, or fail at the deadline saying what did not happen."""
    with OUTPUT:
        if not OUTPUT.wait_for(condition, timeout):
            output = "\n\n".join(script.describe() for script in scripts)
            raise AssertionError(f"{what}: not within {timeout} s\n{output}")


class Script:
    """One script, started as a reader would start it: `python basic/consumer.py`."""

    def __init__(self, path, *args, url, cwd=ROOT, stdout=subprocess.PIPE, env=None, echo=None):
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        environment["AMQP_URL"] = url
        environment.update(env or {})
        self.command = [sys.executable, str(path), *args]
        self.process = subprocess.Popen(
            self.command,
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout, self.stderr = [], []
        self.echo = echo  # echo(script, line): called for each line as it comes
        self.readers = [
            threading.Thread(target=self.read, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
            if stream is not None
        ]
        for reader in self.readers:
            reader.start()

    def read(self, stream, lines):
        for line in stream:
            if self.echo:  # first, so that what waits for the line comes after it on screen
                self.echo(self, line.rstrip("\n"))
            with OUTPUT:
                lines.append(line.rstrip("\n"))
                OUTPUT.notify_all()

    def wait_for_line(self, text, timeout=TIMEOUT):
        wait_until(lambda: text in self.stdout, f"{text!r} never printed", self, timeout=timeout)

    def printed_line_starting(self, start):
        return any(line.startswith(start) for line in self.stdout)

    def wait_until_printed(self, start, timeout=TIMEOUT):
        """Wait for a line of stdout that starts with start."""
        wait_until(
            lambda: self.printed_line_starting(start),
            f"no line starting {start!r}",
            self,
            timeout=timeout,
        )

    def wait_ready(self, timeout=TIMEOUT):
        self.wait_for_line(READY, timeout)
        return self

    def wait_received(self, n, timeout=TIMEOUT):
        wait_until(
            lambda: len(self.received()) >= n, f"{n} messages not received", self, timeout=timeout
        )
        return self.received()

    def received(self):
        return [
            line.removesuffix(" received") for line in self.stdout if line.endswith(" received")
        ]

    def sent(self):
        return [line.removesuffix(" sent") for line in self.stdout if line.endswith(" sent")]

    def wait(self, timeout=TIMEOUT):
        """Wait for the process to exit and for its output to be read; return its exit code."""
        code = self.process.wait(timeout)
        for reader in self.readers:
            reader.join(timeout)
        return code

    def stop(self, sig=signal.SIGINT, timeout=TIMEOUT):
        self.process.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def describe(self):
        return (
            f"command: {' '.join(self.command)}\nexit code: {self.process.poll()}\n"
            f"stdout:\n" + "\n".join(self.stdout) + "\nstderr:\n" + "\n".join(self.stderr)
        )


class Scripts:
    """The scripts one test or scenario starts, all against url (unless told another):
    start() them one by one; at the end, stop() them as Ctrl-C would, or kill() them."""

    def __init__(self, url):
        self.url, self.started = url, []

    def start(self, path, *args, **options):
        options.setdefault("url", self.url)
        self.started.append(Script(path, *args, **options))
        return self.started[-1]

    def stop(self, within=5.0):
        """Stop every script still running, as Ctrl-C would; kill what has not stopped
        within seconds, all together."""
        for script in self.started:
            if script.process.poll() is None:
                script.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + within
        for script in self.started:
            try:
                script.wait(max(0.1, deadline - time.monotonic()))
            except Exception:  # no clean stop in time: no process is left behind either way
                script.kill()

    def kill(self):
        for script in self.started:
            script.kill()
