"""`exec --cgroup` on this host (hybrid: v1 controllers, name=systemd and a cgroup2 tree):
the exec'd process starts in an existing sub-cgroup of the container's, in every hierarchy
or in the named controllers' only; what runc refuses is refused before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Runtime


def hierarchies(runtime: Runtime, cid: str) -> dict[str, Path]:
    """controller ("" for the cgroup2 tree) → the container's directory, from state.json."""
    record = json.loads((runtime.root / cid / "state.json").read_text())["cgroup"]
    return {controller: Path(path) for controller, path in record["paths"].items()}


def cgroup_of_exec(runtime: Runtime, cid: str, *options: str) -> dict[str, str]:
    """/proc/self/cgroup of a process exec'd with ``options``: controllers → path."""
    result = runtime("exec", *options, cid, "cat", "/proc/self/cgroup")
    assert result.returncode == 0, result.stderr
    return {controllers: path for _, controllers, path in (line.split(":", 2) for line in result.stdout.splitlines())}


def make_sub_cgroup(directory: Path, name: str) -> None:
    """What a container's cgroup manager would do: a v1 cpuset needs its cpus and mems."""
    (directory / name).mkdir(exist_ok=True)
    for knob in ("cpuset.cpus", "cpuset.mems"):
        if (directory / knob).exists():
            (directory / name / knob).write_text((directory / knob).read_text())


def test_a_sub_cgroup_in_every_hierarchy(runtime: Runtime, running: str) -> None:
    dirs = hierarchies(runtime, running)
    for directory in dict.fromkeys(dirs.values()):
        make_sub_cgroup(directory, "sub")
    seen = cgroup_of_exec(runtime, running, "--cgroup", "sub")
    assert seen and all(path.endswith(f"/{running}/sub") for path in seen.values()), seen
    assert "" in seen and "name=systemd" in seen  # the cgroup2 tree and systemd's hierarchy too


def test_a_sub_cgroup_of_some_controllers(runtime: Runtime, running: str) -> None:
    dirs = hierarchies(runtime, running)
    for controller in ("memory", "pids", "cpu"):
        make_sub_cgroup(dirs[controller], "a")
    make_sub_cgroup(dirs["cpu"], "b")
    seen = cgroup_of_exec(runtime, running, "--cgroup", "memory,pids:a", "--cgroup", "cpu:/b")
    assert seen["memory"].endswith(f"/{running}/a") and seen["pids"].endswith(f"/{running}/a"), seen
    assert seen["cpu"].endswith(f"/{running}/b"), seen
    others = {c: p for c, p in seen.items() if c not in ("memory", "pids", "cpu")}
    assert others and all(path.endswith(f"/{running}") for path in others.values()), seen


@pytest.mark.parametrize(("options", "message"), [
    (["--cgroup", "missing"], "the sub-cgroup"),
    (["--cgroup", "memory:missing"], "does not exist"),
    (["--cgroup", "nosuchcontroller:sub"], "unknown controller nosuchcontroller"),
    (["--cgroup", ",memory:sub"], "empty controller name"),
    (["--cgroup", "memory:sub", "--cgroup", "memory,pids:sub"], "controller memory given more than once"),
    (["--cgroup", "sub", "--cgroup", "pids:sub"], "must be the only --cgroup"),
    (["--cgroup", "../.."], "is not a sub-cgroup of the container's cgroup"),
])
def test_refused_before_anything_starts(runtime: Runtime, running: str, options: list[str], message: str) -> None:
    dirs = hierarchies(runtime, running)
    before = (dirs["pids"] / "cgroup.procs").read_text()
    result = runtime("exec", *options, running, "touch", "/ran")
    assert result.returncode == 255 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (dirs["pids"] / "cgroup.procs").read_text() == before
    assert runtime("exec", running, "test", "-e", "/ran").returncode == 1  # the command never ran
