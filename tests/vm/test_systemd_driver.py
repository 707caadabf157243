"""The systemd cgroup driver on a real systemd (PID 1, pure cgroup v2): `--systemd-cgroup`
makes a transient scope that holds the container, carries its limits as unit properties
(so systemd keeps them when it rewrites its tree), is updated by `update` and stopped by
`delete`.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from conftest import Bundle, Runtime, unique_id

MiB = 1 << 20
CGROUP2 = Path("/sys/fs/cgroup")


def systemctl(*args: str) -> str:
    return subprocess.run(["systemctl", *args], check=True, capture_output=True, text=True, timeout=60).stdout


def show(unit: str, *properties: str) -> dict[str, str]:
    """`systemctl show UNIT -p ...` as a dict (a list property's last line only: see show_list)."""
    text = systemctl("show", unit, *(f"--property={p}" for p in properties))
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def show_list(unit: str, name: str) -> list[str]:
    """A list property, which `systemctl show` prints as one NAME=... line per entry."""
    text = systemctl("show", unit, f"--property={name}")
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{name}=")]


def read(directory: Path, name: str) -> str:
    return (directory / name).read_text().strip()


def init_cgroup(pid: int) -> Path:
    """The cgroup2 directory a process is in, from /proc/PID/cgroup."""
    line = Path(f"/proc/{pid}/cgroup").read_text().strip()
    assert line.startswith("0::"), line
    return CGROUP2 / line[3:].lstrip("/")


def create(runtime: Runtime, bundle: Bundle, cgroups_path: str, resources: dict[str, Any],
           script: str = "sleep 1000") -> tuple[str, dict[str, Any]]:
    cid = unique_id("sd")
    bundle.config["linux"]["cgroupsPath"] = cgroups_path.replace("ID", cid)
    bundle.config["linux"]["resources"].update(resources)
    bundle.shell(script)
    runtime("--systemd-cgroup", "create", "--bundle", str(bundle.path), cid, check=True)
    runtime("start", cid, check=True)
    return cid, runtime.state(cid)


def test_features_report_the_systemd_driver(runtime: Runtime) -> None:
    cgroup = json.loads(runtime("features", check=True).stdout)["linux"]["cgroup"]
    assert cgroup["systemd"] is True and cgroup["systemdUser"] is True and cgroup["v2"] is True


def test_the_container_is_a_scope_with_its_limits(runtime: Runtime, bundle: Bundle) -> None:
    resources = {"memory": {"limit": 64 * MiB, "reservation": 16 * MiB, "swap": 96 * MiB}, "pids": {"limit": 32},
                 "cpu": {"shares": 512, "quota": 25000, "period": 100000, "cpus": "1", "mems": "0"},
                 "unified": {"memory.high": str(48 * MiB)}}
    cid, state = create(runtime, bundle, "machine.slice:ociish-test:ID", resources)
    unit = f"ociish-test-{cid}.scope"
    props = show(unit, "ActiveState", "Delegate", "Slice", "ControlGroup", "MemoryMax", "MemoryLow", "TasksMax",
                 "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "CPUWeight", "Description", "MemorySwapMax",
                 "MemoryHigh", "AllowedCPUs", "AllowedMemoryNodes")
    assert props["ActiveState"] == "active" and props["Delegate"] == "yes" and props["Slice"] == "machine.slice"
    assert props["Description"] == f"ociish container {cid}"
    assert props["MemoryMax"] == str(64 * MiB) and props["MemoryLow"] == str(16 * MiB)
    assert props["MemorySwapMax"] == str(32 * MiB)  # memory+swap less memory, as in the file
    assert props["MemoryHigh"] == str(48 * MiB)  # a unified key systemd has a property for
    assert props["TasksMax"] == "32" and props["CPUQuotaPerSecUSec"] == "250ms"
    assert props["CPUQuotaPeriodUSec"] == "100ms" and props["CPUWeight"] == "59"  # runc's formula for 512
    assert props["AllowedCPUs"] == "1" and props["AllowedMemoryNodes"] == "0"
    scope = CGROUP2 / "machine.slice" / unit
    assert props["ControlGroup"] == f"/machine.slice/{unit}"
    assert init_cgroup(state["pid"]) == scope  # systemd put the init there (PIDs=)
    assert read(scope, "memory.max") == str(64 * MiB) and read(scope, "pids.max") == "32"
    assert read(scope, "cpu.max") == "25000 100000" and read(scope, "cpu.weight") == "59"
    assert read(scope, "memory.swap.max") == str(32 * MiB) and read(scope, "memory.high") == str(48 * MiB)
    assert read(scope, "cpuset.cpus") == "1" and read(scope, "cpuset.mems") == "0"
    record = json.loads((runtime.root / cid / "state.json").read_text())["cgroup"]
    assert record["driver"] == "systemd" and record["paths"] == {"": str(scope)}
    runtime("delete", "--force", cid, check=True)
    assert show(unit, "LoadState")["LoadState"] == "not-found"
    assert not scope.exists()


def test_daemon_reload_keeps_the_containers_cpu_limit(runtime: Runtime, bundle: Bundle) -> None:
    """The issue's reproduction: another unit with a CPU quota, then a daemon-reload, made
    systemd recompute system.slice's controllers and drop a cgroup it did not know."""
    cid, state = create(runtime, bundle, ":ociish:ID", {"cpu": {"quota": 30000, "period": 100000},
                                                        "memory": {"limit": 48 * MiB}})
    scope = init_cgroup(state["pid"])
    assert scope == CGROUP2 / "system.slice" / f"ociish-{cid}.scope"  # runc's default slice
    probe = f"ociish-probe-{cid}"
    subprocess.run(["systemd-run", "--unit", probe, "-p", "CPUQuota=20%", "sleep", "300"], check=True,
                   capture_output=True, timeout=60)
    try:
        systemctl("daemon-reload")
    finally:
        systemctl("stop", f"{probe}.service")
    systemctl("daemon-reload")  # and once more with the other unit gone
    assert "cpu" in read(scope, "cgroup.controllers").split()
    assert read(scope, "cpu.max") == "30000 100000"
    assert read(scope, "memory.max") == str(48 * MiB)
    assert runtime.state(cid)["status"] == "running"


def test_update_pause_and_exec_in_a_scope(runtime: Runtime, bundle: Bundle) -> None:
    """One container for the live operations (each one costs seconds under emulation)."""
    cid, state = create(runtime, bundle, "machine.slice:ociish-test:ID",
                        {"memory": {"limit": 64 * MiB}, "pids": {"limit": 32}})
    unit = f"ociish-test-{cid}.scope"
    scope = init_cgroup(state["pid"])
    runtime("update", "--memory", "96m", "--pids-limit", "50", "--cpu-quota", "50000", "--cpu-period", "100000",
            cid, check=True)
    props = show(unit, "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec")
    assert props == {"MemoryMax": str(96 * MiB), "TasksMax": "50", "CPUQuotaPerSecUSec": "500ms"}
    systemctl("daemon-reload")  # systemd rewrites the files from the properties: they must agree
    assert read(scope, "memory.max") == str(96 * MiB) and read(scope, "pids.max") == "50"
    assert read(scope, "cpu.max") == "50000 100000"
    out = runtime("exec", cid, "sh", "-c", "echo ok", check=True)
    assert out.stdout.split() == ["ok"]
    runtime("pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused" and read(scope, "cgroup.freeze") == "1"
    runtime("resume", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    runtime("kill", cid, "KILL", check=True)
    deadline = time.monotonic() + 30
    while runtime.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    runtime("delete", cid, check=True)
    assert show(unit, "LoadState")["LoadState"] == "not-found" and not scope.exists()


def test_nested_slice_names_are_expanded_as_systemd_does(runtime: Runtime, bundle: Bundle) -> None:
    cid, state = create(runtime, bundle, "ociishtest-burstable-pod123.slice:cri:ID", {"pids": {"limit": 10}})
    expected = (CGROUP2 / "ociishtest.slice" / "ociishtest-burstable.slice" / "ociishtest-burstable-pod123.slice"
                / f"cri-{cid}.scope")
    assert init_cgroup(state["pid"]) == expected and read(expected, "pids.max") == "10"
    runtime("delete", "--force", cid, check=True)
    assert not expected.exists()
    systemctl("stop", "ociishtest.slice")  # the slices are systemd's; the test's own go with it


def test_device_rules_are_the_scopes_device_policy(runtime: Runtime, bundle: Bundle) -> None:
    """Every entry of the allow list reaches systemd (DevicePolicy=strict), and the devices
    the config allows stay usable under systemd's program and ociish's own."""
    major, minor = (int(n) for n in Path("/sys/block/vda/dev").read_text().split(":"))
    for kind in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][kind].append("CAP_MKNOD")
    cid, _ = create(runtime, bundle, "machine.slice:ociish-test:ID", {"devices": [
        {"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": major, "minor": minor, "access": "r"}]})
    unit = f"ociish-test-{cid}.scope"
    assert show(unit, "DevicePolicy")["DevicePolicy"] == "strict"
    assert sorted(show_list(unit, "DeviceAllow")) == sorted([
        "char-* m", "block-* m", f"/dev/block/{major}:{minor} r", "/dev/char/1:3 rwm", "/dev/char/1:5 rwm",
        "/dev/char/1:7 rwm", "/dev/char/1:8 rwm", "/dev/char/1:9 rwm", "/dev/char/5:0 rwm", "/dev/char/5:1 rwm",
        "/dev/char/5:2 rwm", "char-pts rwm", "/dev/char/10:200 rwm"])
    probe = (f"mknod /disk b {major} {minor} && head -c 512 /disk >/dev/null && echo read ok; "
             "(: <> /disk) 2>/dev/null && echo write ok || echo write denied; (: <> /dev/null) && echo null ok")
    out = runtime("exec", cid, "sh", "-c", probe, check=True).stdout
    assert out.split("\n")[:3] == ["read ok", "write denied", "null ok"]


def test_a_slice_as_the_containers_unit_is_refused_in_one_line(runtime: Runtime, bundle: Bundle) -> None:
    cid = unique_id("sd")
    slice_unit = f"ociishtest-{cid.replace('-', '')}.slice"
    bundle.config["linux"]["cgroupsPath"] = f"machine.slice:ociish:{slice_unit}"
    bundle.args("true")
    result = runtime("--systemd-cgroup", "create", "--bundle", str(bundle.path), cid)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "not supported yet: linux.cgroupsPath" in result.stderr and len(result.stderr.splitlines()) == 1
    assert runtime.ids() == [] and show(slice_unit, "ActiveState")["ActiveState"] == "inactive"
    assert not (CGROUP2 / "machine.slice" / slice_unit).exists()  # any slice name loads; none was started
