"""A local three-node RabbitMQ cluster, to try quorum queues and the loss of a node.

Run:      make cluster        (or: python tests/cluster.py [--nodes 3])
Observe:  three throwaway nodes start on this machine, each with its own name,
          ports and folder, and join into one cluster; the URLs to use are
          printed. Kill a node's pid to see the cluster ride through its loss.
          Ctrl-C stops every node and removes the folders.

The tests start the cluster with this command, as a reader does (tests/test_cluster.py).
"""

import argparse
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time

from throwaway import SERVER, BrokerUnavailable, LocalNode

READY = " [*] To stop the cluster and remove it press CTRL+C"


class Cluster:
    """Nodes with a shared Erlang cookie; the first starts alone, the others join it."""

    def __init__(self, size=3):
        self.folder = tempfile.mkdtemp(prefix=f"rabbitmq-cluster-{os.getpid()}-")
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
        self.nodes = []
        try:
            for i, name in enumerate(names):
                folder = os.path.join(self.folder, f"node{i + 1}")
                self.nodes.append(LocalNode(folder, name, self.folder, config, wait=False))
                if i == 0:
                    self.nodes[0].wait_started()
            for node in self.nodes[1:]:
                node.wait_started()
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def plain_url(node):
    """The node's URL as a reader types it: guest/guest and virtual host / are the defaults."""
    return f"amqp://127.0.0.1:{node.amqp_port}"


def main(argv=None):
    options = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_argument("--nodes", type=int, default=3, choices=range(1, 8), metavar="N")
    args = options.parse_args(argv)
    if not os.path.exists(SERVER):
        sys.exit(
            "error: rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)"
        )
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as Ctrl-C does
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
        print("     export QUEUE_TYPE=quorum")
        print(" [*] To make a node die: kill -9 PID")
        print(READY)
        running = list(cluster.nodes)
        while running:
            for node in running:
                if node.process.poll() is not None:
                    i = cluster.nodes.index(node) + 1
                    print(f" [!] node {i} ({node.node}) stopped")
                    running.remove(node)
            time.sleep(0.5)  # a poll interval: this loop only reports, until Ctrl-C
    except BrokerUnavailable as error:
        sys.exit(f"error: a node did not start: {error}")
    except KeyboardInterrupt:
        pass
    finally:
        for stop in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C: let the cleanup finish
            signal.signal(stop, signal.SIG_IGN)
        if cluster:
            cluster.stop()
            print(" [*] Cluster stopped and removed")


if __name__ == "__main__":
    main()
