"""Build a RabbitMQ image from Debian's packages, for machines that reach no image registry.

Run:      python tools/rabbitmq_image.py SUITE      (as root: debootstrap and docker)
          make image SUITE=sid                      (the same)
Observe:  it prints the image's name alone on stdout, messaging-patterns/rabbitmq:SUITE,
          also tagged with the RabbitMQ version inside (messaging-patterns/rabbitmq:4.3.6).
          Use it as RABBITMQ_IMAGE=messaging-patterns/rabbitmq:sid make test.

Suites and what they held when this was written: bookworm 3.10.8, trixie 4.0.5, sid 4.3.x.
An image already built is kept (Docker keeps it) and used again; --rebuild makes it anew.
The packages come from the mirror this machine's apt uses, read from its sources.

A node in the image starts as one in the official image does: rabbitmq-server in the
foreground as the rabbitmq user, named rabbit@<hostname>, AMQP on 5672 and the management
API on 15672, guest allowed from any address, logs on the console, data in
/var/lib/rabbitmq, configuration in /etc/rabbitmq/conf.d/.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPOSITORY = "messaging-patterns/rabbitmq"
SUITES = ("bookworm", "trixie", "sid")

# What the official image's 10-defaults.conf says, and the plugin its -management tag adds.
DEFAULTS = """\
# As in the official image: guest from any address (inside a container, a client is
# never on localhost), and the log on the console, where docker logs finds it.
loopback_users.guest = false
log.console = true
"""
ENTRYPOINT = '["/usr/lib/rabbitmq/bin/rabbitmq-server"]'


def mirror():
    """The Debian archive apt uses here (not the security one), from its sources."""
    found = []
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]:
        if not path.endswith((".list", ".sources")) or not os.path.isfile(path):
            continue
        with open(path) as f:
            text = f.read()
        found += re.findall(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)  # one-line
        for uris in re.findall(r"^URIs:\s*(.+)$", text, re.M):  # deb822
            found += uris.split()
    for uri in found:
        if uri.rstrip("/").endswith("/debian"):
            return uri
    sys.exit("error: no Debian archive in apt's sources here: pass --mirror URL")


def docker(*args, **options):
    return subprocess.run(["docker", *args], check=True, text=True, **options)


def exists(image):
    found = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
    return found.returncode == 0


def build(suite, mirror_url):
    """debootstrap SUITE with rabbitmq-server into a folder, then docker import it."""
    if not shutil.which("debootstrap"):
        sys.exit("error: debootstrap is missing: apt-get install debootstrap")
    root = tempfile.mkdtemp(prefix=f"rabbitmq-image-{suite}-", dir="/var/tmp")
    try:
        print(
            f"Building {REPOSITORY}:{suite} from Debian {suite}'s packages ({mirror_url}) ...",
            file=sys.stderr,
        )
        log = root + ".log"
        with open(log, "w") as output:
            done = subprocess.run(
                ["debootstrap", "--variant=minbase", "--include=rabbitmq-server",
                 suite, root, mirror_url],
                stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"error: debootstrap {suite} failed; its log: {log}")
        os.remove(log)
        configure(root)
        version = subprocess.run(
            ["chroot", root, "dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"],
            capture_output=True, text=True, check=True,
        ).stdout.split("-")[0]  # fmt: skip
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker",
            "import",
            "-c", f"ENTRYPOINT {ENTRYPOINT}",
            "-c", "USER rabbitmq",
            "-c", "WORKDIR /var/lib/rabbitmq",
            "-c", "ENV LANG=C.UTF-8 HOME=/var/lib/rabbitmq "
                  "PATH=/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "-c", "EXPOSE 5672 5671 15672",
            "-c", "VOLUME /var/lib/rabbitmq",
            "-c", f"LABEL org.opencontainers.image.version={version}",
            "-", f"{REPOSITORY}:{suite}"],
            stdin=tar.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if tar.wait() != 0 or imported.returncode != 0:  # a partial image is not kept
            subprocess.run(["docker", "rmi", f"{REPOSITORY}:{suite}"], capture_output=True)
            sys.exit(f"error: docker import failed: {imported.stderr.strip()}")
        docker("tag", f"{REPOSITORY}:{suite}", f"{REPOSITORY}:{version}")
        return version
    finally:
        shutil.rmtree(root, ignore_errors=True)


def configure(root):
    """Make the node start as the official image's: its configuration and its plugins."""
    etc = os.path.join(root, "etc/rabbitmq")
    os.makedirs(os.path.join(etc, "conf.d"), exist_ok=True)
    with open(os.path.join(etc, "conf.d", "10-defaults.conf"), "w") as f:
        f.write(DEFAULTS)
    with open(os.path.join(etc, "enabled_plugins"), "w") as f:
        f.write("[rabbitmq_management].\n")
    # Debian's package names the node and binds it to localhost here: the image does not.
    open(os.path.join(etc, "rabbitmq-env.conf"), "w").close()
    # A newer Erlang resolves localhost through /etc/hosts, which debootstrap leaves empty.
    with open(os.path.join(root, "etc/hosts"), "w") as f:
        f.write("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
    shutil.rmtree(os.path.join(root, "var/cache/apt/archives"), ignore_errors=True)
    os.makedirs(os.path.join(root, "var/cache/apt/archives/partial"))
    shutil.rmtree(os.path.join(root, "var/lib/apt/lists"), ignore_errors=True)


def main(argv=None):
    options = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_argument("suite", choices=SUITES)
    options.add_argument("--mirror", help="a Debian archive (default: the one apt uses here)")
    options.add_argument("--rebuild", action="store_true", help="build it again, even if kept")
    args = options.parse_args(argv)
    image = f"{REPOSITORY}:{args.suite}"
    if shutil.which("docker") is None:
        sys.exit("error: no docker command here: apt-get install docker.io")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        sys.exit("error: no Docker engine answers: start dockerd (sudo dockerd &)")
    if args.rebuild or not exists(image):
        if os.geteuid() != 0:
            sys.exit("error: building an image needs root (debootstrap, chroot)")
        build(args.suite, args.mirror or mirror())
    print(image)


if __name__ == "__main__":
    main()
