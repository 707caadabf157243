"""Become the configured user with exactly the configured capabilities (runs in the init).

Order matters: the bounding set is dropped while CAP_SETPCAP is still held; KEEPCAPS keeps
the permitted set across setuid so that the final capset can trim it to the config; the
working directory is tried before setuid (the runtime may reach it) and after (only the
user may), then verified to be inside the container (CVE-2024-21626 class).
"""

from __future__ import annotations

import os
import stat

from ociish import safepath
from ociish.errors import OciishError
from ociish.linux import libc as L

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class CredentialsError(OciishError):
    pass


def chown_stdio(uid: int) -> None:
    """Let a non-root container user use the stdio it was given (not /dev/null).

    Only the owner changes, as runc does: a pty keeps the group devpts gave it (its
    ``gid=`` option, the tty group 5 in the usual config), so ``mesg`` and ``write`` work."""
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if st.st_rdev == os.makedev(1, 3):
            continue
        try:
            os.fchown(fd, uid, -1)
        except OSError:
            pass  # not ours to change (e.g. a read-only or foreign tty); the process may still use it


PASSWD_LIMIT = 16 << 20  # bytes of the container's /etc/passwd read at most


def home_directory(uid: int) -> str:
    """The home of ``uid``'s first entry in the container's /etc/passwd, "/" without one
    (what runc sets HOME to when process.env has none).

    Runs with "/" being the container's root; the file is opened inside it (a symlink
    cannot lead out), without blocking, and only a regular file is read."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = safepath.open_in_root(root, "/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return "/"
    finally:
        os.close(root)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "/"
        chunks = []
        size = 0
        while size < PASSWD_LIMIT and (chunk := os.read(fd, 65536)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError:
        return "/"
    finally:
        os.close(fd)
    wanted = str(uid).encode()
    for line in data.split(b"\n"):
        fields = line.strip().split(b":")  # name:password:uid:gid:gecos:home:shell
        if len(fields) > 2 and fields[2].strip() == wanted:
            home = fields[5].decode(errors="surrogateescape") if len(fields) > 5 else ""
            return home or "/"
    return "/"


def become_user(proc: dict[str, Any], setgroups_allowed: bool) -> list[str]:
    """Switch ids, capabilities and cwd; returns warnings for what could not be granted."""
    warnings: list[str] = []
    cwd = proc["cwd"]
    try:
        os.chdir(cwd)
        early_cwd = True
    except OSError:
        early_cwd = False
    caps = proc["caps"]
    if caps is not None:
        last = caps["last"]
        for number in range(last + 1):
            if not caps["bounding"] >> number & 1:
                L.prctl(L.PR_CAPBSET_DROP, number)
    L.prctl(L.PR_SET_KEEPCAPS, 1)
    if setgroups_allowed:
        os.setgroups(proc["additional_gids"])
    os.setresgid(proc["gid"], proc["gid"], proc["gid"])
    os.setresuid(proc["uid"], proc["uid"], proc["uid"])
    if not early_cwd:
        try:
            os.chdir(cwd)
        except OSError as e:
            raise CredentialsError(f"process.cwd: cannot change to {cwd}: {e.strerror}") from None
    try:
        here = os.getcwd()
    except OSError:
        here = "(unreachable)"
    if not here.startswith("/"):
        raise CredentialsError(f"process.cwd: {cwd} is outside the container")
    L.prctl(L.PR_SET_KEEPCAPS, 0)
    if caps is not None:
        L.capset(caps["effective"], caps["permitted"], caps["inheritable"])
        L.prctl(L.PR_CAP_AMBIENT, L.PR_CAP_AMBIENT_CLEAR_ALL)
        for number in range(caps["last"] + 1):
            if caps["ambient"] >> number & 1:
                try:
                    L.prctl(L.PR_CAP_AMBIENT, L.PR_CAP_AMBIENT_RAISE, number)
                except OSError as e:
                    warnings.append(f"process.capabilities.ambient: cannot raise capability {number}: {e.strerror}")
    return warnings


def find_executable(name: str, env: list[str]) -> str:
    """execvp's lookup of args[0] against the container's PATH, done before start."""
    if "/" in name:
        if os.access(name, os.X_OK) and not os.path.isdir(name):
            return name
        reason = "no such file or directory" if not os.path.exists(name) else "permission denied"
        raise CredentialsError(f"process.args[0]: exec: {name!r}: {reason}")
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for item in env:
        if item.startswith("PATH="):
            path = item[5:]
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    raise CredentialsError(f"process.args[0]: exec: {name!r}: executable file not found in $PATH")
