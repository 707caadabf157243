#!/bin/sh
# Regenerate conformance/SCORECARD.md: the suite against ociish and against runc, side by side.
# Usage: conformance/update-scorecard.sh [PYTHON]   (run from anywhere, as root)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${1:-python3}
runc=$(command -v runc || echo /usr/sbin/runc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$here/.."
"$python" -m conformance --runtime "$runc" --json "$tmp/runc.json" > /dev/null
"$python" -m conformance scorecard --runtime "$here/../.venv/bin/ociish" --json "$tmp/ociish.json" \
    --results "$tmp/runc.json" --markdown conformance/SCORECARD.md > /dev/null
"$python" -m conformance compare --baseline "$tmp/runc.json" --candidate "$tmp/ociish.json"
