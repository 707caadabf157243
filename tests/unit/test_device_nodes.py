"""/dev inside the rootfs through the syscall seam, without root: mknod, or a bind mount of
the host's node inside a user namespace, what is found at a device's path, the symlinks."""

from __future__ import annotations

import copy
import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from syscall_fake import SyscallFake, syscalls_fake  # noqa: F401 - the fixture

from ociish.linux import libc as L
from ociish.process.plan import DEV_SYMLINKS, build_plan
from ociish.rootfs import setup
from ociish.spec.defaults import default_config

DEVICE_STEPS = ("mknod", "chmod", "chown", "unlink", "mount", "symlink")
FUSE = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o660, "uid": 1, "gid": 2}
TUN = {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200}


def devices(tmp_path: Path, *configured: dict[str, Any]) -> list[dict[str, Any]]:
    """The planned devices: the defaults, then ``configured`` (linux.devices)."""
    config = copy.deepcopy(default_config())
    config["process"]["terminal"] = False
    config["linux"]["devices"] = list(configured)
    plan = build_plan(config, container_id="c", bundle=str(tmp_path), rootfs=str(tmp_path / "rootfs"), options={},
                      cgroup_mounts=[])
    return list(plan["devices"])


@pytest.fixture
def root_fd(tmp_path: Path) -> Any:
    (tmp_path / "rootfs/dev").mkdir(parents=True)
    fd = os.open(tmp_path / "rootfs", os.O_PATH | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def test_devices_are_made_with_mknod_then_given_their_mode_and_owner(syscalls_fake: SyscallFake, root_fd: int,
                                                                     tmp_path: Path) -> None:
    planned = devices(tmp_path, FUSE, TUN)
    setup.create_devices(root_fd, planned[-2:], bind_from_host=False)
    assert syscalls_fake.calls(*DEVICE_STEPS) == [
        ("mknod", "{tmp}/rootfs/dev/fuse", stat.S_IFCHR | 0o660, os.makedev(10, 229)),
        ("chmod", "{tmp}/rootfs/dev/fuse", 0o660),  # mknod's mode went through the umask
        ("chown", "{tmp}/rootfs/dev/fuse", 1, 2),
        ("mknod", "{tmp}/rootfs/dev/net/tun", stat.S_IFCHR | 0o666, os.makedev(10, 200)),
        ("chmod", "{tmp}/rootfs/dev/net/tun", 0o666),
        ("chown", "{tmp}/rootfs/dev/net/tun", 0, 0),
    ]
    assert (tmp_path / "rootfs/dev/net").is_dir()  # the parent, made inside the rootfs


def test_in_a_user_namespace_the_hosts_node_is_bind_mounted_on_an_empty_file(syscalls_fake: SyscallFake,
                                                                           root_fd: int, tmp_path: Path) -> None:
    setup.create_devices(root_fd, devices(tmp_path)[:2], bind_from_host=True)
    assert syscalls_fake.calls(*DEVICE_STEPS) == [
        ("mount", "/dev/null", "{tmp}/rootfs/dev/null", None, L.MS_BIND),
        ("mount", "/dev/zero", "{tmp}/rootfs/dev/zero", None, L.MS_BIND),
    ]
    assert (tmp_path / "rootfs/dev/null").read_bytes() == b""


def test_the_same_device_already_there_is_kept_with_the_configured_mode_and_owner(
        syscalls_fake: SyscallFake, root_fd: int, tmp_path: Path) -> None:
    fuse = devices(tmp_path, FUSE)[-1:]
    setup.create_devices(root_fd, fuse, bind_from_host=False)
    del syscalls_fake.log[:]
    setup.create_devices(root_fd, fuse, bind_from_host=False)
    assert syscalls_fake.calls(*DEVICE_STEPS) == [
        ("chmod", "{tmp}/rootfs/dev/fuse", 0o660), ("chown", "{tmp}/rootfs/dev/fuse", 1, 2)]


def test_something_else_at_a_default_devices_path_is_replaced(syscalls_fake: SyscallFake, root_fd: int,
                                                              tmp_path: Path) -> None:
    (tmp_path / "rootfs/dev/null").write_text("not a device")
    setup.create_devices(root_fd, devices(tmp_path)[:1], bind_from_host=False)
    assert syscalls_fake.calls(*DEVICE_STEPS)[:2] == [
        ("unlink", "{tmp}/rootfs/dev/null"),
        ("mknod", "{tmp}/rootfs/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3)),
    ]


@pytest.mark.parametrize(("make", "message"), [
    (lambda path: path.write_text(""), r"^linux.devices\[0\].path: /dev/fuse already exists in the rootfs and is "
                                       r"not that device$"),
    (lambda path: path.mkdir(), r"^linux.devices\[0\].path: /dev/fuse already exists"),
])
def test_something_else_at_a_configured_devices_path_is_refused(syscalls_fake: SyscallFake, root_fd: int,
                                                                tmp_path: Path, make: Any, message: str) -> None:
    make(tmp_path / "rootfs/dev/fuse")
    with pytest.raises(setup.SetupError, match=message):
        setup.create_devices(root_fd, devices(tmp_path, FUSE)[-1:], bind_from_host=False)
    assert syscalls_fake.calls(*DEVICE_STEPS) == []


def test_a_directory_at_a_default_devices_path_is_refused(syscalls_fake: SyscallFake, root_fd: int,
                                                          tmp_path: Path) -> None:
    (tmp_path / "rootfs/dev/zero").mkdir()
    with pytest.raises(setup.SetupError, match=r"^linux.devices.path: /dev/zero is a directory in the rootfs$"):
        setup.create_devices(root_fd, devices(tmp_path)[:2], bind_from_host=False)
    assert [call[:2] for call in syscalls_fake.calls(*DEVICE_STEPS)] == [
        ("mknod", "{tmp}/rootfs/dev/null"), ("chmod", "{tmp}/rootfs/dev/null"), ("chown", "{tmp}/rootfs/dev/null")]


def test_a_refused_mknod_stops_there_and_leaks_no_fd(syscalls_fake: SyscallFake, root_fd: int,
                                                     tmp_path: Path) -> None:
    syscalls_fake.fail("mknod", errno.EPERM, lambda path, *rest: path.endswith("/full"))
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(PermissionError):
        setup.create_devices(root_fd, devices(tmp_path), bind_from_host=False)
    assert [call[1] for call in syscalls_fake.calls("mknod")] == [
        "{tmp}/rootfs/dev/null", "{tmp}/rootfs/dev/zero", "{tmp}/rootfs/dev/full"]
    assert set(os.listdir("/proc/self/fd")) == before


def test_the_dev_symlinks_are_made_unless_something_is_there(syscalls_fake: SyscallFake, root_fd: int,
                                                             tmp_path: Path) -> None:
    (tmp_path / "rootfs/dev/ptmx").write_text("")  # e.g. an image's own node: left alone
    setup.create_dev_symlinks(root_fd, list(DEV_SYMLINKS))
    assert syscalls_fake.calls("symlink") == [
        ("symlink", "/proc/self/fd", "{tmp}/rootfs/dev/fd"),
        ("symlink", "/proc/self/fd/0", "{tmp}/rootfs/dev/stdin"),
        ("symlink", "/proc/self/fd/1", "{tmp}/rootfs/dev/stdout"),
        ("symlink", "/proc/self/fd/2", "{tmp}/rootfs/dev/stderr"),
        ("symlink", "pts/ptmx", "{tmp}/rootfs/dev/ptmx"),
    ]
    assert os.readlink(tmp_path / "rootfs/dev/stdout") == "/proc/self/fd/1"
    assert (tmp_path / "rootfs/dev/ptmx").is_file()
