"""Load and soak: many containers at once, and many run cycles one after another, leave
the host (state, cgroups, mounts, processes) and the runtime's own fds as they found them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Bundle, Runtime, unique_id

WORKERS = 8  # clients at a time: enough to overlap, few enough for a 2-core machine

# `ociish run` in-process, cycle after cycle: the runtime's own fds are then those of one
# long-lived process, and must not grow.  Measured after the first cycle, once the lazy
# imports, the log and the caches are in place.
SOAK = r"""
import json, os, sys, time
from ociish import cli

root, bundle, prefix, cycles = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def fds():
    return {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")}


def children():
    me = str(os.getpid())
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[1] == me:
                    found.append(pid)
        except OSError:
            pass
    return found


started = time.monotonic()
for i in range(cycles):
    code = cli.main(["--root", root, "run", "--bundle", bundle, f"{prefix}-{i}"])
    if code != 0:
        sys.exit(f"cycle {i}: run exited {code}")
    if i == 0:
        before = fds()
print(json.dumps({"seconds": time.monotonic() - started, "before": before, "after": fds(), "children": children()}))
"""


def in_parallel(runtime: Runtime, commands: list[tuple[str, ...]]) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(lambda args: runtime(*args, timeout=300), commands))


@pytest.mark.slow
def test_two_hundred_containers_wait_together_then_start_and_go(runtime: Runtime, bundle: Bundle, host) -> None:
    bundle.args("sleep", "1000")
    ids = [unique_id("load") for _ in range(200)]
    timings = {}
    for phase, commands in (("create", [("create", "--bundle", str(bundle.path), cid) for cid in ids]),
                            ("start", [("start", cid) for cid in ids]),
                            ("delete", [("delete", "--force", cid) for cid in ids])):
        started = time.monotonic()
        results = in_parallel(runtime, commands)
        timings[phase] = time.monotonic() - started
        failed = [(args, r.stderr) for args, r in zip(commands, results) if r.returncode != 0]
        assert not failed, failed[:5]
        if phase != "delete":
            states = {c["id"]: c["status"] for c in json.loads(runtime("list", "--format", "json").stdout)}
            assert states == {cid: "created" if phase == "create" else "running" for cid in ids}
    host.assert_clean(ids, [runtime.root], what="by 200 containers")
    print("200 containers: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


@pytest.mark.parametrize("cycles", [pytest.param(1000, marks=pytest.mark.slow), 10])
def test_run_cycles_leak_nothing(runtime: Runtime, bundle: Bundle, host, cycles: int) -> None:
    bundle.args("true")
    prefix = unique_id("soak")
    result = subprocess.run([sys.executable, "-c", SOAK, str(runtime.root), str(bundle.path), prefix, str(cycles)],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["after"] == report["before"], "the runtime's fds grew"
    assert report["children"] == [], "unreaped children (zombies) of the runtime"
    host.assert_clean([f"{prefix}-{i}" for i in range(cycles)], [runtime.root], what=f"by {cycles} run cycles")
    print(f"{cycles} run cycles: {report['seconds']:.1f}s, {report['seconds'] / cycles * 1000:.0f} ms each")
