"""/dev inside the container: default devices and symlinks (config-linux.md "Default Devices",
runtime-linux.md "Dev symbolic links"), linux.devices, and the device cgroup rules."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import Bundle, Runtime, run_output

DEFAULT_DEVICES = {
    "/dev/null": (1, 3),
    "/dev/zero": (1, 5),
    "/dev/full": (1, 7),
    "/dev/random": (1, 8),
    "/dev/urandom": (1, 9),
    "/dev/tty": (5, 0),
}
FUSE = (10, 229)  # a char device outside the runtime's always-allowed list whose open needs no capability


def stat_devices(runtime: Runtime, bundle: Bundle, paths: list[str]) -> dict[str, dict[str, str]]:
    """busybox stat of each path: type, major:minor (decimal), octal mode and owner."""
    bundle.shell(f"stat -c '%n|%F|%t:%T|%a|%u:%g' {' '.join(paths)}")
    stats = {}
    for line in run_output(runtime, bundle).stdout.splitlines():
        name, kind, hexdev, mode, owner = line.split("|")
        major, minor = (int(x, 16) for x in hexdev.split(":"))
        stats[name] = {"type": kind, "device": f"{major}:{minor}", "mode": mode, "owner": owner}
    return stats


def open_result(runtime: Runtime, bundle: Bundle, path: str) -> str:
    """"ok", or the shell's error message, for opening ``path`` read-write in the container."""
    bundle.shell(f"if (: <> {path}) 2>/tmp/err; then echo ok; else cat /tmp/err; fi")
    return run_output(runtime, bundle).stdout.strip()


def add_device(bundle: Bundle, path: str, kind: str, major: int | None = None, minor: int | None = None,
               **extra: int) -> None:
    device = {"path": path, "type": kind, **extra}
    if major is not None:
        device.update(major=major, minor=minor)
    bundle.config["linux"].setdefault("devices", []).append(device)


def test_default_devices_exist_with_their_numbers(runtime: Runtime, bundle: Bundle) -> None:
    stats = stat_devices(runtime, bundle, list(DEFAULT_DEVICES))
    assert stats == {
        path: {"type": "character special file", "device": f"{major}:{minor}", "mode": "666", "owner": "0:0"}
        for path, (major, minor) in DEFAULT_DEVICES.items()
    }


def test_dev_symlinks_and_ptmx(runtime: Runtime, bundle: Bundle) -> None:
    links = {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1",
             "/dev/stderr": "/proc/self/fd/2", "/dev/ptmx": "pts/ptmx"}
    bundle.shell("; ".join(f"echo {link} $(readlink {link})" for link in links)
                 + "; stat -L -c '%F %t:%T' /dev/ptmx"
                 + "; echo via-fd >>/dev/stdout")  # >>: stdout is a file, and > would truncate it
    lines = run_output(runtime, bundle).stdout.splitlines()
    assert dict(line.split(" ", 1) for line in lines[:len(links)]) == links
    assert lines[len(links):] == ["character special file 5:2", "via-fd"]


def test_default_devices_work_under_the_deny_all_rule(runtime: Runtime, bundle: Bundle) -> None:
    """`ociish spec` denies every device in the cgroup, yet null, zero, full, urandom still behave."""
    assert bundle.config["linux"]["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    bundle.shell("echo gone > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1; "
                 "head -c 8 /dev/urandom | wc -c; if echo x 2>/dev/null > /dev/full; then echo full-wrote; "
                 "else echo full-refused; fi")
    assert run_output(runtime, bundle).stdout.split() == ["null-ok", "00", "00", "00", "00", "8", "full-refused"]


def test_linux_devices_are_created_with_mode_and_owner(runtime: Runtime, bundle: Bundle) -> None:
    add_device(bundle, "/dev/mynull", "c", 1, 3, fileMode=0o600, uid=1, gid=1)
    add_device(bundle, "/dev/sub/myzero", "c", 1, 5, fileMode=0o640, uid=0, gid=1)
    add_device(bundle, "/dev/myfifo", "p", fileMode=0o620)
    stats = stat_devices(runtime, bundle, ["/dev/mynull", "/dev/sub/myzero", "/dev/myfifo"])
    assert stats["/dev/mynull"] == {"type": "character special file", "device": "1:3", "mode": "600", "owner": "1:1"}
    assert stats["/dev/sub/myzero"] == {"type": "character special file", "device": "1:5", "mode": "640", "owner": "0:1"}
    assert stats["/dev/myfifo"]["type"] == "fifo" and stats["/dev/myfifo"]["mode"] == "620"


def test_a_device_entry_replaces_a_default_one(runtime: Runtime, bundle: Bundle) -> None:
    add_device(bundle, "/dev/null", "c", 1, 3, fileMode=0o640, uid=1, gid=1)
    stats = stat_devices(runtime, bundle, ["/dev/null"])
    assert stats["/dev/null"] == {"type": "character special file", "device": "1:3", "mode": "640", "owner": "1:1"}


def test_device_not_allowed_by_the_cgroup_cannot_be_opened(runtime: Runtime, bundle: Bundle) -> None:
    add_device(bundle, "/dev/fuse", "c", *FUSE)
    assert "Operation not permitted" in open_result(runtime, bundle, "/dev/fuse")


def test_dev_mem_is_refused(runtime: Runtime, bundle: Bundle) -> None:
    add_device(bundle, "/dev/mem", "c", 1, 1)
    assert "Operation not permitted" in open_result(runtime, bundle, "/dev/mem")


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="the host has no fuse driver to open")
def test_device_allowed_by_a_rule_can_be_opened(runtime: Runtime, bundle: Bundle) -> None:
    add_device(bundle, "/dev/fuse", "c", *FUSE)
    bundle.config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": FUSE[0], "minor": FUSE[1], "access": "rw"})
    assert open_result(runtime, bundle, "/dev/fuse") == "ok"


def test_device_path_through_a_symlink_stays_inside_the_rootfs(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """rootfs/opt/link -> <host dir>: the node is made in the rootfs's copy of that path, not on the host."""
    victim = tmp_path / "victim"
    victim.mkdir()
    twin = bundle.rootfs / str(victim).lstrip("/")
    twin.mkdir(parents=True)
    (bundle.rootfs / "opt").mkdir(exist_ok=True)
    os.symlink(str(victim), bundle.rootfs / "opt" / "link")
    add_device(bundle, "/opt/link/mynull", "c", 1, 3)
    assert stat_devices(runtime, bundle, ["/opt/link/mynull"])["/opt/link/mynull"]["device"] == "1:3"
    assert list(victim.iterdir()) == [], "a device node was created on the host"
    node = os.stat(twin / "mynull")
    assert stat.S_ISCHR(node.st_mode) and node.st_rdev == os.makedev(1, 3)
