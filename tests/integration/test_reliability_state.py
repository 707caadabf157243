"""A container whose state.json is truncated, emptied or garbage: every command says so in
one line, and `delete --force` still removes all of it — its processes and cgroups
included, found again from the config.json create saved beside the record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from conftest import Bundle, Runtime, unique_id

CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "zeroed": lambda data: b"\0" * len(data),  # what a crash of the host's disk can leave
    "garbage": lambda data: bytes(range(256)) * 4,
    "not an object": lambda data: b"[]",
    "nested past any parser": lambda data: b"[" * 100_000 + b"]" * 100_000,
    "wrong types": lambda data: json.dumps({**json.loads(data), "pid": "1", "cgroup": 5}).encode(),
    "fields missing": lambda data: json.dumps({"id": json.loads(data)["id"]}).encode(),
    "another container's": lambda data: json.dumps({**json.loads(data), "id": "someone-else"}).encode(),
}


def corrupt(runtime: Runtime, cid: str, how: Callable[[bytes], bytes]) -> None:
    path = runtime.root / cid / "state.json"
    path.write_bytes(how(path.read_bytes()))


def assert_one_clear_line(result, *expected: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("ociish: "), result.stderr
    assert "internal error" not in lines[0] and any(e in lines[0] for e in expected), lines[0]


@pytest.mark.parametrize("started", [False, True], ids=["created", "running"])
@pytest.mark.parametrize("damage", CORRUPTIONS)
def test_commands_refuse_a_corrupt_record_and_delete_force_cleans_up(runtime: Runtime, bundle: Bundle, host,
                                                                     damage: str, started: bool) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id("bad")
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    if started:
        runtime("start", cid, check=True)
    corrupt(runtime, cid, CORRUPTIONS[damage])
    for args in (("state", cid), ("start", cid), ("kill", cid, "KILL"), ("pause", cid), ("delete", cid)):
        assert_one_clear_line(runtime(*args), "is corrupt")
    listed = runtime("list", "--format", "json")
    assert listed.returncode == 0 and listed.stderr == ""
    deleted = runtime("delete", "--force", cid)
    assert deleted.returncode == 0 and deleted.stderr == "", deleted.stderr
    host.assert_clean([cid], [runtime.root], what=f"by delete --force of a container with a {damage} record")


def test_with_config_json_unreadable_too_the_default_cgroup_is_searched(runtime: Runtime, bundle: Bundle,
                                                                         host) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id("bad")
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    corrupt(runtime, cid, CORRUPTIONS["garbage"])
    (runtime.root / cid / "config.json").write_bytes(b"\xff garbage")
    runtime("delete", "--force", cid, check=True)
    host.assert_clean([cid], [runtime.root])


def test_a_custom_cgroups_path_is_found_from_config_json(runtime: Runtime, bundle: Bundle, host) -> None:
    cid, group = unique_id("bad"), unique_id("group")
    bundle.config["linux"]["cgroupsPath"] = f"/ociish/{group}"
    bundle.args("sleep", "1000")
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    runtime("start", cid, check=True)
    assert host.leftovers([group]).cgroups
    corrupt(runtime, cid, CORRUPTIONS["truncated"])
    runtime("delete", "--force", cid, check=True)
    host.assert_clean([cid, group], [runtime.root])


def test_a_live_container_with_the_same_id_under_another_root_is_spared(runtime: Runtime, bundle: Bundle, host,
                                                                        tmp_path: Path) -> None:
    """Only a cgroup made after the broken container's config.json was written is taken
    for its own: same id and default cgroup path under another state root is another's."""
    bundle.args("sleep", "1000")
    cid = unique_id("twin")
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    runtime("start", cid, check=True)
    other = Runtime(tmp_path / "other-root")
    (other.root / cid).mkdir(parents=True)
    (other.root / cid / "config.json").write_bytes((bundle.path / "config.json").read_bytes())
    (other.root / cid / "state.json").write_bytes(b"{garbage")
    (other.root / f"{cid}.lock").touch()
    other("delete", "--force", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    runtime("delete", "--force", cid, check=True)
    host.assert_clean([cid], [runtime.root, other.root])
