"""Hostile and broken input: whatever config.json or command line a client hands over, the
result is a working container or exit 1 with clear "ociish: ..." lines — never a
traceback, never an internal error, never a leftover.

Configs come from schemas/config.schema.json (a strategy built from the schema here:
hypothesis-jsonschema does not work with current hypothesis) and from mutations of the
example bundle's valid config: wrong types, huge and negative numbers, nesting, absurd
paths.  Most of them are checked in-process, by running create up to the point where it
would take the container's lock (everything before that only reads); a few dozen go
through the real CLI and, when they are valid, become real containers.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.schemagen import ABSURD_PATHS, JUNK, SCHEMA, SCHEMA_STRATEGY, TEXT, grafted
from conftest import Bundle, Runtime, default_config, unique_id
from ociish.ops import create as create_module
from ociish.errors import OciishError
from ociish.state.store import StateStore

FIXTURES_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
# the same examples on every run (CI stays deterministic); OCIISH_FUZZ_SEED=random explores new ones
FUZZ: dict[str, Any] = {"deadline": None, "suppress_health_check": FIXTURES_OK, "database": None,
                        "derandomize": os.environ.get("OCIISH_FUZZ_SEED") != "random"}

# ------------------------------------------------------------------ strategies


def nested(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


schema_configs = SCHEMA_STRATEGY.of(SCHEMA)


def grafted_configs() -> st.SearchStrategy:
    """The example bundle's config with one section (or one of linux's) replaced by a
    schema instance: valid more often than a whole generated config, so planning runs."""
    return grafted(busybox_config).map(lambda drawn: drawn[1])


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location in a JSON document, as a tuple of keys and indexes."""
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, prefix + (i,))
    return found


@st.composite
def mutated_configs(draw: Callable, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The example bundle's config with one to three things broken."""
    config = copy.deepcopy(base if base is not None else busybox_config())
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(_paths(config)[1:]))
        parent = config
        for key in where[:-1]:
            parent = parent[key]
        key = where[-1]
        if isinstance(parent, (dict, list)) and key in (parent if isinstance(parent, dict) else range(len(parent))):
            action = draw(st.sampled_from(("replace", "replace", "replace", "delete", "nest", "add")))
            if action == "replace":
                parent[key] = draw(JUNK)
            elif action == "delete":
                del parent[key]
            elif action == "nest":
                parent[key] = nested(parent[key], draw(st.integers(1, 200)))
            elif isinstance(parent[key], dict):
                parent[key][draw(TEXT)] = draw(JUNK)
            elif isinstance(parent[key], list):
                parent[key].append(draw(JUNK))
    return config


def busybox_config() -> dict[str, Any]:
    config = default_config()
    config["root"]["readonly"] = False
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sleep", "1000"]
    return config


def encode(config: Any) -> bytes:
    return json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode()  # NaN stays NaN: not JSON


# ------------------------------------------------------------------ create, up to its lock


class _ReachedLock(Exception):
    """create accepted the config: the next thing it does is lock and start building."""


class _DryStore(StateStore):
    def lock(self, container_id: str, timeout: float = 0) -> Any:
        raise _ReachedLock()


def dry_create(bundle_dir: Path, raw: bytes) -> str | None:
    """Run create on this config.json up to the lock; its error message, or None if it got there."""
    (bundle_dir / "config.json").write_bytes(raw)
    with mock.patch.object(create_module, "_sweep_inherited_fds", lambda preserve: None):
        try:
            create_module.create(_DryStore(str(bundle_dir / "never-made")), "fuzz", str(bundle_dir))
        except _ReachedLock:
            return None
        except OciishError as e:
            assert e.message.strip() and all(line.strip() for line in e.message.splitlines()), repr(e.message)
            return e.message
    raise AssertionError("create returned without taking the lock")


@pytest.fixture(scope="module")
def dry_bundle(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Path:
    return Bundle(tmp_path_factory.mktemp("dry"), busybox_rootfs).path


@settings(max_examples=100, **FUZZ)
@given(config=schema_configs, real_root=st.booleans())
def test_configs_from_the_schema_are_accepted_or_refused_cleanly(dry_bundle: Path, config: dict[str, Any],
                                                                 real_root: bool) -> None:
    if real_root:
        config["root"] = {"path": "rootfs"}  # else the random root.path would stop nearly every one early
    dry_create(dry_bundle, encode(config))


@settings(max_examples=200, **FUZZ)
@given(config=grafted_configs())
def test_configs_with_a_section_from_the_schema_are_accepted_or_refused_cleanly(dry_bundle: Path,
                                                                                config: dict[str, Any]) -> None:
    dry_create(dry_bundle, encode(config))


@settings(max_examples=300, **FUZZ)
@given(config=mutated_configs())
def test_mutated_configs_are_accepted_or_refused_cleanly(dry_bundle: Path, config: dict[str, Any]) -> None:
    dry_create(dry_bundle, encode(config))


@pytest.mark.parametrize("strategy", [mutated_configs(), grafted_configs()], ids=["mutated", "grafted"])
def test_the_strategies_reach_both_outcomes(dry_bundle: Path, strategy: st.SearchStrategy) -> None:
    """Guard against strategies that only ever produce configs refused at the first check."""
    outcomes = {"accepted": 0, "refused": 0}

    @settings(max_examples=100, **FUZZ)
    @given(config=strategy)
    def sample(config: dict[str, Any]) -> None:
        outcomes["accepted" if dry_create(dry_bundle, encode(config)) is None else "refused"] += 1

    sample()
    assert outcomes["accepted"] >= 5 and outcomes["refused"] >= 10, outcomes


SECCOMP_REFUSED_BY_LIBSECCOMP = {
    "an errno libseccomp cannot encode": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4095},
    "an architecture libseccomp cannot add": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_MIPS"]},
}


@pytest.mark.parametrize("case", SECCOMP_REFUSED_BY_LIBSECCOMP)
def test_seccomp_values_libseccomp_refuses_are_config_errors(dry_bundle: Path, case: str) -> None:
    config = busybox_config()
    config["linux"]["seccomp"] = SECCOMP_REFUSED_BY_LIBSECCOMP[case]
    message = dry_create(dry_bundle, encode(config))
    assert message is not None and "linux.seccomp" in message


# ------------------------------------------------------------------ documents no generator writes

VALID = encode(busybox_config())
BROKEN = {
    "empty": b"",
    "whitespace": b" \n\t ",
    "null": b"null",
    "a list": b"[]",
    "a string": b'"config"',
    "truncated": VALID[: len(VALID) // 2],
    "invalid UTF-8": VALID.replace(b'"sleep"', b'"sl\xff\xfeep"'),
    "a lone surrogate": VALID.replace(b'"sleep"', b'"sl\\ud800eep"'),
    "nested 100000 deep": VALID[:-1] + b',"deep":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "an integer beyond 64 bits": VALID.replace(b'"1000"', b'"1000"],"x":[' + b"9" * 400),
    "a huge uid": VALID.replace(b'"uid":0', b'"uid":1' + b"0" * 30),
    "NaN": VALID.replace(b'"uid":0', b'"uid":NaN'),
    "binary garbage": bytes(range(256)) * 64,
}
UNUSUAL = {  # either outcome is right, as long as it is clean
    "a byte-order mark": b"\xef\xbb\xbf" + VALID,
    "8 MiB of annotation": encode({**busybox_config(), "annotations": {"a": "x" * (8 << 20)}}),
    "duplicate keys": VALID[:-1] + b',"process":' + encode(busybox_config()["process"]) + b"}",
}


@pytest.mark.parametrize("name", [*BROKEN, *UNUSUAL])
def test_broken_and_unusual_documents(runtime: Runtime, bundle: Bundle, host, name: str) -> None:
    (bundle.path / "config.json").write_bytes(BROKEN[name] if name in BROKEN else UNUSUAL[name])
    cid = unique_id("doc")
    result = runtime("create", "--bundle", str(bundle.path), cid)
    if name in UNUSUAL and result.returncode == 0:
        assert runtime.state(cid)["status"] == "created"
        runtime("delete", "--force", cid, check=True)
    else:
        assert_clean_failure(result)
        assert len(result.stderr.splitlines()) == 1
    host.assert_clean([cid], [runtime.root])


NUL_FIELDS: dict[str, Callable[[dict[str, Any]], None]] = {
    "process.cwd": lambda c: c["process"].update(cwd="/tmp\x00x"),
    "process.args[0]": lambda c: c["process"].update(args=["sle\x00ep"]),
    "mounts[0].destination": lambda c: c["mounts"][0].update(destination="/pr\x00oc"),
    "linux.devices[0].path": lambda c: c["linux"].update(devices=[{"path": "/dev/x\x00", "type": "c", "major": 1,
                                                                   "minor": 3}]),
    "linux.namespaces[1].path": lambda c: c["linux"]["namespaces"].__setitem__(
        1, {"type": c["linux"]["namespaces"][1]["type"], "path": "/proc/\x001/ns/net"}),
    "hooks.prestart[0].path": lambda c: c.update(hooks={"prestart": [{"path": "/bin/tr\x00ue"}]}),
}


@pytest.mark.parametrize("field", NUL_FIELDS)
def test_nul_bytes_in_config_strings(runtime: Runtime, bundle: Bundle, host, field: str) -> None:
    NUL_FIELDS[field](bundle.config)
    bundle.write()
    cid = unique_id("nul")
    result = runtime("create", "--bundle", str(bundle.path), cid)
    host.assert_clean([cid], [runtime.root])
    assert_clean_failure(result)
    assert f"config.json: {field}: " in result.stderr and "NUL" in result.stderr, result.stderr


def assert_clean_failure(result: Any) -> None:
    """Exit 1; every line "ociish: ..." (validation lists every problem, one a line)."""
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and lines, (result.returncode, result.stderr)
    assert all(line.startswith("ociish: ") for line in lines), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr


# ------------------------------------------------------------------ real containers


def made_safe(config: Any) -> Any:
    """What a generated config may not do on a test host: run host programs as hooks, use
    the host's files as its root, join existing namespaces (the host's mount namespace),
    propagate its mounts to the host, or write host sysctls through a shared namespace."""
    if not isinstance(config, dict):
        return config
    config.pop("hooks", None)
    if isinstance(config.get("root"), dict):
        config["root"]["path"] = "rootfs"
    linux = config.get("linux")
    if isinstance(linux, dict):
        for key in ("sysctl", "seccomp", "rootfsPropagation"):
            linux.pop(key, None)
        if isinstance(linux.get("namespaces"), list):
            for entry in linux["namespaces"]:
                if isinstance(entry, dict):
                    entry.pop("path", None)
    return config


@settings(max_examples=25, **FUZZ)
@given(config=mutated_configs().map(made_safe))
def test_mutated_configs_through_the_cli_leave_a_container_or_nothing(runtime: Runtime, bundle: Bundle, host,
                                                                      config: dict[str, Any]) -> None:
    (bundle.path / "config.json").write_bytes(encode(config))
    cid = unique_id("mut")
    result = runtime("create", "--bundle", str(bundle.path), cid)
    if result.returncode == 0:
        assert runtime.state(cid)["status"] == "created"
        runtime("delete", "--force", cid, check=True)
    else:
        assert_clean_failure(result)
    host.assert_clean([cid], [runtime.root])


# ------------------------------------------------------------------ the command line

COMMANDS = ("create", "run", "start", "state", "kill", "delete", "list", "spec", "validate", "update", "pause",
            "resume", "ps", "exec", "features", "checkpoint", "restore", "events", "frobnicate", "")
WORDS = ("--bundle", "-b", "--force", "-f", "--all", "--format", "json", "table", "-q", "--pid-file", "pid",
         "--console-socket", "sock", "--preserve-fds", "--no-pivot", "--detach", "-d", "--keep", "--memory", "512m",
         "--pids-limit", "--cpu-quota", "-r", "--stats", "--interval", "1s", "--process", "-t", "--tty", "--env",
         "--cwd", "-u", "--help", "-h", "--", "-", "=", "KILL", "9", "0", "-1", "65", "SIGNOPE", "sleep", "1",
         "true", "--debug", "--log-format", "--systemd-cgroup", "--rootless", "--args", "--network", "none")
# free text: relative (the command runs in a scratch directory), never an option of ours
FREE = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20).filter(
    lambda s: not s.startswith(("/", "~", "-")))


@st.composite
def command_lines(draw: Callable, container: str, bundle: str) -> list[str]:
    words = st.one_of(st.sampled_from(WORDS), st.sampled_from((container, bundle, "nope", "../escape", "a/b", "..",
                                                               "x" * 2000, "bundle-dir")), FREE,
                      st.sampled_from(ABSURD_PATHS[2:10]))
    command = draw(st.sampled_from(COMMANDS))
    rest = draw(st.lists(words, max_size=6))
    if command == "events":
        rest = ["--stats", *rest]  # without it, events follows a live container for ever
    return [command, *rest] if command else rest


@settings(max_examples=40, **FUZZ)
@given(data=st.data(), with_container=st.booleans())
def test_any_command_line_exits_0_or_1_cleanly_and_leaves_nothing(runtime: Runtime, bundle: Bundle, host,
                                                                  tmp_path: Path, data: Any,
                                                                  with_container: bool) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    cid = unique_id("cli")
    if with_container:
        runtime("create", "--bundle", str(bundle.path), cid, check=True)
    bundle.write()  # `spec --bundle` may have rewritten it in an earlier example
    argv = data.draw(command_lines(cid, str(bundle.path)))
    result = runtime(*argv, cwd=scratch, timeout=60)
    assert result.returncode in (0, 1), (argv, result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, (argv, result.stderr)
    if result.returncode == 1:
        assert result.stderr.splitlines()[-1].startswith("ociish: "), (argv, result.stderr)
    for leftover in runtime.ids():
        runtime("delete", "--force", leftover, check=True)
    host.assert_clean([cid, *argv], [runtime.root], what=f"by {argv}")
