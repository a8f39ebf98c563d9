"""A three-node RabbitMQ cluster on this machine, to try quorum queues and the loss of a node.

Run:      make cluster        (or: python tools/cluster.py [--nodes 3])
Observe:  three throwaway nodes start, each with its own name and ports, join into one
          cluster and print the URLs to use: containers of RABBITMQ_IMAGE on a Docker
          network of their own if Docker has or can pull that image, else local nodes of
          rabbitmq-server (THROWAWAY=container or local forces one: tools/throwaway.py).
          Kill a node (docker kill, kill -9) to see the cluster ride through its loss.
          Ctrl-C stops every node and removes the containers and network, or folders.

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
from container import MINE, Container, engine, first_line, remove_owned
from localnode import CTL, LocalNode
from throwaway import choose, image

READY = " [*] To stop the cluster and remove it press CTRL+C"
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, a closed terminal
# Peer discovery joins a new node to the first of these that runs: node 1, started first
# on its own. Naming only it, the other nodes may boot together.
JOINING = (
    "cluster_formation.peer_discovery_backend = classic_config\n"
    "cluster_formation.classic_config.nodes.1 = {}\n"
)
# The cookie where rabbitmqctl run by `docker exec` looks for it (the image's HOME); the
# node itself is given it on its command line (Container's cookie).
GIVE_COOKIE = 'umask 077 && printf %s "$1" > ~/.cookie && mv -f ~/.cookie ~/.erlang.cookie'
# Every node's address in every node's /etc/hosts. Docker's DNS forgets a container once it
# stops and asks the servers upstream, which a container may not reach (a Docker engine
# without IP forwarding): 20 s a lookup, while a node that reaches for a dead peer waits.
ADD_HOSTS = 'printf %s "$1" >> /etc/hosts'


class Cluster:
    """Nodes with a shared Erlang cookie; the first starts alone, the others join it.
    path: "container" (on a Docker network of their own) or "local" (in a folder)."""

    def __init__(self, size=3, path="local"):
        self.path, self.nodes, self.folder, self.network, self.where = path, [], None, None, ""
        self.cookie = secrets.token_hex(20)
        try:
            (self.start_containers if path == "container" else self.start_local)(size)
            for node in self.nodes[1:]:
                node.wait_started()
            self.wait_until_joined([node.node for node in self.nodes])
        except BaseException:
            self.stop()
            raise

    def start_local(self, size):
        self.folder = self.where = tempfile.mkdtemp(prefix=f"rabbitmq-cluster-{os.getpid()}-")
        cookie = os.path.join(self.folder, ".erlang.cookie")  # the nodes' HOME: all share it
        with open(cookie, "w") as f:
            f.write(self.cookie)
        os.chmod(cookie, 0o400)
        names = [f"node{i}-{os.getpid()}@localhost" for i in range(1, size + 1)]
        config = JOINING.format(names[0])
        for i, name in enumerate(names):
            folder = os.path.join(self.folder, f"node{i + 1}")
            self.nodes.append(LocalNode(folder, name, self.folder, config, wait=False, tls=False))
            if i == 0:
                self.nodes[0].wait_started()

    def start_containers(self, size):
        """As people run a cluster with Docker: a network of its own, on which each node's
        hostname is its name; the ports of each published on 127.0.0.1 (Container)."""
        from testcontainers.core.network import Network

        pid = str(os.getpid())
        self.network = Network(docker_network_kw={"labels": MINE})
        self.network.name = f"rabbitmq-cluster-{pid}"  # instead of a uuid: docker network ls
        self.where = f"containers of {image()} on the Docker network {self.network.name}"
        try:
            self.network.create()
        except Exception as error:  # the engine refused
            raise BrokerUnavailable(f"no Docker network: {first_line(error)}") from None
        names = [f"rmq{i}-{pid}" for i in range(1, size + 1)]
        config = JOINING.format(f"rabbit@{names[0]}")  # each node is rabbit@ its hostname
        for i, name in enumerate(names):
            node = Container(
                image(),
                tls=False,
                network=self.network,
                hostname=name,
                config=config,
                cookie=self.cookie,
            )
            node.container.with_name(name)  # so a reader can say docker kill rmq1-...
            self.nodes.append(node)
            node.start(wait=i == 0)
            run_in(node, "rabbitmq", GIVE_COOKIE, self.cookie)
        on_it = engine().networks.get(self.network.name).attrs["Containers"].values()
        hosts = "".join(f"{c['IPv4Address'].split('/')[0]} {c['Name']}\n" for c in on_it)
        for node in self.nodes:
            run_in(node, "root", ADD_HOSTS, hosts)

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
        if self.path == "container":
            remove_owned(os.getpid())  # every container of ours, even one not fully started
            return
        for node in self.nodes:
            node.stop()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


def run_in(node, user, script, argument):
    """sh -c script, with argument as $1, in the node's container."""
    code, said = node.container.get_wrapped_container().exec_run(
        ["sh", "-c", script, "sh", argument], user=user
    )
    if code != 0:
        raise BrokerUnavailable(f"{node.hostname}: {script}: {said.decode().strip()}")


def plain_url(node):
    """The node's URL as a reader types it: guest/guest and virtual host / are the defaults."""
    return f"amqp://127.0.0.1:{node.amqp_port}"


def alive(node):
    try:
        return node.running() if isinstance(node, Container) else node.process.poll() is None
    except Exception:  # a container removed meanwhile (docker rm): not running either
        return False


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
    try:
        path, why = choose()
    except BrokerUnavailable as error:
        sys.exit(f"error: no nodes to start: {error}")
    sys.stdout.reconfigure(line_buffering=True)
    for stop in STOPS:
        signal.signal(stop, stop_once)
    if why:
        print(f" [*] Local nodes, not containers: {why}", file=sys.stderr)
    print(f" [*] Starting {args.nodes} RabbitMQ nodes, which join into one cluster")
    cluster = None
    try:
        cluster = Cluster(args.nodes, path)
        print(f" [*] The cluster is up, in {cluster.where}")
        in_docker = path == "container"
        for i, node in enumerate(cluster.nodes, 1):
            print(
                f"     node {i}: {node.node}  {plain_url(node)}  "
                f"management {node.api_url} (guest/guest)  "
                + (f"container {node.hostname}" if in_docker else f"pid {node.process.pid}")
            )
        print(" [*] In the terminals where you run the patterns:")
        print(f"     export AMQP_URL={','.join(plain_url(node) for node in cluster.nodes)}")
        first = cluster.nodes[0]
        if in_docker:
            print(" [*] rabbitmqctl on node 1, in its container:")
            ctl = f"docker exec -u rabbitmq {first.hostname} rabbitmqctl"
            kill = "docker kill CONTAINER"
        else:
            print(" [*] rabbitmqctl on node 1 (the system's own rabbitmqctl reaches another node):")
            cookie = os.path.join(cluster.folder, ".erlang.cookie")
            ctl, kill = f'{CTL} --erlang-cookie "$(cat {cookie})" -n {first.node}', "kill -9 PID"
        print(f"     {ctl} list_queues name type leader")
        print(f" [*] To make a node die: {kill}")
        print(READY)
        running = list(cluster.nodes)
        while running:
            for node in [node for node in running if not alive(node)]:
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
