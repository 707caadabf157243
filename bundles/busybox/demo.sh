#!/bin/sh
# Walk the example busybox container through create → start → state → kill → delete,
# printing each command and what it returns.  Builds the rootfs first if needed.
# Usage: demo.sh [OCIISH_COMMAND]   (default: ociish)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ociish=${1:-ociish}
id=busybox-demo-$$

[ -x "$here/rootfs/bin/busybox" ] || sh "$here/build-rootfs.sh" "$here/rootfs"

step() { echo "+ ociish $*"; $ociish "$@"; }
status() { $ociish state "$id" | sed -n 's/.*"status": "\(.*\)".*/\1/p'; }

step create --bundle "$here" "$id"
step state "$id"
step start "$id"
sleep 0.5
echo "status: $(status)"
step kill "$id" TERM
i=0
while [ "$(status)" != stopped ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
echo "status: $(status)"
step delete "$id"
echo "+ ociish list"; $ociish list
