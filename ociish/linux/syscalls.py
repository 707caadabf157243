"""The seam: every call that changes the mount tree, devices, credentials or cgroups.

rootfs setup, device creation, credential dropping and the cgroup manager call these
names through the module (``S.mount(...)``), never ``os``/``libc`` directly, so a test
can swap each for a recording fake (tests/unit/syscall_fake.py) and check the exact
sequence of calls, and their error paths, without root.  The names are the real
functions themselves, no wrapper: going through the seam costs one attribute lookup.
Those backed by ctypes are bound on first use (``__getattr__`` below), so the commands
that only touch cgroups (kill, delete) do not load ctypes and libc (~15 ms).
"""

from __future__ import annotations

import os

# mount tree, working directory, root
chdir = os.chdir
fchdir = os.fchdir
chroot = os.chroot
statvfs = os.statvfs
# device nodes and the files made for them
mknod = os.mknod
chmod = os.chmod
chown = os.chown
symlink = os.symlink
unlink = os.unlink
stat = os.stat  # where a node's identity (type, rdev) decides what happens
fstat = os.fstat
# credentials
setgroups = os.setgroups
setresgid = os.setresgid
setresuid = os.setresuid
getcwd = os.getcwd
# cgroups
mkdir = os.mkdir
rmdir = os.rmdir


def write_file(path: str, data: bytes) -> None:
    """One write(2) of ``data`` to an existing file (cgroupfs parses each write on its own)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# bound from ociish.linux.libc on first use
LIBC = ("mount", "umount2", "pivot_root", "move_mount", "mount_setattr", "openat2", "prctl", "capset", "capget",
        "seccomp_load")
NAMES = (*LIBC, "chdir", "fchdir", "chroot", "statvfs", "mknod", "chmod", "chown", "symlink", "unlink", "stat",
         "fstat", "setgroups", "setresgid", "setresuid", "getcwd", "mkdir", "rmdir", "write_file")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ociish.linux.libc import capget as capget
    from ociish.linux.libc import capset as capset
    from ociish.linux.libc import mount as mount
    from ociish.linux.libc import mount_setattr as mount_setattr
    from ociish.linux.libc import move_mount as move_mount
    from ociish.linux.libc import openat2 as openat2
    from ociish.linux.libc import pivot_root as pivot_root
    from ociish.linux.libc import prctl as prctl
    from ociish.linux.libc import seccomp_load as seccomp_load
    from ociish.linux.libc import umount2 as umount2
else:
    def __getattr__(name: str) -> object:
        if name not in LIBC:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from ociish.linux import libc

        function = getattr(libc, name)
        globals()[name] = function  # later lookups are plain module attributes
        return function
