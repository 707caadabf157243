"""Unknown keys of a config.json are warnings, with the known key meant when one is close;
the keys every level knows come from schemas/config.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import default_config
from ociish.spec.unknown import unknown_key_warnings

PODMAN_CONFIG = Path(__file__).resolve().parents[2] / "benchmarks" / "config-podman.json"


def test_the_example_config_has_no_unknown_key() -> None:
    assert unknown_key_warnings(default_config()) == []


@pytest.mark.parametrize("where, key, expected", [
    ((), "hostnme", "hostnme: unknown key; did you mean hostname?"),
    (("linux",), "namespace", "linux.namespace: unknown key; did you mean linux.namespaces?"),
    (("process",), "capabilites", "process.capabilites: unknown key; did you mean process.capabilities?"),
    (("process", "user"), "uidd", "process.user.uidd: unknown key; did you mean process.user.uid?"),
    (("mounts", 0), "option", "mounts[0].option: unknown key; did you mean mounts[0].options?"),
    (("linux", "namespaces", 1), "typ", "linux.namespaces[1].typ: unknown key; did you mean linux.namespaces[1].type?"),
    (("root",), "read_only", "root.read_only: unknown key; did you mean root.readonly?"),
    (("linux",), "vendor.example", "linux[\"vendor.example\"]: unknown key"),
])
def test_an_unknown_key_at_any_level_is_named_with_a_suggestion(where: tuple, key: str, expected: str) -> None:
    config = default_config()
    target = config
    for part in where:
        target = target[part]
    target[key] = {}
    assert unknown_key_warnings(config) == [expected]


def test_keys_deeper_in_arrays_and_resources_are_checked_too() -> None:
    config = default_config()
    config["linux"]["resources"] = {"memroy": {"limit": 1}, "pids": {"limt": 5}}
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                  "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoret": 1}]}
    config["hooks"] = {"prestart": [{"path": "/bin/true", "arg": []}]}
    assert unknown_key_warnings(config) == [
        "linux.resources.memroy: unknown key; did you mean linux.resources.memory?",
        "linux.resources.pids.limt: unknown key; did you mean linux.resources.pids.limit?",
        "linux.seccomp.syscalls[0].errnoret: unknown key; did you mean linux.seccomp.syscalls[0].errnoRet?",
        "hooks.prestart[0].arg: unknown key; did you mean hooks.prestart[0].args?",
    ]


def test_maps_take_any_key() -> None:
    config = default_config()
    config["annotations"] = {"com.example.anything": "x"}
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    config["linux"]["resources"] = {"unified": {"memory.high": "max"}}
    assert unknown_key_warnings(config) == []


def test_the_config_podman_writes_has_no_unknown_key() -> None:
    assert unknown_key_warnings(json.loads(PODMAN_CONFIG.read_text())) == []
