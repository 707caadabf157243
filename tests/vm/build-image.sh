#!/usr/bin/env bash
# Build the test guest's disk image if it is not cached, and print its path.
#
# usage: tests/vm/build-image.sh CHECKOUT KERNEL-VERSION
#
# The guest is Debian bookworm from debootstrap with the packages of packages.txt, systemd as
# PID 1 on the pure cgroup v2 hierarchy (Debian's default), the modules of the host's kernel
# KERNEL-VERSION (the guest boots that kernel from /boot), and a Python venv with the project's
# dependencies, built as wheels on the host: the guest has no network.  The image is an ext4
# file system in a raw file, cached in $OCIISH_VM_CACHE (default /var/cache/ociish/vm) under a
# hash of everything it is made from, so a rerun skips all of this.
set -euo pipefail
checkout=$1
kver=$2
here=$(cd "$(dirname "$0")" && pwd)
cache=${OCIISH_VM_CACHE:-/var/cache/ociish/vm}
suite=bookworm

log() { printf 'vm: %s\n' "$*" >&2; }

# The project's dependencies and test extra, then the guest-only ones.
requirements() {
    python3 - "$checkout/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["test"]))
PY
    grep -v '^\s*\(#\|$\)' "$here/requirements.txt" || true
}

# The Debian mirror this host's apt uses (debootstrap gets the same one), unless told.
mirror() {
    if [ -n "${OCIISH_VM_MIRROR:-}" ]; then echo "$OCIISH_VM_MIRROR"; return; fi
    local uris
    uris=$(sed -nE 's/^URIs:\s*(\S+).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
           sed -nE 's/^deb\s+(\[[^]]*\]\s+)?(\S+).*/\2/p' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    uris=$(grep -E '/debian/?$' <<<"$uris" || true)
    echo "${uris%%$'\n'*}" | grep . || echo http://deb.debian.org/debian
}

key=$( { echo "$suite $kver"; cat "$here/packages.txt"; requirements; cat "$here/build-image.sh";
         find "$here/guest" -type f | sort | xargs cat; } | sha256sum | cut -c1-16)
image=$cache/guest-$key.raw
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # one build at a time; a second caller waits and then finds the image
if [ -f "$image" ]; then
    echo "$image"
    exit 0
fi

started=$(date +%s)
work=$(mktemp -d /var/tmp/ociish-vm-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mirror=$(mirror)
log "building the guest image $image (debootstrap $suite from $mirror)"
packages=$(grep -v '^\s*\(#\|$\)' "$here/packages.txt" | paste -sd, -)
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -30 "$work/debootstrap.log" >&2
    log "debootstrap failed"
    exit 1
}

log "copying the modules of kernel $kver"
[ -d "/lib/modules/$kver" ] || { log "/lib/modules/$kver is missing (apt-get install linux-image-amd64)"; exit 1; }
mkdir -p "$root/usr/lib/modules"
cp -a "/lib/modules/$kver" "$root/usr/lib/modules/"

log "building the guest's Python wheels"
requirements >"$work/requirements.txt"
python3 -m venv "$work/pip"
"$work/pip/bin/pip" wheel -q -w "$root/tmp/wheels" -r "$work/requirements.txt" >&2
cp "$work/requirements.txt" "$root/tmp/requirements.txt"

log "provisioning the guest"
cp -r "$here/guest" "$root/tmp/guest"
# A clean environment: the host's (pip settings, locale) means nothing in the guest.
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root chroot "$root" /bin/bash /tmp/guest/provision.sh >&2
rm -rf "$root/tmp/guest" "$root/tmp/wheels" "$root/tmp/requirements.txt"

log "making the ext4 image"
# Sparse: the file system has room for container images and test data, the file holds only what is used.
mkfs.ext4 -q -F -L ociish-vm -d "$root" "$work/image.raw" 8G >&2
mv "$work/image.raw" "$image"
log "guest image built in $(( $(date +%s) - started )) s"
echo "$image"
