"""A container whose state.json is truncated, emptied or garbage, or is replaced by
something that is no record at all: every command says so in one line, `list` marks it,
and `delete --force` still removes all of it — its processes and cgroups included, found
again from the copy of the record kept in its lock file, or from the config.json create
saved beside the record."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import Bundle, Runtime, cgroup_dirs, unique_id

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


def assert_one_clear_line(result, *expected: str, status: int = 1) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == status and len(lines) == 1 and lines[0].startswith("ociish: "), result.stderr
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


# Damage to the files themselves, not to their content.  Root reads a file whatever its
# mode says: "unreadable" is seen by commands run without CAP_DAC_OVERRIDE and
# CAP_DAC_READ_SEARCH, as the owner of a state root is who has no such override.
NO_DAC_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def _swap_state(directory: Path, make: Callable[[Path], None]) -> None:
    state = directory / "state.json"
    copy = directory.parent / f"{directory.name}.copy"  # what a symlink points at: a whole record
    copy.write_bytes(state.read_bytes())
    state.unlink()
    make(state)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "a directory": lambda d: _swap_state(d, lambda p: p.mkdir()),
    "a fifo": lambda d: _swap_state(d, lambda p: os.mkfifo(p)),  # read without care, every command hangs
    "a symlink": lambda d: _swap_state(d, lambda p: p.symlink_to(d.parent / f"{d.name}.copy")),
    "unreadable": lambda d: (d / "state.json").chmod(0),
    "an empty directory": lambda d: [p.unlink() for p in d.iterdir()],
    "only the lock file": shutil.rmtree,
}
COMMANDS = (("state",), ("start",), ("kill", "KILL"), ("pause",), ("resume",), ("ps",), ("exec", "true"),
            ("events", "--stats"), ("delete",))


@pytest.mark.parametrize("started", [False, True], ids=["created", "running"])
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_state_dir_is_named_listed_and_removed_by_delete_force(
        runtime: Runtime, bundle: Bundle, host, damage: str, started: bool) -> None:
    bundle.args("sleep", "1000")
    cid, other = unique_id("damaged"), unique_id("healthy")
    for container_id in (cid, other):
        runtime("create", "--bundle", str(bundle.path), container_id, check=True)
    if started:
        runtime("start", cid, check=True)
    DAMAGE[damage](runtime.root / cid)
    as_owner = Runtime(runtime.root)
    if damage == "unreadable":
        as_owner.command = NO_DAC_OVERRIDE + as_owner.command
    for args in COMMANDS:
        result = as_owner(args[0], cid, *args[1:], timeout=20)
        # exec's own failures exit 255, as runc's, to be told from the process's status
        assert_one_clear_line(result, f"state of container {cid!r} is damaged", status=255 if args[0] == "exec" else 1)
    listed = as_owner("list", "--format", "json", timeout=20)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    statuses = {c["id"]: c["status"] for c in json.loads(listed.stdout)}
    assert statuses == {cid: "damaged", other: "created"}
    deleted = as_owner("delete", "--force", cid, timeout=20)
    assert deleted.returncode == 0 and deleted.stderr == "", deleted.stderr
    (runtime.root / f"{cid}.copy").unlink(missing_ok=True)
    assert runtime.state(other)["status"] == "created"  # spared
    runtime("delete", "--force", other, check=True)
    host.assert_clean([cid, other], [runtime.root], what=f"by delete --force of a container whose state is {damage}")


# ------------------------------------------------------------------ a full or read-only state root


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs to hold a state root (asked for before `host`, which then counts it
    among the mounts that were there before)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_a_full_state_root_fails_every_write_of_create_in_one_line_and_leaves_nothing(
        small_tmpfs: Path, host, bundle: Bundle) -> None:
    """From a full disk up, one page more each time, until a create fits: each write of
    create (the record's copy in the lock file, state.json, config.json, the records
    that follow) meets a full disk once, and each is undone."""
    bundle.args("sleep", "1000")
    filler = fill(small_tmpfs)
    full = filler.stat().st_size
    runtime = Runtime(small_tmpfs / "state")
    failures = 0
    for free in range(0, full, 4096):
        os.truncate(filler, full - free)
        cid = unique_id("full")
        result = runtime("create", "--bundle", str(bundle.path), cid)
        if result.returncode == 0:
            break
        assert_one_clear_line(result, f"no space left on device writing the state of {cid!r}")
        assert os.listdir(runtime.root) == [] and not cgroup_dirs(cid), f"left behind with {free} bytes free"
        failures += 1
    else:
        pytest.fail("create never fitted in the state root")
    assert failures >= 3, failures
    assert runtime.state(cid)["status"] == "created"
    runtime("delete", "--force", cid, check=True)
    host.assert_clean([cid], [runtime.root])


def test_a_read_only_state_root_fails_create_in_one_line_and_leaves_nothing(
        small_tmpfs: Path, host, bundle: Bundle) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    runtime = Runtime(small_tmpfs)
    cid = unique_id("ro")
    result = runtime("create", "--bundle", str(bundle.path), cid)
    assert_one_clear_line(result, f"read-only file system writing the state of {cid!r}")
    assert os.listdir(small_tmpfs) == [] and not cgroup_dirs(cid)
    host.assert_clean([cid], [runtime.root])
