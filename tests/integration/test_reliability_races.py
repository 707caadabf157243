"""Races between clients: parallel creates and starts, delete --force against everything,
and kill of a container whose process has just exited (as runc 1.1.5 answers it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import pytest

from conftest import Bundle, Runtime, unique_id

RUNC = shutil.which("runc") or shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin")


def in_parallel(runtime: Runtime, commands: Sequence[Sequence[str]]) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda args: runtime(*args, timeout=120), commands))


def assert_clean_refusal(result: subprocess.CompletedProcess, *expected: str) -> None:
    """Exit 1 with one "ociish: ..." line that says one of the expected things."""
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("ociish: "), result.stderr
    assert "internal error" not in lines[0] and any(e in lines[0] for e in expected), lines[0]


def listed(runtime: Runtime) -> dict[str, str]:
    return {c["id"]: c["status"] for c in json.loads(runtime("list", "--format", "json", check=True).stdout) or []}


def test_fifty_parallel_creates_of_distinct_ids_all_succeed(runtime: Runtime, bundle: Bundle, host) -> None:
    bundle.args("sleep", "1000")
    ids = [unique_id("par") for _ in range(50)]
    results = in_parallel(runtime, [("create", "--bundle", str(bundle.path), cid) for cid in ids])
    assert [r.returncode for r in results] == [0] * 50, [r.stderr for r in results if r.returncode]
    assert listed(runtime) == {cid: "created" for cid in ids}
    deleted = in_parallel(runtime, [("delete", "--force", cid) for cid in ids])
    assert [r.returncode for r in deleted] == [0] * 50, [r.stderr for r in deleted if r.returncode]
    host.assert_clean(ids, [runtime.root])


def test_parallel_creates_of_one_id_exactly_one_wins(runtime: Runtime, bundle: Bundle, host) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id("one")
    results = in_parallel(runtime, [("create", "--bundle", str(bundle.path), cid)] * 8)
    winners = [r for r in results if r.returncode == 0]
    assert len(winners) == 1, [r.stderr for r in results]
    for loser in results:
        if loser.returncode:
            assert_clean_refusal(loser, "already exists")
    assert listed(runtime) == {cid: "created"}
    runtime("delete", "--force", cid, check=True)
    host.assert_clean([cid], [runtime.root])


def test_parallel_starts_of_one_container_exactly_one_wins(runtime: Runtime, bundle: Bundle, host) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id("start")
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    results = in_parallel(runtime, [("start", cid)] * 8)
    assert sorted(r.returncode for r in results) == [0] + [1] * 7, [r.stderr for r in results]
    for loser in results:
        if loser.returncode:
            assert_clean_refusal(loser, "it is running, not created", "already started")
    assert runtime.state(cid)["status"] == "running"
    runtime("delete", "--force", cid, check=True)
    host.assert_clean([cid], [runtime.root])


@pytest.mark.parametrize("started", [False, True], ids=["created", "running"])
def test_delete_force_racing_state_kill_and_start(runtime: Runtime, bundle: Bundle, host, started: bool) -> None:
    """Whatever order they run in: exit 0 or one clear line, and afterwards the container
    is gone for everyone, with nothing of it left."""
    bundle.args("sleep", "1000")
    ids = []
    for _ in range(4):
        cid = unique_id("race")
        ids.append(cid)
        runtime("create", "--bundle", str(bundle.path), cid, check=True)
        if started:
            runtime("start", cid, check=True)
        racers = [("delete", "--force", cid), ("state", cid), ("kill", cid, "KILL"), ("start", cid),
                  ("kill", "--all", cid, "TERM"), ("state", cid), ("delete", "--force", cid), ("list",)]
        for args, result in zip(racers, in_parallel(runtime, racers)):
            if result.returncode != 0:
                assert_clean_refusal(result, "does not exist", "container not running", "not created",
                                     "already started", "its init", "cannot freeze", "cannot thaw", "busy")
            else:
                assert "Traceback" not in result.stderr and "internal error" not in result.stderr, (args, result.stderr)
        assert_clean_refusal(runtime("state", cid), "does not exist")
        assert cid not in listed(runtime)
    host.assert_clean(ids, [runtime.root])


def stopped_container(runtime: Runtime, bundle: Bundle, cid: str) -> None:
    """Create and start `cid` running `true`, and wait until its process is gone."""
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    runtime("start", cid, check=True)
    deadline = time.monotonic() + 10
    while runtime.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.mark.skipif(RUNC is None, reason="runc is not installed")
def test_kill_of_an_exited_container_answers_as_runc_does(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                          host) -> None:
    """runc 1.1.5: `kill` of a stopped container exits 1 saying "container not running"
    (the words containerd's shim matches to treat it as a process already finished);
    `kill --all` exits 0."""
    runc = Runtime(tmp_path / "runc-state")
    runc.command = [RUNC, "--root", str(runc.root)]
    bundle.args("true")
    answers = {}
    for name, rt in (("runc", runc), ("ociish", runtime)):
        cid = unique_id(name)
        stopped_container(rt, bundle, cid)
        kill, kill_all = rt("kill", cid, "TERM"), rt("kill", "--all", cid, "KILL")
        answers[name] = (kill.returncode, "container not running" in kill.stderr, kill_all.returncode)
        rt("delete", "--force", cid, check=True)
    assert answers["ociish"] == answers["runc"] == (1, True, 0), answers
    host.assert_clean(roots=[runtime.root, runc.root])


def test_kill_racing_the_process_exit_is_never_an_internal_error(runtime: Runtime, bundle: Bundle, host) -> None:
    """Signals sent while the process exits (USR1 makes it exit): each either lands
    (exit 0) or is runc's "container not running" (exit 1), whichever side of the exit it
    falls on."""
    bundle.shell("trap 'exit 0' USR1; while :; do sleep 0.01; done")
    ids = []
    for _ in range(3):
        cid = unique_id("exit")
        ids.append(cid)
        runtime("create", "--bundle", str(bundle.path), cid, check=True)
        runtime("start", cid, check=True)
        runtime("kill", cid, "CONT", check=True)  # alive, so this one lands
        deadline = time.monotonic() + 15
        while runtime.state(cid)["status"] != "stopped":
            assert time.monotonic() < deadline
            for result in in_parallel(runtime, [("kill", cid, "USR1")] + [("kill", cid, "CONT")] * 5):
                if result.returncode:
                    assert_clean_refusal(result, "container not running")
        runtime("delete", cid, check=True)
    host.assert_clean(ids, [runtime.root])


@pytest.mark.slow
def test_concurrent_lifecycles_each_record_their_init(runtime: Runtime, bundle: Bundle, host, tmp_path: Path) -> None:
    """create → start → delete, 20 at a time: every create that exits 0 has recorded its
    init (a record without the pid could be neither started nor killed)."""
    bundle.args("true")
    ids = [unique_id("life") for _ in range(60)]

    def lifecycle(cid: str) -> str | None:
        pid_file = tmp_path / f"{cid}.pid"
        created = runtime("create", "--bundle", str(bundle.path), "--pid-file", str(pid_file), cid, timeout=120)
        if created.returncode:
            return f"create {cid}: {created.stderr}"
        state = runtime.state(cid)
        if state["status"] != "created" or state["pid"] <= 0 or str(state["pid"]) != pid_file.read_text().strip():
            return f"create {cid} recorded {state}, pid file {pid_file.read_text()!r}"
        for step in (("start", cid), ("delete", "--force", cid)):
            result = runtime(*step, timeout=120)
            if result.returncode:
                return f"{step[0]} {cid}: {result.stderr}"
        return None

    with ThreadPoolExecutor(max_workers=20) as pool:
        failures = [failure for failure in pool.map(lifecycle, ids) if failure]
    assert failures == []
    host.assert_clean(ids, [runtime.root])
