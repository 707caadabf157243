"""linux.seccomp → a BPF program, compiled by libseccomp in `create` (stage 0).

The init only loads the finished bytes with seccomp(2): it needs neither libseccomp nor
any import after pivot_root.  Syscall names this architecture does not know are skipped,
as runc does, so one profile serves every architecture.
"""

from __future__ import annotations

import errno
import os
import struct

from ociish.errors import ConfigError, NotSupportedError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociish.process.plantypes import SeccompProgram

FLAG_BITS = {  # SECCOMP_FILTER_FLAG_*
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
FLAG_NEW_LISTENER = 8
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ")
ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
           "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY")


# The sonames the libraries' ABIs fix (glibc, libseccomp 2.x).
_SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}


def _library() -> Any:
    try:
        return _import_pyseccomp()
    except (ImportError, RuntimeError) as e:
        raise NotSupportedError("linux.seccomp", f"libseccomp is not available: {e}") from None


def _import_pyseccomp() -> Any:
    """pyseccomp finds libc and libseccomp with ctypes.util.find_library when imported:
    that module imports subprocess, tempfile and shutil and runs ldconfig twice, ~15 ms
    of every create with a seccomp profile (every podman and containerd container).  When
    both sonames load, a stand-in answers with them during that import; else (another
    libc, say) the real lookup runs."""
    import ctypes
    import sys
    import types

    if "pyseccomp" not in sys.modules and "ctypes.util" not in sys.modules:
        try:
            for soname in _SONAMES.values():
                ctypes.CDLL(soname)
        except OSError:
            pass
        else:
            stand_in = types.ModuleType("ctypes.util")
            stand_in.find_library = _SONAMES.get  # type: ignore[attr-defined]
            sys.modules["ctypes.util"] = ctypes.util = stand_in  # type: ignore[attr-defined]
            try:
                import pyseccomp
            finally:
                del sys.modules["ctypes.util"], ctypes.util  # type: ignore[attr-defined]
            return pyseccomp
    import pyseccomp

    return pyseccomp


MAX_ERRNO = 4095  # what the kernel passes back from a filter (SECCOMP_RET_DATA, errno range)


def _action(lib: Any, name: str, errno_ret: int | None, where: str) -> int:
    if errno_ret is not None and not 0 <= errno_ret <= MAX_ERRNO:
        raise ConfigError(f"config.json: {where}: errnoRet {errno_ret}: expected an errno from 0 to {MAX_ERRNO}")
    if name == "SCMP_ACT_ERRNO":
        return lib.ERRNO(errno.EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return lib.TRACE(errno.EPERM if errno_ret is None else errno_ret)
    if errno_ret is not None:
        raise ConfigError(f"config.json: {where}: errnoRet is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE")
    actions = {"SCMP_ACT_KILL": lib.KILL, "SCMP_ACT_KILL_THREAD": lib.KILL_THREAD,
               "SCMP_ACT_KILL_PROCESS": lib.KILL_PROCESS, "SCMP_ACT_TRAP": lib.TRAP, "SCMP_ACT_ALLOW": lib.ALLOW,
               "SCMP_ACT_LOG": lib.LOG, "SCMP_ACT_NOTIFY": lib.NOTIFY}
    return actions[name]


def _arch(lib: Any, name: str, index: int) -> int:
    attribute = name.removeprefix("SCMP_ARCH_")
    value = getattr(lib.Arch, attribute, None)
    if not isinstance(value, int):
        raise ConfigError(f"config.json: linux.seccomp.architectures[{index}]: {name!r} is not supported by libseccomp here")
    return value


def compile_filter(spec: dict[str, Any]) -> SeccompProgram:
    """The program for the init, with the flags and listener metadata loading it needs."""
    lib = _library()
    default = _action(lib, spec["defaultAction"], spec.get("defaultErrnoRet"), "linux.seccomp.defaultAction")
    try:
        flt = lib.SyscallFilter(default)
    except OSError as e:
        raise ConfigError(f"config.json: linux.seccomp.defaultAction: libseccomp refused it: {e.strerror}") from None
    for index, name in enumerate(spec.get("architectures") or []):
        arch = _arch(lib, name, index)
        try:
            if not flt.exist_arch(arch):
                flt.add_arch(arch)
        except OSError as e:  # e.g. a big-endian arch beside a little-endian native one
            raise ConfigError(f"config.json: linux.seccomp.architectures[{index}]: libseccomp cannot add "
                              f"{name} on this host: {e.strerror}") from None
    _refuse_notify_on_the_handover(spec)
    uses_notify = False
    skipped: list[str] = []
    for index, rule in enumerate(spec.get("syscalls") or []):
        where = f"linux.seccomp.syscalls[{index}]"
        action = _action(lib, rule["action"], rule.get("errnoRet"), where)
        uses_notify = uses_notify or rule["action"] == "SCMP_ACT_NOTIFY"
        if action == default:
            continue  # libseccomp refuses a rule that repeats the default action; it changes nothing
        conditions = [lib.Arg(a["index"], OPERATORS.index(a["op"]) + 1, a["value"], a.get("valueTwo", 0))
                      for a in rule.get("args") or []]
        # conditions on distinct arguments must all hold; several on one argument are alternatives
        indexes = [a["index"] for a in rule.get("args") or []]
        groups = [conditions] if len(set(indexes)) == len(indexes) else [[c] for c in conditions]
        for name in rule["names"]:
            number = lib.resolve_syscall(lib.Arch.NATIVE, name)
            if number < 0:
                skipped.append(name)  # unknown on this architecture
                continue
            try:
                for group in groups:
                    _add_rule(flt, action, number, group)
            except OSError as e:
                raise ConfigError(f"config.json: {where}: libseccomp refused the rule for {name!r}: {e.strerror}") from None
    flags = 0
    for index, flag in enumerate(spec.get("flags") or []):
        if flag not in FLAG_BITS:
            raise NotSupportedError(f"linux.seccomp.flags[{index}]", repr(flag))
        flags |= FLAG_BITS[flag]
    if uses_notify:
        if not spec.get("listenerPath"):
            raise ConfigError("config.json: linux.seccomp.listenerPath: required when an action is SCMP_ACT_NOTIFY")
        flags |= FLAG_NEW_LISTENER
    try:
        program = _export(flt)
    except OSError as e:
        raise ConfigError(f"config.json: linux.seccomp: libseccomp could not build the filter: {e.strerror}") from None
    if _needs_enosys_stub(spec):
        program = enosys_stub(_newest_named(lib, spec)) + program
    return {"bpf": program, "flags": flags, "listener": uses_notify, "skipped": skipped}


# What the init calls between loading a filter with a notify listener and `create` holding
# that listener: only the write(2) of the channel message that names the listener's fd
# (ociish.process.channel writes, it never uses send/sendmsg).  A notified write there waits
# for an agent that cannot have the fd yet, and create waits for the message: both hang.
# Anything after it (read, close, execve, ...) may be notified: the agent has the fd by then.
HANDOVER_SYSCALLS = ("write",)


def _refuse_notify_on_the_handover(spec: dict[str, Any]) -> None:
    """Refuse what would deadlock the handover of the listener (runc refuses the same)."""
    if spec["defaultAction"] == "SCMP_ACT_NOTIFY":
        raise ConfigError("config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action: "
                          f"it would notify the init's own {HANDOVER_SYSCALLS[0]} that hands the listener over")
    for index, rule in enumerate(spec.get("syscalls") or []):
        if rule["action"] == "SCMP_ACT_NOTIFY":
            for name in rule["names"]:
                if name in HANDOVER_SYSCALLS:
                    raise ConfigError(f"config.json: linux.seccomp.syscalls[{index}]: SCMP_ACT_NOTIFY cannot be used "
                                      f"for {name}: the init calls it to hand the listener over, after the filter is "
                                      "loaded")


def _needs_enosys_stub(spec: dict[str, Any]) -> bool:
    """Only a default that would refuse a new syscall otherwise than with ENOSYS needs it."""
    default = spec["defaultAction"]
    if default in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        return False
    return not (default == "SCMP_ACT_ERRNO" and spec.get("defaultErrnoRet") == errno.ENOSYS)


def _newest_named(lib: Any, spec: dict[str, Any]) -> dict[int, int]:
    """Audit architecture → the highest syscall number the profile names on it, for each
    architecture the profile lists (none listed: no stub, as with runc; x32 aside: its calls
    share x86_64's audit architecture, and the stub leaves them to the filter)."""
    arches = {_arch(lib, name, i) for i, name in enumerate(spec.get("architectures") or [])}
    names = {name for rule in spec.get("syscalls") or [] for name in rule["names"]}
    newest = {}
    for arch in arches - {lib.Arch.X32}:
        numbers = [number for name in names if (number := lib.resolve_syscall(arch, name)) >= 0]
        if numbers:
            newest[arch] = max(numbers)
    return newest


# classic BPF, as seccomp runs it
_LD_W_ABS, _JMP_JA, _JMP_JEQ_K, _JMP_JGT_K, _JMP_JSET_K, _RET_K = 0x20, 0x05, 0x15, 0x25, 0x45, 0x06
_SECCOMP_RET_ERRNO = 0x00050000
_OFFSET_NR, _OFFSET_ARCH = 0, 4  # struct seccomp_data
_X32_SYSCALL_BIT = 0x40000000
_AUDIT_ARCH_X86_64 = 0xC000003E


def enosys_stub(newest: dict[int, int]) -> bytes:
    """A BPF prefix for the filter: on each architecture, a syscall numbered above every one
    the profile names fails with ENOSYS, as runc's stub does: it is newer than the profile,
    which cannot have meant to refuse it, and a libc falls back on ENOSYS (clone3 → clone,
    faccessat2 → faccessat) where EPERM would be a failure.  Anything else goes on to the
    filter itself, which starts right after the prefix.

    The layout: load the architecture; one jump per architecture to its block, else to the
    filter; the blocks (load the number, compare); one shared "return ENOSYS".
    """
    if not newest:
        return b""
    arches = sorted(newest)
    blocks = [2 + (arch == _AUDIT_ARCH_X86_64) for arch in arches]  # their lengths
    enosys = 1 + len(arches) + 1 + sum(blocks)
    filter_start = enosys + 1
    program: list[tuple[int, int, int, int]] = [(_LD_W_ABS, 0, 0, _OFFSET_ARCH)]

    def jump(target: int) -> int:  # BPF jumps are relative to the next instruction
        return target - len(program) - 1

    block_start = 1 + len(arches) + 1
    for index, arch in enumerate(arches):
        program.append((_JMP_JEQ_K, jump(block_start + sum(blocks[:index])), 0, arch))
    program.append((_JMP_JA, 0, 0, jump(filter_start)))
    for arch in arches:
        program.append((_LD_W_ABS, 0, 0, _OFFSET_NR))
        if arch == _AUDIT_ARCH_X86_64:  # x32's calls: the filter's business
            program.append((_JMP_JSET_K, jump(filter_start), 0, _X32_SYSCALL_BIT))
        program.append((_JMP_JGT_K, jump(enosys), jump(filter_start), newest[arch]))
    program.append((_RET_K, 0, 0, _SECCOMP_RET_ERRNO | errno.ENOSYS))
    return b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in program)


def _add_rule(flt: Any, action: int, number: int, conditions: list[Any]) -> None:
    try:
        flt.add_rule(action, number, *conditions)
    except OSError as e:
        if e.errno != errno.EEXIST:  # the same rule twice (podman's profile has some): already in
            raise


def _export(flt: Any) -> bytes:
    fd = os.memfd_create("ociish-seccomp", os.MFD_CLOEXEC)
    with os.fdopen(fd, "w+b") as f:
        flt.export_bpf(f)
        f.seek(0)
        return f.read()
