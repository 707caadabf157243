"""A recording stand-in for ociish.linux.syscalls: root-less tests of the setup steps.

Every seam function is replaced.  Each call is logged as ``(name, *args)`` with paths and
fds made readable: a ``/proc/self/fd/N`` path or an fd argument becomes the path it
refers to, and the test's temporary directory reads as ``{tmp}``, so a test can compare
the log with a literal list.

What only root may do (mount, pivot_root, mknod, chown, set*id, capset, prctl, seccomp, chroot,
chdir) is recorded and not done; ``mknod`` leaves an empty file, which ``stat``/``fstat``
then report as the device that was asked for.  What an unprivileged user may do inside
the temporary directory (openat2, stat, mkdir, rmdir, symlink, unlink, chmod,
write_file) is recorded and done; statvfs answers ``mount_flags``, getcwd ``cwd`` and
capget ``caps``.  ``fail(name, errno, ...)`` makes a matching call raise
instead, as the kernel would.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from typing import Any

import pytest

from ociish.linux import syscalls

FD_ARGS = {"fchdir": (0,), "move_mount": (0, 1), "mount_setattr": (0,), "fstat": (0,), "openat2": (0,)}
# arguments that are paths the kernel resolves (so /proc/self/fd/N is shown as what N is)
PATH_ARGS = {"mount": (0, 1), "umount2": (0,), "statvfs": (0,), "chdir": (0,)}
# the argument a dir_fd keyword is for (symlink's first is its target, kept as written)
DIR_FD_ARG = {"symlink": 1}
# the argument the real function names in its OSError (mount reports its target)
ERROR_ARG = {"mount": 1, "symlink": 1}
NOT_DONE = {"mount", "umount2", "pivot_root", "move_mount", "mount_setattr", "mknod", "chown", "setgroups",
            "setresgid", "setresuid", "prctl", "capset", "seccomp_load", "chroot", "chdir", "fchdir"}


class SyscallFake:
    """Installed by the ``syscalls`` fixture; ``log`` holds every call in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp: str) -> None:
        self.tmp = tmp
        self.log: list[tuple[Any, ...]] = []
        self.failures: list[tuple[str, int, Callable[..., bool]]] = []
        self.devices: dict[tuple[int, int], tuple[int, int]] = {}  # (st_dev, st_ino) → (mode, rdev) of a mknod
        self.cwd = "/"  # what getcwd answers (chdir is recorded, not done)
        self.caps = (0, 0, 0)  # what capget answers
        self.mount_flags = 0  # the ST_* flags statvfs reports for every mount
        for name in syscalls.NAMES:
            monkeypatch.setattr(syscalls, name, self._stand_in(name, getattr(syscalls, name)))

    def fail(self, name: str, err: int, when: Callable[..., bool] = lambda *args: True) -> None:
        """The next call of ``name`` whose logged arguments satisfy ``when`` raises ``err``."""
        self.failures.append((name, err, when))

    def calls(self, *names: str) -> list[tuple[Any, ...]]:
        """The log, restricted to ``names``."""
        return [call for call in self.log if call[0] in names]

    def show(self, value: Any, is_fd: bool = False, is_path: bool = False) -> Any:
        """An argument as the log shows it: fds and /proc/self/fd paths as what they refer to."""
        if is_fd and isinstance(value, int) and value >= 0:
            value = os.readlink(f"/proc/self/fd/{value}")
        elif is_path and isinstance(value, str) and value.startswith("/proc/self/fd/"):
            value = os.readlink(value)
        if isinstance(value, str):
            value = value.replace(self.tmp, "{tmp}")
        return value

    def _stand_in(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        fds, paths, relative = FD_ARGS.get(name, ()), PATH_ARGS.get(name, ()), DIR_FD_ARG.get(name, 0)
        named = ERROR_ARG.get(name, 0)

        def call(*args: Any, **kwargs: Any) -> Any:
            shown = [self.show(a, i in fds, i in paths) for i, a in enumerate(args)]
            if kwargs.get("dir_fd") is not None:  # a name relative to a directory fd: log it whole
                shown[relative] = os.path.join(self.show(kwargs["dir_fd"], True), shown[relative])
            self.log.append((name, *shown))
            for failure in self.failures:
                if failure[0] == name and failure[2](*shown):
                    self.failures.remove(failure)
                    path = shown[named] if len(shown) > named and isinstance(shown[named], str) else None
                    raise OSError(failure[1], os.strerror(failure[1]), path)
            own = getattr(self, "_" + name, None)
            if own is not None:
                return own(*args, **kwargs)
            return None if name in NOT_DONE else real(*args, **kwargs)

        return call

    def _mknod(self, path: str, mode: int, device: int = 0, *, dir_fd: int | None = None) -> None:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        st = os.fstat(fd)
        os.close(fd)
        self.devices[st.st_dev, st.st_ino] = (mode, device)

    def _as_device(self, st: os.stat_result) -> Any:
        made = self.devices.get((st.st_dev, st.st_ino))
        if made is None:
            return st
        fields = {name: getattr(st, name) for name in dir(st) if name.startswith("st_")}
        return types.SimpleNamespace(**dict(fields, st_mode=made[0], st_rdev=made[1]))

    def _stat(self, *args: Any, **kwargs: Any) -> Any:
        return self._as_device(os.stat(*args, **kwargs))

    def _fstat(self, fd: int) -> Any:
        return self._as_device(os.fstat(fd))

    def _statvfs(self, path: str) -> Any:
        return types.SimpleNamespace(f_flag=self.mount_flags)

    def _getcwd(self) -> str:
        return self.cwd

    def _capget(self) -> tuple[int, int, int]:
        return self.caps

    def _prctl(self, *args: int) -> int:
        return 0


@pytest.fixture
def syscalls_fake(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> SyscallFake:
    return SyscallFake(monkeypatch, str(tmp_path))

