"""A local three-node RabbitMQ cluster, to try quorum queues and the loss of a node.

Run:      make cluster        (or: python tools/cluster.py [--nodes 3])
Observe:  three throwaway nodes start on this machine, each with its own name,
          ports and folder, and join into one cluster; the URLs to use are
          printed. Kill a node's pid to see the cluster ride through its loss.
          Ctrl-C stops every node and removes the folders.

Linux only, with RabbitMQ's Debian or Ubuntu package (rabbitmq-server) installed.
The tests start the cluster with this command, as a reader does (tools/node_loss.py).
"""

import argparse
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from json import loads

from broker import BOOT_TIMEOUT, BrokerUnavailable
from localnode import CTL, SERVER, LocalNode, installed

READY = " [*] To stop the cluster and remove it press CTRL+C"
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, a closed terminal


class Cluster:
    """Nodes with a shared Erlang cookie; the first starts alone, the others join it."""

    def __init__(self, size=3):
        self.nodes = []
        self.folder = tempfile.mkdtemp(prefix=f"rabbitmq-cluster-{os.getpid()}-")
        try:
            self.start(size)
        except BaseException:
            self.stop()
            raise

    def start(self, size):
        cookie = os.path.join(self.folder, ".erlang.cookie")  # the nodes' HOME: all share it
        with open(cookie, "w") as f:
            f.write(secrets.token_hex(20))
        os.chmod(cookie, 0o400)
        names = [f"node{i}-{os.getpid()}@localhost" for i in range(1, size + 1)]
        # Peer discovery joins a new node to the first of these that runs: node 1,
        # started first on its own. Naming only it, nodes 2 and 3 may boot together.
        config = (
            "cluster_formation.peer_discovery_backend = classic_config\n"
            f"cluster_formation.classic_config.nodes.1 = {names[0]}\n"
        )
        for i, name in enumerate(names):
            folder = os.path.join(self.folder, f"node{i + 1}")
            self.nodes.append(LocalNode(folder, name, self.folder, config, wait=False, tls=False))
            if i == 0:
                self.nodes[0].wait_started()
        for node in self.nodes[1:]:
            node.wait_started()
        self.wait_until_joined(names)

    def wait_until_joined(self, names):
        """Peer discovery that fails starts a node on its own, silently: check."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            members = loads(self.nodes[0].api("GET", "/api/nodes"))
            running = {member["name"] for member in members if member["running"]}
            if running >= set(names):
                return
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"the nodes did not join: node 1 sees only {running}")
            time.sleep(0.2)  # a poll interval, bounded by the deadline above

    def stop(self):
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def plain_url(node):
    """The node's URL as a reader types it: guest/guest and virtual host / are the defaults."""
    return f"amqp://127.0.0.1:{node.amqp_port}"


def stop_once(signum, frame):
    for stop in STOPS:  # a second Ctrl-C must not cut the clean-up short
        signal.signal(stop, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv=None):
    options = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_argument("--nodes", type=int, default=3, choices=range(1, 8), metavar="N")
    args = options.parse_args(argv)
    if not installed():
        sys.exit(
            f"error: no {SERVER}: install RabbitMQ's package (apt-get install rabbitmq-server)"
        )
    sys.stdout.reconfigure(line_buffering=True)
    for stop in STOPS:
        signal.signal(stop, stop_once)
    print(f" [*] Starting {args.nodes} RabbitMQ nodes, which join into one cluster")
    cluster = None
    try:
        cluster = Cluster(args.nodes)
        print(f" [*] The cluster is up, in {cluster.folder}")
        for i, node in enumerate(cluster.nodes, 1):
            print(
                f"     node {i}: {node.node}  {plain_url(node)}  "
                f"management {node.api_url} (guest/guest)  pid {node.process.pid}"
            )
        print(" [*] In the terminals where you run the patterns:")
        print(f"     export AMQP_URL={','.join(plain_url(node) for node in cluster.nodes)}")
        cookie = os.path.join(cluster.folder, ".erlang.cookie")
        print(" [*] rabbitmqctl on node 1 (the system's own rabbitmqctl reaches another node):")
        print(
            f'     {CTL} --erlang-cookie "$(cat {cookie})" -n {cluster.nodes[0].node} '
            "list_queues name type leader"
        )
        print(" [*] To make a node die: kill -9 PID")
        print(READY)
        running = list(cluster.nodes)
        while running:
            for node in [node for node in running if node.process.poll() is not None]:
                print(f" [!] node {cluster.nodes.index(node) + 1} ({node.node}) stopped")
                running.remove(node)
            time.sleep(0.5)  # a poll interval: this loop only reports, until Ctrl-C
    except BrokerUnavailable as error:
        sys.exit(f"error: the cluster did not start: {error}")
    except KeyboardInterrupt:
        pass
    finally:
        for stop in STOPS:  # the clean-up runs to its end
            signal.signal(stop, signal.SIG_IGN)
        if cluster:
            cluster.stop()
            print(" [*] Cluster stopped and removed")


if __name__ == "__main__":
    main()
