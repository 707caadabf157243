"""Rootless on cgroup v2 with systemd: the guest's unprivileged user `tester` (uid 1000,
lingering, so its systemd user instance runs from boot) runs a container with
`--systemd-cgroup`.  ociish asks the user's own systemd, over the user bus, for a scope
below user@1000.service; the limits land in that delegated subtree and the kernel
enforces them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import unique_id

UID = 1000
RUNTIME_DIR = f"/run/user/{UID}"
MANAGER = Path(f"/sys/fs/cgroup/user.slice/user-{UID}.slice/user@{UID}.service")
MiB = 1 << 20
ENV = {"XDG_RUNTIME_DIR": RUNTIME_DIR, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={RUNTIME_DIR}/bus",
       "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/tester"}


def as_tester(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ARGV as the unprivileged user, with only its session's environment.  Output goes
    through files: a created container keeps the runtime's stdout and stderr."""
    command = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--init-groups",
               "env", "-i", *(f"{k}={v}" for k, v in ENV.items()), *argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout)
        out.seek(0)
        err.seek(0)
        result.stdout, result.stderr = out.read().decode(), err.read().decode()
    return result


def ociish(*args: str) -> subprocess.CompletedProcess:
    result = as_tester("ociish", "--systemd-cgroup", *args)
    assert result.returncode == 0, f"ociish {' '.join(args)} -> {result.returncode}\n{result.stderr}"
    return result


def user_show(unit: str, *properties: str) -> dict[str, str]:
    text = as_tester("systemctl", "--user", "show", unit, *(f"--property={p}" for p in properties)).stdout
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def session() -> None:
    """The user's systemd and its bus, up before the first container: at boot under
    emulation the user instance may still be starting, and its dbus-daemon is started on
    the first connection to the bus socket (socket activation), which takes seconds here."""
    subprocess.run(["systemctl", "start", f"user@{UID}.service"], check=True, timeout=120)
    started = as_tester("systemctl", "--user", "start", "dbus.service")
    assert started.returncode == 0, started.stderr


@pytest.fixture
def bundle(session: None, busybox_rootfs: Path) -> Iterator[Path]:
    """`ociish spec --rootless`, written by the user into a directory it owns (pytest's
    temporary directories are root's)."""
    path = Path(tempfile.mkdtemp(prefix="ociish-rootless-", dir="/tmp"))
    shutil.copytree(busybox_rootfs, path / "rootfs", symlinks=True)
    shutil.chown(path, UID, UID)
    spec = as_tester("ociish", "spec", "--rootless", "--bundle", str(path))
    assert spec.returncode == 0, spec.stderr
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_rootless_container_gets_its_limits_in_the_users_delegated_scope(bundle: Path) -> None:
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    # The fork loop runs in a child: a shell that cannot fork gives up, and an init that
    # exits would take the scope with it.
    config["process"]["args"] = ["sh", "-c", "(n=0; while [ $n -lt 50 ]; do sleep 1000 & n=$((n+1)); done) & "
                                 "exec sleep 1000"]
    config["linux"]["resources"] = {"memory": {"limit": 64 * MiB}, "pids": {"limit": 8}}
    (bundle / "config.json").write_text(json.dumps(config))
    cid = unique_id("rl")
    unit = f"ociish-{cid}.scope"
    scope = MANAGER / "user.slice" / unit  # runc's default slice for a user's systemd
    ociish("create", "--bundle", str(bundle), cid)
    try:
        state = json.loads(ociish("state", cid).stdout)
        assert Path(f"/proc/{state['pid']}/cgroup").read_text() == f"0::/{scope.relative_to('/sys/fs/cgroup')}\n"
        props = user_show(unit, "ActiveState", "Delegate", "MemoryMax", "TasksMax")
        assert props == {"ActiveState": "active", "Delegate": "yes", "MemoryMax": str(64 * MiB), "TasksMax": "8"}
        assert (scope / "memory.max").read_text() == f"{64 * MiB}\n"
        assert (scope / "pids.max").read_text() == "8\n"
        assert scope.stat().st_uid == UID  # the user's own subtree
        ociish("start", cid)
        deadline = time.monotonic() + 60
        while "max 0" in (scope / "pids.events").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "max 0" not in (scope / "pids.events").read_text()  # the kernel refused a fork
        assert int((scope / "pids.current").read_text()) <= 8
        ociish("update", "--pids-limit", "20", cid)  # through the user's systemd too
        assert user_show(unit, "TasksMax")["TasksMax"] == "20" and (scope / "pids.max").read_text() == "20\n"
        # the container's /sys/fs/cgroup is its own cgroup (a bind mount: the host's /sys came along)
        inside = ociish("exec", cid, "sh", "-c", "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max").stdout
        assert inside.split() == ["20", str(64 * MiB)]
    finally:
        as_tester("ociish", "--systemd-cgroup", "delete", "--force", cid)
    assert user_show(unit, "LoadState")["LoadState"] == "not-found"
    assert not scope.exists()
    assert not Path(RUNTIME_DIR, "ociish", cid).exists()
