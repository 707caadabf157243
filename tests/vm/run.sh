#!/usr/bin/env bash
# Run the guest test suite: a Debian bookworm VM with systemd as PID 1 on pure cgroup v2.
#
# usage: tests/vm/run.sh [--checkout DIR] [-- PYTEST-ARGS...]      (as root)
#
# Builds the guest image if it is not cached (build-image.sh), boots the host's newest
# /boot/vmlinuz-* in it under qemu's software emulation (TCG), and runs pytest there on a
# copy of the checkout (default: the one holding this script; PYTEST-ARGS default: tests/vm).
# The checkout is shared read-only over virtio-9p; pytest's output comes back through a
# second share.  Exits with pytest's status; a guest that does not boot or does not finish
# within $OCIISH_VM_TIMEOUT seconds (default 2700) fails.
# Needs: apt-get install qemu-system-x86 linux-image-amd64 debootstrap
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "$here/../.." && pwd)
while [ $# -gt 0 ]; do
    case $1 in
        --checkout) checkout=$(cd "$2" && pwd); shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [--checkout DIR] [-- PYTEST-ARGS...]" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || set -- tests/vm

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)
[ -n "$kernel" ] || { echo "vm: no kernel in /boot (apt-get install linux-image-amd64)" >&2; exit 1; }
kver=${kernel#/boot/vmlinuz-}
initrd=/boot/initrd.img-$kver

started=$(date +%s)
image=$("$here/build-image.sh" "$checkout" "$kver")
built=$(date +%s)

results=$(mktemp -d /tmp/ociish-vm.XXXXXX)
printf '%s\0' "$@" >"$results/args"
echo "vm: booting $kver with $image (TCG); output in $results" >&2
# pytest's output as it comes (the guest writes it to the results share)
tail -n +1 -F "$results/pytest.log" 2>/dev/null &
follower=$!
status=0
# TCG, not KVM: on the machines this runs on /dev/kvm exists but a KVM guest hangs at kernel
# start.  The image is opened with snapshot=on, so the cached file never changes.
timeout -k 10 "${OCIISH_VM_TIMEOUT:-2700}" qemu-system-x86_64 \
    -accel tcg -cpu max -smp 2 -m 3072 -nodefaults -display none -no-reboot -nic none \
    -serial "file:$results/console.log" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "root=/dev/vda rw console=ttyS0 panic=-1 hugepages=16 loglevel=4" \
    -drive "file=$image,format=raw,if=virtio,snapshot=on" \
    -virtfs "local,path=$checkout,mount_tag=checkout,security_model=none,readonly=on" \
    -virtfs "local,path=$results,mount_tag=results,security_model=none" || status=$?
finished=$(date +%s)
sleep 1  # the last lines reach the follower
kill "$follower" 2>/dev/null || true
wait "$follower" 2>/dev/null || true

if [ ! -f "$results/status" ]; then
    tail -40 "$results/console.log" >&2 || true
    if [ "$status" = 124 ]; then
        echo "vm: the guest did not finish within ${OCIISH_VM_TIMEOUT:-2700} s" >&2
    else
        echo "vm: the guest stopped (qemu status $status) without a test result" >&2
    fi
    exit 1
fi
echo "vm: image ready in $((built - started)) s, guest booted in $(cut -d. -f1 "$results/booted") s," \
     "whole run in $((finished - built)) s; logs in $results" >&2
tail -1 "$results/pytest.log"
exit "$(cat "$results/status")"
