#!/usr/bin/env bash
# make test-rabbitmq4: run a command (the suite) with its throwaway RabbitMQ nodes taken
# from Debian 13's packages, RabbitMQ 4.0 on Erlang 27, whatever this machine runs.
#
#   tools/rabbitmq4.sh COMMAND...      e.g. tools/rabbitmq4.sh .venv/bin/pytest -n 2
#
# The packages live in a chroot that debootstrap makes (about 370 MB, under a minute
# here), kept between runs in RABBITMQ4_CHROOT, outside the repository. The command runs
# in a mount namespace of its own, where /proc, /sys, /dev and /tmp (the nodes' folders)
# are mounted in the chroot: the mounts end with it, however it ends, and two runs at
# once do not see each other's. Needs root (unshare, mount, chroot, debootstrap).
set -euo pipefail

CHROOT="${RABBITMQ4_CHROOT:-/var/cache/messaging-patterns/rabbitmq4-trixie}"
SUITE=trixie
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "$(id -u)" != 0 ]; then
    echo "error: tools/rabbitmq4.sh needs root, for debootstrap, mount and chroot" >&2
    exit 1
fi

if [ -z "${RABBITMQ4_NAMESPACE:-}" ]; then
    if [ ! -e "$CHROOT/.complete" ]; then
        if ! command -v debootstrap >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
        fi
        echo "Making $CHROOT: Debian $SUITE with rabbitmq-server, from $MIRROR ..."
        rm -rf --one-file-system "$CHROOT.partial"
        mkdir -p "$(dirname "$CHROOT")"
        log="$(dirname "$CHROOT")/debootstrap.log"
        if ! debootstrap --variant=minbase --include=rabbitmq-server "$SUITE" \
            "$CHROOT.partial" "$MIRROR" >"$log" 2>&1; then
            echo "error: debootstrap failed (DEBIAN_MIRROR=$MIRROR); its log: $log" >&2
            exit 1
        fi
        rm -rf --one-file-system "$CHROOT"
        mv "$CHROOT.partial" "$CHROOT"
        touch "$CHROOT/.complete"
    fi
    # Again, in a private mount namespace: what is mounted there goes away with it.
    RABBITMQ4_NAMESPACE=1 exec unshare --mount --propagation private "$0" "$@"
fi

export TMPDIR=/tmp  # the nodes' folders: the only temporary folder the chroot shares
for dir in /proc /sys /dev /tmp; do
    mount --bind "$dir" "$CHROOT$dir"
done
version="$(chroot "$CHROOT" dpkg-query -W -f '${Version}' rabbitmq-server)"
echo "RabbitMQ $version from Debian $SUITE, in $CHROOT"
RABBITMQ_CHROOT="$CHROOT" "$@"
