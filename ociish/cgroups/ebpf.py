"""The cgroup v2 device filter: device rules → a BPF_PROG_TYPE_CGROUP_DEVICE program.

cgroup v2 has no devices controller: the kernel asks eBPF programs attached to the
cgroup whether a device may be opened or created.  ociish gives the container exactly
the policy the v1 controller would have after the same `devices.allow`/`devices.deny`
writes (`emulate_v1`, the kernel's own rules: a default plus exceptions, merged and
removed the way the kernel merges and removes them), so a config means the same on
v1, hybrid and v2.  `assemble` turns that policy into bytecode with a small encoder of
its own; `attach` loads it with bpf(2) and swaps it for the cgroup's previous programs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from typing import Any, NamedTuple

from ociish.errors import OciishError

# include/uapi/linux/bpf.h
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # the attach type
BPF_F_ALLOW_MULTI = 2

# struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, access_type = access << 16 | type
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_DEVICE_TYPES = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}

# Opcodes (class | op | source) of the few instructions the filter needs.
LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W:   dst = *(u32 *)(src + off)
AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K: dst = (u32)(dst & imm)
RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K: dst = (u32)dst >> imm
MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X: dst = (u32)src
MOV64_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K: dst = imm
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K: if dst == imm: pc += off
JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K: if dst != imm: pc += off
EXIT = 0x95  # BPF_JMP | BPF_EXIT: return r0

INSN = struct.Struct("<BBhi")  # opcode, dst | src << 4, offset, immediate

# Registers of the program: r1 holds the context on entry, then serves as scratch.
R0, R1, R_TYPE, R_ACCESS, R_MAJOR, R_MINOR = 0, 1, 2, 3, 4, 5


class Entry(NamedTuple):
    """One exception of the v1 list; a None number is the `*` wildcard."""

    type: str  # "b" or "c"
    major: int | None
    minor: int | None
    access: str  # a subset of "rwm", in that order


class Policy(NamedTuple):
    """What the v1 devices controller holds: a default and its exceptions."""

    default_allow: bool
    exceptions: tuple[Entry, ...]


def emulate_v1(rules: list[dict[str, Any]]) -> Policy:
    """The v1 state after writing normalised `rules` in order into a cgroup that allows all.

    As the kernel does: type `a` resets the default and drops every exception; a rule
    that agrees with the default removes its access from an exception with the same
    type and numbers; one that disagrees adds (or widens) such an exception.
    """
    default_allow = True
    exceptions: dict[tuple[str, int | None, int | None], set[str]] = {}
    for rule in rules:
        if rule["type"] == "a":
            default_allow, exceptions = rule["allow"], {}
            continue
        key = (rule["type"], rule["major"], rule["minor"])
        if rule["allow"] == default_allow:
            remaining = exceptions.get(key, set()) - set(rule["access"])
            if remaining:
                exceptions[key] = remaining
            else:
                exceptions.pop(key, None)
        else:
            exceptions.setdefault(key, set()).update(rule["access"])
    return Policy(
        default_allow,
        tuple(Entry(t, major, minor, "".join(c for c in "rwm" if c in access))
              for (t, major, minor), access in exceptions.items()),
    )


def _insn(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return INSN.pack(opcode, dst | src << 4, off, imm)


def _access_mask(access: str) -> int:
    return sum(ACCESS_BITS[c] for c in access)


def _exception_block(exc: Entry, default_allow: bool) -> list[tuple[int, int, int, int]]:
    """(opcode, dst, src, imm) per instruction; a jump's target is "past this block".

    An allow-list exception (default deny) matches a request whose access it covers
    entirely; a deny-list exception (default allow) matches one it overlaps, which is
    how the v1 controller checks each kind.
    """
    checks: list[tuple[int, int, int, int]] = [(JNE_K, R_TYPE, 0, _DEVICE_TYPES[exc.type])]
    mask = _access_mask(exc.access)
    if mask != _access_mask("rwm"):
        checks.append((MOV32_X, R1, R_ACCESS, 0))
        if default_allow:
            checks += [(AND32_K, R1, 0, mask), (JEQ_K, R1, 0, 0)]  # no overlap: not this one
        else:
            checks += [(AND32_K, R1, 0, 0xFFFF & ~mask), (JNE_K, R1, 0, 0)]  # asks for more: not this one
    if exc.major is not None:
        checks.append((JNE_K, R_MAJOR, 0, exc.major))
    if exc.minor is not None:
        checks.append((JNE_K, R_MINOR, 0, exc.minor))
    return checks + [(MOV64_K, R0, 0, 0 if default_allow else 1), (EXIT, 0, 0, 0)]


def assemble(policy: Policy) -> bytes:
    """The program: the verdict opposite to the default for a matching exception, else the default."""
    program = [
        _insn(LDX_W, R_TYPE, R1, 0),
        _insn(AND32_K, R_TYPE, imm=0xFFFF),
        _insn(LDX_W, R_ACCESS, R1, 0),
        _insn(RSH32_K, R_ACCESS, imm=16),
        _insn(LDX_W, R_MAJOR, R1, 4),
        _insn(LDX_W, R_MINOR, R1, 8),
    ]
    for exc in policy.exceptions:
        block = _exception_block(exc, policy.default_allow)
        for index, (opcode, dst, src, imm) in enumerate(block):
            off = len(block) - index - 1 if opcode in (JEQ_K, JNE_K) else 0
            program.append(_insn(opcode, dst, src, off, imm))
    program += [_insn(MOV64_K, R0, imm=1 if policy.default_allow else 0), _insn(EXIT)]
    return b"".join(program)


def device_program(rules: list[dict[str, Any]]) -> bytes:
    """Bytecode for normalised rules (config rules then runtime defaults, see devices.py)."""
    return assemble(emulate_v1(rules))


# ---------------------------------------------------------------- the kernel side

_BPF_SYSCALL = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_MAX_PROGS = 64  # BPF_CGROUP_MAX_PROGS: no cgroup can hold more per attach type
# The kernel reads the license only to gate GPL-only helpers, which the filter does not call.
_LICENSE = b"Apache-2.0"
_LOG_SIZE = 1 << 16

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _ProgLoad(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


class _ProgAttach(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32)]


class _ProgQuery(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32), ("query_flags", ctypes.c_uint32),
                ("attach_flags", ctypes.c_uint32), ("prog_ids", ctypes.c_uint64), ("prog_cnt", ctypes.c_uint32)]


class _GetFdById(ctypes.Structure):
    _fields_ = [("prog_id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    """bpf(2); raises OSError with errno."""
    nr = _BPF_SYSCALL.get(os.uname().machine)
    if nr is None:
        raise OSError(errno.ENOSYS, "bpf: unknown syscall number for this architecture")
    ret = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def load(program: bytes) -> int:
    """Load the program into the kernel; returns its fd (close-on-exec, as every bpf fd is)."""
    insns = ctypes.create_string_buffer(program, len(program))
    license_ = ctypes.create_string_buffer(_LICENSE)
    attr = _ProgLoad(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(program) // INSN.size,
                     insns=ctypes.addressof(insns), license=ctypes.addressof(license_), prog_name=b"ociish_devices")
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        # Load again with the verifier's log, only to say why (a log costs time and can overflow).
        log = ctypes.create_string_buffer(_LOG_SIZE)
        attr.log_level, attr.log_size, attr.log_buf = 1, _LOG_SIZE, ctypes.addressof(log)
        try:
            _bpf(BPF_PROG_LOAD, attr)
        except OSError:
            pass
        lines = log.value.decode(errors="replace").strip().splitlines()
        detail = f" (verifier: {lines[-1]})" if lines else ""
        raise OciishError(f"cannot load the cgroup v2 device filter: {e.strerror}{detail}") from None


def attached_ids(cgroup_fd: int) -> list[int]:
    """Ids of the device programs attached to the cgroup itself (not inherited ones)."""
    ids = (ctypes.c_uint32 * _MAX_PROGS)()
    attr = _ProgQuery(target_fd=cgroup_fd, attach_type=BPF_CGROUP_DEVICE, prog_ids=ctypes.addressof(ids),
                      prog_cnt=_MAX_PROGS)
    _bpf(BPF_PROG_QUERY, attr)
    return list(ids[: attr.prog_cnt])


def attach(directory: str, program: bytes) -> None:
    """Make `program` the cgroup's only device filter.

    The new program is attached next to the old ones (BPF_F_ALLOW_MULTI) before they are
    detached: while both are attached a device must pass both, so an update never
    opens a moment in which more is allowed than either policy allows.
    """
    prog_fd = load(program)
    try:
        cgroup_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        os.close(prog_fd)
        raise OciishError(f"cannot open cgroup {directory}: {e.strerror}") from None
    try:
        old = attached_ids(cgroup_fd)
        _bpf(BPF_PROG_ATTACH, _ProgAttach(target_fd=cgroup_fd, attach_bpf_fd=prog_fd,
                                           attach_type=BPF_CGROUP_DEVICE, attach_flags=BPF_F_ALLOW_MULTI))
        for prog_id in old:
            old_fd = _bpf(BPF_PROG_GET_FD_BY_ID, _GetFdById(prog_id=prog_id))
            try:
                _bpf(BPF_PROG_DETACH, _ProgAttach(target_fd=cgroup_fd, attach_bpf_fd=old_fd,
                                                   attach_type=BPF_CGROUP_DEVICE))
            finally:
                os.close(old_fd)
    except OSError as e:
        raise OciishError(f"cannot attach the device filter to cgroup {directory}: {e.strerror}") from None
    finally:
        os.close(cgroup_fd)
        os.close(prog_fd)
