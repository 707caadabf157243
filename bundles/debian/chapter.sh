#!/bin/sh
# The tutorial chapter, on ociish: a root filesystem built by a package manager, entered in
# new mount/pid/uts/ipc/net namespaces, where helloworld.c is written, compiled with cc and
# run, while the host's files and processes stay out of reach.
# Usage: chapter.sh [OCIISH_COMMAND]   (default: ociish; as root)
# Exits non-zero if any of the chapter's claims does not hold.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ociish=${1:-ociish}
id=chapter-$$
work=$(mktemp -d /tmp/ociish-chapter.XXXXXX)
trap '$ociish delete --force "$id" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

step "1. A Debian rootfs with gcc, libc6-dev and vim, built once per machine"
rootfs=$(sh "$here/build-rootfs.sh")
echo "rootfs: $rootfs ($(du -sh "$rootfs" | cut -f1))"

step "2. A bundle on it: the rootfs shared read-only, a writable layer of the container's own"
# What the container runs comes from the host through a read-only bind mount.
mkdir "$work/chapter"
cat > "$work/chapter/inside.sh" <<'INSIDE'
set -eu
echo "I am $(hostname), pid $$, in $(pwd)"
cat > helloworld.c <<'C'
#include <stdio.h>

int main(void)
{
    printf("Hello, World!\n");
    return 0;
}
C
cc helloworld.c -o helloworld && ./helloworld
echo "processes I can see:"
ps -e -o pid=,comm= | sed 's/^/    /'
echo "I see $(ps -e --no-headers | wc -l) processes; the host has $HOST_PROCESSES"
echo "network interfaces: $(ls /sys/class/net | tr '\n' ' ')"
echo "/tmp is a $(stat -f -c %T /tmp)"
limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
echo "memory limit: $limit bytes"
if [ -e "$HOST_FILE" ]; then echo "the host's $HOST_FILE is visible"; exit 1; fi
echo "the host's $HOST_FILE is not here"
if touch /chapter/x 2>/dev/null; then echo "wrote into the host's /chapter"; exit 1; fi
echo "the host's /chapter is read-only"
INSIDE
host_file=$work/host-file  # on the host's /tmp; the container's /tmp is a tmpfs of its own
touch "$host_file"
host_had_hello=$(test -e /root/helloworld.c && echo yes || echo no)
host_processes=$(ls -d /proc/[0-9]* | wc -l)
set -x
$ociish bundle create "$work/bundle" --base "$rootfs" --overlay --no-terminal \
    --namespaces mount,pid,uts,ipc,net --hostname chapter --tmpfs /tmp --memory 256m \
    --mount "$work/chapter:/chapter:ro" --env "HOST_FILE=$host_file" \
    --env "HOST_PROCESSES=$host_processes" --cwd /root --args sh /chapter/inside.sh
{ set +x; } 2>/dev/null

step "3. Inside the container"
$ociish run --bundle "$work/bundle" "$id" > "$work/out" || { cat "$work/out"; fail "the container failed"; }
sed 's/^/    /' "$work/out"
grep -qx "Hello, World!" "$work/out" || fail "no Hello, World!"
seen=$(sed -n 's/^I see \([0-9]*\) processes.*/\1/p' "$work/out")
[ "$seen" -le 5 ] || fail "the container saw $seen processes"
grep -qx "    *1 sh" "$work/out" || fail "the container's sh is not its pid 1"
grep -qx "network interfaces: lo " "$work/out" || fail "the container has more than loopback"
grep -qx "/tmp is a tmpfs" "$work/out" || fail "/tmp is not a tmpfs"
grep -qx "memory limit: 268435456 bytes" "$work/out" || fail "no 256 MiB memory limit"

step "4. Back on the host"
upper=$work/bundle/overlay/upper/root
[ -x "$upper/helloworld" ] && [ -f "$upper/helloworld.c" ] || fail "the container's files are not in its own layer"
echo "the container's helloworld.c and helloworld are in its own layer: $upper"
[ ! -e "$rootfs/root/helloworld.c" ] || fail "the shared rootfs was changed"
echo "the shared rootfs has no helloworld.c: it was not written to"
[ "$(test -e /root/helloworld.c && echo yes || echo no)" = "$host_had_hello" ] || fail "the host's /root changed"
echo "the host's /root is as it was"
if grep -q " $work/bundle" /proc/self/mountinfo; then fail "a mount of the container is left on the host"; fi
echo "nothing of the container is mounted on the host"
