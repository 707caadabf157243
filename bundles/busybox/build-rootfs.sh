#!/bin/sh
# Build a small busybox root filesystem for the example bundle.
# Usage: build-rootfs.sh [ROOTFS_DIR]   (default: rootfs/ next to this script)
# Needs Debian's busybox-static (a statically linked /bin/busybox).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rootfs=${1:-$here/rootfs}
busybox=${BUSYBOX:-/bin/busybox}

if [ ! -x "$busybox" ]; then
    echo "build-rootfs.sh: $busybox not found; install busybox-static" >&2
    exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
    echo "build-rootfs.sh: $busybox is dynamically linked; install busybox-static" >&2
    exit 1
fi

mkdir -p "$rootfs"
cd "$rootfs"
mkdir -p bin sbin usr/bin usr/sbin etc root tmp proc sys dev home var/tmp
chmod 1777 tmp var/tmp
cp "$busybox" bin/busybox
chmod 0755 bin/busybox
# One symlink per applet, in the directory busybox itself reports for it.
for applet in $("$busybox" --list-full); do
    [ -e "$applet" ] || [ -L "$applet" ] || ln -s /bin/busybox "$applet"
done
cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
daemon:x:1:
nogroup:x:65534:
GROUP
echo "busybox rootfs for ociish" > etc/motd
echo "built $rootfs" >&2
