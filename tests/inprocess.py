"""The helpers used in the test's own process, as a reader's code uses them, and what the
broker says about its queues: shared by the tests of publishing and of consuming."""

import contextlib
import json
import logging
import pathlib
import re
import socket
import threading
import time
import urllib.parse

import pika

from common import Queue

TIMEOUT = 15.0  # the longest any test waits for one event
HELPERS_DOC = pathlib.Path(__file__).parent.parent / "docs" / "helpers.rst"


def documented_policy(name):
    """The policy that docs/helpers.rst sets with rabbitmqctl, as the management API takes
    it: the tests apply the very text a reader copies."""
    pattern = rf"rabbitmqctl set_policy {name} '([^']+)' '([^']+)' --apply-to (\w+)"
    [(queues, definition, apply_to)] = re.findall(pattern, HELPERS_DOC.read_text())
    return {"pattern": queues, "definition": json.loads(definition), "apply-to": apply_to}


class Consuming:
    """A consumer's receive() on a thread of this test, stopped at the end as Ctrl-C would."""

    def __init__(self, consumer):
        self.consumer = consumer
        self.thread = threading.Thread(target=consumer.receive, daemon=True)
        self.thread.start()

    def __enter__(self):
        return self.consumer

    def __exit__(self, *exc_info):
        self.stop()
        self.consumer.close()

    def stop(self):
        """Stop consuming, as Ctrl-C does, and wait until receive() has returned."""
        self.consumer.stop()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "receive() did not return once stopped"


class Logged(logging.Handler):
    """What the helpers log in this process, line by line as a script prints it (a
    warning after "warning: "), and a wait for a line."""

    def __init__(self):
        super().__init__()
        self.lines = []
        self.changed = threading.Condition()

    def emit(self, record):
        text = record.getMessage()
        with self.changed:
            self.lines.append(text if record.levelno < logging.WARNING else f"warning: {text}")
            self.changed.notify_all()

    def warnings(self):
        return [line for line in self.lines if line.startswith("warning: ")]

    def wait_for(self, line, timeout=TIMEOUT, count=1):
        with self.changed:
            if not self.changed.wait_for(lambda: self.lines.count(line) >= count, timeout):
                raise AssertionError(f"{line!r} not logged within {timeout} s: {self.lines}")


class Seen:
    """What several threads saw, in the order they saw it, and a wait until there is enough."""

    def __init__(self):
        self.items = []
        self.changed = threading.Condition()

    def add(self, item):
        with self.changed:
            self.items.append(item)
            self.changed.notify_all()

    def wait_for(self, n, what, timeout=TIMEOUT):
        return self.wait_until(lambda items: len(items) >= n, f"{what}: {n}", timeout)

    def wait_until(self, condition, what, timeout=TIMEOUT):
        """Wait until condition(items) holds: the items then."""
        with self.changed:
            if not self.changed.wait_for(lambda: condition(self.items), timeout):
                raise AssertionError(f"{what}: not within {timeout} s; {len(self.items)} seen")
            return list(self.items)


def broker_release(broker):
    """(major, minor, patch) of the RabbitMQ under test, as its management API says."""
    version = json.loads(broker.api("GET", "/api/overview"))["rabbitmq_version"]
    return tuple(int(part) for part in version.split("+")[0].split("-")[0].split(".")[:3])


def broker_version(broker):
    """(major, minor) of the RabbitMQ under test."""
    return broker_release(broker)[:2]


def queue_info(broker, url, name):
    """The management API's view of a queue: its type, durability and the rest."""
    vhost = urllib.parse.quote(pika.URLParameters(url).virtual_host, safe="")
    return json.loads(broker.api("GET", f"/api/queues/{vhost}/{urllib.parse.quote(name)}"))


def ready_messages(url, queue):
    """How many messages wait in the queue, not delivered to any consumer; None if there
    is no such queue. Declares nothing: a passive declaration only asks."""
    with Queue(url, None) as observer:
        try:
            return observer.channel.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code == 404:
                return None
            raise


def get_all(url, queue):
    """Take every message waiting in the queue: (properties, body) for each, in order."""
    taken = []
    with Queue(url, None) as reader:
        while True:
            method, properties, body = reader.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((properties, body))


def wait_until_ready(url, queue, n, timeout=TIMEOUT):
    """Wait until n messages wait in the queue (the broker has delivered the rest)."""
    deadline = time.monotonic() + timeout
    while (ready := ready_messages(url, queue)) != n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{ready} messages ready in {queue!r}, not {n}, after {timeout} s")
        time.sleep(0.05)  # a poll interval, bounded by the deadline above: the broker has no event


class Call:
    """function(*args) on a daemon thread of its own, started at once; result() waits for
    it. A daemon, so that a call that never returns cannot hold up the end of the run."""

    def __init__(self, function, *args):
        self.name, self.outcome = function.__name__, {}
        self.thread = threading.Thread(target=self.call, args=(function, *args), daemon=True)
        self.thread.start()

    def call(self, function, *args):
        try:
            self.outcome["result"] = function(*args)
        except BaseException as error:  # handed to whoever waits for the result
            self.outcome["error"] = error

    def result(self, timeout=TIMEOUT):
        """What the call returned, or the exception it raised; an AssertionError if it has
        not returned within timeout seconds (it may never return)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.name} did not return within {timeout} s"
        if "error" in self.outcome:
            raise self.outcome["error"]
        return self.outcome["result"]


def wait_until_acked(broker, url, queue, timeout=TIMEOUT):
    """Wait until the queue holds no message, ready or unacknowledged (rabbitmqctl says so
    at once; the management API lags by seconds)."""
    vhost = pika.URLParameters(url).virtual_host
    deadline = time.monotonic() + timeout
    while True:
        listed = broker.ctl("list_queues", "-p", vhost, "--quiet", "name", "messages")
        counts = dict(line.split("\t") for line in listed.splitlines() if "\t" in line)
        if counts.get(queue) == "0":
            return
        assert time.monotonic() < deadline, f"{queue!r} still holds messages: {listed}"
        time.sleep(0.2)  # a poll interval, bounded by the deadline above


@contextlib.contextmanager
def bare(url):
    """A bare pika connection to url, closed at the end if the broker has not closed it."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield connection
    finally:
        if connection.is_open:
            connection.close()


class DeafToClose:
    """A TCP proxy to the broker whose first connection goes deaf once the client closes
    a channel: the close never reaches the broker and nothing comes back, the socket
    stays open. So a broker's channel that never answers again (RabbitMQ 3.10.8's, after
    a quorum queue lost its leader) is met on purpose. url: the proxy's, for the client."""

    CHANNEL_CLOSE = b"\x00\x14\x00\x28"  # class 20 (channel), method 40 (close)

    def __init__(self, broker_url):
        target = urllib.parse.urlsplit(broker_url)
        self.target = (target.hostname, target.port or 5672)
        self.listener = socket.create_server(("127.0.0.1", 0))
        port = self.listener.getsockname()[1]
        here = f"{target.username}:{target.password}@127.0.0.1:{port}"
        self.url = urllib.parse.urlunsplit(target._replace(netloc=here))
        self.connections, self.deaf = 0, threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes its accept(), which then ends
        self.listener.close()  # the connections end with the client

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.connections += 1
            broker = socket.create_connection(self.target)
            first = self.connections == 1
            for pump in (self.to_broker, self.to_client):
                threading.Thread(
                    target=self.ends, args=(pump, client, broker, first), daemon=True
                ).start()

    @staticmethod
    def ends(pump, client, broker, first):
        """Run one direction until either side goes; then close both."""
        with client, broker, contextlib.suppress(OSError, ValueError):
            pump(client, broker, first)

    def to_broker(self, client, broker, first):
        stream = client.makefile("rb")
        broker.sendall(stream.read(8))  # the protocol header
        while header := stream.read(7):  # type, channel, payload size; then payload, end
            frame = header + stream.read(int.from_bytes(header[3:7], "big") + 1)
            if first and frame[0] == 1 and frame[7:11] == self.CHANNEL_CLOSE:
                self.deaf.set()
            if not (first and self.deaf.is_set()):
                broker.sendall(frame)

    def to_client(self, client, broker, first):
        while data := broker.recv(65536):
            if not (first and self.deaf.is_set()):
                client.sendall(data)
