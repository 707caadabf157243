"""linux.resources on this host's real cgroups, through the CLI: the configured values are in
the container's cgroup files, the kernel enforces memory, pids and devices, and update,
pause/resume, events and ps work on live containers.

Cgroup files are read on the host through the directories state.json records.  The
runtime fixture force-deletes whatever a test leaves and fails if a cgroup remains.
"""

from __future__ import annotations

import json
import select
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Bundle, Runtime, cgroup_dirs, create_container, run_output, wait_status
from ociish.cgroups import detect_mode
from ociish.cgroups.devices import default_device_rules, v1_line

pytestmark = pytest.mark.skipif(detect_mode() == "v2", reason="reads v1 controller files (this host is hybrid)")

MiB = 1 << 20


def cgroup_record(runtime: Runtime, cid: str) -> dict[str, Any]:
    return json.loads((runtime.root / cid / "state.json").read_text())["cgroup"]


def cgroup_file(runtime: Runtime, cid: str, controller: str, name: str) -> str:
    return (Path(cgroup_record(runtime, cid)["paths"][controller]) / name).read_text().strip()


def read_lines(proc: subprocess.Popen, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Up to `count` JSON lines from a streaming `ociish events`, or fewer if it exits."""
    lines = []
    deadline = time.monotonic() + timeout
    while len(lines) < count and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(json.loads(line))
    return lines


def events_process(runtime: Runtime, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*runtime.command, "events", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ------------------------------------------------------------------ values and enforcement


def test_configured_limits_are_in_the_cgroup_files(runtime: Runtime, bundle: Bundle) -> None:
    resources = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 128 * MiB},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 32},
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229,
                                                        "access": "rw"}],
    }
    cid = create_container(runtime, bundle, resources, start=False)
    expected = {
        ("memory", "memory.limit_in_bytes"): str(64 * MiB),
        ("memory", "memory.soft_limit_in_bytes"): str(32 * MiB),
        ("memory", "memory.memsw.limit_in_bytes"): str(128 * MiB),
        ("cpu", "cpu.shares"): "512",
        ("cpu", "cpu.cfs_quota_us"): "20000",
        ("cpu", "cpu.cfs_period_us"): "100000",
        ("cpuset", "cpuset.cpus"): "0",
        ("cpuset", "cpuset.mems"): "0",
        ("pids", "pids.max"): "32",
    }
    assert {key: cgroup_file(runtime, cid, *key) for key in expected} == expected
    allowed = {"c 10:229 rw"} | {v1_line(rule) for rule in default_device_rules()}
    assert set(cgroup_file(runtime, cid, "devices", "devices.list").splitlines()) == allowed
    pid = runtime.state(cid)["pid"]
    paths = cgroup_record(runtime, cid)["paths"]
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():  # the init is in every one of them
        _, controllers, path = line.split(":", 2)
        key = controllers.split(",")[0]
        if key in paths:
            assert paths[key].endswith(path), line


def test_a_denied_device_cannot_be_opened(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["devices"] = [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11},
                                         {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}]
    bundle.shell("for d in /dev/kmsg /dev/fuse /dev/null; do (: <> $d) 2>/dev/null && echo $d ok || echo $d no; done")
    assert run_output(runtime, bundle).stdout.split("\n")[:3] == ["/dev/kmsg no", "/dev/fuse ok", "/dev/null ok"]


def test_a_fork_loop_stops_at_pids_limit(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["resources"]["pids"] = {"limit": 8}
    bundle.shell("n=0; while [ $n -lt 50 ]; do sleep 100 & n=$((n+1)); echo $n; done")
    result = run_output(runtime, bundle, check=False)
    started = result.stdout.split()
    assert started[-1] == "7", result  # the shell and 7 sleeps are 8 tasks: the 8th fork fails
    assert "fork" in result.stderr and result.returncode != 0


def test_a_process_over_its_memory_limit_is_oom_killed_and_events_reports_it(runtime: Runtime,
                                                                              bundle: Bundle) -> None:
    # Memory and memory+swap equal: the process cannot escape into swap.
    cid = create_container(runtime, bundle, {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}, "exec tail /dev/zero",
                 start=False)
    events = events_process(runtime, "--interval", "100ms", cid)
    try:
        assert read_lines(events, 1)[0]["type"] == "stats"  # the stream is up before the process runs
        runtime("start", cid, check=True)
        assert events.wait(timeout=20) == 0  # it ends when the container does
        tail = [json.loads(line) for line in events.stdout.read().splitlines()]
        assert {"type": "oom", "id": cid} in tail
        assert events.stderr.read() == ""
    finally:
        events.kill()
        events.wait()
    assert runtime.state(cid)["status"] == "stopped"
    oom_control = dict(line.split() for line in cgroup_file(runtime, cid, "memory", "memory.oom_control").splitlines())
    assert int(oom_control["oom_kill"]) >= 1
    record = cgroup_record(runtime, cid)
    runtime("delete", cid, check=True)
    assert not cgroup_dirs(cid)
    assert not [d for d in record["paths"].values() if Path(d).exists()]


def test_no_cgroup_is_left_after_sigkill_and_delete(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle, script="sleep 1000 & sleep 1000")
    record = cgroup_record(runtime, cid)
    assert all(Path(d).is_dir() for d in record["paths"].values())
    runtime("kill", cid, "KILL", check=True)
    assert wait_status(runtime, cid, "stopped") == "stopped"
    runtime("delete", cid, check=True)
    assert not [d for d in record["paths"].values() if Path(d).exists()]
    assert not cgroup_dirs(cid)


# ------------------------------------------------------------------ update


def test_update_changes_limits_and_merges_onto_the_current_ones(runtime: Runtime, bundle: Bundle,
                                                                 tmp_path: Path) -> None:
    cid = create_container(runtime, bundle, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 20}})
    runtime("update", "--memory", "128m", "--pids-limit", "30", "--cpu-quota", "30000", "--cpu-period", "100000",
            cid, check=True)
    assert cgroup_file(runtime, cid, "memory", "memory.limit_in_bytes") == str(128 * MiB)
    assert cgroup_file(runtime, cid, "pids", "pids.max") == "30"
    assert cgroup_file(runtime, cid, "cpu", "cpu.cfs_quota_us") == "30000"

    document = tmp_path / "resources.json"
    document.write_text(json.dumps({"pids": {"limit": 40}}))
    runtime("update", f"--resources={document}", cid, check=True)  # podman's form
    assert cgroup_file(runtime, cid, "pids", "pids.max") == "40"
    assert cgroup_file(runtime, cid, "memory", "memory.limit_in_bytes") == str(128 * MiB)  # kept

    runtime("update", "-r", "-", cid, check=True, input=b'{"cpu": {"shares": 256}}', stdin=None)  # containerd's
    assert cgroup_file(runtime, cid, "cpu", "cpu.shares") == "256"

    # a cpu the host does not have is refused before anything is written
    refused = runtime("update", "--memory", "96m", "--cpuset-cpus", "4095", cid)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith("ociish: linux.resources.cpu.cpus: '4095' names cpu 4095, which this host "
                                      "does not have online")
    assert cgroup_file(runtime, cid, "memory", "memory.limit_in_bytes") == str(128 * MiB)
    # memory is written before blkio; the kernel refuses a throttle of a disk that does not
    # exist, so memory is put back
    document.write_text(json.dumps({"memory": {"limit": 96 * MiB},
                                    "blockIO": {"throttleReadBpsDevice": [{"major": 259, "minor": 4000, "rate": 1}]}}))
    refused = runtime("update", f"--resources={document}", cid)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith("ociish: linux.resources.blockIO.throttleReadBpsDevice[0]: the kernel refused "
                                     "'259:4000 1' for blkio.throttle.read_bps_device"), refused.stderr
    assert cgroup_file(runtime, cid, "memory", "memory.limit_in_bytes") == str(128 * MiB)
    recorded = json.loads((runtime.root / cid / "state.json").read_text())["resources"]
    assert recorded["memory"] == {"limit": 128 * MiB} and recorded["pids"] == {"limit": 40}

    runtime("kill", cid, "KILL", check=True)
    wait_status(runtime, cid, "stopped")
    stopped = runtime("update", "--memory", "1g", cid)
    assert (stopped.returncode, stopped.stderr) == (1, f"ociish: cannot update container '{cid}': it is stopped, "
                                                       "not running\n")


def test_update_memory_unlimited_lifts_an_earlier_swap_limit(runtime: Runtime, bundle: Bundle) -> None:
    """runc's `update --memory -1`: memory+swap becomes unlimited with it, or the kernel would
    refuse a memory limit above the finite memory+swap kept from before."""
    cid = create_container(runtime, bundle, {"memory": {"limit": 64 * MiB, "swap": 128 * MiB}})
    runtime("update", "--memory", "-1", cid, check=True)
    unlimited = cgroup_file(runtime, cid, "memory", "memory.limit_in_bytes")
    assert int(unlimited) > 1 << 60
    assert cgroup_file(runtime, cid, "memory", "memory.memsw.limit_in_bytes") == unlimited
    recorded = json.loads((runtime.root / cid / "state.json").read_text())["resources"]
    assert recorded["memory"] == {"limit": -1, "swap": -1}
    # a swap limit given with it is kept
    runtime("update", "--memory", "64m", "--memory-swap", "128m", cid, check=True)
    runtime("update", "--memory", "-1", "--memory-swap", "-1", cid, check=True)
    runtime("update", "--memory", "64m", "--memory-swap", "128m", cid, check=True)
    assert cgroup_file(runtime, cid, "memory", "memory.memsw.limit_in_bytes") == str(128 * MiB)


# ------------------------------------------------------------------ pause and resume


def test_pause_and_resume(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle)
    runtime("pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused"
    assert cgroup_file(runtime, cid, "freezer", "freezer.state") == "FROZEN"
    again = runtime("pause", cid)
    assert (again.returncode, again.stderr) == (1, f"ociish: cannot pause container '{cid}': it is paused, "
                                                   "not running\n")
    runtime("resume", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    assert cgroup_file(runtime, cid, "freezer", "freezer.state") == "THAWED"
    not_paused = runtime("resume", cid)
    assert not_paused.returncode == 1 and "it is running, not paused" in not_paused.stderr


def test_a_created_container_can_be_paused_resumed_and_started(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle, start=False)
    runtime("pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused"
    assert runtime("start", cid).returncode == 1  # paused, not created
    runtime("resume", cid, check=True)
    assert runtime.state(cid)["status"] == "created"
    runtime("start", cid, check=True)
    assert runtime.state(cid)["status"] == "running"


@pytest.mark.parametrize("argv", [["kill", "{id}", "KILL"], ["kill", "--all", "{id}", "KILL"],
                                  ["delete", "--force", "{id}"]])
def test_a_paused_container_can_be_killed(runtime: Runtime, bundle: Bundle, argv: list[str]) -> None:
    cid = create_container(runtime, bundle, script="sleep 1000 & sleep 1000")
    runtime("pause", cid, check=True)
    runtime(*(arg.format(id=cid) for arg in argv), check=True)
    if argv[0] == "kill":
        assert wait_status(runtime, cid, "stopped") == "stopped"
        runtime("delete", cid, check=True)
    assert runtime.ids() == [] and not cgroup_dirs(cid)


# ------------------------------------------------------------------ events


def test_events_stats_is_one_line_in_runcs_shape(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 20}}, "sleep 1000 & sleep 1000")
    result = runtime("events", "--stats", cid, check=True)
    assert result.stdout.count("\n") == 1 and result.stderr == ""
    event = json.loads(result.stdout)
    assert (event["type"], event["id"]) == ("stats", cid)
    data = event["data"]
    assert list(data) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert data["memory"]["usage"]["limit"] == 64 * MiB and data["memory"]["usage"]["usage"] > 0
    assert set(data["memory"]) >= {"usage", "swap", "kernel", "kernelTCP", "raw"}
    assert data["pids"] == {"current": 2, "limit": 20}
    assert data["cpu"]["usage"]["total"] > 0 and data["cpuset"]["cpus"]
    assert data["network_interfaces"] is None


def test_events_streams_stats_until_the_container_stops(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle)
    events = events_process(runtime, "--interval", "100ms", cid)
    try:
        lines = read_lines(events, 3)
        assert [e["type"] for e in lines] == ["stats"] * 3 and all(e["id"] == cid for e in lines)
        runtime("kill", cid, "KILL", check=True)
        assert events.wait(timeout=10) == 0
    finally:
        events.kill()
        events.wait()
    gone = runtime("events", "--stats", cid)
    assert gone.returncode == 1 and "it is stopped, not running" in gone.stderr


# ------------------------------------------------------------------ ps


def test_ps_lists_the_containers_host_pids(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle, script="sleep 1000 & exec sleep 1001")
    init = runtime.state(cid)["pid"]
    deadline = time.monotonic() + 5
    while len(pids := json.loads(runtime("ps", "--format", "json", cid, check=True).stdout)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    result = runtime("ps", "-f", "json", cid, check=True)
    assert result.stderr == "" and init in pids and len(pids) == 2

    table = runtime("ps", cid, check=True).stdout.splitlines()
    assert table[0].split()[:2] == ["UID", "PID"]
    assert sorted(int(row.split()[1]) for row in table[1:]) == sorted(pids)
    custom = runtime("ps", cid, "-o", "pid,args", check=True).stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"]
    assert sorted(row.split(None, 1)[1] for row in custom[1:]) == ["sleep 1000", "sleep 1001"]

    runtime("kill", "--all", cid, "KILL", check=True)
    wait_status(runtime, cid, "stopped")
    assert runtime("ps", "--format", "json", cid, check=True).stdout == "null\n"


def test_kill_signal_reaches_a_paused_container_after_resume(runtime: Runtime, bundle: Bundle) -> None:
    cid = create_container(runtime, bundle, script="trap 'exit 0' TERM; while true; do sleep 0.05; done")
    runtime("pause", cid, check=True)
    runtime("kill", cid, "TERM", check=True)
    time.sleep(0.1)
    assert runtime.state(cid)["status"] == "paused"  # pending, as with runc: frozen tasks act once thawed
    runtime("resume", cid, check=True)
    assert wait_status(runtime, cid, "stopped") == "stopped"
