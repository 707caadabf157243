"""The cgroup v2 device filter: v1 semantics emulation, and the assembled bytecode run in
a small BPF interpreter over a matrix of devices and accesses.

The interpreter implements only what a BPF_PROG_TYPE_CGROUP_DEVICE program may read
(the 12-byte bpf_cgroup_dev_ctx) and refuses any opcode it does not know, so a program
that used anything else would fail here before the kernel's verifier saw it.
"""

from __future__ import annotations

import itertools
import os
import struct

import pytest

from ociish.cgroups import ebpf
from ociish.cgroups.devices import default_device_rules, normalize_rule, normalize_rules
from ociish.cgroups.ebpf import Entry, Policy, emulate_v1

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF


def run(program: bytes, dev_type: str, major: int, minor: int, access: str) -> int:
    """Execute the program for one request; returns r0 (1 allow, 0 deny)."""
    kind = {"b": ebpf.BPF_DEVCG_DEV_BLOCK, "c": ebpf.BPF_DEVCG_DEV_CHAR}[dev_type]
    access_type = sum(ebpf.ACCESS_BITS[c] for c in access) << 16 | kind
    ctx = struct.pack("<III", access_type, major, minor)
    insns = [ebpf.INSN.unpack_from(program, i) for i in range(0, len(program), ebpf.INSN.size)]
    assert len(program) % ebpf.INSN.size == 0
    regs = [0] * 11
    regs[1] = -1  # the context pointer: only loads relative to it are allowed
    pc = 0
    for _ in range(10_000):
        opcode, reg_byte, off, imm = insns[pc]
        dst, src = reg_byte & 0xF, reg_byte >> 4
        pc += 1
        if opcode == ebpf.LDX_W:
            assert regs[src] == -1, "load from something other than the context"
            assert off in (0, 4, 8), f"context read at offset {off}"
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif opcode == ebpf.AND32_K:
            regs[dst] = (regs[dst] & imm) & MASK32
        elif opcode == ebpf.RSH32_K:
            regs[dst] = (regs[dst] & MASK32) >> imm
        elif opcode == ebpf.MOV32_X:
            assert regs[src] != -1, "the context pointer copied"
            regs[dst] = regs[src] & MASK32
        elif opcode == ebpf.MOV64_K:
            regs[dst] = imm & MASK64
        elif opcode in (ebpf.JEQ_K, ebpf.JNE_K):
            equal = regs[dst] == imm & MASK64
            if equal == (opcode == ebpf.JEQ_K):
                pc += off
        elif opcode == ebpf.EXIT:
            assert regs[0] in (0, 1), "a device program must return 0 or 1"
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {opcode:#x}")
        assert 0 <= pc < len(insns), "jump out of the program"
    raise AssertionError("the program does not terminate")


def reference(policy: Policy, dev_type: str, major: int, minor: int, access: str) -> bool:
    """The v1 controller's check (security/device_cgroup.c), written out plainly."""
    def matches(e: Entry) -> bool:
        return e.type == dev_type and e.major in (None, major) and e.minor in (None, minor)

    if policy.default_allow:  # deny list: any overlap with an exception denies
        return not any(matches(e) and set(access) & set(e.access) for e in policy.exceptions)
    return any(matches(e) and set(access) <= set(e.access) for e in policy.exceptions)


def config_rules(*entries: dict) -> list[dict]:
    """Normalised rules without the runtime defaults."""
    return [normalize_rule(i, entry) for i, entry in enumerate(entries)]


def allow(dev_type: str, major: int | None, minor: int | None, access: str) -> dict:
    return {"allow": True, "type": dev_type, "major": major, "minor": minor, "access": access}


def deny(dev_type: str, major: int | None, minor: int | None, access: str) -> dict:
    return {"allow": False, "type": dev_type, "major": major, "minor": minor, "access": access}


# ------------------------------------------------------------------ emulation


def test_emulation_of_the_usual_config():
    policy = emulate_v1(normalize_rules([{"allow": False, "access": "rwm"}, allow("c", 10, 229, "rw")]))
    assert policy.default_allow is False
    assert policy.exceptions[0] == Entry("c", 10, 229, "rw")
    assert Entry("c", None, None, "m") in policy.exceptions and Entry("c", 1, 3, "rwm") in policy.exceptions
    assert len(policy.exceptions) == 1 + len(default_device_rules())


def test_emulation_merges_removes_and_resets_like_the_kernel():
    # Default allow: a deny adds an exception, an allow takes access away from the same entry only.
    p = emulate_v1(config_rules(deny("c", 1, 3, "rw"), allow("c", 1, 3, "w"), allow("c", 1, None, "r")))
    assert p == Policy(True, (Entry("c", 1, 3, "r"),))
    # Default deny: allows merge into one entry; a deny removes access; an empty entry disappears.
    p = emulate_v1(config_rules({"allow": False}, allow("b", 8, None, "r"), allow("b", 8, None, "w"),
                            deny("b", 8, None, "r"), deny("c", 4, 1, "rwm")))
    assert p == Policy(False, (Entry("b", 8, None, "w"),))
    p = emulate_v1(config_rules({"allow": False}, allow("c", 5, 1, "rwm"), deny("c", 5, 1, "rwm")))
    assert p == Policy(False, ())
    # Type "a" resets whatever came before, whatever numbers it names (v1 writes it as "a").
    p = emulate_v1(config_rules(allow("c", 1, 3, "rwm"), {"allow": True, "type": "a", "major": 7}))
    assert p == Policy(True, ())


def test_no_rules_allow_everything():
    assert emulate_v1([]) == Policy(True, ())
    program = ebpf.device_program([])
    assert all(run(program, t, 8, 0, acc) == 1 for t in "bc" for acc in ("r", "rwm"))


# ------------------------------------------------------------------ the program

DEVICES = [("c", 1, 3), ("c", 1, 9), ("c", 1, 11), ("c", 5, 1), ("c", 10, 229), ("c", 136, 4), ("c", 4, 1),
           ("b", 8, 0), ("b", 8, 16), ("b", 7, 0), ("c", 8, 0), ("b", 1, 3), ("c", 4095, 1048575)]
ACCESSES = ["r", "w", "m", "rw", "rm", "wm", "rwm"]
CONFIGS = {
    "deny all (the spec default)": [{"allow": False, "access": "rwm"}],
    "deny all, allow one char device rw": [{"allow": False, "access": "rwm"},
                                           {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
    "deny all, allow a block major read-only": [{"allow": False}, {"allow": True, "type": "b", "major": 8,
                                                                   "access": "r"}],
    "allow all but one device's writes": [{"allow": True}, {"allow": False, "type": "b", "major": 8, "minor": 0,
                                                            "access": "w"}],
    "allow all but a whole major": [{"allow": True, "type": "a"}, {"allow": False, "type": "c", "major": 1,
                                                                   "access": "rwm"}],
    "later rules win": [{"allow": False}, {"allow": True, "type": "c", "major": 4, "access": "rwm"},
                        {"allow": False, "type": "c", "major": 4, "access": "w"}],
    "reset in the middle": [{"allow": True, "type": "c", "major": 4, "minor": 1},
                            {"allow": False, "type": "a"}, {"allow": True, "type": "b", "minor": 16}],
    "no rules": [],
}


@pytest.mark.parametrize("name", CONFIGS)
def test_program_matches_the_v1_controller(name):
    normalised = normalize_rules(CONFIGS[name])
    policy = emulate_v1(normalised)
    program = ebpf.device_program(normalised)
    for (dev_type, major, minor), access in itertools.product(DEVICES, ACCESSES):
        expected = reference(policy, dev_type, major, minor, access)
        assert run(program, dev_type, major, minor, access) == int(expected), (dev_type, major, minor, access)


def test_known_verdicts_of_the_usual_config():
    """Hand-checked answers, independent of the emulation."""
    program = ebpf.device_program(normalize_rules(CONFIGS["deny all, allow one char device rw"]))

    def verdict(*request: object) -> int:
        return run(program, *request)

    assert verdict("c", 10, 229, "rw") == 1
    assert verdict("c", 99, 1, "m") == 1  # mknod of any char device is a default
    assert verdict("c", 10, 229, "rwm") == 0  # one entry must cover a request whole (mknod asks "m" alone)
    assert verdict("b", 8, 0, "m") == 1 and verdict("b", 8, 0, "r") == 0
    assert verdict("c", 1, 3, "rw") == 1 and verdict("c", 1, 9, "r") == 1  # /dev/null, /dev/urandom
    assert verdict("c", 1, 11, "r") == 0  # /dev/kmsg
    assert verdict("c", 136, 4, "rw") == 1 and verdict("c", 5, 1, "rw") == 1  # pts/4, console
    assert verdict("c", 4, 1, "rw") == 0  # tty1
    deny_writes = ebpf.device_program(normalize_rules(CONFIGS["allow all but one device's writes"]))
    assert run(deny_writes, "b", 8, 0, "r") == 1
    assert run(deny_writes, "b", 8, 0, "rw") == 0  # an overlapping request is denied whole
    assert run(deny_writes, "b", 8, 16, "w") == 1


def test_instruction_encoding():
    assert ebpf.INSN.size == 8
    program = ebpf.assemble(Policy(False, (Entry("c", 1, 3, "r"),)))
    first = ebpf.INSN.unpack_from(program, 0)
    assert first == (ebpf.LDX_W, ebpf.R_TYPE | ebpf.R1 << 4, 0, 0)
    assert program[-8:] == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])  # exit
    assert ebpf.INSN.unpack_from(program, len(program) - 16) == (ebpf.MOV64_K, 0, 0, 0)  # default deny


@pytest.mark.skipif(os.geteuid() != 0, reason="loading a BPF program needs CAP_BPF/CAP_SYS_ADMIN")
def test_the_kernel_verifier_accepts_the_programs():
    for config in CONFIGS.values():
        fd = ebpf.load(ebpf.device_program(normalize_rules(config)))
        os.close(fd)
