#!/bin/sh
# Build a Debian bookworm root filesystem with gcc, libc6-dev and an editor, once per
# machine: the tutorial chapter's `dnf --installroot ... install vim gcc`, on Debian.
#
# Usage: build-rootfs.sh [ROOTFS_DIR]
#   Prints the rootfs path on stdout; progress goes to stderr.  Without ROOTFS_DIR the
#   rootfs is cached under /var/cache/ociish/debian-rootfs/, keyed by suite, architecture,
#   mirror and package list, so a second run (or another checkout) returns at once.
# Needs root.  Installs debootstrap with apt if it is missing, and downloads from the
# Debian mirror this machine's apt already uses (DEBIAN_MIRROR overrides it).
set -eu

suite=bookworm
packages=gcc,libc6-dev,vim-tiny,procps
cache=/var/cache/ociish/debian-rootfs

die() { echo "build-rootfs.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap creates device nodes and chowns files)"

# The first "deb" source for $suite with the main component, from the one-line
# sources.list format or the deb822 *.sources format.
apt_mirror() {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk -v suite="$suite" '
            $1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                          if ($(i + 1) == suite) { for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i; exit } } }
        ' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk -v suite="$suite" '
            function flush() { if (deb && main && has_suite && uri != "") { print uri; found = 1 }
                               deb = main = has_suite = 0; uri = "" }
            found { exit }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) has_suite = 1 }
            tolower($1) == "components:" { for (i = 2; i <= NF; i++) if ($i == "main") main = 1 }
            tolower($1) == "enabled:" && tolower($2) == "no" { deb = 0 }
            END { if (!found) flush() }
        ' "$f"
    done
}

mirror=${DEBIAN_MIRROR:-$(apt_mirror | head -n 1)}
[ -n "$mirror" ] || die "no 'deb' source for $suite main in /etc/apt/sources.list*; set DEBIAN_MIRROR"
arch=$(dpkg --print-architecture)

if [ $# -ge 1 ]; then
    rootfs=$1
else
    key=$(printf '%s\n' "$suite" "$arch" "$mirror" "$packages" | sha256sum | cut -c1-12)
    rootfs=$cache/$suite-$arch-$key/rootfs
fi
if [ -x "$rootfs/usr/bin/gcc" ]; then
    echo "$rootfs"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "installing debootstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap debian-archive-keyring >/dev/null \
        || die "apt-get install debootstrap failed"
fi
# apt's proxy settings, if any, for debootstrap's downloads
eval "$(apt-config shell http_proxy Acquire::http::Proxy https_proxy Acquire::https::Proxy)"
[ -n "${http_proxy:-}" ] && export http_proxy
[ -n "${https_proxy:-}" ] && export https_proxy

parent=$(dirname "$rootfs")
mkdir -p "$parent"
# One builder per rootfs; a second caller waits and then finds the finished tree.
exec 9>"$rootfs.lock"
flock 9
if [ -x "$rootfs/usr/bin/gcc" ]; then
    echo "$rootfs"
    exit 0
fi

[ ! -e "$rootfs" ] || die "$rootfs exists but is not a finished build (no usr/bin/gcc); remove it first"
partial=$rootfs.partial
log=$rootfs.log
# A build that was interrupted may have left proc/sys mounted inside: unmount, and never
# let rm cross into another filesystem.
if [ -e "$partial" ]; then
    findmnt -rn -o TARGET | grep -F "$partial/" | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf --one-file-system "$partial"
fi

echo "debootstrap $suite ($arch) from $mirror with $packages into $rootfs (log: $log)" >&2
start=$(date +%s)
if ! debootstrap --variant=minbase --arch="$arch" --include="$packages" "$suite" "$partial" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "debootstrap failed (full log: $log)"
fi
# downloaded .debs and apt lists are not part of the image
rm -rf "$partial"/var/cache/apt/archives/*.deb "$partial"/var/lib/apt/lists/*
mv "$partial" "$rootfs"
echo "built $rootfs in $(($(date +%s) - start)) s ($(du -sh "$rootfs" | cut -f1))" >&2
echo "$rootfs"
