#!/bin/sh
# Disk and time for N containers from one Debian base, each compiling and running
# helloworld.c: N overlay bundles sharing the base vs N bundles with a copy of it.
# The figures in docs/rootfs.md come from this script.
# Usage: measure-disk.sh [N] [OCIISH_COMMAND]   (defaults: 50, ociish; as root; needs N x the
# rootfs size free under /var/tmp for the copies)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-50}
ociish=${2:-ociish}
rootfs=$(sh "$here/build-rootfs.sh")
work=$(mktemp -d /var/tmp/ociish-measure.XXXXXX)
trap 'rm -rf "$work"' EXIT
hello='cd /root && printf "#include <stdio.h>\nint main(void) { puts(\"Hello, World!\"); return 0; }\n" > helloworld.c && cc helloworld.c -o helloworld && ./helloworld'
now() { date +%s.%N; }
mib() { du -sk "$1" | awk '{ printf "%.1f", $1 / 1024 }'; }

# one bundle per container: make it, run helloworld in it, and check it said hello
make_and_run() {  # KIND DIR
    case $1 in
    overlay) $ociish bundle create "$2" --base "$rootfs" --overlay --no-terminal --args sh -c "$hello" ;;
    copy) mkdir "$2" && cp -a "$rootfs" "$2/rootfs" && $ociish spec -b "$2" --no-readonly --no-terminal --args sh -c "$hello" ;;
    esac
    [ "$($ociish run --bundle "$2" "measure-$$-$(basename "$2")")" = "Hello, World!" ] || { echo "no hello from $2" >&2; exit 1; }
}

for kind in overlay copy; do
    mkdir "$work/$kind"
    start=$(now)
    i=1
    while [ $i -le "$n" ]; do
        make_and_run "$kind" "$work/$kind/c$i"
        i=$((i + 1))
    done
    sync
    printf '%-8s %3d containers: %6s MiB on disk, %5.1f s to make and run them all\n' \
        "$kind" "$n" "$(mib "$work/$kind")" "$(echo "$(now) - $start" | bc)"
    rm -rf "$work/$kind"
done
echo "base rootfs: $(mib "$rootfs") MiB"
