"""rootfs setup through the syscall seam: the exact mount sequence, without root.

The plan comes from the real planner (the default config, plus what each test adds); the
rootfs is a temporary directory, resolved for real (openat2); every mount, pivot_root
and chdir is recorded by the fake instead of done (tests/unit/syscall_fake.py).
"""

from __future__ import annotations

import copy
import errno
import os
from pathlib import Path
from typing import Any

import pytest
from syscall_fake import SyscallFake, syscalls_fake  # noqa: F401 - the fixture

from ociish.linux import libc as L
from ociish.process.plan import build_plan
from ociish.rootfs import setup
from ociish.spec.defaults import default_config

MOUNT_STEPS = ("mount", "umount2", "pivot_root", "move_mount", "mount_setattr", "fchdir", "chdir", "chroot")
REMOUNT_BIND = L.MS_REMOUNT | L.MS_BIND
NO_DEVICES = L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC


def make_plan(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """The plan of the default config (with ``changes`` to its top-level keys) for a rootfs in tmp_path."""
    config = copy.deepcopy(default_config())
    config["process"]["terminal"] = False
    config.update(changes)
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir(exist_ok=True)
    return build_plan(config, container_id="c", bundle=str(tmp_path), rootfs=str(rootfs), options={},
                      cgroup_mounts=[("", None, "/sys/fs/cgroup/c")])


def build(plan: dict[str, Any]) -> None:
    """The init's rootfs steps, in its order (process/init.py), hooks and console left out."""
    root_fd = setup.prepare_root(plan["rootfs"])
    try:
        for index, m in enumerate(plan["mounts"]):
            setup.do_mount(root_fd, m, f"mounts[{index}]")
        setup.create_devices(root_fd, plan["devices"], plan["bind_devices"])
        setup.create_dev_symlinks(root_fd, plan["dev_symlinks"])
        setup.readonly_paths(root_fd, plan["readonly_paths"])
        setup.mask_paths(root_fd, plan["masked_paths"])
        setup.pivot(root_fd)
    finally:
        os.close(root_fd)


def mount_holding(path: Path) -> str:
    while not os.path.ismount(path):
        path = path.parent
    return str(path)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_the_default_config_mounts_in_order_then_pivots(syscalls_fake: SyscallFake, tmp_path: Path) -> None:
    (tmp_path / "rootfs/proc/acpi").mkdir(parents=True)  # a masked directory
    (tmp_path / "rootfs/proc/kcore").write_text("")  # a masked file
    (tmp_path / "rootfs/proc/sys").mkdir()  # a read-only path
    build(make_plan(tmp_path))
    root = "{tmp}/rootfs"
    assert syscalls_fake.calls(*MOUNT_STEPS) == [
        # the host's mounts stop propagating to us; the rootfs becomes a mount of its own
        ("mount", None, "/", None, L.MS_SLAVE | L.MS_REC),
        ("mount", None, syscalls_fake.show(mount_holding(tmp_path)), None, L.MS_SLAVE),
        ("mount", root, root, None, L.MS_BIND | L.MS_REC),
        # config.json's mounts, each on its destination inside the rootfs
        ("mount", "proc", f"{root}/proc", "proc", 0, None),
        ("mount", "tmpfs", f"{root}/dev", "tmpfs", L.MS_NOSUID | L.MS_STRICTATIME, "mode=755,size=65536k"),
        ("mount", "devpts", f"{root}/dev/pts", "devpts", L.MS_NOSUID | L.MS_NOEXEC,
         "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ("mount", "shm", f"{root}/dev/shm", "tmpfs", NO_DEVICES, "mode=1777,size=65536k"),
        ("mount", "mqueue", f"{root}/dev/mqueue", "mqueue", NO_DEVICES, None),
        ("mount", "sysfs", f"{root}/sys", "sysfs", NO_DEVICES | L.MS_RDONLY, None),
        # a cgroup mount without a cgroup namespace: the container's own directory, read-only
        ("mount", "/sys/fs/cgroup/c", f"{root}/sys/fs/cgroup", None, L.MS_BIND | L.MS_REC),
        ("mount", None, f"{root}/sys/fs/cgroup", None, REMOUNT_BIND | NO_DEVICES | L.MS_RDONLY | L.MS_RELATIME),
        # readonlyPaths: a bind onto itself, then read-only; maskedPaths: an empty tmpfs, /dev/null
        ("mount", f"{root}/proc/sys", f"{root}/proc/sys", None, L.MS_BIND | L.MS_REC),
        ("mount", None, f"{root}/proc/sys", None, REMOUNT_BIND | L.MS_RDONLY),
        ("mount", "tmpfs", f"{root}/proc/acpi", "tmpfs", L.MS_RDONLY),  # a plain read-only tmpfs, as runc's
        ("mount", f"{root}/dev/null", f"{root}/proc/kcore", None, L.MS_BIND),
        # pivot_root(".", "."), then the old root (stacked on top) is detached without propagating
        ("fchdir", root),
        ("pivot_root", ".", "."),
        ("fchdir", "/"),
        ("mount", None, ".", None, L.MS_SLAVE | L.MS_REC),
        ("umount2", ".", L.MNT_DETACH),
        ("chdir", "/"),
    ]


def test_a_bind_mount_gets_its_flags_propagation_and_recursive_attributes(syscalls_fake: SyscallFake,
                                                                           tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    plan = make_plan(tmp_path, mounts=[{"destination": "/data", "type": "bind", "source": str(tmp_path / "data"),
                                        "options": ["rbind", "ro", "nosuid", "rprivate", "rnoexec"]}])
    build(plan)
    assert syscalls_fake.calls("mount", "mount_setattr")[3:7] == [
        ("mount", "{tmp}/data", "{tmp}/rootfs/data", None, L.MS_BIND | L.MS_REC),
        ("mount", None, "{tmp}/rootfs/data", None, REMOUNT_BIND | L.MS_RDONLY | L.MS_NOSUID),
        ("mount", None, "{tmp}/rootfs/data", None, L.MS_PRIVATE | L.MS_REC),
        ("mount_setattr", "{tmp}/rootfs/data", L.MOUNT_ATTR_NOEXEC, 0),
    ]
    assert (tmp_path / "rootfs/data").is_dir()  # the destination was made inside the rootfs


def test_a_refused_bind_remount_is_retried_with_the_locked_flags(syscalls_fake: SyscallFake, tmp_path: Path) -> None:
    """In a user namespace the kernel refuses to clear flags locked on the source mount."""
    (tmp_path / "data").mkdir()
    plan = make_plan(tmp_path, mounts=[{"destination": "/data", "type": "bind", "source": str(tmp_path / "data"),
                                        "options": ["bind", "ro"]}])
    syscalls_fake.mount_flags = os.ST_NOSUID | os.ST_NODEV
    syscalls_fake.fail("mount", errno.EPERM, lambda source, target, fstype, flags, *data: flags & L.MS_REMOUNT)
    root_fd = setup.prepare_root(plan["rootfs"])
    setup.do_mount(root_fd, plan["mounts"][0], "mounts[0]")
    os.close(root_fd)
    assert syscalls_fake.calls("mount", "statvfs")[3:] == [
        ("mount", "{tmp}/data", "{tmp}/rootfs/data", None, L.MS_BIND),
        ("mount", None, "{tmp}/rootfs/data", None, REMOUNT_BIND | L.MS_RDONLY),
        ("statvfs", "{tmp}/rootfs/data"),
        ("mount", None, "{tmp}/rootfs/data", None, REMOUNT_BIND | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV),
    ]


def test_a_mount_failing_midway_stops_the_setup_and_leaks_no_fd(syscalls_fake: SyscallFake, tmp_path: Path) -> None:
    """Nothing is unmounted: every mount so far is in the init's own mount namespace, which
    goes away with the init when `create` reports the error; what must not happen is a
    further step, or an fd of the rootfs left open."""
    plan = make_plan(tmp_path)
    syscalls_fake.fail("mount", errno.EACCES, lambda source, target, *rest: target.endswith("/dev/shm"))
    before = open_fds()
    with pytest.raises(PermissionError) as failed:
        build(plan)
    assert failed.value.filename == "{tmp}/rootfs/dev/shm"
    steps = syscalls_fake.calls(*MOUNT_STEPS)
    assert steps[-1] == ("mount", "shm", "{tmp}/rootfs/dev/shm", "tmpfs", NO_DEVICES, "mode=1777,size=65536k")
    assert [step[2] for step in steps[3:]] == ["{tmp}/rootfs/proc", "{tmp}/rootfs/dev", "{tmp}/rootfs/dev/pts",
                                               "{tmp}/rootfs/dev/shm"]
    assert not syscalls_fake.calls("mknod", "pivot_root")
    assert open_fds() == before


def test_proc_is_never_mounted_through_a_symlink(syscalls_fake: SyscallFake, tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    (tmp_path / "rootfs/elsewhere").mkdir()
    (tmp_path / "rootfs/proc").symlink_to("elsewhere")
    with pytest.raises(setup.SetupError, match=r"^mounts\[0\].destination: /proc in the rootfs is not a plain "):
        build(plan)
    assert syscalls_fake.calls("mount")[3:] == []


def test_a_masked_path_is_refused_when_it_is_a_symlink_or_dev_null_is_not_the_null_device(
        syscalls_fake: SyscallFake, tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    (tmp_path / "rootfs/proc").mkdir()
    (tmp_path / "rootfs/proc/kcore").symlink_to("/etc/shadow")
    root_fd = os.open(plan["rootfs"], os.O_PATH)
    index = plan["masked_paths"].index("/proc/kcore")
    with pytest.raises(setup.SetupError, match=rf"^linux.maskedPaths\[{index}\]: /proc/kcore is a symlink in the rootfs"):
        setup.mask_paths(root_fd, plan["masked_paths"])
    (tmp_path / "rootfs/proc/kcore").unlink()
    (tmp_path / "rootfs/proc/kcore").write_text("")
    (tmp_path / "rootfs/dev").mkdir()
    (tmp_path / "rootfs/dev/null").write_text("")  # a plain file, not char 1:3
    with pytest.raises(setup.SetupError, match=r"^linux.maskedPaths: /dev/null in the container is not the null"):
        setup.mask_paths(root_fd, plan["masked_paths"])
    os.close(root_fd)
    assert syscalls_fake.calls("mount") == []


def test_no_pivot_detaches_what_is_outside_the_rootfs_then_moves_it_over_root(syscalls_fake: SyscallFake,
                                                                               tmp_path: Path) -> None:
    """A host mount that cannot be detached (locked) is covered instead when it is a procfs
    or sysfs; mounts below a detached one went with it."""
    rootfs = str(tmp_path / "rootfs")
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self/mountinfo").write_text("\n".join([
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw",
        "2 1 0:5 / /proc rw - proc proc rw",
        "3 1 0:6 / /sys rw - sysfs sysfs rw",
        "4 3 0:7 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw",
        "5 1 0:8 / /my\\040data rw - tmpfs tmpfs rw",
        f"6 1 8:1 {rootfs} {rootfs} rw - ext4 /dev/sda1 rw",
        f"7 6 0:9 / {rootfs}/proc rw - proc proc rw",
    ]) + "\n")
    syscalls_fake.fail("umount2", errno.EINVAL, lambda target, flags: target == "/proc")
    procfs_fd = os.open(proc, os.O_PATH | os.O_DIRECTORY)
    setup.move_root(rootfs, procfs_fd)
    os.close(procfs_fd)
    assert syscalls_fake.calls(*MOUNT_STEPS) == [
        ("umount2", "/my data", L.MNT_DETACH),
        ("umount2", "/proc", L.MNT_DETACH),
        ("mount", "tmpfs", "/proc", "tmpfs", L.MS_RDONLY, "nr_blocks=1,nr_inodes=1"),
        ("umount2", "/sys", L.MNT_DETACH),
        ("chdir", "{tmp}/rootfs"),
        ("mount", "{tmp}/rootfs", "/", None, L.MS_MOVE),
        ("chroot", "."),
        ("chdir", "/"),
    ]


def test_read_only_dev_and_root_keep_their_other_flags(syscalls_fake: SyscallFake, tmp_path: Path) -> None:
    (tmp_path / "rootfs/dev").mkdir(parents=True)
    syscalls_fake.mount_flags = os.ST_NOSUID | os.ST_NOEXEC
    root_fd = os.open(tmp_path / "rootfs", os.O_PATH)
    setup.remount_readonly(root_fd, "/dev")
    os.close(root_fd)
    setup.remount_root_readonly()
    assert syscalls_fake.calls("mount") == [
        ("mount", None, "{tmp}/rootfs/dev", None, REMOUNT_BIND | L.MS_RDONLY | L.MS_NOSUID | L.MS_NOEXEC),
        ("mount", None, "/", None, REMOUNT_BIND | L.MS_RDONLY),  # root.readonly: nothing else kept
    ]
