"""The schemas in schemas/ accept what the spec and real engines produce, and reject the rest."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ociish.spec.validate import SCHEMA_DIR, schema_errors, validate_config

REFERENCE = Path(__file__).resolve().parents[3] / "shared/reference"
SAMPLES = REFERENCE / "samples"
SPEC = REFERENCE / "runtime-spec"
RUNC = shutil.which("runc", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")

needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"reference samples not found at {SAMPLES}"
)
needs_spec = pytest.mark.skipif(not SPEC.is_dir(), reason=f"runtime-spec text not found at {SPEC}")
needs_runc = pytest.mark.skipif(RUNC is None, reason="runc is not installed")


def minimal_config() -> dict[str, Any]:
    """A small valid Linux config.json that tests break one field at a time."""
    return {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs", "readonly": True},
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/bin:/bin"],
            "cwd": "/",
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        },
        "hostname": "box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
        ],
        "hooks": {"poststart": [{"path": "/usr/bin/notify", "timeout": 5}]},
        "annotations": {"com.example.key": "value"},
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}],
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
        },
    }


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


# --- the schemas themselves -------------------------------------------------------------


SCHEMA_FILES = sorted(Path(SCHEMA_DIR).glob("*.schema.json"))


def test_all_four_schemas_exist() -> None:
    assert [p.name for p in SCHEMA_FILES] == [
        "config.schema.json",
        "features.schema.json",
        "process.schema.json",
        "state.schema.json",
    ]


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12(path: Path) -> None:
    from jsonschema import Draft202012Validator

    schema = load_json(path)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_refs_point_inside_schemas_folder(path: Path) -> None:
    for ref in _refs(load_json(path)):
        target, _, pointer = ref.partition("#")
        assert "/" not in target, ref  # never a URL: nothing may be fetched
        document = load_json(Path(SCHEMA_DIR) / target) if target else load_json(path)
        for token in filter(None, pointer.split("/")):
            document = document[token]


def test_config_schema_never_forbids_unknown_properties() -> None:
    text = (Path(SCHEMA_DIR) / "config.schema.json").read_text()
    assert '"additionalProperties": false' not in text


# --- real configs -----------------------------------------------------------------------


def test_minimal_config_is_valid() -> None:
    assert schema_errors(minimal_config()) == []


@needs_samples
@pytest.mark.parametrize("name", ["config-podman.json", "config-containerd.json"])
def test_engine_sample_configs_validate(name: str) -> None:
    assert schema_errors(load_json(SAMPLES / name)) == []


@needs_samples
@pytest.mark.parametrize(
    "name",
    [
        "process-containerd-exec.json",
        "process-containerd-exec-t.json",
        "process-podman-exec-it.json",
    ],
)
def test_engine_sample_processes_validate(name: str) -> None:
    assert schema_errors(load_json(SAMPLES / name), "process") == []


@needs_runc
@pytest.mark.parametrize("flags", [[], ["--rootless"]], ids=["runc-spec", "runc-spec-rootless"])
def test_runc_spec_output_validates(tmp_path: Path, flags: list[str]) -> None:
    assert RUNC is not None
    subprocess.run([RUNC, "spec", *flags, "--bundle", str(tmp_path)], check=True, timeout=30)
    assert schema_errors(load_json(tmp_path / "config.json")) == []


def spec_example(document: str, heading: str) -> Any:
    """The first JSON block after *heading* in one of the spec's markdown files."""
    section = (SPEC / document).read_text().split(heading, 1)[1]
    match = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert match, f"no JSON example after {heading!r} in {document}"
    return json.loads(match.group(1))


@needs_spec
def test_spec_full_config_example_validates() -> None:
    assert validate_config(spec_example("config.md", "## Configuration Schema Example")) == []


@needs_spec
def test_spec_full_features_example_validates() -> None:
    assert schema_errors(spec_example("features.md", "\n# Example\n"), "features") == []


def test_spec_example_process_validates() -> None:
    # config.md "Example (Linux)" of the process section, transcribed.
    process = {
        "terminal": True,
        "consoleSize": {"height": 25, "width": 80},
        "user": {"uid": 1, "gid": 1, "umask": 63, "additionalGids": [5, 6]},
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/root",
        "args": ["sh"],
        "apparmorProfile": "acme_secure_profile",
        "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
        "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 4},
        "noNewPrivileges": True,
        "capabilities": {
            "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL"],
            "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL"],
            "inheritable": ["CAP_AUDIT_WRITE"],
            "effective": ["CAP_AUDIT_WRITE"],
            "ambient": ["CAP_KILL"],
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "execCPUAffinity": {"initial": "7", "final": "0-3,7"},
        "scheduler": {
            "policy": "SCHED_DEADLINE",
            "nice": -5,
            "flags": ["SCHED_FLAG_RECLAIM"],
            "runtime": 10,
            "deadline": 20,
            "period": 30,
        },
        "oomScoreAdj": -1000,
    }
    assert schema_errors(process, "process") == []


def test_every_linux_section_validates() -> None:
    config = minimal_config()
    config["hooks"] = {
        kind: [{"path": "/bin/hook", "args": ["hook"], "env": ["A=1"], "timeout": 1}]
        for kind in (
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        )
    }
    config["mounts"].append(
        {
            "destination": "/data",
            "source": "/vol",
            "type": "none",
            "options": ["rbind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        }
    )
    config["linux"] |= {
        "namespaces": [
            {"type": t} for t in ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
        ],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "timeOffsets": {"monotonic": {"secs": 172800, "nanosecs": 0}, "boottime": {"secs": -1}},
        "devices": [
            {
                "path": "/dev/fuse",
                "type": "c",
                "major": 10,
                "minor": 229,
                "fileMode": 438,
                "uid": 0,
                "gid": 0,
            },
            {"path": "/dev/fifo", "type": "p"},
        ],
        "netDevices": {"eth0": {"name": "ctr0"}, "eth1": {}},
        "cgroupsPath": "/my/ctr",
        "resources": {
            "devices": [{"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
            "memory": {
                "limit": 536870912,
                "reservation": -1,
                "swap": -1,
                "kernel": -1,
                "kernelTCP": -1,
                "swappiness": 0,
                "disableOOMKiller": False,
                "useHierarchy": True,
                "checkBeforeUpdate": True,
            },
            "cpu": {
                "shares": 1024,
                "quota": -1,
                "burst": 1000,
                "period": 100000,
                "realtimeRuntime": 950000,
                "realtimePeriod": 1000000,
                "cpus": "0-3,7",
                "mems": "0",
                "idle": 1,
            },
            "blockIO": {
                "weight": 10,
                "leafWeight": 10,
                "weightDevice": [
                    {"major": 8, "minor": 0, "weight": 500},
                    {"major": 8, "minor": 16, "leafWeight": 3},
                ],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 300}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
            },
            "hugepageLimits": [
                {"pageSize": "2MB", "limit": 9223372036854772000},
                {"pageSize": "64KB", "limit": 1},
            ],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
            "pids": {"limit": 0},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "rxe3": {"hcaObjects": 1}},
            "unified": {"io.max": "259:0 rbps=2097152", "memory.high": "max"},
        },
        "intelRdt": {
            "closID": "guaranteed_group",
            "l3CacheSchema": "L3:0=7f0;1=1f",
            "memBwSchema": "MB:0=20;1=70",
            "schemata": ["L2:0=f"],
            "enableMonitoring": True,
        },
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_LOONGARCH64"],
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "x",
            "syscalls": [
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_NOTIFY",
                    "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                }
            ],
        },
        "rootfsPropagation": "unbindable",
        "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
        "personality": {"domain": "LINUX32", "flags": []},
        "memoryPolicy": {
            "mode": "MPOL_INTERLEAVE",
            "nodes": "2-3",
            "flags": ["MPOL_F_STATIC_NODES"],
        },
    }
    config["domainname"] = "example.test"
    assert validate_config(config) == []


# --- ociVersion ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.1.0-rc.1", "1.2.1", "1.3.0", "1.3.7+build.5"]
)
def test_supported_oci_versions_accepted(version: str) -> None:
    config = minimal_config()
    config["ociVersion"] = version
    assert schema_errors(config) == []


@pytest.mark.parametrize(
    "version", ["2.0.0", "banana", "1.4.0", "0.1.0", "1.0", "v1.0.0", "", "01.0.0"]
)
def test_other_oci_versions_rejected(version: str) -> None:
    config = minimal_config()
    config["ociVersion"] = version
    errors = schema_errors(config)
    assert len(errors) == 1
    assert errors[0].startswith(
        f"config.json: ociVersion: {json.dumps(version)}: expected a SemVer"
    )


# --- extensibility ------------------------------------------------------------------------


def test_unknown_fields_are_ignored_everywhere() -> None:
    config = minimal_config()
    config["org.example.top"] = {"anything": [1, 2]}
    config["windows"] = {"layerFolders": []}
    config["process"]["futureField"] = True
    config["process"]["user"]["extra"] = 1
    config["mounts"][0]["x-flag"] = "y"
    config["linux"]["futureKnob"] = 3
    config["linux"]["resources"]["memory"] = {"limit": 1 << 30, "newThing": "z"}
    config["linux"]["intelRdt"] = {"enableCMT": True, "enableMBM": True}  # removed in 1.3.0
    assert schema_errors(config) == []


def test_any_annotations_are_accepted() -> None:
    config = minimal_config()
    config["annotations"] = {
        "org.opencontainers.image.stopSignal": "SIGTERM",
        "io.kubernetes.cri-o.TTY": "false",
        "no-dots": "",
        "ünïcode.κλειδί": "värde",
        "with spaces and = signs": "multi\nline",
    }
    assert schema_errors(config) == []
    config["annotations"] = {}
    assert schema_errors(config) == []


# --- broken configs -----------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], object]


def _set(*path: str | int, value: object) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        node: Any = config
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _delete(*path: str | int) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        node: Any = config
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


SECCOMP = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {
            "names": ["mkdir"],
            "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
        }
    ],
}

BROKEN: list[tuple[str, Mutation, str]] = [
    ("no ociVersion", _delete("ociVersion"), "ociVersion: missing required field"),
    ("ociVersion number", _set("ociVersion", value=1), "ociVersion: 1: expected a string"),
    (
        "root without path",
        _set("root", value={"readonly": True}),
        "root.path: missing required field",
    ),
    (
        "root.readonly string",
        _set("root", "readonly", value="yes"),
        'root.readonly: "yes": expected a boolean',
    ),
    (
        "negative uid",
        _set("process", "user", "uid", value=-1),
        "process.user.uid: -1: expected an integer >= 0",
    ),
    (
        "uid too big",
        _set("process", "user", "gid", value=2**32),
        "process.user.gid: 4294967296: expected an integer <= 4294967295",
    ),
    (
        "uid string",
        _set("process", "user", "uid", value="0"),
        'process.user.uid: "0": expected an integer',
    ),
    (
        "uid bool",
        _set("process", "user", "uid", value=True),
        "process.user.uid: true: expected an integer",
    ),
    ("no uid", _delete("process", "user", "uid"), "process.user.uid: missing required field"),
    (
        "relative cwd",
        _set("process", "cwd", value="tmp"),
        'process.cwd: "tmp": expected an absolute path',
    ),
    ("no cwd", _delete("process", "cwd"), "process.cwd: missing required field"),
    ("empty args", _set("process", "args", value=[]), "process.args: []: expected at least 1 item"),
    (
        "non-string arg",
        _set("process", "args", value=["sh", 1]),
        "process.args[1]: 1: expected a string",
    ),
    ("env string", _set("process", "env", value="A=1"), 'process.env: "A=1": expected an array'),
    (
        "terminal string",
        _set("process", "terminal", value="true"),
        'process.terminal: "true": expected a boolean',
    ),
    (
        "bad rlimit type",
        _set("process", "rlimits", 0, "type", value="RLIMIT_FOO"),
        'process.rlimits[0].type: "RLIMIT_FOO": expected one of RLIMIT_AS,',
    ),
    (
        "negative rlimit",
        _set("process", "rlimits", 0, "hard", value=-1),
        "process.rlimits[0].hard: -1: expected an integer >= 0",
    ),
    (
        "oomScoreAdj range",
        _set("process", "oomScoreAdj", value=1001),
        "process.oomScoreAdj: 1001: expected an integer <= 1000",
    ),
    (
        "ioPriority class",
        _set("process", "ioPriority", value={"class": "IOPRIO_CLASS_X", "priority": 0}),
        'process.ioPriority.class: "IOPRIO_CLASS_X": expected one of IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE, IOPRIO_CLASS_RT',
    ),
    (
        "ioPriority level",
        _set("process", "ioPriority", value={"class": "IOPRIO_CLASS_BE", "priority": 8}),
        "process.ioPriority.priority: 8: expected an integer <= 7",
    ),
    (
        "scheduler policy",
        _set("process", "scheduler", value={"policy": "SCHED_FAST"}),
        'process.scheduler.policy: "SCHED_FAST": expected one of SCHED_BATCH,',
    ),
    (
        "scheduler flag",
        _set("process", "scheduler", value={"policy": "SCHED_OTHER", "flags": ["X"]}),
        'process.scheduler.flags[0]: "X": expected one of SCHED_FLAG_DL_OVERRUN,',
    ),
    (
        "consoleSize half",
        _set("process", "consoleSize", value={"height": 1}),
        "process.consoleSize.width: missing required field",
    ),
    (
        "mount no destination",
        _delete("mounts", 1, "destination"),
        "mounts[1].destination: missing required field",
    ),
    (
        "mount options string",
        _set("mounts", 0, "options", value="ro"),
        'mounts[0].options: "ro": expected an array',
    ),
    (
        "mount uid map alone",
        _set("mounts", 0, "uidMappings", value=[{"containerID": 0, "hostID": 1, "size": 1}]),
        "mounts[0].gidMappings: missing required field (needed with uidMappings)",
    ),
    (
        "relative hook path",
        _set("hooks", "prestart", value=[{"path": "hook"}]),
        'hooks.prestart[0].path: "hook": expected an absolute path',
    ),
    (
        "hook timeout 0",
        _set("hooks", "poststart", 0, "timeout", value=0),
        "hooks.poststart[0].timeout: 0: expected an integer > 0",
    ),
    (
        "hook timeout negative",
        _set("hooks", "createRuntime", value=[{"path": "/h", "timeout": -5}]),
        "hooks.createRuntime[0].timeout: -5: expected an integer > 0",
    ),
    (
        "hook no path",
        _set("hooks", "poststop", value=[{"args": ["x"]}]),
        "hooks.poststop[0].path: missing required field",
    ),
    (
        "annotation value",
        _set("annotations", "com.example.key", value=1),
        'annotations["com.example.key"]: 1: expected a string',
    ),
    (
        "annotation empty key",
        _set("annotations", "", value="v"),
        'annotations: key "": expected a non-empty string',
    ),
    ("hostname number", _set("hostname", value=5), "hostname: 5: expected a string"),
    (
        "namespace type",
        _set("linux", "namespaces", 1, "type", value="pidd"),
        'linux.namespaces[1].type: "pidd": expected one of cgroup, ipc, mount, network, pid, time, user, uts',
    ),
    (
        "namespace relative path",
        _set("linux", "namespaces", 0, "path", value="proc/1/ns/pid"),
        'linux.namespaces[0].path: "proc/1/ns/pid": expected an absolute path',
    ),
    (
        "id mapping no size",
        _set("linux", "uidMappings", value=[{"containerID": 0, "hostID": 1}]),
        "linux.uidMappings[0].size: missing required field",
    ),
    (
        "device type",
        _set("linux", "devices", value=[{"path": "/dev/x", "type": "x", "major": 1, "minor": 1}]),
        'linux.devices[0].type: "x": expected one of b, c, p, u',
    ),
    (
        "char device without major",
        _set("linux", "devices", value=[{"path": "/dev/x", "type": "c", "minor": 1}]),
        "linux.devices[0].major: missing required field",
    ),
    (
        "memory limit -2",
        _set("linux", "resources", "memory", value={"limit": -2}),
        "linux.resources.memory.limit: -2: expected an integer >= -1",
    ),
    (
        "swappiness 101",
        _set("linux", "resources", "memory", value={"swappiness": 101}),
        "linux.resources.memory.swappiness: 101: expected an integer <= 100",
    ),
    (
        "pids limit string",
        _set("linux", "resources", "pids", value={"limit": "max"}),
        'linux.resources.pids.limit: "max": expected an integer',
    ),
    (
        "cpu shares negative",
        _set("linux", "resources", "cpu", value={"shares": -1}),
        "linux.resources.cpu.shares: -1: expected an integer >= 0",
    ),
    (
        "hugepage size",
        _set("linux", "resources", "hugepageLimits", value=[{"pageSize": "2M", "limit": 1}]),
        'linux.resources.hugepageLimits[0].pageSize: "2M": expected <size><unit-prefix>B',
    ),
    (
        "blkio weight",
        _set("linux", "resources", "blockIO", value={"weight": 70000}),
        "linux.resources.blockIO.weight: 70000: expected an integer <= 65535",
    ),
    (
        "weightDevice no weight",
        _set("linux", "resources", "blockIO", value={"weightDevice": [{"major": 8, "minor": 0}]}),
        'linux.resources.blockIO.weightDevice[0]: {"major": 8, "minor": 0}: expected at least one of weight, leafWeight',
    ),
    (
        "rdma entry empty",
        _set("linux", "resources", "rdma", value={"mlx": {}}),
        "linux.resources.rdma.mlx: {}: expected at least one of hcaHandles, hcaObjects",
    ),
    (
        "device cgroup access",
        _set("linux", "resources", "devices", 0, "access", value="rwx"),
        'linux.resources.devices[0].access: "rwx": expected a combination of r, w and m',
    ),
    (
        "seccomp action",
        _set("linux", "seccomp", value={**SECCOMP, "defaultAction": "SCMP_ACT_BLOCK"}),
        'linux.seccomp.defaultAction: "SCMP_ACT_BLOCK": expected one of SCMP_ACT_ALLOW,',
    ),
    (
        "seccomp no names",
        _set(
            "linux",
            "seccomp",
            value={**SECCOMP, "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]},
        ),
        "linux.seccomp.syscalls[0].names: []: expected at least 1 item",
    ),
    (
        "seccomp operator",
        _set(
            "linux",
            "seccomp",
            value={
                **SECCOMP,
                "syscalls": [
                    {
                        "names": ["x"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "op": "=="}],
                    }
                ],
            },
        ),
        'linux.seccomp.syscalls[0].args[0].op: "==": expected one of SCMP_CMP_EQ,',
    ),
    (
        "seccomp arg index",
        _set(
            "linux",
            "seccomp",
            value={
                **SECCOMP,
                "syscalls": [
                    {
                        "names": ["x"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
        ),
        "linux.seccomp.syscalls[0].args[0].index: 6: expected an integer <= 5",
    ),
    (
        "seccomp arch",
        _set("linux", "seccomp", value={**SECCOMP, "architectures": ["x86_64"]}),
        'linux.seccomp.architectures[0]: "x86_64": expected one of SCMP_ARCH_AARCH64,',
    ),
    (
        "seccomp flag",
        _set("linux", "seccomp", value={**SECCOMP, "flags": ["SECCOMP_FILTER_FLAG_X"]}),
        'linux.seccomp.flags[0]: "SECCOMP_FILTER_FLAG_X": expected one of SECCOMP_FILTER_FLAG_LOG,',
    ),
    (
        "seccomp metadata alone",
        _set("linux", "seccomp", value={**SECCOMP, "listenerMetadata": "m"}),
        "linux.seccomp.listenerPath: missing required field (needed with listenerMetadata)",
    ),
    (
        "rootfsPropagation",
        _set("linux", "rootfsPropagation", value="recursive"),
        'linux.rootfsPropagation: "recursive": expected one of private, rprivate, rshared, rslave, runbindable, shared, slave, unbindable',
    ),
    (
        "masked relative",
        _set("linux", "maskedPaths", 0, value="proc/kcore"),
        'linux.maskedPaths[0]: "proc/kcore": expected an absolute path',
    ),
    (
        "time clock",
        _set("linux", "timeOffsets", value={"realtime": {"secs": 1}}),
        'linux.timeOffsets: key "realtime": expected one of boottime, monotonic',
    ),
    (
        "time nanosecs",
        _set("linux", "timeOffsets", value={"monotonic": {"nanosecs": 10**9}}),
        "linux.timeOffsets.monotonic.nanosecs: 1000000000: expected an integer <= 999999999",
    ),
    (
        "personality domain",
        _set("linux", "personality", value={"domain": "LINUX64"}),
        'linux.personality.domain: "LINUX64": expected one of LINUX, LINUX32',
    ),
    (
        "personality flags",
        _set("linux", "personality", value={"domain": "LINUX", "flags": ["X"]}),
        'linux.personality.flags: ["X"]: expected an empty array',
    ),
    (
        "memory policy mode",
        _set("linux", "memoryPolicy", value={"mode": "MPOL_X"}),
        'linux.memoryPolicy.mode: "MPOL_X": expected one of MPOL_BIND,',
    ),
    (
        "memBwSchema prefix",
        _set("linux", "intelRdt", value={"memBwSchema": "L3:0=7f"}),
        'linux.intelRdt.memBwSchema: "L3:0=7f": expected a string starting with MB:',
    ),
    (
        "schemata newline",
        _set("linux", "intelRdt", value={"schemata": ["L3:0=7f\nMB:0=20"]}),
        'linux.intelRdt.schemata[0]: "L3:0=7f\\nMB:0=20": expected a string without newlines',
    ),
    (
        "sysctl value int",
        _set("linux", "sysctl", value={"net.ipv4.ip_forward": 1}),
        'linux.sysctl["net.ipv4.ip_forward"]: 1: expected a string',
    ),
    ("linux not object", _set("linux", value=[]), "linux: []: expected an object"),
]


@pytest.mark.parametrize(("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in BROKEN])
def test_broken_config_names_the_field(mutate: Mutation, expected: str) -> None:
    config = copy.deepcopy(minimal_config())
    mutate(config)
    errors = schema_errors(config)
    assert any(line.startswith(f"config.json: {expected}") for line in errors), errors


# --- state --------------------------------------------------------------------------------


def runc_like_state(**changes: object) -> dict[str, Any]:
    state: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "id": "web-1",
        "pid": 4422,
        "status": "running",
        "bundle": "/run/bundles/web-1",
        "rootfs": "/run/bundles/web-1/rootfs",
        "created": "2024-05-01T10:00:00.123456789Z",
        "owner": "",
        "annotations": {"com.example.key": "v"},
    }
    return state | changes


@pytest.mark.parametrize(
    "state",
    [
        runc_like_state(),
        runc_like_state(status="created", created="2024-05-01T12:00:00+02:00"),
        runc_like_state(status="paused"),
        {"ociVersion": "1.3.0", "id": "x", "status": "stopped", "bundle": "/b"},
        {"ociVersion": "1.3.0", "id": "x", "status": "creating", "bundle": "/b", "extra": {"a": 1}},
    ],
    ids=["running", "created", "paused", "stopped-no-pid", "creating-extra-field"],
)
def test_state_schema_accepts(state: dict[str, Any]) -> None:
    assert schema_errors(state, "state") == []


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            runc_like_state(status="exploded"),
            'status: "exploded": expected one of created, creating, paused, running, stopped',
        ),
        ({k: v for k, v in runc_like_state().items() if k != "pid"}, "pid: missing required field"),
        (runc_like_state(pid=-1), "pid: -1: expected an integer >= 0"),
        (
            runc_like_state(bundle="bundles/web-1"),
            'bundle: "bundles/web-1": expected an absolute path',
        ),
        (
            runc_like_state(created="yesterday"),
            'created: "yesterday": expected an RFC 3339 timestamp',
        ),
        (
            {"ociVersion": "1.3.0", "status": "stopped", "bundle": "/b"},
            "id: missing required field",
        ),
    ],
    ids=["status", "running-without-pid", "negative-pid", "relative-bundle", "created", "no-id"],
)
def test_state_schema_rejects(state: dict[str, Any], expected: str) -> None:
    errors = schema_errors(state, "state")
    assert any(line.startswith(f"state.json: {expected}") for line in errors), errors


# --- features -----------------------------------------------------------------------------


def representative_features() -> dict[str, Any]:
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ],
        "mountOptions": ["bind", "rbind", "ro", "idmap"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": ["CAP_CHOWN", "CAP_KILL"],
            "cgroup": {
                "v1": False,
                "v2": True,
                "systemd": False,
                "systemdUser": False,
                "rdma": False,
            },
            "seccomp": {
                "enabled": True,
                "actions": ["SCMP_ACT_ALLOW"],
                "operators": ["SCMP_CMP_EQ"],
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": [],
                "supportedFlags": [],
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "memoryPolicy": {"modes": ["MPOL_DEFAULT"], "flags": None},
            "intelRdt": {"enabled": False, "schemata": False, "monitoring": False},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": False},
        },
        "annotations": {"org.example.ociish.version": "0.1.0"},
        "potentiallyUnsafeConfigAnnotations": ["org.example.ociish."],
    }


def test_features_schema_accepts_representative_document() -> None:
    assert schema_errors(representative_features(), "features") == []


def test_features_schema_accepts_nulls() -> None:
    features = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": None,
        "mountOptions": None,
        "linux": {"namespaces": None, "seccomp": None, "cgroup": {"v2": None}},
        "annotations": None,
    }
    assert schema_errors(features, "features") == []


@needs_runc
def test_runc_features_output_validates() -> None:
    assert RUNC is not None
    result = subprocess.run([RUNC, "features"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        pytest.skip("this runc has no features command")
    assert schema_errors(json.loads(result.stdout), "features") == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_delete("ociVersionMax"), "ociVersionMax: missing required field"),
        (_set("ociVersionMin", value=None), "ociVersionMin: null: expected a string"),
        (
            _set("linux", "seccomp", "enabled", value="yes"),
            'linux.seccomp.enabled: "yes": expected a boolean or null',
        ),
        (_set("hooks", value="prestart"), 'hooks: "prestart": expected an array or null'),
        (_set("futureField", value=1), "futureField: unknown field"),
        (_set("linux", "cgroup", "v3", value=True), "linux.cgroup.v3: unknown field"),
        (_set("annotations", value=5), "annotations: 5: expected null or an object"),
    ],
    ids=[
        "no-max",
        "null-min",
        "enabled-string",
        "hooks-string",
        "unknown-top",
        "unknown-nested",
        "annotations",
    ],
)
def test_features_schema_rejects(change: Mutation, expected: str) -> None:
    features = representative_features()
    change(features)
    errors = schema_errors(features, "features")
    assert any(line.startswith(f"features.json: {expected}") for line in errors), errors


# --- process.json -------------------------------------------------------------------------


def test_process_schema_is_the_config_process() -> None:
    process = minimal_config()["process"]
    assert schema_errors(process, "process") == []
    process["user"]["uid"] = -1
    assert schema_errors(process, "process") == [
        "process.json: user.uid: -1: expected an integer >= 0"
    ]
