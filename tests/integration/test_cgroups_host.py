"""CgroupManager against this host's real cgroups (root only).

Every test uses a unique cgroup and removes it in a fixture even when it fails; the
fixture then asserts that no directory is left in any hierarchy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest

from ociish.cgroups import CgroupManager, detect_mode
from ociish.errors import ConfigError, OciishError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create cgroups")

try:
    MODE = detect_mode()
except OciishError:
    MODE = None


def _read(directory: str, name: str) -> str:
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()


def _unified_root(m: CgroupManager) -> str | None:
    leaf = m.path_for("")
    return leaf[: len(leaf) - len(m.cgroup)] if leaf else None


@pytest.fixture
def cleanup():
    """Collects managers and processes; kills, thaws and destroys them whatever happened."""
    managers: list[CgroupManager] = []
    procs: list[subprocess.Popen] = []
    subtree: dict[str, str] = {}

    def track(m: CgroupManager) -> CgroupManager:
        root = _unified_root(m)
        if root and root not in subtree:
            subtree[root] = _read(root, "cgroup.subtree_control")
        managers.append(m)
        return m

    yield track, procs
    for proc in procs:
        proc.kill()
        proc.wait()
    for m in managers:
        if m.is_frozen():
            m.thaw()
        m.destroy()
    for m in managers:
        # A shared parent such as /ociish may stay only while another container lives in it.
        leftovers = [
            d for d in {*m.created, *m.dirs.values()}
            if os.path.isdir(d) and (d in m.dirs.values() or not any(e.is_dir() for e in os.scandir(d)))
        ]
        assert leftovers == [], f"cgroup directories left behind: {leftovers}"
    for root, before in subtree.items():
        # create() delegated the unified tree's controllers; undo that if nothing else uses them now.
        added = set(_read(root, "cgroup.subtree_control").split()) - set(before.split())
        if added and not any(e.is_dir() for e in os.scandir(root)):
            try:
                with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                    f.write(" ".join(f"-{c}" for c in added))
            except OSError:
                pass


def _unique_id() -> str:
    return f"ociish-test-{uuid.uuid4().hex[:12]}"


@pytest.mark.skipif(MODE is None, reason="no cgroups mounted")
def test_lifecycle(cleanup):
    track, procs = cleanup
    cid = _unique_id()
    m = track(CgroupManager.for_container(cid, f"/{cid}"))
    assert m.mode == MODE
    m.create()
    assert all(os.path.isdir(d) for d in m.dirs.values())

    child = subprocess.Popen(["sleep", "1000"])
    procs.append(child)
    m.join(child.pid)
    assert m.pids() == [child.pid]

    resources = {
        "memory": {"limit": 64 << 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "pids": {"limit": 32},
        "devices": [{"allow": False, "access": "rwm"}],
    }
    if MODE != "v1" and "hugetlb" in _read(_unified_root(m) or "/", "cgroup.controllers").split():
        resources["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 << 20}]
    if MODE == "v2":
        del resources["devices"]  # the v2 device filter is not implemented yet
    m.apply(resources)

    if MODE == "v2":
        leaf = m.path_for("")
        assert _read(leaf, "memory.max") == str(64 << 20)
        assert _read(leaf, "cpu.weight") == "59"
        assert _read(leaf, "cpu.max") == "50000 100000"
        assert _read(leaf, "pids.max") == "32"
    else:
        assert _read(m.path_for("memory"), "memory.limit_in_bytes") == str(64 << 20)
        assert _read(m.path_for("cpu"), "cpu.shares") == "512"
        assert _read(m.path_for("cpu"), "cpu.cfs_quota_us") == "50000"
        assert _read(m.path_for("cpu"), "cpu.cfs_period_us") == "100000"
        assert _read(m.path_for("pids"), "pids.max") == "32"
        allowed = _read(m.path_for("devices"), "devices.list").splitlines()
        assert "a *:* rwm" not in allowed
        assert "c 1:3 rwm" in allowed and "c *:* m" in allowed and "c 136:* rwm" in allowed
        assert not any(line.startswith("c 1:11 ") for line in allowed)  # /dev/kmsg denied
        probe = subprocess.run(
            ["sh", "-c", "head -c1 /dev/zero >/dev/null && ! head -c1 /dev/kmsg 2>/dev/null"],
            preexec_fn=lambda: m.join(os.getpid()),
        )
        assert probe.returncode == 0, "the device rules were not enforced"
    if "hugepageLimits" in resources:
        assert _read(m.path_for(""), "hugetlb.2MB.max") == str(4 << 20)

    with pytest.raises(ConfigError, match=r"linux\.resources\.memory\.useHierarchy"):
        m.apply({"memory": {"useHierarchy": False}})  # the kernel (v1) or the mapping (v2) refuses it

    m.freeze()
    assert m.is_frozen()
    m.thaw()
    assert not m.is_frozen()

    assert child.pid in m.pids()
    m.kill_all(signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL

    again = CgroupManager.from_record(m.to_record())
    again.destroy()
    assert not any(os.path.exists(d) for d in m.dirs.values())
    assert not any(os.path.exists(d) for d in m.created)


@pytest.mark.skipif(MODE is None, reason="no cgroups mounted")
def test_kill_all_with_sigterm_while_paused(cleanup):
    track, procs = cleanup
    cid = _unique_id()
    m = track(CgroupManager.for_container(cid, f"/{cid}/nested"))
    m.create()
    child = subprocess.Popen(["sleep", "1000"])
    procs.append(child)
    m.join(child.pid)
    m.freeze()
    m.kill_all(signal.SIGTERM)
    assert m.is_frozen()  # a paused container stays paused
    m.thaw()
    assert child.wait(timeout=10) == -signal.SIGTERM
    m.destroy()
    assert not any(os.path.exists(d) for d in m.created)


@pytest.mark.skipif(MODE is None, reason="no cgroups mounted")
def test_busy_cgroup_is_refused_and_default_path(cleanup):
    track, procs = cleanup
    cid = _unique_id()
    m = track(CgroupManager.for_container(cid, None))
    assert m.cgroup == f"/ociish/{cid}"
    m.create()
    child = subprocess.Popen(["sleep", "1000"])
    procs.append(child)
    m.join(child.pid)
    intruder = CgroupManager.for_container("intruder", f"/ociish/{cid}")
    with pytest.raises(ConfigError, match=r"^linux\.cgroupsPath: .* already exists and has processes"):
        intruder.create()
    assert intruder.created == []
    assert all(os.path.isdir(d) for d in m.dirs.values())
