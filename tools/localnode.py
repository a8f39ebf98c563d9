"""A throwaway RabbitMQ node run from this machine's rabbitmq-server package: a private
node with its own name, ports and data folder, removed afterwards. For machines with no
Docker engine or no image, and for tools/cluster.py's local cluster.
"""

import ctypes
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from json import dumps, loads

from broker import (
    BOOT_TIMEOUT,
    NODE_CONFIG,
    PLUGINS,
    Broker,
    BrokerUnavailable,
    Node,
    free_port,
    stream_config,
    wait_for_api,
)

# Not /usr/sbin's wrappers: they switch to the rabbitmq user, whose home is not ours.
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


def installed():
    """Whether a local node can be started: RabbitMQ's package is here."""
    return os.path.exists(SERVER)


def die_with_parent():
    """In the child, before exec: the kernel kills the node if the test process dies first."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class LocalNode(Node):
    """A private rabbitmq-server node: own node name, ports and folder."""

    kind = "a local rabbitmq-server node"

    def __init__(self, folder=None, node=None, home=None, config="", wait=True, tls=True):
        """A node in folder (a new temporary one by default), named node, with config
        lines added to its rabbitmq.conf. Nodes that share home share the Erlang cookie
        there, which they need to form a cluster. wait=False: return once it is starting,
        and call wait_started() later (so that several nodes boot at once). tls: a TLS
        listener too, with a certificate of a CA made for it (ca_file)."""
        self.folder = folder or tempfile.mkdtemp(prefix=f"rabbitmq-test-{os.getpid()}-")
        os.makedirs(self.folder, exist_ok=True)
        self.amqp_port, dist_port, api_port = free_port(), free_port(), free_port()
        self.stream_port = free_port()  # each node its own: a local cluster's nodes too
        self.node = node or f"test-{os.getpid()}-{self.amqp_port}@localhost"
        listeners = f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
        listeners += stream_config(self.stream_port, f"127.0.0.1:{self.stream_port}")
        if tls:
            import certificates  # here: it needs cryptography, which only the tests install

            self.tls_port = free_port()
            self.ca_file, certificate, key = certificates.make(self.folder)
            listeners += f"listeners.ssl.1 = 127.0.0.1:{self.tls_port}\n"
            listeners += certificates.config(self.ca_file, certificate, key)
        config_file = os.path.join(self.folder, "rabbitmq.conf")
        with open(config_file, "w") as f:
            f.write(
                f"{listeners}"
                f"management.tcp.ip = 127.0.0.1\n"
                f"management.tcp.port = {api_port}\n"
                f"{NODE_CONFIG}{config}"
            )
        plugins = os.path.join(self.folder, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write(PLUGINS)
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
                "stream_port": self.stream_port,
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
        node.stream_port = facts["stream_port"]
        node.ca_file, node.process, node.owned = facts["ca_file"], None, False
        node.cli_env = {**os.environ, **facts["cli_env"]}
        return node

    def launch(self):
        # Here, not on a helper thread: PR_SET_PDEATHSIG fires when the *thread* that
        # started the node ends, so a node launched from a thread dies with the thread.
        with open(os.path.join(self.folder, "server.out"), "ab") as output:
            self.process = subprocess.Popen(
                [SERVER],
                env=self.server_env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches every child
                preexec_fn=die_with_parent,
            )

    def wait_started(self):
        try:
            self.wait_until_listening(alive=lambda: self.process.poll() is None)
            wait_for_api(self, time.monotonic() + BOOT_TIMEOUT)
        except BrokerUnavailable as error:
            log = self.log_tail()
            self.stop()
            raise BrokerUnavailable(f"{error}; its log: {log}") from None

    def ctl(self, *args, timeout=60):
        """Run rabbitmqctl against this node; return what it printed."""
        result = subprocess.run(
            [CTL, "-n", self.node, *args],
            env=self.cli_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stderr or result.stdout}")
        return result.stdout

    def log(self):
        """What the node wrote: its console, then its log files."""
        paths = [os.path.join(self.folder, "server.out")]
        paths += sorted(glob.glob(os.path.join(self.folder, "log", "*.log")))
        text = ""
        for path in paths:
            with open(path, "rb") as f:
                text += f.read().decode(errors="replace")
        return text

    def log_tail(self, size=2000):
        with open(os.path.join(self.folder, "server.out"), "rb") as f:
            return f.read()[-size:].decode(errors="replace")

    def shut_down(self, kill=False, timeout=30):
        """Stop the node's process: cleanly (SIGTERM, it writes its data) or at once
        (kill: SIGKILL, as a crash). Its folder and ports stay for start_again()."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None

    def start_again(self):
        """Start the node that shut_down() stopped, with its data, name and ports."""
        self.launch()
        self.wait_until_listening(alive=lambda: self.process.poll() is None)
        wait_for_api(self, time.monotonic() + BOOT_TIMEOUT)

    def stop(self):
        if self.owned:
            self.shut_down(kill=True)  # nothing in it is kept, so no need to wait
            shutil.rmtree(self.folder, ignore_errors=True)
