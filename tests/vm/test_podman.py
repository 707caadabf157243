"""podman as a user of a systemd + cgroup v2 distribution runs it: its default configuration
(the systemd cgroup manager, which passes `--systemd-cgroup` and `machine.slice:libpod:ID`)
with ociish as the runtime, and `--cgroup-manager=cgroupfs`.  The image is the busybox
rootfs imported locally: the guest has no registry.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

OCIISH = "/usr/local/bin/ociish"  # the checkout's ociish (tests/vm/guest/ociish)
IMAGE = "localhost/busybox:vm"
CGROUP2 = Path("/sys/fs/cgroup")
MiB = 1 << 20
SERVICE = 'echo started; trap "exit 0" TERM; while :; do sleep 0.2; done'


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """podman with ociish as the runtime; global flags (`--cgroup-manager=...`) go first in ARGS."""
    result = subprocess.run(["podman", "--runtime", OCIISH, *args], capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)} -> {result.returncode}\n{result.stderr}"
    return result


def inspect(name: str, template: str, *flags: str) -> str:
    return podman(*flags, "inspect", "--format", template, name).stdout.strip()


def cgroup_of(pid: str) -> Path:
    line = Path(f"/proc/{pid}/cgroup").read_text().strip()
    assert line.startswith("0::"), line
    return CGROUP2 / line[3:].lstrip("/")


def read(directory: Path, name: str) -> str:
    return (directory / name).read_text().strip()


def show(unit: str, *properties: str) -> dict[str, str]:
    text = subprocess.run(["systemctl", "show", unit, *(f"--property={p}" for p in properties)], check=True,
                          capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def image(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    archive = tmp_path_factory.mktemp("image") / "rootfs.tar"
    subprocess.run(["tar", "-C", str(busybox_rootfs), "-cf", str(archive), "."], check=True)
    podman("import", str(archive), IMAGE)
    yield IMAGE
    podman("rm", "--all", "--force", "--time", "0", check=False)
    podman("rmi", "--force", IMAGE, check=False)


def name() -> str:
    return f"vm-{uuid.uuid4().hex[:8]}"


def test_the_default_cgroup_manager_is_systemd(image: str) -> None:
    assert podman("info", "--format", "{{.Host.CgroupManager}} {{.Host.CgroupsVersion}}").stdout.split() == [
        "systemd", "v2"]


def test_run_rm(image: str) -> None:
    result = podman("run", "--rm", "--network", "none", image, "sh", "-c", "echo hello; cat /proc/self/cgroup")
    assert result.stdout.splitlines() == ["hello", "0::/"]  # in a cgroup namespace rooted at its scope


def wait_for_log(n: str, text: str, *flags: str) -> None:
    deadline = time.monotonic() + 60
    while text not in podman(*flags, "logs", n).stdout and time.monotonic() < deadline:
        time.sleep(0.2)


def test_detached_with_limits_in_its_scope_exec_logs_pause_stop_rm(image: str) -> None:
    """One container for the whole lifecycle (podman calls are slow under emulation)."""
    n = name()
    cid = podman("run", "-d", "--network", "none", "--name", n, "--memory", "64m", "--pids-limit", "50",
                 "--cpus", "0.5", image, "sh", "-c", SERVICE).stdout.strip()
    unit = f"libpod-{cid}.scope"
    scope = cgroup_of(inspect(n, "{{.State.Pid}}"))
    assert scope == CGROUP2 / "machine.slice" / unit  # the systemd manager's cgroupsPath, machine.slice:libpod:ID
    assert (read(scope, "memory.max"), read(scope, "pids.max"), read(scope, "cpu.max")) == (
        str(64 * MiB), "50", "50000 100000")
    assert read(scope, "memory.swap.max") == str(64 * MiB)  # podman's memory+swap default: twice the memory
    assert show(unit, "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec", "Delegate") == {
        "MemoryMax": str(64 * MiB), "TasksMax": "50", "CPUQuotaPerSecUSec": "500ms", "Delegate": "yes"}
    assert podman("exec", n, "sh", "-c", "echo inside $((6 * 7))").stdout == "inside 42\n"
    wait_for_log(n, "started")
    assert podman("logs", n).stdout == "started\n"
    podman("pause", n)
    assert inspect(n, "{{.State.Status}}") == "paused" and read(scope, "cgroup.freeze") == "1"
    podman("unpause", n)
    assert inspect(n, "{{.State.Status}}") == "running" and read(scope, "cgroup.freeze") == "0"
    podman("stop", "--time", "20", n)
    assert inspect(n, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"  # its TERM trap ran
    podman("rm", n)
    assert podman("ps", "--all", "--filter", f"name={n}", "--quiet", check=False).stdout == ""
    assert show(unit, "LoadState")["LoadState"] == "not-found" and not scope.exists()


def test_the_cgroupfs_manager_run_exec_stop_rm(image: str) -> None:
    cgroupfs = "--cgroup-manager=cgroupfs"
    n = name()
    cid = podman(cgroupfs, "run", "-d", "--network", "none", "--name", n, "--pids-limit", "40", image,
                 "sh", "-c", SERVICE).stdout.strip()
    leaf = cgroup_of(inspect(n, "{{.State.Pid}}", cgroupfs))
    assert leaf == CGROUP2 / "libpod_parent" / f"libpod-{cid}"  # podman's cgroupfs cgroupsPath
    assert read(leaf, "pids.max") == "40"
    assert podman(cgroupfs, "exec", n, "cat", "/sys/fs/cgroup/pids.max").stdout == "40\n"
    podman(cgroupfs, "stop", "--time", "20", n)
    assert inspect(n, "{{.State.Status}} {{.State.ExitCode}}", cgroupfs) == "exited 0"
    podman(cgroupfs, "rm", n)
    assert not leaf.exists()
