"""Become the configured user with exactly the configured capabilities (runs in the init).

Order matters: the bounding set is dropped while CAP_SETPCAP is still held; KEEPCAPS keeps
the permitted set across setuid so that the capset after it can trim it to the config
(keeping CAP_SYS_ADMIN for a seccomp filter loaded without no_new_privs); the working
directory is tried before setuid (the runtime may reach it) and after (only the user
may), then verified to be inside the container (CVE-2024-21626 class).
"""

from __future__ import annotations

import os
import stat

from ociish import safepath
from ociish.errors import OciishError
from ociish.linux import caps as C
from ociish.linux import libc as L
from ociish.linux import syscalls as S

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ociish.process.plantypes import ProcessPlan


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


def switch_user(proc: ProcessPlan, setgroups_allowed: bool) -> None:
    """Drop the bounding set, change groups and ids (the permitted set kept across the
    uid change for `capability_sets`), enter and verify the cwd."""
    cwd = proc["cwd"]
    try:
        S.chdir(cwd)
        early_cwd = True
    except OSError:
        early_cwd = False
    caps = proc["caps"]
    for number in range(caps["last"] + 1):
        if not caps["bounding"] >> number & 1:
            S.prctl(L.PR_CAPBSET_DROP, number)
    S.prctl(L.PR_SET_KEEPCAPS, 1)
    if setgroups_allowed:
        S.setgroups(proc["additional_gids"])
    S.setresgid(proc["gid"], proc["gid"], proc["gid"])
    S.setresuid(proc["uid"], proc["uid"], proc["uid"])
    S.prctl(L.PR_SET_KEEPCAPS, 0)
    if not early_cwd:
        try:
            S.chdir(cwd)
        except OSError as e:
            raise CredentialsError(f"process.cwd: cannot change to {cwd}: {e.strerror}") from None
    try:
        here = S.getcwd()
    except FileNotFoundError:  # libc's answer for a cwd outside the root ("(unreachable)/...")
        here = "(unreachable)"
    except OSError as e:
        raise CredentialsError(f"process.cwd: cannot check that {cwd} is inside the container: "
                               f"getcwd: {e.strerror}") from None
    if not here.startswith("/"):
        raise CredentialsError(f"process.cwd: {cwd} is outside the container")


CAP_SYS_ADMIN = 21


def capability_sets(proc: ProcessPlan, keep_sys_admin: bool) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """((effective, permitted, inheritable) the process ends with, the sets it holds until
    its seccomp filter is loaded).  The first are the configured sets.  The second add
    CAP_SYS_ADMIN (effective and permitted) with ``keep_sys_admin``, if it is still
    permitted (after `switch_user`): a filter without no_new_privs needs it to be loaded."""
    caps = proc["caps"]
    final = (caps["effective"], caps["permitted"], caps["inheritable"])
    if keep_sys_admin and S.capget()[1] >> CAP_SYS_ADMIN & 1:
        sys_admin = 1 << CAP_SYS_ADMIN
        return final, (final[0] | sys_admin, final[1] | sys_admin, final[2])
    return final, final


def raise_ambient(proc: ProcessPlan) -> list[str]:
    """The configured ambient set (after the final capset); warnings for those that could
    not be raised."""
    warnings: list[str] = []
    caps = proc["caps"]
    S.prctl(L.PR_CAP_AMBIENT, L.PR_CAP_AMBIENT_CLEAR_ALL)
    for number in range(caps["last"] + 1):
        if caps["ambient"] >> number & 1:
            try:
                S.prctl(L.PR_CAP_AMBIENT, L.PR_CAP_AMBIENT_RAISE, number)
            except OSError as e:
                name = C.CAPABILITIES[number] if number < len(C.CAPABILITIES) else f"capability {number}"
                warnings.append(f"process.capabilities: cannot raise {name} (ambient: {e.strerror})")
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
