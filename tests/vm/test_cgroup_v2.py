"""linux.resources on a real pure cgroup v2 host with systemd as PID 1, through the CLI and
the cgroupfs driver (no --systemd-cgroup): every field lands in its v2 file, and the kernel
enforces what it can enforce (memory, pids, cpu, cpuset, devices, the freezer).

Cgroup files are read in the guest through the directory state.json records; the runtime
fixture force-deletes whatever a test leaves and fails if a cgroup remains.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Bundle, Runtime, cgroup_dirs, create_container, run_output, unique_id, wait_status
from ociish.cgroups import detect_mode
from ociish.cgroups.mapping import blkio_weight_to_io_weight, cpu_shares_to_weight

MiB = 1 << 20
CGROUP2 = Path("/sys/fs/cgroup")


def cgroup_dir(runtime: Runtime, cid: str) -> Path:
    record = json.loads((runtime.root / cid / "state.json").read_text())["cgroup"]
    assert record["mode"] == "v2" and list(record["paths"]) == [""], record
    return Path(record["paths"][""])


def read(directory: Path, name: str) -> str:
    return (directory / name).read_text().strip()


def keyed(directory: Path, name: str) -> dict[str, int]:
    """A flat-keyed cgroup file (memory.events, pids.events, cpu.stat) as a dict."""
    return {key: int(value) for key, value in (line.split() for line in read(directory, name).splitlines())}


def root_disk() -> tuple[int, int]:
    major, minor = Path("/sys/block/vda/dev").read_text().split(":")
    return int(major), int(minor)


# ------------------------------------------------------------------ the guest itself


def test_the_guest_runs_systemd_on_pure_cgroup_v2() -> None:
    assert Path("/proc/1/comm").read_text().strip() == "systemd"
    assert detect_mode() == "v2"
    mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    assert [m[2] for m in mounts if m[1] == "/sys/fs/cgroup"] == ["cgroup2"]
    assert not [m for m in mounts if m[2] == "cgroup"], "a cgroup v1 hierarchy is mounted"
    controllers = read(CGROUP2, "cgroup.controllers").split()
    assert {"cpuset", "cpu", "io", "memory", "hugetlb", "pids"} <= set(controllers)


# ------------------------------------------------------------------ values in the files


def test_every_resource_lands_in_its_v2_file(runtime: Runtime, bundle: Bundle) -> None:
    major, minor = root_disk()
    resources = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 10000, "cpus": "1", "mems": "0"},
        "pids": {"limit": 32},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}],
        "unified": {"memory.high": str(48 * MiB)},
    }
    cid = create_container(runtime, bundle, resources, start=False)
    leaf = cgroup_dir(runtime, cid)
    assert leaf == CGROUP2 / "ociish" / cid
    assert read(leaf, "memory.max") == str(64 * MiB)
    assert read(leaf, "memory.low") == str(32 * MiB)
    assert read(leaf, "memory.swap.max") == str(32 * MiB)  # memory+swap 96 MiB less the 64 MiB of memory
    assert read(leaf, "memory.high") == str(48 * MiB)
    assert read(leaf, "cpu.weight") == str(cpu_shares_to_weight(512)) == "59"
    assert read(leaf, "cpu.max") == "50000 100000"
    assert read(leaf, "cpu.max.burst") == "10000"
    assert read(leaf, "cpuset.cpus") == "1"
    assert read(leaf, "cpuset.mems") == "0"
    assert read(leaf, "pids.max") == "32"
    assert read(leaf, "hugetlb.2MB.max") == str(4 * MiB)
    if (leaf / "io.bfq.weight").exists():
        assert read(leaf, "io.bfq.weight") == "default 500"
    else:
        assert read(leaf, "io.weight") == f"default {blkio_weight_to_io_weight(500)}"
    assert f"{major}:{minor} rbps=1048576 wbps=max riops=max wiops=100" in read(leaf, "io.max").splitlines()
    pid = runtime.state(cid)["pid"]
    assert Path(f"/proc/{pid}/cgroup").read_text() == f"0::/ociish/{cid}\n"


def test_cpu_idle_lands_in_cpu_idle(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle, {"cpu": {"idle": 1, "shares": 512}}, start=False)
    leaf = cgroup_dir(runtime, cid)
    # The kernel refuses a weight for an idle group: create got through because shares were left out.
    assert read(leaf, "cpu.idle") == "1"


def test_memory_unlimited_swap_follows_as_runc_does(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle, {"memory": {"limit": -1}}, start=False)
    leaf = cgroup_dir(runtime, cid)
    assert (read(leaf, "memory.max"), read(leaf, "memory.swap.max")) == ("max", "max")


def test_a_v2_value_the_kernel_refuses_names_the_field(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["resources"]["unified"] = {"memory.max": "lots"}
    bundle.args("true")
    cid = unique_id()
    result = runtime("create", "--bundle", str(bundle.path), cid)
    assert result.returncode == 1 and "linux.resources.unified.memory.max" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert runtime.ids() == [] and not cgroup_dirs(cid)


# ------------------------------------------------------------------ enforcement


def test_over_its_memory_limit_a_process_is_oom_killed_and_events_says_so(runtime: Runtime, bundle: Bundle,
                                                                          tmp_path: Path) -> None:
    # memory+swap equal to memory: no swap to escape into (memory.swap.max 0).
    cid = create_container(runtime, bundle, {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}, "exec tail /dev/zero",
                 start=False)
    leaf = cgroup_dir(runtime, cid)
    assert read(leaf, "memory.swap.max") == "0"
    # The stream goes to a file: a pipe nobody reads while the container starts would fill up and block it.
    stream = tmp_path / "events.jsonl"
    with stream.open("w") as out:
        events = subprocess.Popen([*runtime.command, "events", "--interval", "100ms", cid], stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not stream.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert json.loads(stream.read_text().splitlines()[0])["type"] == "stats"  # up before the process runs
        runtime("start", cid, check=True)
        assert events.wait(timeout=120) == 0  # it ends when the container does
        assert {"type": "oom", "id": cid} in [json.loads(line) for line in stream.read_text().splitlines()]
    finally:
        events.kill()
        events.wait()
    assert wait_status(runtime, cid, "stopped") == "stopped"
    assert keyed(leaf, "memory.events")["oom_kill"] >= 1
    runtime("delete", cid, check=True)
    assert not leaf.exists()


def test_a_fork_bomb_stops_at_pids_max(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["resources"]["pids"] = {"limit": 8}
    bundle.shell("n=0; while [ $n -lt 50 ]; do sleep 1000 & n=$((n+1)); echo $n; done; sleep 1000")
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    leaf = cgroup_dir(runtime, cid)
    runtime("start", cid, check=True)
    deadline = time.monotonic() + 60
    while keyed(leaf, "pids.events")["max"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert keyed(leaf, "pids.events")["max"] >= 1  # the kernel refused a fork
    assert int(read(leaf, "pids.current")) <= 8
    runtime("delete", "--force", cid, check=True)
    assert not leaf.exists()


def test_cpu_max_throttles_a_busy_loop(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle, {"cpu": {"quota": 10000, "period": 100000}}, "while :; do :; done")
    leaf = cgroup_dir(runtime, cid)
    deadline = time.monotonic() + 60
    while keyed(leaf, "cpu.stat")["nr_throttled"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert keyed(leaf, "cpu.stat")["nr_throttled"] >= 1


def test_cpuset_pins_the_container_to_its_cpus(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["resources"]["cpu"] = {"cpus": "1"}
    bundle.shell("grep Cpus_allowed_list /proc/self/status")
    assert run_output(runtime, bundle).stdout.split() == ["Cpus_allowed_list:", "1"]


def _with_mknod(bundle: Bundle) -> None:
    for kind in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][kind].append("CAP_MKNOD")


def test_the_device_filter_denies_a_disk_and_allows_dev_null(runtime: Runtime, bundle: Bundle) -> None:
    major, minor = root_disk()
    _with_mknod(bundle)
    bundle.shell(f"mknod /disk b {major} {minor} && (head -c 512 /disk >/dev/null 2>&1 && echo disk ok || "
                 "echo disk denied); (: <> /dev/null) && echo null ok")
    assert run_output(runtime, bundle).stdout.split("\n")[:2] == ["disk denied", "null ok"]


def test_a_device_rule_allows_reading_the_disk(runtime: Runtime, bundle: Bundle) -> None:
    major, minor = root_disk()
    _with_mknod(bundle)
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "b", "major": major, "minor": minor, "access": "rm"}]
    bundle.shell(f"mknod /disk b {major} {minor} && head -c 512 /disk >/dev/null && echo read ok; "
                 "(: <> /disk) 2>/dev/null && echo write ok || echo write denied")
    assert run_output(runtime, bundle).stdout.split("\n")[:2] == ["read ok", "write denied"]


# ------------------------------------------------------------------ live containers


def test_events_stats_and_ps_read_the_v2_cgroup(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 20}},
                 "sleep 1000 & sleep 1000 & wait")  # the shell and two children
    leaf = cgroup_dir(runtime, cid)
    stats = json.loads(runtime("events", "--stats", cid, check=True).stdout)
    assert stats["type"] == "stats" and stats["id"] == cid
    data = stats["data"]
    assert data["pids"] == {"current": 3, "limit": 20}
    assert data["memory"]["usage"]["limit"] == 64 * MiB and data["memory"]["usage"]["usage"] > 0
    assert data["cpu"]["usage"]["total"] > 0
    listed = json.loads(runtime("ps", "--format", "json", cid, check=True).stdout)
    assert sorted(listed) == sorted(int(p) for p in read(leaf, "cgroup.procs").split())
    assert len(listed) == 3


def test_update_rewrites_the_v2_files(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    cid = create_container(runtime, bundle, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 20},
                                   "cpu": {"quota": 50000, "period": 100000}})
    leaf = cgroup_dir(runtime, cid)
    change = tmp_path / "resources.json"
    change.write_text(json.dumps({"memory": {"limit": 128 * MiB, "swap": 192 * MiB}, "pids": {"limit": 40},
                                  "cpu": {"shares": 2048, "quota": 20000}}))
    runtime("update", "--resources", str(change), cid, check=True)
    assert read(leaf, "memory.max") == str(128 * MiB)
    assert read(leaf, "memory.swap.max") == str(64 * MiB)
    assert read(leaf, "pids.max") == "40"
    assert read(leaf, "cpu.weight") == str(cpu_shares_to_weight(2048))
    assert read(leaf, "cpu.max") == "20000 100000"
    runtime("update", "--pids-limit", "10", "--memory", str(96 * MiB), cid, check=True)
    assert (read(leaf, "pids.max"), read(leaf, "memory.max")) == ("10", str(96 * MiB))


# ------------------------------------------------------------------ where cgroups go, and that they go


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_a_nested_cgroups_path_is_made_and_removed_entirely(runtime: Runtime, bundle: Bundle,
                                                            relative: bool) -> None:
    top = unique_id("ociish-nest")
    path = f"{top}/middle/leaf"
    bundle.config["linux"]["cgroupsPath"] = path if relative else f"/{path}"
    cid = create_container(runtime, bundle, {"pids": {"limit": 10}})
    leaf = cgroup_dir(runtime, cid)
    assert leaf == CGROUP2 / path
    assert read(leaf, "pids.max") == "10"
    pid = runtime.state(cid)["pid"]
    assert Path(f"/proc/{pid}/cgroup").read_text() == f"0::/{path}\n"
    # every level delegates the controllers the leaf uses
    assert {"pids", "memory", "cpu"} <= set(read(CGROUP2 / top / "middle", "cgroup.subtree_control").split())
    runtime("delete", "--force", cid, check=True)
    assert not (CGROUP2 / top).exists()


def test_delete_removes_the_container_cgroup(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle, script="sleep 1000 & sleep 1000")
    leaf = cgroup_dir(runtime, cid)
    runtime("kill", cid, "KILL", check=True)
    assert wait_status(runtime, cid, "stopped") == "stopped"
    runtime("delete", cid, check=True)
    assert not leaf.exists() and not cgroup_dirs(cid)


# ------------------------------------------------------------------ the container's own view


def cgroup_namespace_with_mount(bundle: Bundle, option: str) -> None:
    """A new cgroup namespace, and cgroup2 mounted at /sys/fs/cgroup with `option` (ro or rw)."""
    namespaces = bundle.config["linux"]["namespaces"]
    if {"type": "cgroup"} not in namespaces:
        namespaces.append({"type": "cgroup"})
    for mount in bundle.config["mounts"]:
        if mount["destination"] == "/sys/fs/cgroup":
            mount["options"] = ["nosuid", "noexec", "nodev", "relatime", option]


@pytest.mark.parametrize("option", ["ro", "rw"])
def test_the_cgroup_namespace_shows_the_container_its_cgroup2_root(runtime: Runtime, bundle: Bundle,
                                                                   option: str) -> None:
    cgroup_namespace_with_mount(bundle, option)
    bundle.config["linux"]["resources"]["pids"] = {"limit": 42}
    bundle.shell("cat /proc/self/cgroup; grep ' /sys/fs/cgroup ' /proc/self/mounts | cut -d' ' -f3,4; "
                 "cat /sys/fs/cgroup/pids.max; mkdir /sys/fs/cgroup/child 2>/dev/null && echo mkdir ok "
                 "&& rmdir /sys/fs/cgroup/child || echo mkdir refused")
    lines = run_output(runtime, bundle).stdout.splitlines()
    assert lines[0] == "0::/"
    fstype, options = lines[1].split()
    assert fstype == "cgroup2" and option in options.split(",")
    assert lines[2] == "42"
    assert lines[3] == ("mkdir ok" if option == "rw" else "mkdir refused")


def test_features_describe_cgroup_v2(runtime: Runtime) -> None:
    features = json.loads(runtime("features", check=True).stdout)
    assert features["linux"]["cgroup"]["v2"] is True
    assert "cgroup" in features["linux"]["namespaces"]


def test_a_read_write_cgroup_mount_in_a_new_namespace_hands_the_cgroup_to_the_user(runtime: Runtime,
                                                                                     bundle: Bundle) -> None:
    """config-linux.md "Cgroup ownership": the container's user may make and use child
    cgroups, but the limit files stay root's."""
    cgroup_namespace_with_mount(bundle, "rw")
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["linux"]["resources"]["pids"] = {"limit": 20}
    cid = create_container(runtime, bundle, script="mkdir /sys/fs/cgroup/child && echo $$ > /sys/fs/cgroup/child/cgroup.procs "
                 "&& echo 5 > /sys/fs/cgroup/pids.max; sleep 1000")
    leaf = cgroup_dir(runtime, cid)
    assert (leaf.stat().st_uid, leaf.stat().st_gid) == (1000, 1000)
    assert (leaf / "cgroup.procs").stat().st_uid == 1000
    assert (leaf / "pids.max").stat().st_uid == 0
    pid = runtime.state(cid)["pid"]
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}/cgroup").read_text() != f"0::/ociish/{cid}/child\n" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert Path(f"/proc/{pid}/cgroup").read_text() == f"0::/ociish/{cid}/child\n"
    assert read(leaf, "pids.max") == "20"  # the user could not raise or lower its own limit
    runtime("delete", "--force", cid, check=True)
    assert not leaf.exists()


def test_pause_resume_and_kill_all_of_a_paused_container(runtime: Runtime, bundle: Bundle) -> None:
    """pause/resume through cgroup.freeze, then kill --all ends a paused container through
    cgroup.kill (one container: each costs seconds under emulation)."""
    cid = create_container(runtime, bundle, script="sleep 1000 & sleep 1000 & wait")
    leaf = cgroup_dir(runtime, cid)
    runtime("pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused"
    assert read(leaf, "cgroup.freeze") == "1"
    assert keyed(leaf, "cgroup.events")["frozen"] == 1
    runtime("resume", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    assert keyed(leaf, "cgroup.events")["frozen"] == 0
    runtime("pause", cid, check=True)
    runtime("kill", "--all", cid, "KILL", check=True)
    assert wait_status(runtime, cid, "stopped") == "stopped"
    assert read(leaf, "cgroup.procs") == ""
    runtime("delete", cid, check=True)
    assert not leaf.exists()


def test_a_cgroup_that_holds_processes_is_not_taken_over(runtime: Runtime, make_bundle: Any) -> None:
    path = f"/{unique_id('ociish-shared')}"
    first, second = make_bundle("first"), make_bundle("second")
    for b in (first, second):
        b.config["linux"]["cgroupsPath"] = path
    cid = create_container(runtime, first)
    second.args("true")
    other = unique_id()
    result = runtime("create", "--bundle", str(second.path), other)
    assert result.returncode == 1 and "linux.cgroupsPath" in result.stderr and "has processes" in result.stderr
    assert runtime.ids() == [cid]
    assert runtime.state(cid)["status"] == "running"
    runtime("delete", "--force", cid, check=True)
    assert not (CGROUP2 / path.lstrip("/")).exists()


def test_check_before_update_refuses_a_limit_below_the_usage(runtime: Runtime, bundle: Bundle,
                                                            tmp_path: Path) -> None:
    cid = create_container(runtime, bundle, {"memory": {"limit": 64 * MiB}})
    leaf = cgroup_dir(runtime, cid)
    change = tmp_path / "resources.json"
    change.write_text(json.dumps({"memory": {"limit": 4096, "checkBeforeUpdate": True}}))
    result = runtime("update", "--resources", str(change), cid)
    assert result.returncode == 1 and "linux.resources.memory.limit" in result.stderr, result.stderr
    assert read(leaf, "memory.max") == str(64 * MiB)
    assert runtime.state(cid)["status"] == "running"
