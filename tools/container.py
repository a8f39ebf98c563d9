"""A throwaway RabbitMQ in a Docker container, through testcontainers: the official image
(rabbitmq:4.3-management by default, RABBITMQ_IMAGE for another) or one that
tools/rabbitmq_image.py built from Debian's packages.

The container is ours from start to end: we pick its ports and publish them on 127.0.0.1
only (so they survive a restart, and no other machine reaches a guest/guest broker), we
remove it ourselves (so no reaper container is needed, nor pulled), and we connect to
127.0.0.1 whatever testcontainers guesses about the host.
"""

import contextlib
import os
import shutil
import sys
import tempfile
import time

from broker import (
    BOOT_TIMEOUT,
    NODE_CONFIG,
    PLUGINS,
    BrokerUnavailable,
    Node,
    free_port,
    stream_config,
    wait_for_api,
)

DEFAULT_IMAGE = "rabbitmq:4.3-management"
OWNER = "messaging-patterns.owner"  # a label: the pid of the process that started it
PIDS = "messaging-patterns.pids"  # a label: the pid namespace that pid belongs to
MINE = {OWNER: str(os.getpid()), PIDS: os.readlink("/proc/self/ns/pid")}
CONF = "/etc/rabbitmq/conf.d/90-messaging-patterns.conf"  # beside the image's own defaults
TLS = "/etc/rabbitmq/tls"
# Where both the official image and ours (tools/rabbitmq_image.py) read it: replaced whole.
ENABLED_PLUGINS = "/etc/rabbitmq/enabled_plugins"
STREAM = 5552  # the stream protocol's port in the container, its default


def engine(timeout=5):
    """The Docker engine's client; BrokerUnavailable saying why there is none."""
    try:
        import docker
        import testcontainers  # noqa: F401
    except ImportError:
        raise BrokerUnavailable("testcontainers is not installed (make test installs it)") from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as error:  # no socket, no permission, no engine: all mean "none here"
        raise BrokerUnavailable(f"no Docker engine answers ({first_line(error)})") from None


def ensure_image(image):
    """Return if the engine has image or can pull it; else BrokerUnavailable saying why.
    Any error of the engine's, or of the way to it, is a reason: never a traceback."""
    client = engine()
    import docker

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except Exception as error:
        raise BrokerUnavailable(f"Docker cannot inspect {image} ({first_line(error)})") from None
    print(f"Pulling {image} (Docker does not have it) ...", file=sys.stderr, flush=True)
    try:
        engine(timeout=600).images.pull(image)
    except Exception as error:
        raise BrokerUnavailable(
            f"Docker has no {image} and cannot pull it ({first_line(error)})"
        ) from None


def reap():
    """Remove the containers and networks whose owner process is gone: a test run killed
    (SIGKILL, out of memory) cannot remove its own, and no reaper container is pulled.
    Only those of this machine's processes: another pid namespace (a CI job in a
    container of its own, on a shared engine) has pids that /proc here does not show."""
    client, ours = engine(), {"label": [OWNER, f"{PIDS}={MINE[PIDS]}"]}
    # sparse: the list alone, not each container inspected after it, which fails with
    # NotFound for one that another run removes in between (seen in CI).
    listed = client.containers.list(all=True, filters=ours, sparse=True)
    owners = {c.attrs["Labels"][OWNER] for c in listed}
    owners |= {n.attrs["Labels"][OWNER] for n in client.networks.list(filters=ours)}
    for pid in filter(gone, owners):
        with contextlib.suppress(Exception):  # another run's reap() took it first
            remove_owned(pid)


def owned(pid):
    """The containers (running or not) and the networks that the process pid made."""
    client = engine(timeout=60)
    mine = {"label": [f"{OWNER}={pid}", f"{PIDS}={MINE[PIDS]}"]}
    return client.containers.list(all=True, filters=mine), client.networks.list(filters=mine)


def remove_owned(pid):
    """docker rm -f -v every container of owned(pid), then docker network rm its networks."""
    containers, networks = owned(pid)
    for container in containers:
        container.remove(force=True, v=True)  # -v: its data volume too
    for network in networks:
        network.remove()


def gone(pid):
    return not os.path.exists(f"/proc/{pid}")


def first_line(error):
    """What the engine said, in one line: docker-py's errors carry it as explanation."""
    text = str(getattr(error, "explanation", None) or error).strip() or type(error).__name__
    return text.splitlines()[0][:200]


class Container(Node):
    """One RabbitMQ node in a container; a network and a hostname for a cluster's nodes."""

    def __init__(self, image, tls=True, network=None, hostname=None, config="", cookie=None):
        """A node of image, not started yet (start()). A cluster's nodes share a network
        (testcontainers' Network), each with its hostname as its name there, and an
        Erlang cookie; config: rabbitmq.conf lines added to the image's own."""
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        testcontainers_config.ryuk_disabled = True  # we remove it ourselves: no reaper
        self.image = image
        self.kind = f"a container of {image}"
        self.amqp_port, api_port, self.stream_port = free_port(), free_port(), free_port()
        self.hostname = hostname or f"rabbitmq-test-{os.getpid()}-{self.amqp_port}"
        self.node = f"rabbit@{self.hostname}"  # so its data survives a restart: fixed
        ports = {"5672/tcp": ("127.0.0.1", self.amqp_port), "15672/tcp": ("127.0.0.1", api_port)}
        ports[f"{STREAM}/tcp"] = ("127.0.0.1", self.stream_port)
        self.container = DockerContainer(image).with_kwargs(
            hostname=self.hostname,
            labels=MINE,
            network=network.name if network else "bridge",
        )
        if network:
            self.container.with_network(network).with_network_aliases(self.hostname)
        self.cookie = cookie
        if cookie:  # the node's; rabbitmq-server and rabbitmqctl are each given it
            self.container.with_env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", f"-setcookie {cookie}")
        settings = NODE_CONFIG + stream_config(self.stream_port) + config
        self.folder = None
        if tls:
            import certificates  # here: it needs cryptography, which only the tests install

            self.tls_port = free_port()
            ports["5671/tcp"] = ("127.0.0.1", self.tls_port)
            self.folder = tempfile.mkdtemp(prefix=f"rabbitmq-test-{os.getpid()}-")
            made = certificates.make(self.folder)  # the clients read ca.pem here
            self.ca_file = made[0]
            inside = [f"{TLS}/{path.name}" for path in made]
            for path, there in zip(made, inside, strict=True):
                self.container.with_copy_into_container(path.read_bytes(), there, 0o644)
            settings += "listeners.ssl.default = 5671\n" + certificates.config(*inside)
        self.container.ports = ports
        self.container.with_copy_into_container(settings.encode(), CONF, 0o644)
        self.container.with_copy_into_container(PLUGINS.encode(), ENABLED_PLUGINS, 0o644)
        super().__init__(
            f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F", f"http://127.0.0.1:{api_port}"
        )

    @property
    def wrapped(self):
        """docker-py's container, which testcontainers wraps: kill, stop, start, exec."""
        return self.container.get_wrapped_container()

    def start(self, wait=True):
        reap()
        try:
            self.container.start()
        except Exception as error:  # the engine refused: a port, the image, a network
            self.stop()
            raise BrokerUnavailable(f"the container did not start: {first_line(error)}") from None
        except BaseException:  # Ctrl-C: no guest/guest broker left behind
            self.stop()
            raise
        if wait:
            self.wait_started()
        return self

    def wait_started(self):
        try:
            self.wait_until_listening(alive=self.running)
            wait_for_api(self, time.monotonic() + BOOT_TIMEOUT)
        except BrokerUnavailable as error:
            log = self.log_tail()
            self.stop()
            raise BrokerUnavailable(f"{error}; its log: {log}") from None
        except BaseException:
            self.stop()
            raise

    def running(self):
        wrapped = self.wrapped
        wrapped.reload()
        return wrapped.status == "running"

    def ctl(self, *args, timeout=60):
        """Run rabbitmqctl in the container, as the rabbitmq user (root could leave the
        Erlang cookie root's); return what it printed on stdout."""
        cookie = ["--erlang-cookie", self.cookie] if self.cookie else []
        code, (out, err) = self.wrapped.exec_run(
            ["timeout", str(timeout), "rabbitmqctl", *cookie, *args], user="rabbitmq", demux=True
        )
        out, err = (out or b"").decode(), (err or b"").decode()
        if code != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {err or out}")
        return out

    def log(self):
        """What the node wrote: the image logs to the console (log.console)."""
        return self.wrapped.logs().decode(errors="replace")

    def log_tail(self, size=2000):
        try:
            return self.wrapped.logs(tail=40).decode()[-size:]
        except Exception as error:  # gone already
            return f"(no log: {first_line(error)})"

    def shut_down(self, kill=False, timeout=30):
        """Stop the container: cleanly (docker stop) or at once (kill: SIGKILL, as a
        crash). It keeps its data, hostname and ports for start_again()."""
        wrapped = self.wrapped
        if kill:
            wrapped.kill("SIGKILL")
            wrapped.wait(timeout=timeout)
        else:
            wrapped.stop(timeout=timeout)

    def start_again(self):
        """Start the container that shut_down() stopped, with its data, name and ports."""
        self.wrapped.start()
        self.wait_until_listening(alive=self.running)
        wait_for_api(self, time.monotonic() + BOOT_TIMEOUT)

    def stop(self):
        """Remove the container, its anonymous volume and the copy of its CA."""
        if self.wrapped is not None:
            self.container.stop(force=True, delete_volume=True)
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
