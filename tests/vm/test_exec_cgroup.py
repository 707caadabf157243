"""`exec --cgroup` on pure cgroup v2: a process has one cgroup there, so both forms name one
sub-cgroup of the container's, and a controller must be one the container's cgroup has."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Bundle, Runtime, unique_id


def test_exec_into_a_sub_cgroup_on_cgroup_v2(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    record = json.loads((runtime.root / cid / "state.json").read_text())["cgroup"]
    assert record["mode"] == "v2", record
    leaf = Path(record["paths"][""])
    (leaf / "sub").mkdir()
    (leaf / "other").mkdir()

    def cgroup_of(*options: str) -> str:
        result = runtime("exec", *options, cid, "cat", "/proc/self/cgroup")
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    # the container has a cgroup namespace of its own here: paths are relative to its cgroup
    assert cgroup_of() == "0::/"
    assert cgroup_of("--cgroup", "sub") == "0::/sub"
    assert "memory" in (leaf / "cgroup.controllers").read_text().split()
    assert cgroup_of("--cgroup", "memory,pids:sub") == "0::/sub"
    refused = {
        ("--cgroup", "cpuacct:sub"): "unknown controller cpuacct",  # a v1-only name
        ("--cgroup", "memory:sub", "--cgroup", "pids:other"): "on cgroup v2 a process has one cgroup",
        ("--cgroup", "missing"): "does not exist",
    }
    for options, message in refused.items():
        result = runtime("exec", *options, cid, "true")
        assert result.returncode == 255 and message in result.stderr, (options, result.stderr)
