"""`ociish features`: valid against the schema, and every name it lists really works.

The document is what callers trust to decide what to put in a config.json, so each list
is checked against the code that consumes that part of config.json, not just its shape.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ociish.cli import main
from ociish.ops.features import features
from ociish.rootfs.mountopts import parse_options
from ociish.security.seccomp import compile_filter
from ociish.spec.validate import schema_errors, validate_config

DOC = features()
SECCOMP = DOC["linux"]["seccomp"]


def config_with(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }
    config.update(changes)
    return config


def test_valid_against_the_features_schema() -> None:
    assert schema_errors(DOC, "features") == []


def test_cli_prints_the_same_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(DOC))


@pytest.mark.parametrize("version", [DOC["ociVersionMin"], DOC["ociVersionMax"]])
def test_both_versions_are_accepted_as_config_oci_version(version: str) -> None:
    assert validate_config(config_with(ociVersion=version)) == []


def test_all_six_hooks() -> None:
    assert sorted(DOC["hooks"]) == sorted(
        ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"])


@pytest.mark.parametrize("option", DOC["mountOptions"])
def test_listed_mount_options_are_understood_not_passed_as_data(option: str) -> None:
    assert parse_options([option])["data"] == ""


def test_idmapped_mounts_net_devices_and_intel_rdt_enabled() -> None:
    linux = DOC["linux"]
    assert linux["mountExtensions"] == {"idmap": {"enabled": True}}
    assert {"idmap", "ridmap"} <= set(DOC["mountOptions"])
    assert linux["intelRdt"] == {"enabled": True, "schemata": True, "monitoring": True}
    assert linux["netDevices"]["enabled"] is True


def test_memory_policy_lists_every_mode_and_flag_of_the_spec() -> None:
    """config-linux.md's seven modes and three flags, each one the planner turns into set_mempolicy arguments."""
    from ociish.linux.mempolicy import policy

    assert sorted(DOC["linux"]["memoryPolicy"]["modes"]) == sorted([
        "MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED",
        "MPOL_PREFERRED_MANY", "MPOL_LOCAL"])
    assert sorted(DOC["linux"]["memoryPolicy"]["flags"]) == [
        "MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
    for mode in DOC["linux"]["memoryPolicy"]["modes"]:
        policy({"mode": mode, "nodes": "" if mode in ("MPOL_DEFAULT", "MPOL_LOCAL") else "0"})
    for flag in DOC["linux"]["memoryPolicy"]["flags"]:
        policy({"mode": "MPOL_BIND", "nodes": "0", "flags": [flag]})


@pytest.mark.parametrize("kind", DOC["linux"]["namespaces"])
def test_listed_namespaces_are_valid_config(kind: str) -> None:
    assert validate_config(config_with(linux={"namespaces": [{"type": kind}]})) == []


def test_capabilities_cover_the_kernel_set() -> None:
    caps = DOC["linux"]["capabilities"]
    assert len(caps) == len(set(caps)) and {"CAP_SYS_ADMIN", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"} <= set(caps)


def test_cgroup_drivers() -> None:
    assert DOC["linux"]["cgroup"] == {"v1": True, "v2": True, "systemd": True, "systemdUser": True, "rdma": True}


@pytest.mark.parametrize("action", SECCOMP["actions"])
def test_listed_seccomp_actions_compile(action: str) -> None:
    profile = {"defaultAction": action}
    if action == "SCMP_ACT_NOTIFY":  # refused as the default action: the rule of one syscall instead
        profile = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/listener.sock",
                   "syscalls": [{"names": ["getpid"], "action": action}]}
    assert compile_filter(profile)["bpf"]


@pytest.mark.parametrize("operator", SECCOMP["operators"])
def test_listed_seccomp_operators_compile(operator: str) -> None:
    rule = {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 9, "op": operator}]}
    assert compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})["bpf"]


@pytest.mark.parametrize("arch", SECCOMP["archs"])
def test_listed_seccomp_archs_are_valid_config_and_compile(arch: str) -> None:
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]}
    assert validate_config(config_with(linux={"seccomp": seccomp})) == []
    assert compile_filter(seccomp)["bpf"]


@pytest.mark.parametrize("flag", SECCOMP["knownFlags"])
def test_known_seccomp_flags_are_accepted(flag: str) -> None:
    assert compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]})["flags"]


def test_supported_flags_are_known_and_probed_from_the_kernel() -> None:
    import pyseccomp

    from ociish.ops.features import _kernel_accepts_filter_flags

    assert set(SECCOMP["supportedFlags"]) <= set(SECCOMP["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_TSYNC" in SECCOMP["supportedFlags"]  # Linux 3.17
    assert not _kernel_accepts_filter_flags(pyseccomp, 1 << 30)


def test_no_config_annotation_changes_behaviour() -> None:
    assert DOC["potentiallyUnsafeConfigAnnotations"] == []
    assert DOC["annotations"]["ociish.version"]
