"""`exec --cgroup` resolution against fake cgroup trees: v1 with co-mounted controllers, v2."""

from __future__ import annotations

from pathlib import Path

import pytest

from ociish.cgroups import subcgroup
from ociish.errors import OciishError


def resolve(options: list[str], mode: str, dirs: dict[str, Path]) -> dict[str, str]:
    return subcgroup.targets(subcgroup.parse(options), mode, {c: str(d) for c, d in dirs.items()})


@pytest.fixture
def v1(tmp_path: Path) -> dict[str, Path]:
    """cpu and cpuacct co-mounted, memory alone; the container's cgroup is c/ in each."""
    dirs = {"cpu": tmp_path / "cpu,cpuacct/c", "cpuacct": tmp_path / "cpu,cpuacct/c", "memory": tmp_path / "memory/c"}
    for directory in dirs.values():
        (directory / "sub").mkdir(parents=True, exist_ok=True)
        (directory / "other").mkdir(exist_ok=True)
    return dirs


@pytest.fixture
def v2(tmp_path: Path) -> dict[str, Path]:
    leaf = tmp_path / "c"
    (leaf / "sub").mkdir(parents=True)
    (leaf / "other").mkdir()
    (leaf / "cgroup.controllers").write_text("cpu memory pids\n")
    return {"": leaf}


def test_v1_forms(v1: dict[str, Path]) -> None:
    cpu, memory = str(v1["cpu"]), str(v1["memory"])
    assert resolve(["sub"], "v1", v1) == {cpu: cpu + "/sub", memory: memory + "/sub"}
    assert resolve(["memory:/sub"], "v1", v1) == {memory: memory + "/sub"}
    assert resolve(["cpu,cpuacct:sub"], "v1", v1) == {cpu: cpu + "/sub"}
    assert resolve(["memory:sub/.."], "v1", v1) == {memory: memory}


def test_v2_forms(v2: dict[str, Path]) -> None:
    leaf = str(v2[""])
    assert resolve(["sub"], "v2", v2) == {leaf: leaf + "/sub"}
    assert resolve(["memory,pids:sub"], "v2", v2) == {leaf: leaf + "/sub"}


@pytest.mark.parametrize(("mode", "options", "message"), [
    ("v1", ["cpu:sub", "cpuacct:other"], "holds several controllers"),
    ("v1", ["pids:sub"], "unknown controller pids (the container's cgroup has cpu, cpuacct, memory)"),
    ("v1", ["memory:../../cpu,cpuacct/c"], "is not a sub-cgroup"),
    ("v1", ["memory:missing"], "the sub-cgroup"),
    ("v1", [":sub"], "empty controller name"),
    ("v2", ["memory:sub", "pids:other"], "on cgroup v2 a process has one cgroup"),
    ("v2", ["cpuacct:sub"], "unknown controller cpuacct (the container's cgroup has cpu, memory, pids)"),
    ("v2", ["sub", "other"], "must be the only --cgroup"),
])
def test_refusals(v1: dict[str, Path], v2: dict[str, Path], mode: str, options: list[str], message: str) -> None:
    with pytest.raises(OciishError, match="^exec: --cgroup") as caught:
        resolve(options, mode, v1 if mode == "v1" else v2)
    assert message in caught.value.message
