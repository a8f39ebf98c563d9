"""A throwaway RabbitMQ for the tests, and a fresh virtual host for each test; for the
tools a reader runs (the demo, the benchmark), the reader's broker if it answers, used
without harm (claim() and release()), else a throwaway one.

Where the broker comes from, in this order:

0. ``THROWAWAY_NODE`` is set: the local node (below) that a parent process started
   and described there (``make mutants`` starts one per job, not one per run).
1. ``AMQP_URL`` is set: that broker. Its management API (``RABBITMQ_API_URL``,
   default ``http://<host>:15672``) creates the per-test virtual hosts.
2. A Docker engine answers: a container from the pinned ``IMAGE``, with
   testcontainers.
3. ``rabbitmq-server`` is installed: a private node of our own, with its own
   name, ports and data folder, removed afterwards. With ``RABBITMQ_CHROOT`` set,
   the RabbitMQ installed in that folder runs it, through chroot (``make
   test-rabbitmq4``: tools/rabbitmq4.sh mounts /tmp, /proc, /sys and /dev there).
4. Else: an error that says how to get one.
"""

import contextlib
import ctypes
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from base64 import b64encode
from json import dumps, loads

import pika

from common.cli import DEFAULT_URL
from common.connection import broker_urls, connect, without_password

IMAGE = "rabbitmq:4.2-management"
# Not /usr/sbin's wrappers: they switch to the rabbitmq user, whose home is not ours.
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
BOOT_TIMEOUT = 60.0
CHROOT = os.environ.get("RABBITMQ_CHROOT", "")  # "": this machine's own RabbitMQ

HOW_TO_GET_ONE = (
    "no RabbitMQ for the tests: set AMQP_URL to a broker with the management "
    "plugin, start a Docker engine, or install RabbitMQ (Debian/Ubuntu: "
    "apt-get install rabbitmq-server). For example: docker run -d -p 5672:5672 "
    f"-p 15672:15672 {IMAGE} and AMQP_URL=amqp://guest:guest@localhost:5672/"
)


class BrokerUnavailable(Exception):
    pass


def installed():
    """Whether a local node can be started: RabbitMQ's package here (or in CHROOT)."""
    return os.path.exists(CHROOT + SERVER)


def run_in_place(path):
    """The command that runs one of RabbitMQ's programs, in CHROOT if there is one."""
    return ["chroot", CHROOT, path] if CHROOT else [path]


class Broker:
    """A broker the tests may use: an AMQP address and its management API."""

    kind = "external"
    can_restart = False
    tls_port = None  # a TLS listener: only on the local node, whose certificates the tests make
    ctl = None  # rabbitmqctl: only where the tests can reach the node (not through AMQP_URL)

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

    def add_vhost(self, prefix="test"):
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        quoted = urllib.parse.quote(name, safe="")
        self.api("PUT", f"/api/vhosts/{quoted}")
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        self.api("PUT", f"/api/permissions/{quoted}/{urllib.parse.quote(self.user)}", everything)
        return name

    def delete_vhost(self, name):
        self.api("DELETE", "/api/vhosts/" + urllib.parse.quote(name, safe=""))

    def stop(self):
        pass


def die_with_parent():
    """In the child, before exec: the kernel kills the node if the test process dies first."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


HANDED_OUT = set()  # ports free_port() gave: a node may not listen on them yet


def free_port():
    """A port nothing listens on, below Linux's ephemeral range (32768 and up), so that
    no outgoing connection takes it between a node's stop_app and start_app."""
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


class LocalNode(Broker):
    """A private rabbitmq-server node: own node name, ports and folder."""

    kind = "local rabbitmq-server node" + (f" in {CHROOT}" if CHROOT else "")
    can_restart = True

    def __init__(self, folder=None, node=None, home=None, config="", wait=True, tls=True):
        """A node in folder (a new temporary one by default), named node, with config
        lines added to its rabbitmq.conf. Nodes that share home share the Erlang cookie
        there, which they need to form a cluster. wait=False: return once it is starting,
        and call wait_started() later (so that several nodes boot at once). tls: a TLS
        listener too, with a certificate of a CA made for it (ca_file)."""
        self.folder = folder or tempfile.mkdtemp(prefix=f"rabbitmq-test-{os.getpid()}-")
        os.makedirs(self.folder, exist_ok=True)
        self.amqp_port, dist_port, api_port = free_port(), free_port(), free_port()
        self.node = node or f"test-{os.getpid()}-{self.amqp_port}@localhost"
        listeners = f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
        if tls:
            import certificates  # here: it needs cryptography, which only the tests install

            self.tls_port = free_port()
            self.ca_file, certificate, key = certificates.make(self.folder)
            listeners += (
                f"listeners.ssl.1 = 127.0.0.1:{self.tls_port}\n"
                f"ssl_options.cacertfile = {self.ca_file}\n"
                f"ssl_options.certfile = {certificate}\n"
                f"ssl_options.keyfile = {key}\n"
                "ssl_options.verify = verify_none\n"
                "ssl_options.fail_if_no_peer_cert = false\n"
            )
        config_file = os.path.join(self.folder, "rabbitmq.conf")
        with open(config_file, "w") as f:
            f.write(
                f"{listeners}"
                f"management.tcp.ip = 127.0.0.1\n"
                f"management.tcp.port = {api_port}\n"
                f"{config}"
            )
        plugins = os.path.join(self.folder, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write("[rabbitmq_management].\n")
        empty_env_file = os.path.join(self.folder, "rabbitmq-env.conf")
        open(empty_env_file, "w").close()
        # What rabbitmqctl needs to find this node, and nothing more: given
        # RABBITMQ_DIST_PORT, the CLI would take that port and the node would not boot.
        self.cli_env = {
            **os.environ,
            "HOME": home or self.folder,  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_CONF_ENV_FILE": empty_env_file,
            "RABBITMQ_ENABLED_PLUGINS_FILE": plugins,
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.server_env = {
            **self.cli_env,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.folder, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.folder, "log"),
            "RABBITMQ_FEATURE_FLAGS_FILE": os.path.join(self.folder, "feature_flags"),
            "RABBITMQ_PID_FILE": os.path.join(self.folder, "rabbit.pid"),
            "RABBITMQ_CONFIG_FILE": config_file,
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            # The script then execs the VM instead of running it as a grandchild, so
            # die_with_parent() reaches the VM itself.
            "RUNNING_UNDER_SYSTEMD": "true",
        }
        super().__init__(
            f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F", f"http://127.0.0.1:{api_port}"
        )
        self.process = None
        self.owned = True  # stop() stops it and removes its folder
        self.launch()
        if wait:
            self.wait_started()

    def describe(self):
        """What another process needs to use this node: for THROWAWAY_NODE, as JSON."""
        return dumps(
            {
                "amqp_url": self.url("/"),
                "api_url": self.api_url,
                "folder": self.folder,
                "node": self.node,
                "tls_port": self.tls_port,
                "ca_file": str(self.ca_file) if self.tls_port else None,
                "cli_env": {k: v for k, v in self.cli_env.items() if os.environ.get(k) != v},
            }
        )

    @classmethod
    def reuse(cls, description):
        """The node that describe() described, started by another process, which stops it."""
        facts = loads(description)
        node = cls.__new__(cls)
        Broker.__init__(node, facts["amqp_url"], facts["api_url"])
        node.folder, node.node, node.tls_port = facts["folder"], facts["node"], facts["tls_port"]
        node.ca_file, node.process, node.owned = facts["ca_file"], None, False
        node.cli_env = {**os.environ, **facts["cli_env"]}
        return node

    def launch(self):
        # Here, not on a helper thread: PR_SET_PDEATHSIG fires when the *thread* that
        # started the node ends, so a node launched from a thread dies with the thread.
        with open(os.path.join(self.folder, "server.out"), "ab") as output:
            self.process = subprocess.Popen(
                run_in_place(SERVER),
                env=self.server_env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches every child
                preexec_fn=die_with_parent,
            )

    def wait_started(self):
        try:
            wait_until_open(
                self.url("/"),
                time.monotonic() + BOOT_TIMEOUT,
                alive=lambda: self.process.poll() is None,
            )
            wait_for_api(self, time.monotonic() + BOOT_TIMEOUT)
            self.wait_until_listening()
        except BrokerUnavailable as error:
            log = self.log_tail()
            self.stop()
            raise BrokerUnavailable(f"{error}; its log: {log}") from None

    def ctl(self, *args, timeout=60):
        """Run rabbitmqctl against this node; return what it printed."""
        result = subprocess.run(
            [*run_in_place(CTL), "-n", self.node, *args],
            env=self.cli_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stderr or result.stdout}")
        return result.stdout

    def log_tail(self, size=2000):
        with open(os.path.join(self.folder, "server.out"), "rb") as f:
            return f.read()[-size:].decode(errors="replace")

    def stop_process(self, graceful=True, timeout=30):
        """Stop the node: cleanly (SIGTERM, the VM writes its data) or at once (SIGKILL)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None

    def restart(self):
        """Stop RabbitMQ on the node and start it again, as a broker restart does."""
        self.ctl("stop_app")
        self.ctl("start_app")
        self.wait_until_listening()

    def wait_until_listening(self):
        deadline = time.monotonic() + BOOT_TIMEOUT
        wait_until_open(self.url("/"), deadline)
        while self.tls_port:  # the TLS listener too
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BrokerUnavailable("the TLS listener did not open") from None
            time.sleep(0.1)  # a poll interval, bounded by the deadline above

    def stop(self):
        if self.owned:
            self.stop_process(graceful=False)  # nothing in it is kept, so no need to wait
            shutil.rmtree(self.folder, ignore_errors=True)


class Container(Broker):
    """A throwaway container, through testcontainers."""

    kind = f"docker container {IMAGE}"
    can_restart = False

    def __init__(self):
        from testcontainers.community.rabbitmq import RabbitMqContainer

        self.container = RabbitMqContainer(IMAGE).with_exposed_ports(15672)
        self.container.start()
        host = self.container.get_container_host_ip()
        amqp_port = self.container.get_exposed_port(5672)
        api_port = self.container.get_exposed_port(15672)
        super().__init__(f"amqp://guest:guest@{host}:{amqp_port}/%2F", f"http://{host}:{api_port}")
        wait_for_api(self, time.monotonic() + BOOT_TIMEOUT)  # it starts a moment after AMQP

    def ctl(self, *args):
        """Run rabbitmqctl inside the container; return what it printed."""
        result = self.container.exec(["rabbitmqctl", *args])
        if result.exit_code != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.output.decode()}")
        return result.output.decode()

    def stop(self):
        self.container.stop()


def docker_engine_answers():
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # no client library, no socket, no engine: all mean "not here"
        return False


def start_broker():
    if os.environ.get("THROWAWAY_NODE"):
        return LocalNode.reuse(os.environ["THROWAWAY_NODE"])
    url = os.environ.get("AMQP_URL")
    if url:
        host = urllib.parse.urlsplit(url).hostname or "localhost"
        broker = Broker(url, os.environ.get("RABBITMQ_API_URL", f"http://{host}:15672"))
        try:
            broker.api("GET", "/api/overview")
        except (urllib.error.URLError, OSError) as error:
            raise BrokerUnavailable(
                f"AMQP_URL is set, but its management API at {broker.api_url} does not "
                f"answer ({error}); the tests need it to make a virtual host per test: "
                "enable rabbitmq_management or set RABBITMQ_API_URL"
            ) from None
        return broker
    return start_throwaway()


def answers(url):
    """Whether a broker accepts an AMQP connection at url (at one of them, given several)."""
    try:
        connect(url).close()
        return True
    except Exception:  # any reason it does not answer: a throwaway one is started instead
        return False


def users_broker_or_throwaway(say, purpose):
    """For the tools a reader runs (the demo, the benchmark): the broker at AMQP_URL, else
    at the scripts' default URL, if it answers; else a throwaway one, after say()ing so.
    Returns (url, throwaway): the caller stops the throwaway (None if not started).
    The tests are stricter (start_broker): an AMQP_URL that does not answer is an error."""
    for url in broker_urls(os.environ.get("AMQP_URL", DEFAULT_URL)):  # a cluster's: any
        if answers(url):
            say(f"Using the broker at {without_password(url)}")
            return url, None
    say(f"No broker answers there: starting a throwaway one for {purpose} ...")
    broker = start_throwaway()
    return broker.url("/"), broker


def present(url, names):
    """{(kind, name): the broker's state} of those of names ("queue" or "exchange", and a
    name) that the broker at url has now; a passive declaration only asks."""
    found = {}
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as connection:
        for kind, name in sorted(names):
            channel = connection.channel()
            try:
                found[kind, name] = getattr(channel, f"{kind}_declare")(name, passive=True).method
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:  # 404: not there
                pass
    return found


def claim(url, names):
    """Before a tool uses names on a broker of the reader's own: refuse a queue that holds
    messages or has consumers (the tool would take them, or share them). Returns what
    release() needs to leave the broker as it was."""
    there = present(url, names)
    for (kind, name), state in there.items():
        if kind == "queue" and (state.message_count or state.consumer_count):
            raise BrokerUnavailable(
                f"the queue {name!r} at {without_password(url)} is in use "
                f"({state.message_count} messages, {state.consumer_count} consumers), and "
                "this would take them: stop its consumers and empty it, or set AMQP_URL to "
                "another virtual host, or to an address where no broker answers (then a "
                "throwaway one is started)"
            )
    return set(names) - set(there)


def release(url, names, missing):
    """After the tool: delete what claim() found missing (the tool made it), and empty the
    queues that were there (empty) before."""
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as connection:
        for kind, name in sorted(names):
            channel = connection.channel()
            try:
                if (kind, name) in missing:
                    getattr(channel, f"{kind}_delete")(name)
                elif kind == "queue":
                    channel.queue_purge(name)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:  # gone already
                pass


def start_throwaway():
    """A broker of our own: a container if a Docker engine answers, else a local node."""
    if docker_engine_answers():
        return Container()
    if installed():
        try:
            return LocalNode()
        except BrokerUnavailable:  # once more, with other ports, should one have been taken
            return LocalNode()
    raise BrokerUnavailable(HOW_TO_GET_ONE)
