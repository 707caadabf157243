"""The seccomp compiler (stage 0): profile → BPF bytes, through libseccomp."""

from __future__ import annotations

import pytest

from ociish.errors import ConfigError, NotSupportedError
from ociish.security.seccomp import compile_filter


def test_compiles_to_whole_bpf_instructions() -> None:
    result = compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})
    assert result["bpf"] and len(result["bpf"]) % 8 == 0
    assert result["flags"] == 0 and not result["listener"] and result["skipped"] == []


def test_unknown_syscalls_are_skipped_and_reported() -> None:
    result = compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "not_a_syscall"], "action": "SCMP_ACT_KILL"}]})
    assert result["skipped"] == ["not_a_syscall"]


def test_rule_with_the_default_action_changes_nothing() -> None:
    plain = compile_filter({"defaultAction": "SCMP_ACT_ALLOW"})
    redundant = compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})
    assert plain["bpf"] == redundant["bpf"]


def test_conditions_on_one_argument_are_alternatives() -> None:
    one = compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}]})
    two = compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                                   {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]}]})
    assert len(two["bpf"]) > len(one["bpf"])


def test_flags_and_listener() -> None:
    result = compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                             "listenerPath": "/run/x.sock",
                             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
    assert result["flags"] == 2 | 8 and result["listener"]
    with pytest.raises(ConfigError, match="listenerPath: required"):
        compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
    with pytest.raises(NotSupportedError, match=r"flags\[0\]"):
        compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FUTURE"]})


def test_architectures() -> None:
    rules = [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    native = compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
    multi = compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules,
                            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]})
    assert len(multi["bpf"]) > len(native["bpf"])
    with pytest.raises(ConfigError, match=r"architectures\[0\]"):
        compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})


def test_errno_ret_only_with_errno_or_trace() -> None:
    with pytest.raises(ConfigError, match="errnoRet is only for"):
        compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL",
                                                                          "errnoRet": 1}]})
