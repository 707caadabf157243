"""Plain file operations on cgroupfs, with the kernel's quirks handled in one place.

What changes the hierarchy (mkdir, rmdir, writes) goes through the syscall seam."""

from __future__ import annotations

import errno
import os
import time

from ociish.linux import syscalls as S

# An exiting task stays in cgroup.procs for a moment, so rmdir can fail with EBUSY
# right after a kill; retry with a growing delay for about this long.
RMDIR_TIMEOUT = 2.0


def read_text(path: str) -> str:
    """A control file's content without the trailing newline."""
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def write_text(path: str, value: str) -> None:
    """One write(2) of `value`: cgroupfs parses each write on its own, so never split it."""
    S.write_file(path, value.encode())


def read_optional(path: str) -> str | None:
    """`read_text`, or None if the file does not exist (a controller or kernel feature is absent)."""
    try:
        return read_text(path)
    except FileNotFoundError:
        return None


def read_keyed(path: str) -> dict[str, str]:
    """A flat-keyed file (`key value` per line, e.g. cgroup.events); {} if it does not exist."""
    text = read_optional(path) or ""
    return dict(line.split(None, 1) for line in text.splitlines() if " " in line)


def procs(directory: str, recursive: bool = False) -> list[int]:
    """The pids in `cgroup.procs` of `directory` (and, if asked, every cgroup below it)."""
    found: set[int] = set()
    dirs = [directory]
    if recursive:
        dirs += [os.path.join(top, d) for top, subdirs, _ in os.walk(directory) for d in subdirs]
    for d in dirs:
        try:
            found.update(int(p) for p in read_text(os.path.join(d, "cgroup.procs")).split())
        except FileNotFoundError:
            continue  # removed while we walked
    return sorted(found)


def mkdir(path: str) -> bool:
    """Create one cgroup; False if it already existed."""
    try:
        S.mkdir(path, 0o755)
    except FileExistsError:
        return False
    return True


def rmdir(path: str) -> None:
    """Remove one cgroup, retrying while it is busy; a missing directory is fine."""
    deadline = time.monotonic() + RMDIR_TIMEOUT
    delay = 0.005
    while True:
        try:
            S.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def rmtree(path: str) -> None:
    """Remove a cgroup and any child cgroups the container made inside it, leaves first."""
    if not os.path.isdir(path):
        return
    for top, subdirs, _ in os.walk(path, topdown=False):
        for d in subdirs:
            rmdir(os.path.join(top, d))
    rmdir(path)
