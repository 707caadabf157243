"""podman as a user of a systemd + cgroup v2 distribution runs it: its default configuration
(the systemd cgroup manager, which passes `--systemd-cgroup` and `machine.slice:libpod:ID`)
with ociish as the runtime.  The image is the busybox rootfs imported locally: the guest
has no registry.
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
SERVICE = 'echo started; trap "exit 0" TERM; while :; do sleep 0.2; done'


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["podman", "--runtime", OCIISH, *args], capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)} -> {result.returncode}\n{result.stderr}"
    return result


def inspect(name: str, template: str) -> str:
    return podman("inspect", "--format", template, name).stdout.strip()


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


def test_detached_exec_logs_stop_rm(image: str) -> None:
    n = name()
    podman("run", "-d", "--network", "none", "--name", n, image, "sh", "-c", SERVICE)
    assert podman("exec", n, "sh", "-c", "echo inside $((6 * 7))").stdout == "inside 42\n"
    deadline = time.monotonic() + 60
    while "started" not in podman("logs", n).stdout and time.monotonic() < deadline:
        time.sleep(0.2)
    assert podman("logs", n).stdout == "started\n"
    podman("stop", "--time", "20", n)
    assert inspect(n, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"  # its TERM trap ran
    podman("rm", n)
    assert podman("ps", "--all", "--filter", f"name={n}", "--quiet", check=False).stdout == ""
