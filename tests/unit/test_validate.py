"""ociish.spec.validate: message format, all errors at once, semantic rules, lazy import."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ociish.spec import validate
from ociish.spec.validate import schema_errors, semantic_errors, validate_config

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"[\w./-]+\.json: \S[^\n]*: [^\n]+")


def minimal_config() -> dict[str, Any]:
    """A small valid config.json (each test file keeps its own, so both stand alone)."""
    return {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "cwd": "/",
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        },
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "hooks": {"poststart": [{"path": "/usr/bin/notify", "timeout": 5}]},
        "annotations": {"com.example.key": "value"},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]},
    }


# --- message format -----------------------------------------------------------------------


def test_message_is_file_path_value_expectation() -> None:
    config = minimal_config()
    config["process"]["user"]["uid"] = -1
    assert schema_errors(config) == ["config.json: process.user.uid: -1: expected an integer >= 0"]


def test_missing_field_names_the_field_itself() -> None:
    config = minimal_config()
    del config["ociVersion"]
    del config["process"]["user"]["gid"]
    assert schema_errors(config) == [
        "config.json: ociVersion: missing required field",
        "config.json: process.user.gid: missing required field",
    ]


def test_label_defaults_to_schema_name_and_can_be_set() -> None:
    process = {"cwd": "/", "args": [], "user": {"uid": 0, "gid": 0}}
    assert schema_errors(process, "process") == ["process.json: args: []: expected at least 1 item"]
    assert schema_errors(process, "process", label="/tmp/p.json") == [
        "/tmp/p.json: args: []: expected at least 1 item"
    ]
    config = minimal_config()
    del config["ociVersion"]
    assert validate_config(config, label="bundle/config.json") == [
        "bundle/config.json: ociVersion: missing required field"
    ]


def test_long_values_are_truncated() -> None:
    config = minimal_config()
    config["process"]["cwd"] = "x" * 500
    [error] = schema_errors(config)
    value = error.split(": ")[2]
    assert value.startswith('"xxx') and value.endswith("...")
    assert len(value) <= 60


def test_keys_that_are_not_identifiers_are_quoted() -> None:
    config = minimal_config()
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": 1}
    assert schema_errors(config) == [
        'config.json: linux.sysctl["net.ipv4.ip_forward"]: 1: expected a string'
    ]


def test_document_that_is_not_an_object() -> None:
    assert schema_errors([1, 2]) == ["config.json: (root): [1, 2]: expected an object"]
    assert validate_config("{}") == ['config.json: (root): "{}": expected an object']


def test_wrong_type_is_reported_once() -> None:
    config = minimal_config()
    config["process"]["user"]["uid"] = -1.5  # not an integer, and below the minimum
    assert schema_errors(config) == ["config.json: process.user.uid: -1.5: expected an integer"]


def test_unknown_schema_name() -> None:
    with pytest.raises(ValueError, match="unknown schema 'nope'"):
        schema_errors({}, "nope")


# --- every error at once ------------------------------------------------------------------


def test_all_errors_reported_at_once_sorted_by_path() -> None:
    config = minimal_config()
    config["mounts"] = [{"destination": "/m"} for _ in range(12)]
    config["mounts"][10]["options"] = "ro"
    config["mounts"][2]["options"] = "rw"
    config["process"]["cwd"] = "relative"
    config["linux"]["namespaces"][1]["type"] = "pidd"
    config["hooks"]["poststart"][0]["timeout"] = 0
    del config["ociVersion"]
    errors = schema_errors(config)
    assert errors == [
        "config.json: hooks.poststart[0].timeout: 0: expected an integer > 0",
        'config.json: linux.namespaces[1].type: "pidd": expected one of cgroup, ipc, mount, network, pid, time, user, uts',
        'config.json: mounts[2].options: "rw": expected an array',
        'config.json: mounts[10].options: "ro": expected an array',
        "config.json: ociVersion: missing required field",
        'config.json: process.cwd: "relative": expected an absolute path (starting with /)',
    ]


def test_every_line_is_one_line_in_the_format() -> None:
    config = minimal_config()
    config["process"]["env"] = ["A=1", {"multi\nline": "x\ny"}]
    config["annotations"]["bad\nkey"] = ["x\ny"]
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW\nSCMP_ACT_KILL"}
    errors = schema_errors(config)
    assert len(errors) == 3
    assert all(LINE.fullmatch(line) for line in errors), errors


# --- validate_config: semantic checks only after the schema passed ------------------------


def test_valid_config_has_no_errors() -> None:
    assert validate_config(minimal_config()) == []


def test_semantic_checks_wait_for_a_valid_schema() -> None:
    config = minimal_config()
    config["linux"]["namespaces"].append({"type": "pid"})  # semantic error
    config["process"]["user"]["uid"] = "root"  # schema error
    assert validate_config(config) == ['config.json: process.user.uid: "root": expected an integer']
    config["process"]["user"]["uid"] = 0
    assert validate_config(config) == [
        'config.json: linux.namespaces[3].type: duplicate namespace "pid"'
    ]


def with_linux(**linux: Any) -> dict[str, Any]:
    config = minimal_config()
    config["linux"].update(linux)
    return config


MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]

SEMANTIC_BROKEN = [
    ("no root", {"root": None}, ["root.path: missing required field"]),
    ("no process", {"process": None}, ["process: missing required field"]),
    (
        "duplicate namespace",
        {
            "linux.namespaces": [
                {"type": "pid"},
                {"type": "uts"},
                {"type": "pid", "path": "/proc/1/ns/pid"},
            ]
        },
        ['linux.namespaces[2].type: duplicate namespace "pid"'],
    ),
    (
        "duplicate rlimit",
        {
            "process.rlimits": [
                {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2},
            ]
        },
        ['process.rlimits[1].type: duplicate rlimit "RLIMIT_NOFILE"'],
    ),
    (
        "soft above hard",
        {"process.rlimits": [{"type": "RLIMIT_CORE", "soft": 2048, "hard": 1024}]},
        ["process.rlimits[0].soft: 2048: expected <= the hard limit 1024"],
    ),
    (
        "uid mappings without user namespace",
        {"linux.uidMappings": MAPPING, "linux.gidMappings": MAPPING},
        [
            'linux.gidMappings: set but linux.namespaces has no "user" namespace',
            'linux.uidMappings: set but linux.namespaces has no "user" namespace',
        ],
    ),
    (
        "time offsets without time namespace",
        {"linux.timeOffsets": {"monotonic": {"secs": 10}}},
        ['linux.timeOffsets: set but linux.namespaces has no "time" namespace'],
    ),
    (
        "idmap mount without mappings or user namespace",
        {"mounts": [{"destination": "/d", "source": "/s", "options": ["rbind", "ridmap"]}]},
        [
            'mounts[0].options: "ridmap" needs uidMappings and gidMappings on the mount or a user namespace'
        ],
    ),
    (
        "errno with an action that takes none",
        {
            "linux.seccomp": {
                "defaultAction": "SCMP_ACT_KILL",
                "defaultErrnoRet": 1,
                "syscalls": [
                    {"names": ["a"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                    {"names": ["b"], "action": "SCMP_ACT_ALLOW", "errnoRet": 38},
                ],
            }
        },
        [
            "linux.seccomp.defaultErrnoRet: 1: expected no errno with defaultAction SCMP_ACT_KILL (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one)",
            "linux.seccomp.syscalls[1].errnoRet: 38: expected no errno with action SCMP_ACT_ALLOW (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one)",
        ],
    ),
]


def _apply(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return config


@pytest.mark.parametrize(
    ("changes", "expected"), [pytest.param(c, e, id=i) for i, c, e in SEMANTIC_BROKEN]
)
def test_semantic_errors(changes: dict[str, Any], expected: list[str]) -> None:
    config = _apply(minimal_config(), changes)
    assert schema_errors(config) == []
    assert validate_config(config) == [f"config.json: {line}" for line in expected]


SEMANTIC_FINE = [
    (
        "user namespace with mappings",
        {
            "linux.namespaces": [{"type": "user"}],
            "linux.uidMappings": MAPPING,
            "linux.gidMappings": MAPPING,
        },
    ),
    ("user namespace without mappings", {"linux.namespaces": [{"type": "user"}]}),
    (
        "time namespace with offsets",
        {"linux.namespaces": [{"type": "time"}], "linux.timeOffsets": {"boottime": {"secs": -5}}},
    ),
    (
        "idmap with mount mappings",
        {
            "mounts": [
                {
                    "destination": "/d",
                    "source": "/s",
                    "options": ["bind", "idmap"],
                    "uidMappings": MAPPING,
                    "gidMappings": MAPPING,
                }
            ]
        },
    ),
    (
        "idmap with a user namespace",
        {
            "linux.namespaces": [{"type": "user"}, {"type": "mount"}],
            "mounts": [{"destination": "/d", "source": "/s", "options": ["bind", "idmap"]}],
        },
    ),
    # config.md#hostname: without a uts namespace, the container's may be the runtime's.
    (
        "hostname without uts namespace",
        {"linux.namespaces": [{"type": "pid"}], "hostname": "h", "domainname": "d"},
    ),
    # config.md#mounts: relative destinations are deprecated on Linux, not invalid.
    (
        "relative mount destination",
        {"mounts": [{"destination": "data", "type": "tmpfs", "source": "tmpfs"}]},
    ),
    (
        "errno with errno actions",
        {
            "linux.seccomp": {
                "defaultAction": "SCMP_ACT_TRACE",
                "defaultErrnoRet": 1,
                "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
            }
        },
    ),
    ("no linux section", {"linux": None}),
    ("empty mappings", {"linux.uidMappings": [], "linux.gidMappings": []}),
]


@pytest.mark.parametrize("changes", [pytest.param(c, id=i) for i, c in SEMANTIC_FINE])
def test_semantically_fine(changes: dict[str, Any]) -> None:
    assert validate_config(_apply(minimal_config(), changes)) == []


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("net.ipv4.ip_forward", True),
        ("kernel.shm_rmid_forced", True),
        ("net/ipv4/conf/eth0.100/forwarding", True),
        ("net.ipv4.conf.eth0/100.forwarding", True),
        ("fs.mqueue.msg_max", True),
        ("", False),
        ("net..ipv4", False),
        (".net.ipv4", False),
        ("net.ipv4.", False),
        ("net/../../etc/passwd", False),
        ("/net/ipv4", False),
        ("net.ipv4 .ip_forward", False),
    ],
)
def test_sysctl_key_form(key: str, valid: bool) -> None:
    errors = semantic_errors(with_linux(sysctl={key: "1"}))
    expected = (
        []
        if valid
        else [
            f"config.json: linux.sysctl[{json.dumps(key)}]: invalid key: expected names separated by . or / (e.g. net.ipv4.ip_forward)"
        ]
    )
    assert errors == expected


def test_semantic_errors_use_the_label() -> None:
    config = minimal_config()
    del config["process"]
    assert semantic_errors(config, label="b/config.json") == [
        "b/config.json: process: missing required field"
    ]


# --- integers are written as integers --------------------------------------------------------


def every_integer_field() -> dict[str, Any]:
    """A valid config with a value at every integer field of config.schema.json."""
    ids = [{"containerID": 0, "hostID": 1000, "size": 1}]
    device = {"major": 8, "minor": 0}
    return minimal_config() | {
        "process": {
            "consoleSize": {"height": 25, "width": 80},
            "user": {"uid": 1, "gid": 1, "umask": 18, "additionalGids": [5]},
            "args": ["sh"], "cwd": "/",
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "oomScoreAdj": 100,
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "scheduler": {"policy": "SCHED_OTHER", "nice": 0, "priority": 0, "runtime": 1, "deadline": 2, "period": 3},
        },
        "mounts": [{"destination": "/m", "type": "bind", "source": "/m", "options": ["rbind", "idmap"],
                    "uidMappings": ids, "gidMappings": ids}],
        "hooks": {"poststart": [{"path": "/usr/bin/notify", "timeout": 5}]},
        "linux": {
            "namespaces": [{"type": "user"}, {"type": "time"}, {"type": "mount"}],
            "uidMappings": ids, "gidMappings": ids,
            "timeOffsets": {"monotonic": {"secs": 1, "nanosecs": 2}},
            "devices": [{"path": "/dev/sda", "type": "b", **device, "fileMode": 432, "uid": 0, "gid": 0}],
            "resources": {
                "devices": [{"allow": True, "type": "b", **device, "access": "r"}],
                "memory": {"limit": 1 << 30, "reservation": 1 << 29, "swap": 1 << 31, "kernel": -1, "kernelTCP": -1,
                           "swappiness": 60},
                "cpu": {"shares": 1024, "quota": 50000, "burst": 0, "period": 100000, "realtimeRuntime": 0,
                        "realtimePeriod": 0, "idle": 0},
                "pids": {"limit": 100},
                "blockIO": {"weight": 100, "leafWeight": 100,
                            "weightDevice": [{**device, "weight": 10, "leafWeight": 10}],
                            "throttleReadBpsDevice": [{**device, "rate": 1000}]},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}],
                "network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 5}]},
                "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
            },
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_EQ"}]}]},
        },
    }


def integer_leaves(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in integer_leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in integer_leaves(v, (*path, i))]
    return [path] if isinstance(value, int) and not isinstance(value, bool) else []


def test_the_document_has_every_integer_field_of_the_schema() -> None:
    schema = json.loads((Path(validate.SCHEMA_DIR) / "config.schema.json").read_text())
    integer_defs = {f"#/$defs/{name}" for name, node in schema["$defs"].items() if node.get("type") == "integer"}

    def fields(node: Any, name: str = "") -> set[str]:
        found: set[str] = set()
        if isinstance(node, dict):
            if name and (node.get("type") == "integer" or node.get("$ref") in integer_defs):
                found.add(name)
            for key, child in node.items():
                found |= fields(child, name if key in ("items", "additionalProperties") else key)
        elif isinstance(node, list):
            for child in node:
                found |= fields(child, name)
        return found

    config = every_integer_field()
    assert validate_config(config) == []
    present = {path[-1] if isinstance(path[-1], str) else path[-2] for path in integer_leaves(config)}
    integer_fields = fields(schema["$defs"]) - {ref.rsplit("/", 1)[1] for ref in integer_defs}
    assert len(integer_fields) > 40 and integer_fields <= present, integer_fields - present


def test_every_integer_field_refuses_a_whole_number_float() -> None:
    """JSON Schema counts 1.0 as an integer; the kernel does not take floats, and runc
    refuses them: each field's float is named by its path, by both validators."""
    config = every_integer_field()
    for path in integer_leaves(config):
        broken = json.loads(json.dumps(config))
        parent = broken
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = float(parent[path[-1]])
        assert not validate.conforms(broken, "config"), path
        errors = schema_errors(broken)
        assert len(errors) == 1 and errors[0].startswith(f"config.json: {validate._format_path(path)}: "), errors
        assert errors[0].endswith(": expected an integer"), errors


@pytest.mark.parametrize("text, field", [
    (b'{"uid": -0.0, "gid": 0}', "process.user.uid: -0.0"), (b'{"uid": 0, "gid": 1e3}', "process.user.gid: 1000.0"),
    (b'{"uid": 0, "gid": 0, "additionalGids": [0, 1.0]}', "process.user.additionalGids[1]: 1.0")])
def test_numbers_with_a_fraction_or_exponent_are_not_integers(text: bytes, field: str) -> None:
    from ociish import jsonio

    config = minimal_config()
    config["process"]["user"] = jsonio.loads(text)
    assert validate_config(config) == [f"config.json: {field}: expected an integer"]


# --- robustness ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
config_keys = st.sampled_from(
    ["ociVersion", "root", "process", "mounts", "hooks", "annotations", "linux", "hostname"]
)
linux_keys = st.sampled_from(
    ["namespaces", "resources", "seccomp", "devices", "timeOffsets", "sysctl", "intelRdt"]
)


@settings(max_examples=150, deadline=None, database=None)
@given(
    top=st.dictionaries(config_keys, json_values, max_size=4),
    linux=st.dictionaries(linux_keys, json_values, max_size=3),
)
def test_any_json_gives_one_line_messages_and_never_crashes(
    top: dict[str, Any], linux: dict[str, Any]
) -> None:
    config = minimal_config() | top
    if isinstance(config.get("linux"), dict):
        config["linux"] = config["linux"] | linux
    for line in validate_config(config):
        assert LINE.fullmatch(line), line


# --- cost -----------------------------------------------------------------------------------


def test_jsonschema_is_imported_only_to_explain_errors() -> None:
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    }
    code = (
        "import sys, ociish.spec.validate as v; before = 'jsonschema' in sys.modules; "
        "assert v.schema_errors({'ociVersion': '1.3.0'}) == []; valid = 'jsonschema' in sys.modules; "
        "assert v.schema_errors({'ociVersion': 1}); print(before, valid, 'jsonschema' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["False", "False", "True"]


def test_compiled_validator_is_cached() -> None:
    schema_errors({"ociVersion": "1.3.0"}, "state")
    first = validate._VALIDATORS["state"]
    schema_errors({}, "state")
    assert validate._VALIDATORS["state"] is first
