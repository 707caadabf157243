"""ctypes bindings for the syscalls Python 3.11's stdlib does not expose.

The libc already mapped into the process (``dlopen(NULL)``): never
``ctypes.util.find_library``, which spawns helpers.  Every wrapper raises OSError with
errno and, where useful, the path it worked on.  Syscalls added in Linux 5.x share their
numbers across architectures; the older ones go through their libc wrappers.

Built on ``_ctypes``, the C half of ctypes, with the few C types used here declared as
ctypes declares them: the ``ctypes`` package's own ``__init__`` defines every C type and
helper it has, 9.5 M instructions beyond ``_ctypes`` in the CLI of every create and again
in the bootstrap, which imports this module too.  The type checker sees ctypes' classes;
tests/unit/test_libc.py checks the declared types and structures against ctypes' own.
"""

from __future__ import annotations

import os

import _ctypes
from _ctypes import Structure, addressof, byref, get_errno, sizeof

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ctypes import (CDLL, c_char, c_int, c_int32, c_long, c_short, c_uint, c_uint32, c_uint64, c_ulong,
                        c_ushort, c_void_p)

    _libc = CDLL(None, use_errno=True)
    _syscall = _libc.syscall
else:
    class c_char(_ctypes._SimpleCData):
        _type_ = "c"

    class c_short(_ctypes._SimpleCData):
        _type_ = "h"

    class c_ushort(_ctypes._SimpleCData):
        _type_ = "H"

    class c_int(_ctypes._SimpleCData):
        _type_ = "i"

    class c_uint(_ctypes._SimpleCData):
        _type_ = "I"

    class c_long(_ctypes._SimpleCData):
        _type_ = "l"

    class c_ulong(_ctypes._SimpleCData):
        _type_ = "L"

    class c_uint64(_ctypes._SimpleCData):
        _type_ = "Q"

    class c_void_p(_ctypes._SimpleCData):
        _type_ = "P"

    c_int32, c_uint32 = c_int, c_uint  # int is 32 bits on every Linux ABI

    class _Function(_ctypes.CFuncPtr):
        """A libc function as ``CDLL(None, use_errno=True)`` gives it: returns a C int, keeps errno."""

        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = c_int

    class _Syscall(_ctypes.CFuncPtr):
        _flags_ = _Function._flags_
        _restype_ = c_long

    class _Libc:
        """The process's own libc (RTLD_LOCAL, ctypes' default mode); functions looked up once."""

        def __init__(self) -> None:
            self._handle = _ctypes.dlopen(None, os.RTLD_LOCAL)

        def __getattr__(self, name: str) -> _Function:
            function = _Function((name, self))
            setattr(self, name, function)
            return function

    _libc = _Libc()
    _syscall = _Syscall(("syscall", _libc))

# Numbers shared by every architecture (added after the syscall table unification).
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432
SYS_CLOSE_RANGE = 436
SYS_OPENAT2 = 437
SYS_PIDFD_GETFD = 438
SYS_MOUNT_SETATTR = 442

# Architecture-specific numbers for calls without a usable libc wrapper.
_ARCH_NR = {
    "x86_64": {"pivot_root": 155, "keyctl": 250, "seccomp": 317, "ioprio_set": 251, "sched_setattr": 314, "set_mempolicy": 238},
    "aarch64": {"pivot_root": 41, "keyctl": 219, "seccomp": 277, "ioprio_set": 30, "sched_setattr": 274, "set_mempolicy": 237},
    "ppc64le": {"pivot_root": 203, "keyctl": 271, "seccomp": 358, "ioprio_set": 273, "sched_setattr": 355, "set_mempolicy": 261},
    "s390x": {"pivot_root": 217, "keyctl": 280, "seccomp": 348, "ioprio_set": 282, "sched_setattr": 345, "set_mempolicy": 270},
    "riscv64": {"pivot_root": 41, "keyctl": 219, "seccomp": 277, "ioprio_set": 30, "sched_setattr": 274, "set_mempolicy": 237},
}

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
CLOSE_RANGE_CLOEXEC = 1 << 2

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        err = get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _b(path: str | bytes | None) -> bytes | None:
    if path is None or isinstance(path, bytes):
        return path
    return os.fsencode(path)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    ret = _libc.mount(_b(source), _b(target), _b(fstype), c_ulong(flags), _b(data))
    _check(ret, "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount", target)


def _nr(name: str) -> int:
    nr = _ARCH_NR.get(os.uname().machine, {}).get(name)
    if nr is None:
        raise OSError(38, f"{name}: unknown syscall number for this architecture")
    return nr


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_syscall(c_long(_nr("pivot_root")), _b(new_root), _b(put_old)), "pivot_root", new_root)


KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name: str) -> None:
    """A new session keyring, so the container does not share the caller's keys."""
    _check(_syscall(c_long(_nr("keyctl")), KEYCTL_JOIN_SESSION_KEYRING, _b(name)), "keyctl")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(
        _libc.prctl(option, c_ulong(arg2), c_ulong(arg3), c_ulong(arg4), c_ulong(arg5)),
        "prctl",
    )


def set_process_name(name: str) -> None:
    """What ps and /proc/PID/comm show (15 bytes at most)."""
    _check(_libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0), "prctl")  # bytes end in a NUL


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname")


class _OpenHow(Structure):
    _fields_ = [("flags", c_uint64), ("mode", c_uint64), ("resolve", c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open ``path`` under ``dirfd`` with RESOLVE_* restrictions."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    while True:
        ret = _syscall(c_long(SYS_OPENAT2), dirfd, _b(path), byref(how), sizeof(how))
        if ret >= 0:
            return ret
        err = get_errno()
        if err != 11:  # EAGAIN: a concurrent rename raced the lookup; retry as the man page says
            raise OSError(err, f"open: {os.strerror(err)}", path)


def fsopen(fstype: str) -> int:
    return _check(_syscall(c_long(SYS_FSOPEN), _b(fstype), 1), "fsopen", fstype)  # FSOPEN_CLOEXEC


def fsconfig_create(fsfd: int) -> None:
    _check(_syscall(c_long(SYS_FSCONFIG), fsfd, FSCONFIG_CMD_CREATE, None, None, 0), "fsconfig")


def fsmount(fsfd: int, attr_flags: int = 0) -> int:
    return _check(_syscall(c_long(SYS_FSMOUNT), fsfd, FSMOUNT_CLOEXEC, attr_flags), "fsmount")


def open_tree(dirfd: int, path: str, flags: int) -> int:
    return _check(_syscall(c_long(SYS_OPEN_TREE), dirfd, _b(path), c_uint(flags)), "open_tree", path)


def move_mount(from_fd: int, to_fd: int) -> None:
    """Attach the detached mount ``from_fd`` onto the directory or file ``to_fd``."""
    flags = MOVE_MOUNT_F_EMPTY_PATH | 0x40  # MOVE_MOUNT_T_EMPTY_PATH
    _check(_syscall(c_long(SYS_MOVE_MOUNT), from_fd, b"", to_fd, b"", flags), "move_mount")


class _MountAttr(Structure):
    _fields_ = [
        ("attr_set", c_uint64),
        ("attr_clr", c_uint64),
        ("propagation", c_uint64),
        ("userns_fd", c_uint64),
    ]


def mount_setattr(fd: int, attr_set: int, attr_clr: int, propagation: int = 0, recursive: bool = True,
                  userns_fd: int = 0) -> None:
    """Change the mount at ``fd`` (and below it when ``recursive``); MOUNT_ATTR_IDMAP
    takes the user namespace whose mapping the mount shows in ``userns_fd``."""
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    ret = _syscall(c_long(SYS_MOUNT_SETATTR), fd, b"", flags, byref(attr), sizeof(attr))
    _check(ret, "mount_setattr")


def close_range_cloexec(first: int) -> None:
    """Mark every fd >= first close-on-exec (nothing is closed under Python's feet)."""
    ret = _syscall(c_long(SYS_CLOSE_RANGE), c_uint(first), c_uint(0xFFFFFFFF), CLOSE_RANGE_CLOEXEC)
    if ret < 0:  # kernels before 5.11: do it one fd at a time
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd >= first:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass


def pidfd_getfd(pidfd: int, target_fd: int) -> int:
    """A duplicate of another process's fd (needs ptrace access to it)."""
    return _check(_syscall(c_long(SYS_PIDFD_GETFD), pidfd, target_fd, 0), "pidfd_getfd")


# Capabilities: capget/capset with _LINUX_CAPABILITY_VERSION_3 (two 32-bit words per set).
class _CapHeader(Structure):
    _fields_ = [("version", c_uint32), ("pid", c_int)]


class _CapData(Structure):
    _fields_ = [("effective", c_uint32), ("permitted", c_uint32), ("inheritable", c_uint32)]


_CAP_V3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(byref(header), data), "capset")


def capget() -> tuple[int, int, int]:
    """The calling thread's (effective, permitted, inheritable) capability masks."""
    header = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    _check(_libc.capget(byref(header), data), "capget")
    return tuple(sum(getattr(data[i], name) << 32 * i for i in range(2))
                 for name in ("effective", "permitted", "inheritable"))


def personality(persona: int) -> None:
    _check(_libc.personality(c_ulong(persona)), "personality")


IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13


def ioprio_set(io_class: int, level: int) -> None:
    value = (io_class << IOPRIO_CLASS_SHIFT) | level
    _check(_syscall(c_long(_nr("ioprio_set")), IOPRIO_WHO_PROCESS, 0, value), "ioprio_set")


class _SchedAttr(Structure):
    _fields_ = [("size", c_uint32), ("policy", c_uint32), ("flags", c_uint64),
                ("nice", c_int32), ("priority", c_uint32), ("runtime", c_uint64),
                ("deadline", c_uint64), ("period", c_uint64)]


def sched_setattr(policy: int, flags: int, nice: int, priority: int, runtime: int, deadline: int, period: int) -> None:
    attr = _SchedAttr(sizeof(_SchedAttr), policy, flags, nice, priority, runtime, deadline, period)
    _check(_syscall(c_long(_nr("sched_setattr")), 0, byref(attr), 0), "sched_setattr")


def set_mempolicy(mode: int, nodemask: list[int], maxnode: int) -> None:
    """The calling thread's NUMA policy (see ociish.linux.mempolicy); its children and
    an execve keep it."""
    words = (c_ulong * len(nodemask))(*nodemask) if nodemask else None
    _check(_syscall(c_long(_nr("set_mempolicy")), mode, words, c_ulong(maxnode)), "set_mempolicy")


class _SockFprog(Structure):
    _fields_ = [("len", c_ushort), ("filter", c_void_p)]


SECCOMP_SET_MODE_FILTER = 1


def seccomp_load(program: bytes, flags: int) -> int:
    """Install a compiled BPF filter; returns the listener fd with NEW_LISTENER, else 0."""
    buf = (c_char * len(program)).from_buffer_copy(program)
    prog = _SockFprog(len(program) // 8, addressof(buf))
    return _check(_syscall(c_long(_nr("seccomp")), SECCOMP_SET_MODE_FILTER, c_uint(flags),
                           byref(prog)), "seccomp")


class _Statfs(Structure):
    _fields_ = [("f_type", c_long), ("_rest", c_long * 15)]


SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class _IfreqFlags(Structure):
    """struct ifreq with its union read as ifr_flags (40 bytes on 64-bit)."""

    _fields_ = [("name", c_char * 16), ("flags", c_short), ("_rest", c_char * 22)]


def interface_up(name: str) -> None:
    """Set IFF_UP on a network interface of the caller's network namespace (SIOCSIFFLAGS)."""
    sock = _check(_libc.socket(2, 2 | os.O_CLOEXEC, 0), "socket")  # AF_INET, SOCK_DGRAM | SOCK_CLOEXEC
    try:
        request = _IfreqFlags(name.encode())
        _check(_libc.ioctl(sock, SIOCGIFFLAGS, byref(request)), "SIOCGIFFLAGS", name)
        request.flags |= IFF_UP
        _check(_libc.ioctl(sock, SIOCSIFFLAGS, byref(request)), "SIOCSIFFLAGS", name)
    finally:
        os.close(sock)


PROC_SUPER_MAGIC = 0x9FA0
DEVPTS_SUPER_MAGIC = 0x1CD1


def fstatfs_type(fd: int) -> int:
    """The filesystem magic number of the file behind ``fd``."""
    buf = _Statfs()
    _check(_libc.fstatfs(fd, byref(buf)), "fstatfs")
    return buf.f_type


def private_procfs() -> int:
    """A detached procfs mount of the caller's pid namespace, reachable only by this fd.

    Writes that must land on procfs (sysctl, the exec fifo reopen) go through it, so no
    mount the container image or a racing process controls can redirect them.
    """
    fsfd = fsopen("proc")
    try:
        fsconfig_create(fsfd)
        return fsmount(fsfd, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
    finally:
        os.close(fsfd)
