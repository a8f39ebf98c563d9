"""A broker the tests and the tools use, whoever runs it: its AMQP address and its
management API (Broker); and what its throwaway kinds share (Node): ports that stay
theirs, a restart, waiting until it listens.

The reader's own broker is used without harm: claim() refuses its queues if they are in
use, release() leaves it as it was found.
"""

import contextlib
import logging
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from base64 import b64encode
from json import dumps

import pika

from common.connection import connect, without_password

BOOT_TIMEOUT = 60.0  # seconds for a node to start, or to come back after a restart
# The settings every throwaway node gets. RabbitMQ 4.3 logs the management plugin's
# metrics collector as a deprecated feature; what the tests ask of the API needs none.
NODE_CONFIG = "management_agent.disable_metrics_collector = true\n"
# The plugins every throwaway node runs, as its enabled_plugins file: the management API
# (the tests' virtual hosts) and the stream protocol, which rstream speaks
# (tests/test_stream_interop.py). The official image's rabbitmq_prometheus is left out.
PLUGINS = "[rabbitmq_management,rabbitmq_stream].\n"


class BrokerUnavailable(Exception):
    pass


class Broker:
    """A broker the tests may use: an AMQP address and its management API."""

    kind = "the broker at AMQP_URL"
    can_restart = False
    tls_port = None  # a TLS listener: only on a throwaway node, whose certificates we make
    stream_port = None  # the stream protocol's listener (rabbitmq_stream): likewise
    ctl = None  # rabbitmqctl: only where the tests can reach the node (not through AMQP_URL)
    log = None  # what the node logs: likewise

    def __init__(self, amqp_url, api_url):
        self.amqp = urllib.parse.urlsplit(amqp_url)
        self.api_url = api_url.rstrip("/")
        user = urllib.parse.unquote(self.amqp.username or "guest")
        password = urllib.parse.unquote(self.amqp.password or "guest")
        self.user = user
        self.auth = "Basic " + b64encode(f"{user}:{password}".encode()).decode()

    def url(self, vhost):
        """The AMQP URL of one virtual host on this broker."""
        return self.amqp._replace(path="/" + urllib.parse.quote(vhost, safe="")).geturl()

    def api(self, method, path, body=None):
        request = urllib.request.Request(
            self.api_url + path,
            method=method,
            data=None if body is None else dumps(body).encode(),
            headers={"Authorization": self.auth, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def add_vhost(self, prefix="test", **settings):
        """A virtual host the user may use; settings as the management API takes them."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        quoted = urllib.parse.quote(name, safe="")
        self.api("PUT", f"/api/vhosts/{quoted}", settings or None)
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        self.api("PUT", f"/api/permissions/{quoted}/{urllib.parse.quote(self.user)}", everything)
        return name

    def delete_vhost(self, name):
        self.api("DELETE", "/api/vhosts/" + urllib.parse.quote(name, safe=""))

    def stop(self):
        pass


class Node(Broker):
    """A throwaway node of our own (a local process or a container): it listens on
    127.0.0.1 only, on ports chosen here that it keeps across a restart or a kill."""

    can_restart = True

    def restart(self):
        """Stop RabbitMQ on the node and start it again, as a broker restart does."""
        self.ctl("stop_app")
        self.ctl("start_app")
        self.wait_until_listening()

    def wait_until_listening(self, alive=lambda: True):
        deadline = time.monotonic() + BOOT_TIMEOUT
        wait_until_open(self.url("/"), deadline, alive)
        for name, port in (("TLS", self.tls_port), ("stream", self.stream_port)):
            while port:  # the other listeners too
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise BrokerUnavailable(f"the {name} listener did not open") from None
                time.sleep(0.1)  # a poll interval, bounded by the deadline above


def stream_config(port, listener=None):
    """rabbitmq.conf lines for the stream protocol. A stream client asks any node where a
    stream's leader is, then connects there: to the host and port the leader advertises,
    by default its hostname and its listener's port, which in a container are out of
    reach from here. So every node advertises 127.0.0.1 and the port published for it."""
    lines = "" if listener is None else f"stream.listeners.tcp.1 = {listener}\n"
    return f"{lines}stream.advertised_host = 127.0.0.1\nstream.advertised_port = {port}\n"


HANDED_OUT = set()  # ports free_port() gave: a node may not listen on them yet


def free_port():
    """A port nothing listens on, below Linux's ephemeral range (32768 and up), so that
    no outgoing connection takes it between a node's stop and its start."""
    while True:
        port = random.randrange(20000, 32000)
        if port in HANDED_OUT:
            continue
        HANDED_OUT.add(port)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # taken: try another
                continue
            return port


def wait_until_open(url, deadline, alive=lambda: True):
    """Return once the broker at url accepts an AMQP connection; raise at the deadline."""
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = 2
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # each refused try is expected here
    while True:
        try:
            pika.BlockingConnection(parameters).close()
            logging.getLogger("pika").setLevel(logging.NOTSET)
            return
        except pika.exceptions.AMQPError as error:
            last = error
        if not alive():
            raise BrokerUnavailable("the broker process exited while starting")
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"the broker did not accept connections in time: {last!r}")
        time.sleep(0.1)  # a poll interval, bounded by the deadline above


def wait_for_api(broker, deadline):
    """Return once the broker's management API answers; raise at the deadline."""
    while True:
        try:
            broker.api("GET", "/api/overview")
            return
        except (urllib.error.URLError, OSError) as error:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"the management API did not answer: {error}") from None
        time.sleep(0.1)  # a poll interval, bounded by the deadline above


def answers(url):
    """Whether a broker accepts an AMQP connection at url (at one of them, given several)."""
    try:
        connect(url).close()
        return True
    except Exception:  # any reason it does not answer: a throwaway one is started instead
        return False


AS_AMQP = {"stream": "queue"}  # a stream is declared and deleted as a queue


def present(url, names):
    """{(kind, name): the broker's state} of those of names ("queue", "stream" or
    "exchange", and a name) that the broker at url has now; a passive declaration only
    asks (a stream is a queue to AMQP)."""
    found = {}
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as connection:
        for kind, name in sorted(names):
            channel = connection.channel()
            try:
                declare = getattr(channel, f"{AS_AMQP.get(kind, kind)}_declare")
                found[kind, name] = declare(name, passive=True).method
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:  # 404: not there
                pass
    return found


def claim(url, names):
    """Before a tool uses names on a broker of the reader's own: refuse a queue that holds
    messages or has consumers (the tool would take them, or share them), and a stream that
    is there at all (what the tool appends would stay in it). Returns what release() needs
    to leave the broker as it was."""
    there = present(url, names)
    for (kind, name), state in there.items():
        if kind == "stream":
            raise BrokerUnavailable(
                f"the stream {name!r} is at {without_password(url)} already, and what this "
                "appends would stay in it (a stream keeps what it is sent): `make "
                "clean-broker` deletes the patterns' queues, streams and exchanges there, "
                "with their messages; or set AMQP_URL to another virtual host, or to an "
                "address where no broker answers (then a throwaway one is started)"
            )
        if kind == "queue" and (state.message_count or state.consumer_count):
            raise BrokerUnavailable(
                f"the queue {name!r} at {without_password(url)} is in use "
                f"({counted(state.message_count, 'message')}, "
                f"{counted(state.consumer_count, 'consumer')}), and this would take them: "
                "stop its consumers, then `make clean-broker` deletes the patterns' queues "
                "and exchanges there; or set AMQP_URL to another virtual host, or to an "
                "address where no broker answers (then a throwaway one is started)"
            )
    return set(names) - set(there)


def counted(n, thing):
    return f"{n} {thing}" + ("" if n == 1 else "s")


def release(url, names, missing):
    """After the tool: delete what claim() found missing (the tool made it), and empty the
    queues that were there (empty) before."""
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as connection:
        for kind, name in sorted(names):
            channel = connection.channel()
            try:
                if (kind, name) in missing:
                    getattr(channel, f"{AS_AMQP.get(kind, kind)}_delete")(name)
                elif kind == "queue":
                    channel.queue_purge(name)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:  # gone already
                pass
