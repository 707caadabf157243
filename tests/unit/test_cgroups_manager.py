"""CgroupManager against fake cgroupfs trees (v1, hybrid, v2) in a temporary directory.

The fake seeds the files the kernel would create in each new cgroup, logs every
write, and emulates the few kernel behaviours the manager relies on: a v1 freezer
that passes through FREEZING, cgroup.events following cgroup.freeze, rmdir refusing
a cgroup that still has processes, and chosen writes being refused.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time

import pytest

from ociish.cgroups import CgroupManager, detect_mode, fs, manager
from ociish.cgroups.devices import normalize_rules
from ociish.errors import ConfigError, NotSupportedError, OciishError
from ociish.linux import syscalls

UNIFIED = manager.UNIFIED

V1_FILES = {
    "cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.cfs_burst_us": "0",
            "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0", "cpu.idle": "0"},
    "cpuacct": {"cpuacct.usage": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
               "memory.soft_limit_in_bytes": "9223372036854771712", "memory.swappiness": "60",
               "memory.use_hierarchy": "1", "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0"},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
    "freezer": {"freezer.state": "THAWED"},
    "pids": {"pids.max": "max"},
    # No blkio.weight: modern kernels only have the BFQ file, the manager must fall back.
    "blkio": {"blkio.bfq.weight": "100", "blkio.throttle.read_bps_device": ""},
    "hugetlb": {"hugetlb.2MB.limit_in_bytes": "0"},  # no rsvd file: an older kernel
    "name=systemd": {},
}
V1_COMMON = {"cgroup.procs": "", "tasks": "", "notify_on_release": "0"}
V1_ROOT_OVERRIDES = {"cpuset.cpus": "0-3", "cpuset.mems": "0"}

V2_FILES = {
    "cpu": {"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "memory": {"memory.max": "max", "memory.swap.max": "max", "memory.low": "0", "memory.current": "4096",
               "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0"},
    "io": {"io.max": "", "io.weight": "default 100"},  # no BFQ: the manager must fall back to io.weight
    "pids": {"pids.max": "max"},
    "hugetlb": {"hugetlb.2MB.max": "max", "hugetlb.2MB.rsvd.max": "max"},
    "rdma": {"rdma.max": ""},
}
V2_ROOT_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma"


class FakeCgroupFS:
    """A cgroupfs look-alike under tmp_path: the mkdir, rmdir and write_file of the syscall seam."""

    def __init__(self, tmp_path, monkeypatch, layout: str):
        self.root = str(tmp_path / "cgroup")
        self.mountinfo = str(tmp_path / "mountinfo")
        self.layout = layout
        self.log: list[tuple[str, str]] = []
        self.refuse: dict[str, list[int]] = {}  # file name → errnos to raise on the next writes
        self.mounts: dict[str, tuple[str, tuple[str, ...]]] = {}  # mount point → (fstype, controllers)
        if layout == "v2":
            self.mounts[self.root] = ("cgroup2", ())
        else:
            groups = [("cpu,cpuacct", ("cpu", "cpuacct"))] + [
                (c, (c,)) for c in ("cpuset", "memory", "devices", "freezer", "pids", "blkio")
            ]
            if layout == "v1":
                groups.append(("hugetlb", ("hugetlb",)))  # hybrid keeps hugetlb in cgroup2, like this host
            groups.append(("systemd", ("name=systemd",)))
            for name, controllers in groups:
                self.mounts[os.path.join(self.root, name)] = ("cgroup", controllers)
            if layout == "hybrid":
                self.mounts[os.path.join(self.root, "unified")] = ("cgroup2", ())
        lines = [f"31 1 0:28 / {self.root} rw - tmpfs tmpfs rw"] if layout != "v2" else []
        for i, (point, (fstype, controllers)) in enumerate(self.mounts.items()):
            options = ",".join(("rw",) + controllers)
            lines.append(f"{40 + i} 31 0:{40 + i} / {point} rw,relatime - {fstype} {fstype} {options}")
        with open(self.mountinfo, "w") as f:
            f.write("\n".join(lines) + "\n")
        real_write_file = syscalls.write_file
        self._real_mkdir, self._real_rmdir = syscalls.mkdir, syscalls.rmdir
        self._real_write = lambda path, value: real_write_file(path, value.encode())
        os.makedirs(self.root)
        for point, (fstype, controllers) in self.mounts.items():
            if point != self.root:
                self._real_mkdir(point)
            self._seed(point, root=True)
        # the kernel behind the syscall seam
        monkeypatch.setattr(syscalls, "mkdir", self._mkdir)
        monkeypatch.setattr(syscalls, "rmdir", self._rmdir)
        monkeypatch.setattr(syscalls, "write_file", self._write)
        monkeypatch.setattr(fs, "RMDIR_TIMEOUT", 0.05)
        monkeypatch.setattr(CgroupManager, "FREEZE_TIMEOUT", 0.5)
        real_sleep = time.sleep
        monkeypatch.setattr(time, "sleep", lambda seconds: (self.tick(), real_sleep(min(seconds, 0.001))))

    # -------------------------------------------------------------- fake kernel

    def _mount_of(self, path: str) -> str | None:
        best = None
        for point in self.mounts:
            if (path == point or path.startswith(point + "/")) and (best is None or len(point) > len(best)):
                best = point
        return best

    def _seed(self, directory: str, root: bool = False) -> None:
        fstype, controllers = self.mounts[self._mount_of(directory)]
        files: dict[str, str] = {}
        if fstype == "cgroup":
            files.update(V1_COMMON)
            for c in controllers:
                files.update(V1_FILES[c])
            if root:
                files.pop("freezer.state", None)
                files.update({k: v for k, v in V1_ROOT_OVERRIDES.items() if k in files})
        else:
            if root:
                enabled = V2_ROOT_CONTROLLERS if self.layout == "v2" else "hugetlb"
            else:
                enabled = self.read(os.path.dirname(directory), "cgroup.subtree_control")
            files.update({"cgroup.procs": "", "cgroup.controllers": enabled, "cgroup.subtree_control": "",
                          "cgroup.type": "domain"})
            if not root:
                files.update({"cgroup.events": "populated 0\nfrozen 0", "cgroup.freeze": "0", "cgroup.kill": ""})
            for c in enabled.split():
                files.update(V2_FILES[c])
        for name, content in files.items():
            with open(os.path.join(directory, name), "w") as f:
                f.write(content + "\n" if content else "")

    def _mkdir(self, path, mode=0o777, *args, **kwargs):
        self._real_mkdir(path, mode, *args, **kwargs)
        if str(path).startswith(self.root + "/"):
            self._seed(str(path))

    def _rmdir(self, path, *args, **kwargs):
        path = str(path)
        if path.startswith(self.root + "/"):
            if self.read(path, "cgroup.procs"):
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
            for entry in os.scandir(path):
                if entry.is_dir():
                    raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
            for entry in os.scandir(path):
                os.unlink(entry.path)
        self._real_rmdir(path, *args, **kwargs)

    def _write(self, path: str, data: bytes) -> None:
        value = data.decode()
        name = os.path.basename(path)
        self.log.append((os.path.relpath(path, self.root), value))
        if self.refuse.get(name):
            code = self.refuse[name].pop(0)
            raise OSError(code, os.strerror(code), path)
        if name == "freezer.state" and value == "FROZEN" and self.read(os.path.dirname(path), name) != "FROZEN":
            value = "FREEZING"  # the kernel finishes freezing asynchronously
        if name == "cgroup.subtree_control":
            current = set(self.read(os.path.dirname(path), name).split())
            for token in value.split():
                (current.add if token[0] == "+" else current.discard)(token[1:])
            value = " ".join(sorted(current))
        self._real_write(path, value)

    def tick(self) -> None:
        """Time passes for the kernel: pending freezes complete."""
        for top, _, files in os.walk(self.root):
            if "freezer.state" in files and self.read(top, "freezer.state") == "FREEZING":
                self._real_write(os.path.join(top, "freezer.state"), "FROZEN")
            if "cgroup.freeze" in files:
                frozen = self.read(top, "cgroup.freeze")
                self._real_write(os.path.join(top, "cgroup.events"), f"populated 0\nfrozen {frozen}")

    # -------------------------------------------------------------- test helpers

    def read(self, directory: str, name: str) -> str:
        with open(os.path.join(directory, name)) as f:
            return f.read().strip()

    def put(self, directory: str, name: str, content: str) -> None:
        self._real_write(os.path.join(directory, name), content)

    def writes_to(self, name: str) -> list[str]:
        return [value for path, value in self.log if os.path.basename(path) == name]

    def leftovers(self) -> list[str]:
        """Cgroup directories other than the mount points."""
        found = []
        for top, dirs, _ in os.walk(self.root):
            found += [os.path.join(top, d) for d in dirs if os.path.join(top, d) not in self.mounts]
        return sorted(found)

    def manager(self, container_id: str = "c1", cgroups_path: str | None = None, **kwargs) -> CgroupManager:
        return CgroupManager.for_container(
            container_id, cgroups_path, root=self.root, mountinfo=self.mountinfo, **kwargs
        )


@pytest.fixture(params=["v1", "hybrid", "v2"])
def cgfs(request, tmp_path, monkeypatch):
    return FakeCgroupFS(tmp_path, monkeypatch, request.param)


@pytest.fixture
def v1fs(tmp_path, monkeypatch):
    return FakeCgroupFS(tmp_path, monkeypatch, "v1")


@pytest.fixture
def hybridfs(tmp_path, monkeypatch):
    return FakeCgroupFS(tmp_path, monkeypatch, "hybrid")


@pytest.fixture
def v2fs(tmp_path, monkeypatch):
    return FakeCgroupFS(tmp_path, monkeypatch, "v2")


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


# ------------------------------------------------------------------ layout and paths


def test_detect_mode(cgfs):
    assert detect_mode(cgfs.root, cgfs.mountinfo) == cgfs.layout


def test_paths_per_layout(cgfs):
    m = cgfs.manager("c1", "/a/b")
    r = cgfs.root
    if cgfs.layout == "v2":
        assert m.dirs == {"": f"{r}/a/b"}
        assert m.path_for("memory") == m.path_for("") == f"{r}/a/b"
        return
    assert m.path_for("cpu") == m.path_for("cpuacct") == f"{r}/cpu,cpuacct/a/b"  # co-mounted
    assert m.path_for("memory") == f"{r}/memory/a/b"
    assert m.path_for("name=systemd") == f"{r}/systemd/a/b"
    assert m.path_for("net_cls") is None
    if cgfs.layout == "hybrid":
        assert m.path_for("") == f"{r}/unified/a/b"
        assert m.path_for("hugetlb") is None
    else:
        assert m.path_for("") is None
        assert m.path_for("hugetlb") == f"{r}/hugetlb/a/b"


def test_default_and_systemd_paths(v1fs):
    assert v1fs.manager("c1", None).cgroup == "/ociish/c1"
    m = v1fs.manager("c1", "machine.slice:libpod:c1", systemd=True, bus=FakeSystemd(v1fs))
    assert (m.driver, m.cgroup) == ("systemd", "/machine.slice/libpod-c1.scope")
    assert m.path_for("memory") == f"{v1fs.root}/memory/machine.slice/libpod-c1.scope"
    with pytest.raises(ConfigError, match=r"^linux\.cgroupsPath"):
        v1fs.manager("c1", "/a/b", systemd=True, bus=FakeSystemd(v1fs))


def test_record_round_trip(cgfs):
    m = cgfs.manager("c1", "/a/b")
    m.create()
    record = m.to_record()
    assert record["version"] == 1
    assert record["mode"] == cgfs.layout and record["driver"] == "cgroupfs" and record["cgroup"] == "/a/b"
    assert set(record["created"]) >= set(record["paths"].values())
    again = CgroupManager.from_record(record)
    assert again.to_record() == record
    again.destroy()
    assert cgfs.leftovers() == []


@pytest.mark.parametrize("record", [{}, {"version": 1, "mode": "v1"}, {"version": 99}])
def test_bad_record(record):
    with pytest.raises(OciishError, match="cgroup record"):
        CgroupManager.from_record(record)


# ------------------------------------------------------------------ create / join / destroy


def test_create_makes_every_level_in_every_hierarchy(cgfs):
    m = cgfs.manager("c1", "/a/b")
    m.create()
    leaves = set(m.dirs.values())
    assert all(os.path.isdir(d) for d in leaves)
    assert set(m.created) == leaves | {os.path.dirname(d) for d in leaves}
    for d in leaves:  # each leaf after its parent
        assert m.created.index(os.path.dirname(d)) < m.created.index(d)


def test_create_copies_cpuset_from_parent(v1fs):
    m = v1fs.manager("c1", "/a/b")
    m.create()
    for d in (os.path.dirname(m.path_for("cpuset")), m.path_for("cpuset")):
        assert (v1fs.read(d, "cpuset.cpus"), v1fs.read(d, "cpuset.mems")) == ("0-3", "0")


def test_create_delegates_controllers_to_ancestors_only(v2fs):
    m = v2fs.manager("c1", "/a/b")
    m.create()
    leaf = m.path_for("")
    assert v2fs.read(v2fs.root, "cgroup.subtree_control") == "cpu cpuset hugetlb io memory pids rdma"
    assert v2fs.read(os.path.dirname(leaf), "cgroup.subtree_control") == "cpu cpuset hugetlb io memory pids rdma"
    assert v2fs.read(leaf, "cgroup.subtree_control") == ""
    assert set(v2fs.read(leaf, "cgroup.controllers").split()) == set(V2_ROOT_CONTROLLERS.split())


def test_create_falls_back_to_one_controller_at_a_time(v2fs):
    v2fs.refuse["cgroup.subtree_control"] = [errno.EINVAL, errno.EINVAL, errno.ENOENT]
    m = v2fs.manager("c1", "/a")
    m.create()
    root_writes = [v for p, v in v2fs.log if p == "cgroup.subtree_control"]
    assert root_writes[0] == "+cpuset +cpu +io +memory +hugetlb +pids +rdma"
    assert root_writes[1:] == ["+cpuset", "+cpu", "+io", "+memory", "+hugetlb", "+pids", "+rdma"]
    assert v2fs.read(v2fs.root, "cgroup.subtree_control") == "hugetlb io memory pids rdma"


def test_hybrid_joins_the_unified_tree_too(hybridfs, sleeper):
    m = hybridfs.manager("c1", "/a")
    m.create()
    m.join(sleeper.pid)
    procs_writes = [p for p, v in hybridfs.log if p.endswith("cgroup.procs") and v == str(sleeper.pid)]
    assert "unified/a/cgroup.procs" in procs_writes
    assert "cpu,cpuacct/a/cgroup.procs" in procs_writes
    assert len(procs_writes) == len(set(m.dirs.values()))  # once per hierarchy, co-mounts once
    assert hybridfs.read(hybridfs.root + "/unified", "cgroup.subtree_control") == "hugetlb"


def test_existing_empty_cgroup_is_joined_not_clobbered(cgfs):
    first = cgfs.manager("c1", "/shared/c")
    first.create()
    second = cgfs.manager("c2", "/shared/c")
    second.create()
    assert second.created == []
    second.destroy()
    assert all(os.path.isdir(d) for d in first.dirs.values())
    first.destroy()
    assert cgfs.leftovers() == []


def test_existing_busy_cgroup_is_refused(cgfs):
    other = cgfs.manager("other", "/shared/c")
    other.create()
    cgfs.put(list(other.dirs.values())[-1], "cgroup.procs", "4242")
    m = cgfs.manager("c1", "/shared/c")
    with pytest.raises(ConfigError, match=r"^linux\.cgroupsPath: cgroup .* already exists and has processes"):
        m.create()
    assert m.created == []
    assert all(os.path.isdir(d) for d in other.dirs.values())  # untouched


def test_existing_frozen_cgroup_is_refused(cgfs):
    other = cgfs.manager("other", "/c")
    other.create()
    other.freeze()
    m = cgfs.manager("c1", "/c")
    with pytest.raises(ConfigError, match=r"already exists and is frozen"):
        m.create()
    other.thaw()
    other.destroy()
    assert cgfs.leftovers() == []


def test_failed_create_removes_what_it_made(v1fs):
    v1fs.refuse["cpuset.mems"] = [errno.ENOSPC]
    m = v1fs.manager("c1", "/x/y")
    with pytest.raises(OciishError, match=r"cannot create cgroup .*cpuset\.mems: No space left on device"):
        m.create()
    assert v1fs.leftovers() == []


def test_destroy_removes_only_what_it_created(cgfs):
    sibling = cgfs.manager("s", "/ociish/s")
    sibling.create()
    m = cgfs.manager("c1", None)
    m.create()
    assert all(os.path.dirname(d) not in m.created for d in m.dirs.values())  # /ociish was the sibling's
    m.destroy()
    assert not any(os.path.exists(d) for d in m.dirs.values())
    assert all(os.path.isdir(d) for d in sibling.dirs.values())
    sibling.destroy()
    assert cgfs.leftovers() == []


def test_destroy_keeps_a_shared_parent_it_created(cgfs):
    m = cgfs.manager("c1", None)
    m.create()
    later = cgfs.manager("c2", None)
    later.create()
    m.destroy()  # /ociish is still used by c2
    assert all(os.path.isdir(d) for d in later.dirs.values())
    later.destroy()
    assert not any(os.path.exists(d) for d in later.dirs.values())
    # c2 did not create /ociish and c1 could not remove it: an empty parent stays behind.
    assert all(os.path.isdir(os.path.dirname(d)) for d in later.dirs.values())


def test_destroy_removes_sub_cgroups_and_is_idempotent(cgfs):
    m = cgfs.manager("c1", "/a")
    m.create()
    inner = os.path.join(next(iter(m.dirs.values())), "inner")
    syscalls.mkdir(inner)  # made by the container, in the kernel's cgroupfs
    syscalls.mkdir(os.path.join(inner, "deeper"))
    m.destroy()
    m.destroy()
    assert cgfs.leftovers() == []


def test_destroy_busy_cgroup_fails_after_retrying(cgfs):
    m = cgfs.manager("c1", "/a")
    m.create()
    leaf = next(iter(m.dirs.values()))
    cgfs.put(leaf, "cgroup.procs", "4242")
    with pytest.raises(OciishError, match=r"^cannot remove cgroup .*/a: Device or resource busy"):
        m.destroy()
    assert os.path.isdir(leaf)
    cgfs.put(leaf, "cgroup.procs", "")
    m.destroy()
    assert cgfs.leftovers() == []


# ------------------------------------------------------------------ apply


def test_apply_v1(v1fs):
    m = v1fs.manager("c1", "/a")
    m.create()
    m.apply(
        {
            "memory": {"limit": 1 << 20, "swap": 2 << 20, "swappiness": 0, "disableOOMKiller": True},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "1", "mems": "0"},
            "pids": {"limit": 10},
            "blockIO": {"weight": 300},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3}],
        }
    )
    d = m.path_for
    assert v1fs.read(d("memory"), "memory.limit_in_bytes") == str(1 << 20)
    assert v1fs.read(d("memory"), "memory.memsw.limit_in_bytes") == str(2 << 20)
    assert v1fs.read(d("memory"), "memory.swappiness") == "0"
    assert v1fs.read(d("memory"), "memory.oom_control") == "1"
    assert v1fs.read(d("cpu"), "cpu.shares") == "512"
    assert v1fs.read(d("cpu"), "cpu.cfs_quota_us") == "20000"
    assert v1fs.read(d("cpuset"), "cpuset.cpus") == "1"
    assert v1fs.read(d("pids"), "pids.max") == "10"
    assert v1fs.read(d("blkio"), "blkio.bfq.weight") == "300"  # blkio.weight is absent: fallback
    assert v1fs.read(d("hugetlb"), "hugetlb.2MB.limit_in_bytes") == "4194304"  # rsvd absent: skipped
    assert v1fs.writes_to("devices.deny")[0] == "a"
    assert v1fs.writes_to("devices.allow")[:2] == ["c 1:3 rwm", "c *:* m"]
    assert len(v1fs.writes_to("devices.allow")) == 13
    m.destroy()


def test_apply_reads_the_current_limit_to_order_memory_and_swap(v1fs):
    m = v1fs.manager("c1", "/a")
    m.create()
    m.apply({"memory": {"limit": 100 << 20, "swap": 200 << 20}})
    v1fs.log.clear()
    m.apply({"memory": {"limit": 300 << 20, "swap": 600 << 20}})  # raising: memsw first
    assert [os.path.basename(p) for p, _ in v1fs.log] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    v1fs.log.clear()
    m.apply({"memory": {"limit": 10 << 20, "swap": 20 << 20}})  # lowering: memory first
    assert [os.path.basename(p) for p, _ in v1fs.log] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def test_apply_hybrid_sends_hugetlb_to_the_unified_tree(hybridfs):
    m = hybridfs.manager("c1", "/a")
    m.create()
    m.apply({"pids": {"limit": 5}, "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]})
    assert hybridfs.read(m.path_for("pids"), "pids.max") == "5"
    assert hybridfs.read(m.path_for(""), "hugetlb.2MB.max") == "2097152"
    assert hybridfs.read(m.path_for(""), "hugetlb.2MB.rsvd.max") == "2097152"
    with pytest.raises(NotSupportedError, match=r"linux\.resources\.rdma\.mlx4_0 \(the rdma controller is not"):
        m.apply({"rdma": {"mlx4_0": {"hcaObjects": 1}}})
    with pytest.raises(NotSupportedError, match=r"network\.classID \(the net_cls controller is not mounted"):
        m.apply({"network": {"classID": 1}})
    with pytest.raises(NotSupportedError, match=r"linux\.resources\.unified"):
        m.apply({"unified": {"hugetlb.2MB.max": "1"}})


def test_apply_v2(v2fs):
    m = v2fs.manager("c1", "/a")
    m.create()
    m.apply(
        {
            "memory": {"limit": 1 << 20, "swap": 3 << 20, "reservation": 1 << 19},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
            "pids": {"limit": -1},
            "blockIO": {"weight": 1000, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 10}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
            "unified": {"pids.max": "7"},
        }
    )
    leaf = m.path_for("")
    assert v2fs.read(leaf, "memory.max") == str(1 << 20)
    assert v2fs.read(leaf, "memory.swap.max") == str(2 << 20)
    assert v2fs.read(leaf, "memory.low") == str(1 << 19)
    assert v2fs.read(leaf, "cpu.weight") == "100"
    assert v2fs.read(leaf, "cpu.max") == "50000 100000"
    assert v2fs.read(leaf, "io.weight") == "default 10000"  # io.bfq.weight absent: converted fallback
    assert v2fs.read(leaf, "io.max") == "8:0 rbps=10"
    assert v2fs.read(leaf, "hugetlb.2MB.rsvd.max") == "2097152"
    assert v2fs.writes_to("pids.max") == ["max", "7"]  # unified last, overriding
    m.destroy()


def test_apply_v2_refuses_what_it_cannot_express(v2fs):
    m = v2fs.manager("c1", "/a")
    m.create()
    with pytest.raises(NotSupportedError, match=r"linux\.resources\.unified\.misc\.max \(the misc controller"):
        m.apply({"unified": {"misc.max": "res_a 1"}})
    with pytest.raises(NotSupportedError, match=r"linux\.resources\.memory\.swappiness"):
        m.apply({"memory": {"swappiness": 10}})
    v2fs.put(v2fs.root, "cgroup.controllers", "cpu")  # the host stops offering memory
    v2fs.put(v2fs.root, "cgroup.subtree_control", "cpu")
    other = v2fs.manager("c2", "/b")
    other.create()
    with pytest.raises(NotSupportedError, match=r"linux\.resources\.memory\.limit \(the memory controller"):
        other.apply({"memory": {"limit": 1 << 20}})


def test_apply_v2_check_before_update(v2fs):
    m = v2fs.manager("c1", "/a")
    m.create()
    v2fs.put(m.path_for(""), "memory.current", str(8 << 20))
    with pytest.raises(ConfigError, match=r"^linux\.resources\.memory\.limit: 4194304 is below the current usage"):
        m.apply({"memory": {"limit": 4 << 20, "checkBeforeUpdate": True}})
    assert v2fs.writes_to("memory.max") == []
    m.apply({"memory": {"limit": 4 << 20}})  # without the check the kernel decides (OOM)
    m.apply({"memory": {"limit": 16 << 20, "checkBeforeUpdate": True}})
    assert v2fs.writes_to("memory.max") == [str(4 << 20), str(16 << 20)]


def test_apply_names_the_field_the_kernel_refused(v1fs):
    m = v1fs.manager("c1", "/a")
    m.create()
    v1fs.refuse["memory.use_hierarchy"] = [errno.EINVAL]
    with pytest.raises(ConfigError) as err:
        m.apply({"memory": {"useHierarchy": False}})
    assert str(err.value) == (
        "linux.resources.memory.useHierarchy: the kernel refused '0' for memory.use_hierarchy: Invalid argument"
    )
    os.unlink(os.path.join(m.path_for("cpu"), "cpu.rt_runtime_us"))  # no CONFIG_RT_GROUP_SCHED
    with pytest.raises(NotSupportedError, match=r"linux\.resources\.cpu\.realtimeRuntime \(cpu\.rt_runtime_us does"):
        m.apply({"cpu": {"realtimeRuntime": 1000}})
    with pytest.raises(NotSupportedError, match=r"blkio\.weight_device \(or blkio\.bfq\.weight_device\) does not"):
        m.apply({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 100}]}})
    v1fs.refuse["memory.kmem.limit_in_bytes"] = [errno.EOPNOTSUPP]
    with pytest.raises(NotSupportedError, match=r"linux\.resources\.memory\.kernel \(the kernel does not support"):
        m.apply({"memory": {"kernel": 1 << 20}})


def test_apply_retries_interdependent_cpu_writes(v1fs):
    m = v1fs.manager("c1", "/a")
    m.create()
    v1fs.log.clear()
    v1fs.refuse["cpu.cfs_quota_us"] = [errno.EINVAL]  # e.g. new quota below the current burst
    m.apply({"cpu": {"quota": 5000, "burst": 1000}})
    names = [os.path.basename(p) for p, _ in v1fs.log if "cpu" in p]
    assert names == ["cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.cfs_quota_us"]
    assert v1fs.read(m.path_for("cpu"), "cpu.cfs_quota_us") == "5000"
    v1fs.refuse["cpu.cfs_quota_us"] = [errno.EINVAL, errno.EINVAL]
    with pytest.raises(ConfigError, match=r"^linux\.resources\.cpu\.quota: the kernel refused '5000'"):
        m.apply({"cpu": {"quota": 5000}})


def test_apply_on_a_missing_cgroup(cgfs):
    m = cgfs.manager("c1", "/never-created")
    with pytest.raises(OciishError, match=r"cgroup .*never-created does not exist"):
        m.apply({"pids": {"limit": 1}})


# ------------------------------------------------------------------ pids, freezer, kill, oom


def test_pids_are_recursive(cgfs):
    m = cgfs.manager("c1", "/a")
    m.create()
    leaf = m.dirs.get("") or m.dirs["freezer"]
    cgfs.put(leaf, "cgroup.procs", "10\n30\n")
    syscalls.mkdir(os.path.join(leaf, "sub"))
    cgfs.put(os.path.join(leaf, "sub"), "cgroup.procs", "20\n")
    assert m.pids() == [10, 20, 30]
    cgfs.put(leaf, "cgroup.procs", "")
    cgfs.put(os.path.join(leaf, "sub"), "cgroup.procs", "")
    m.destroy()


def test_freeze_and_thaw(cgfs):
    m = cgfs.manager("c1", "/a")
    m.create()
    assert not m.is_frozen()
    m.freeze()
    assert m.is_frozen()
    if cgfs.layout == "v2":
        assert cgfs.read(m.path_for(""), "cgroup.freeze") == "1"
    else:
        assert cgfs.writes_to("freezer.state")[0] == "FROZEN"  # polled through FREEZING
        assert len(cgfs.writes_to("freezer.state")) >= 2
    m.thaw()
    assert not m.is_frozen()
    m.destroy()


def test_freeze_timeout_thaws_again(v1fs, monkeypatch):
    m = v1fs.manager("c1", "/a")
    m.create()
    monkeypatch.setattr(v1fs, "tick", lambda: None)  # the freeze never completes
    with pytest.raises(OciishError, match=r"cgroup .*/a was not frozen within 0\.5s"):
        m.freeze()
    assert v1fs.writes_to("freezer.state")[-1] == "THAWED"


def test_freeze_without_freezer(tmp_path, monkeypatch):
    fake = FakeCgroupFS(tmp_path, monkeypatch, "v1")
    m = fake.manager("c1", "/a")
    del m.dirs["freezer"]
    assert not m.is_frozen()
    with pytest.raises(OciishError, match="no cgroup freezer"):
        m.freeze()


def test_kill_all_uses_cgroup_kill_for_sigkill(hybridfs):
    m = hybridfs.manager("c1", "/a")
    m.create()
    m.freeze()
    m.kill_all(signal.SIGKILL)
    assert hybridfs.writes_to("cgroup.kill") == ["1"]
    assert not m.is_frozen()  # v1-frozen tasks must be thawed to die
    m.destroy()


@pytest.mark.parametrize("layout", ["v1", "hybrid", "v2"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_kill_all_signals_every_pid_while_frozen(layout, signum, tmp_path, monkeypatch, sleeper):
    fake = FakeCgroupFS(tmp_path, monkeypatch, layout)
    m = fake.manager("c1", "/a")
    m.create()
    if signum == signal.SIGKILL and layout != "v1":
        fake.refuse["cgroup.kill"] = [errno.ENOENT]  # a kernel older than 5.14
    leaf = m.dirs.get("") or m.dirs["freezer"]
    fake.put(leaf, "cgroup.procs", f"{sleeper.pid}\n999999999\n")  # the second is already gone
    m.kill_all(signum)
    assert sleeper.wait(5) == -signum
    control = "cgroup.freeze" if layout == "v2" else "freezer.state"
    requests = fake.writes_to(control)
    assert requests[0] in ("1", "FROZEN") and requests[-1] in ("0", "THAWED")
    assert not m.is_frozen()


def test_kill_all_keeps_a_paused_container_paused(v1fs, sleeper):
    m = v1fs.manager("c1", "/a")
    m.create()
    v1fs.put(m.dirs["freezer"], "cgroup.procs", str(sleeper.pid))
    m.freeze()
    m.kill_all(signal.SIGTERM)
    assert m.is_frozen()
    assert sleeper.wait(5) == -signal.SIGTERM


def test_oom_killed(cgfs):
    m = cgfs.manager("c1", "/a")
    m.create()
    assert not m.oom_killed() and m.oom_kills() == 0
    if cgfs.layout == "v2":
        assert m.oom_source() == ("v2", m.path_for(""))
        cgfs.put(m.path_for(""), "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1")
    else:
        assert m.oom_source() == ("v1", m.path_for("memory"))
        cgfs.put(m.path_for("memory"), "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2")
    assert m.oom_killed() and m.oom_kills() == (1 if cgfs.layout == "v2" else 2)


# ------------------------------------------------------------------ v2 device filter


def test_v2_devices_attach_an_ebpf_program(v2fs, monkeypatch):
    from ociish.cgroups import ebpf

    attached = []
    monkeypatch.setattr(ebpf, "attach", lambda directory, program: attached.append((directory, program)))
    m = v2fs.manager("c1", "/a")
    m.create()
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229}]
    m.apply({"devices": rules, "pids": {"limit": 5}})
    assert attached == [(m.path_for(""), ebpf.device_program(normalize_rules(rules)))]
    m.apply({"pids": {"limit": 6}})  # no devices key (an update of other limits): the filter stays
    assert len(attached) == 1
    with pytest.raises(ConfigError, match=r"linux\.resources\.devices\[0\]\.access"):
        m.apply({"pids": {"limit": 7}, "devices": [{"allow": True, "access": "x"}]})
    assert v2fs.writes_to("pids.max") == ["5", "6"]  # a bad rule fails before anything is written
    m.destroy()


def test_v1_and_hybrid_devices_never_load_ebpf(cgfs, monkeypatch):
    from ociish.cgroups import ebpf

    if cgfs.layout == "v2":
        pytest.skip("v2 is the eBPF case")
    monkeypatch.setattr(ebpf, "attach", lambda *a: pytest.fail("eBPF attached on a host with a devices controller"))
    m = cgfs.manager("c1", "/a")
    m.create()
    m.apply({"devices": [{"allow": False, "access": "rwm"}]})
    assert cgfs.writes_to("devices.deny") == ["a"]
    m.destroy()


# ------------------------------------------------------------------ ownership


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_delegate_does_nothing_on_v1(hybridfs):
    m = hybridfs.manager("c1", "/a")
    m.create()
    m.delegate(1234, 5678)
    assert all(os.stat(d)[4:6] == (os.getuid(), os.getgid()) for d in m.dirs.values())


def _ownership_config(namespace: dict | None, options: list[str], user: dict, uid_mappings=None) -> dict:
    config = {"process": {"user": user}, "mounts": [
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": options}],
        "linux": {"namespaces": [{"type": "mount"}] + ([namespace] if namespace else [])}}
    if uid_mappings:
        config["linux"]["uidMappings"] = uid_mappings
        config["linux"]["gidMappings"] = uid_mappings
    return config


@pytest.mark.parametrize("namespace, options, owner", [
    ({"type": "cgroup"}, ["nosuid", "rw"], (1000, 1001)),
    ({"type": "cgroup"}, ["nosuid", "ro"], None),  # a read-only mount: nothing to hand over
    ({"type": "cgroup", "path": "/proc/1/ns/cgroup"}, ["rw"], None),  # a namespace joined, not new
    (None, ["rw"], None),  # no cgroup namespace
])
def test_the_cgroup_goes_to_the_user_only_with_a_new_namespace_and_a_read_write_mount(namespace, options, owner):
    from ociish.ops.create import cgroup_owner

    assert cgroup_owner(_ownership_config(namespace, options, {"uid": 1000, "gid": 1001})) == owner


def test_the_cgroup_owner_is_the_host_id_the_user_maps_to():
    from ociish.ops.create import cgroup_owner

    mappings = [{"containerID": 0, "hostID": 100000, "size": 1000}, {"containerID": 1000, "hostID": 5000, "size": 10}]
    config = _ownership_config({"type": "cgroup"}, ["rw"], {"uid": 1002, "gid": 7}, mappings)
    assert cgroup_owner(config) == (5002, 100007)


# ------------------------------------------------------------------ the systemd driver

# The v1 hierarchies systemd itself makes a scope's cgroup in (it leaves cpuset, freezer, ... alone).
SYSTEMD_V1 = ("name=systemd", "cpu", "memory", "pids", "devices", "blkio")


class FakeSystemd:
    """Stands in for systemd on the bus (no machine here runs it): records the calls and
    does to the fake tree what systemd does — a started scope's cgroup is made in the
    hierarchies systemd manages, holding the PIDs; a stopped one is removed."""

    def __init__(self, cgfs: FakeCgroupFS, control_group: str = "/") -> None:
        self.cgfs = cgfs
        self.control_group = control_group
        self.calls: list[tuple] = []
        self.managed: list[str] = []  # the directories of the running scope
        self.freezer: str | None = None  # a freezer cgroup whose state set_properties notes

    def manager_property(self, name: str) -> str:
        self.calls.append(("manager_property", name))
        return {"ControlGroup": self.control_group}[name]

    def version(self) -> int:
        return 252

    def start_scope(self, unit: str, properties: list) -> None:
        self.calls.append(("start_scope", unit, dict(properties)))
        manager_ = self.manager_for(unit, dict(properties)["Slice"][1])
        pid = dict(properties)["PIDs"][1][0]
        for controller, leaf in manager_.dirs.items():
            if self.cgfs.layout != "v2" and controller not in (*SYSTEMD_V1, UNIFIED):
                continue
            mount = leaf[: len(leaf) - len(manager_.cgroup)]
            for level in manager_.cgroup.strip("/").split("/"):
                if controller == UNIFIED:  # a delegated unit gets every controller from its parents
                    controllers = self.cgfs.read(mount, "cgroup.controllers").split()
                    self.cgfs.put(mount, "cgroup.subtree_control", " ".join(controllers))
                mount = os.path.join(mount, level)
                if not os.path.isdir(mount):
                    syscalls.mkdir(mount)
            self.cgfs.put(leaf, "cgroup.procs", str(pid))
            self.managed.append(leaf)

    def manager_for(self, unit: str, slice_name: str) -> CgroupManager:
        return CgroupManager.for_container("x", f"{slice_name}:{unit.removesuffix('.scope')}:x", systemd=True,
                                           root=self.cgfs.root, mountinfo=self.cgfs.mountinfo, bus=self)

    def set_properties(self, unit: str, properties: list) -> None:
        frozen = self.cgfs.read(self.freezer, "freezer.state") if self.freezer else None
        self.calls.append(("set_properties", unit, dict(properties), frozen))

    def attach(self, unit: str, pid: int) -> None:
        self.calls.append(("attach", unit, pid))

    def stop(self, unit: str) -> None:
        self.calls.append(("stop", unit))
        for leaf in dict.fromkeys(self.managed):
            if os.path.isdir(leaf):
                self.cgfs.put(leaf, "cgroup.procs", "")
                syscalls.rmdir(leaf)
        self.managed = []

    def names(self) -> list[str]:
        return [call[0] for call in self.calls if call[0] != "manager_property"]


def systemd_manager(cgfs: FakeCgroupFS, cgroups_path: str | None = "machine.slice:libpod:c1",
                    bus: FakeSystemd | None = None) -> CgroupManager:
    return cgfs.manager("c1", cgroups_path, systemd=True, bus=bus or FakeSystemd(cgfs))


def test_systemd_scope_is_started_with_the_init_and_stopped_on_destroy(cgfs):
    m = systemd_manager(cgfs)
    bus = m.bus
    m.claim_missing()
    m.create()
    assert cgfs.leftovers() == [] and m.created == [] and bus.calls == []  # nothing before the init exists
    m.place_init(4242)
    (name, unit, props), = [c for c in bus.calls if c[0] == "start_scope"]
    assert unit == "libpod-c1.scope"
    assert props["PIDs"] == ("au", [4242]) and props["Slice"] == ("s", "machine.slice")
    assert props["Delegate"] == ("b", True) and props["Description"] == ("s", "ociish container c1")
    assert props["IOAccounting" if cgfs.layout == "v2" else "BlockIOAccounting"] == ("b", True)
    for leaf in m.dirs.values():  # every hierarchy holds the init: systemd's and the ones ociish made
        assert cgfs.read(leaf, "cgroup.procs") == "4242"
    made_by_systemd = set(bus.managed)
    assert not made_by_systemd & set(m.created)  # never ours to rmdir
    if cgfs.layout != "v2":
        assert m.dirs["cpuset"] in m.created and m.dirs["freezer"] in m.created
    record = m.to_record()
    assert record["unit"]["name"] == "libpod-c1.scope" and record["unit"]["user"] is False
    again = CgroupManager.from_record(record)
    again.bus = bus
    for leaf in m.dirs.values():
        cgfs.put(leaf, "cgroup.procs", "")
    again.destroy()
    assert bus.names()[-1] == "stop"
    slices = {os.path.dirname(leaf) for leaf in made_by_systemd}
    assert cgfs.leftovers() == sorted(slices)  # systemd's machine.slice stays, as on a real host


def test_systemd_limits_go_to_unit_properties_and_files(cgfs):
    m = systemd_manager(cgfs)
    m.place_init(4242)
    resources = {"memory": {"limit": 64 << 20}, "pids": {"limit": 20}, "cpu": {"quota": 50000, "period": 100000}}
    m.apply(resources)
    (_, unit, props, _), = [c for c in m.bus.calls if c[0] == "set_properties"]
    memory = "MemoryMax" if cgfs.layout == "v2" else "MemoryLimit"
    assert props[memory] == ("t", 64 << 20) and props["TasksMax"] == ("t", 20)
    assert props["CPUQuotaPerSecUSec"] == ("t", 500000) and props["CPUQuotaPeriodUSec"] == ("t", 100000)
    assert cgfs.read(m.path_for("pids"), "pids.max") == "20"  # the files too, as runc writes them
    if cgfs.layout == "v2":
        assert cgfs.read(m.dirs[UNIFIED], "memory.max") == str(64 << 20)
        assert cgfs.read(m.dirs[UNIFIED], "cpu.max") == "50000 100000"
    else:
        assert cgfs.read(m.dirs["memory"], "memory.limit_in_bytes") == str(64 << 20)


def test_systemd_device_rules_on_v1_are_set_while_frozen(v1fs):
    m = systemd_manager(v1fs)
    m.place_init(4242)
    m.bus.freezer = m.dirs["freezer"]
    m.apply({"devices": [{"allow": False, "access": "rwm"}]})
    (_, _, props, frozen), = [c for c in m.bus.calls if c[0] == "set_properties"]
    assert props["DevicePolicy"] == ("s", "strict")
    assert frozen == "FROZEN"  # systemd rewrites v1 rules by denying all first
    assert v1fs.read(m.dirs["freezer"], "freezer.state") == "THAWED"


def test_systemd_rootless_scope_lives_below_the_user_manager(tmp_path, monkeypatch):
    v2 = FakeCgroupFS(tmp_path, monkeypatch, "v2")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    user_manager = "/user.slice/user-1000.slice/user@1000.service"
    m = systemd_manager(v2, None, FakeSystemd(v2, control_group=user_manager))
    assert m.cgroup == f"{user_manager}/user.slice/ociish-c1.scope"  # runc's default slice for a user
    assert m.unit["user"] is True and m.unit["slice"] == "user.slice"


def test_systemd_rootless_join_outside_the_users_subtree_asks_the_users_systemd(tmp_path, monkeypatch):
    v2 = FakeCgroupFS(tmp_path, monkeypatch, "v2")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    m = systemd_manager(v2, None, FakeSystemd(v2, control_group="/user.slice/user-1000.slice/user@1000.service"))
    m.place_init(4242)
    v2.refuse["cgroup.procs"] = [errno.EACCES]  # an exec'd process in the caller's session scope
    m.join(4343)
    assert m.bus.calls[-1] == ("attach", "ociish-c1.scope", 4343)
    v2.refuse["cgroup.procs"] = [errno.ENOENT]  # anything else is still an error
    with pytest.raises(OciishError, match=r"^cannot move pid 4343 into cgroup"):
        m.join(4343)


def test_systemd_rootless_needs_cgroup_v2(v1fs, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ConfigError, match=r"^linux\.cgroupsPath: a rootless container .* only on cgroup v2"):
        systemd_manager(v1fs)


def test_systemd_unit_must_be_a_scope(v2fs):
    with pytest.raises(NotSupportedError, match=r"linux\.cgroupsPath.*names a slice"):
        systemd_manager(v2fs, "machine.slice:p:pod-x.slice")


def test_systemd_refusal_rolls_back_nothing_it_did_not_make(v1fs):
    bus = FakeSystemd(v1fs)
    bus.start_scope = lambda unit, props: (_ for _ in ()).throw(OciishError("systemd refused"))
    m = systemd_manager(v1fs, bus=bus)
    with pytest.raises(OciishError, match="systemd refused"):
        m.place_init(4242)
    m.destroy()
    assert v1fs.leftovers() == []


# ------------------------------------------------------------------ the sequence, through the syscall seam


@pytest.fixture
def seam(tmp_path, monkeypatch):
    """The recording fake in front of the fake kernel (the *fs fixture listed before it)."""
    from syscall_fake import SyscallFake

    return SyscallFake(monkeypatch, str(tmp_path))


CGROUP_CALLS = ("mkdir", "rmdir", "write_file", "chown")
RESOURCES = {"memory": {"limit": 1 << 20, "swap": 2 << 20}, "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
             "pids": {"limit": 10}}
V1_PLAIN = ("memory", "devices", "freezer", "pids", "blkio", "hugetlb", "systemd")  # after cpu,cpuacct and cpuset


def test_v2_controllers_are_enabled_above_each_level_and_limits_written_in_the_leaf(v2fs, seam):
    m = v2fs.manager("c1", None)
    m.create()
    m.apply(RESOURCES)
    m.destroy()
    root = "{tmp}/cgroup"
    assert seam.calls(*CGROUP_CALLS) == [
        ("write_file", f"{root}/cgroup.subtree_control", b"+cpuset +cpu +io +memory +hugetlb +pids +rdma"),
        ("mkdir", f"{root}/ociish", 0o755),
        ("write_file", f"{root}/ociish/cgroup.subtree_control", b"+cpu +cpuset +hugetlb +io +memory +pids +rdma"),
        ("mkdir", f"{root}/ociish/c1", 0o755),
        ("write_file", f"{root}/ociish/c1/cpu.weight", b"100"),  # shares 1024, converted
        ("write_file", f"{root}/ociish/c1/cpu.max", b"50000 100000"),
        ("write_file", f"{root}/ociish/c1/memory.max", b"1048576"),
        ("write_file", f"{root}/ociish/c1/memory.swap.max", b"1048576"),  # the spec's swap is memory + swap
        ("write_file", f"{root}/ociish/c1/pids.max", b"10"),
        ("rmdir", f"{root}/ociish/c1"),
        ("rmdir", f"{root}/ociish"),
    ]


def v1_levels(root, hierarchies, level):
    return [("mkdir", f"{root}/{h}/{level}", 0o755) for h in hierarchies]


def test_v1_every_hierarchy_gets_each_level_and_a_cpuset_its_parents_cpus(v1fs, seam):
    m = v1fs.manager("c1", None)
    m.create()
    m.apply(RESOURCES)
    root = "{tmp}/cgroup"
    cpuset = f"{root}/cpuset"
    assert seam.calls(*CGROUP_CALLS) == [
        ("mkdir", f"{root}/cpu,cpuacct/ociish", 0o755),
        ("mkdir", f"{root}/cpu,cpuacct/ociish/c1", 0o755),
        ("mkdir", f"{cpuset}/ociish", 0o755),
        ("write_file", f"{cpuset}/ociish/cpuset.cpus", b"0-3"),  # an empty cpuset refuses tasks
        ("write_file", f"{cpuset}/ociish/cpuset.mems", b"0"),
        ("mkdir", f"{cpuset}/ociish/c1", 0o755),
        ("write_file", f"{cpuset}/ociish/c1/cpuset.cpus", b"0-3"),
        ("write_file", f"{cpuset}/ociish/c1/cpuset.mems", b"0"),
        *[call for h in V1_PLAIN for call in v1_levels(root, [h], "ociish") + v1_levels(root, [h], "ociish/c1")],
        # memory before memsw while the limit grows (the kernel keeps memsw >= memory)
        ("write_file", f"{root}/memory/ociish/c1/memory.limit_in_bytes", b"1048576"),
        ("write_file", f"{root}/memory/ociish/c1/memory.memsw.limit_in_bytes", b"2097152"),
        ("write_file", f"{root}/cpu,cpuacct/ociish/c1/cpu.shares", b"1024"),
        ("write_file", f"{root}/cpu,cpuacct/ociish/c1/cpu.cfs_period_us", b"100000"),
        ("write_file", f"{root}/cpu,cpuacct/ociish/c1/cpu.cfs_quota_us", b"50000"),
        ("write_file", f"{root}/pids/ociish/c1/pids.max", b"10"),
    ]


def test_a_write_failing_during_create_removes_the_directories_made_leaves_first(v1fs, seam):
    seam.fail("write_file", errno.ENOSPC, lambda path, data: path.endswith("/ociish/c1/cpuset.mems"))
    m = v1fs.manager("c1", None)
    with pytest.raises(OciishError, match=r"^cannot create cgroup .*/cpuset/ociish/c1/cpuset.mems: No space left"):
        m.create()
    root = "{tmp}/cgroup"
    calls = seam.calls(*CGROUP_CALLS)
    assert calls[calls.index(("write_file", f"{root}/cpuset/ociish/c1/cpuset.mems", b"0")) + 1:] == [
        ("rmdir", f"{root}/cpu,cpuacct/ociish/c1"),
        ("rmdir", f"{root}/cpuset/ociish/c1"),
        ("rmdir", f"{root}/cpu,cpuacct/ociish"),
        ("rmdir", f"{root}/cpuset/ociish"),
    ]
    assert v1fs.leftovers() == []


def test_a_mkdir_failing_midway_removes_what_was_made_and_nothing_else(v2fs, seam):
    v2fs.manager("other", "/shared/other").create()  # /shared is someone else's
    del seam.log[:]
    seam.fail("mkdir", errno.EACCES, lambda path, mode: path.endswith("/deeper"))
    m = v2fs.manager("c1", "/shared/mine/deeper")
    with pytest.raises(OciishError, match=r"^cannot create cgroup .*/shared/mine/deeper: Permission denied$"):
        m.create()
    root = "{tmp}/cgroup"
    assert [call[:2] for call in seam.calls("mkdir", "rmdir")] == [
        ("mkdir", f"{root}/shared"),  # exists: not ours
        ("mkdir", f"{root}/shared/mine"),
        ("mkdir", f"{root}/shared/mine/deeper"),
        ("rmdir", f"{root}/shared/mine"),
    ]
    assert v2fs.leftovers() == [f"{v2fs.root}/shared", f"{v2fs.root}/shared/other"]


def test_a_refused_limit_leaves_the_rollback_to_destroy_which_keeps_a_shared_parent(v2fs, seam):
    """create's rollback after a failed apply is destroy(): the container's directory goes,
    the /ociish parent another container made stays."""
    v2fs.manager("other", None).create()
    m = v2fs.manager("c1", None)
    m.create()
    del seam.log[:]
    seam.fail("write_file", errno.EINVAL, lambda path, data: path.endswith("/pids.max"))
    with pytest.raises(ConfigError, match=r"^linux.resources.pids.limit: the kernel refused '10' for pids.max"):
        m.apply(RESOURCES)
    m.destroy()
    assert seam.calls("rmdir") == [("rmdir", "{tmp}/cgroup/ociish/c1")]


def test_delegation_hands_the_directory_and_the_listed_files_to_the_user(v2fs, seam, tmp_path):
    m = v2fs.manager("c1", "/a")
    m.create()
    delegate = tmp_path / "delegate"
    delegate.write_text("cgroup.procs\nmemory.reclaim\ncgroup.threads\ncgroup.subtree_control\n")
    seam.fail("chown", errno.ENOENT, lambda path, *ids: path.endswith("/memory.reclaim"))  # not in every cgroup
    m.delegate(1234, 5678, str(delegate))
    m.delegate(4321, 8765, str(tmp_path / "missing"))  # no list: the spec's fallback
    leaf = "{tmp}/cgroup/a"
    assert seam.calls("chown") == [
        ("chown", leaf, 1234, 5678), ("chown", f"{leaf}/cgroup.procs", 1234, 5678),
        ("chown", f"{leaf}/memory.reclaim", 1234, 5678), ("chown", f"{leaf}/cgroup.threads", 1234, 5678),
        ("chown", f"{leaf}/cgroup.subtree_control", 1234, 5678),
        ("chown", leaf, 4321, 8765), ("chown", f"{leaf}/cgroup.procs", 4321, 8765),
        ("chown", f"{leaf}/cgroup.subtree_control", 4321, 8765), ("chown", f"{leaf}/cgroup.threads", 4321, 8765),
    ]
