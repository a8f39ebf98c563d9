#!/usr/bin/env bash
# make test-rabbitmq4: run a command (the suite) with its throwaway RabbitMQ nodes taken
# from Debian 13's packages, RabbitMQ 4.0 on Erlang 27, whatever this machine runs.
#
#   tools/rabbitmq4.sh COMMAND...      e.g. tools/rabbitmq4.sh .venv/bin/pytest -n 2
#
# The packages live in a chroot that debootstrap makes (about 370 MB, under a minute
# here), kept between runs in RABBITMQ4_CHROOT, outside the repository. /tmp, where the
# nodes keep their folders, is shared with it; /proc, /sys and /dev are mounted in it
# for the run and unmounted afterwards. Needs root (chroot, mount, debootstrap).
set -euo pipefail

CHROOT="${RABBITMQ4_CHROOT:-/var/cache/messaging-patterns/rabbitmq4-trixie}"
SUITE=trixie
# The Debian mirror that apt uses here; Debian's own if none is configured.
MIRROR="$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
    /etc/apt/sources.list.d/ 2>/dev/null | head -n 1 | tr -d ' ' || true)"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

if [ "$(id -u)" != 0 ]; then
    echo "error: tools/rabbitmq4.sh needs root, for debootstrap, mount and chroot" >&2
    exit 1
fi

if [ ! -e "$CHROOT/.complete" ]; then
    if ! command -v debootstrap >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
    fi
    echo "Making $CHROOT: Debian $SUITE with rabbitmq-server, from $MIRROR ..."
    rm -rf "$CHROOT.partial"
    mkdir -p "$(dirname "$CHROOT")"
    debootstrap --variant=minbase --include=rabbitmq-server "$SUITE" "$CHROOT.partial" \
        "$MIRROR" >"$(dirname "$CHROOT")/debootstrap.log" 2>&1 || {
        echo "error: debootstrap failed; its log: $(dirname "$CHROOT")/debootstrap.log" >&2
        exit 1
    }
    rm -rf "$CHROOT"
    mv "$CHROOT.partial" "$CHROOT"
    touch "$CHROOT/.complete"
fi

mounted=()
unmount() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}"
    done
}
trap unmount EXIT
for dir in /proc /sys /dev /tmp; do
    if ! mountpoint -q "$CHROOT$dir"; then
        mount --bind "$dir" "$CHROOT$dir"
        mounted+=("$CHROOT$dir")
    fi
done

version="$(chroot "$CHROOT" dpkg-query -W -f '${Version}' rabbitmq-server)"
echo "RabbitMQ $version from Debian $SUITE, in $CHROOT"
RABBITMQ_CHROOT="$CHROOT" "$@"
