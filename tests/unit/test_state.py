"""The state store and status derivation, on a temp state root with real processes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import record
from ociish.ops.container import Container
from ociish.errors import ContainerNotFound, OciishError
from ociish.linux.proc import start_time
from ociish.state.store import FIFO_NAME, StateStore, check_id




def save(store: StateStore, rec: dict[str, Any]) -> Container:
    if not store.exists(rec["id"]):
        store.make_dir(rec["id"])
    store.write(rec["id"], rec)
    return Container.load(store, rec["id"])


def test_status_follows_the_live_process(store: StateStore, sleeper: subprocess.Popen) -> None:
    c = save(store, record("a", pid=sleeper.pid, init_start=start_time(sleeper.pid)))
    assert c.status() == "running"
    Path(store.path("a", FIFO_NAME)).touch()
    assert c.status() == "created"
    sleeper.kill()
    sleeper.wait()
    assert c.status() == "stopped" and c.state()["pid"] == 0


def test_hook_state_never_has_a_live_status_with_pid_0(store: StateStore, sleeper: subprocess.Popen) -> None:
    import json

    c = save(store, record("a", pid=sleeper.pid, init_start=start_time(sleeper.pid)))
    assert json.loads(c.hook_state())["status"] == "running" and json.loads(c.hook_state())["pid"] == sleeper.pid
    assert json.loads(c.hook_state("stopped"))["pid"] == 0  # poststop's forced status
    sleeper.kill()
    sleeper.wait()
    assert (json.loads(c.hook_state())["status"], json.loads(c.hook_state())["pid"]) == ("stopped", 0)


def test_reused_pid_is_not_the_container(store: StateStore, sleeper: subprocess.Popen) -> None:
    c = save(store, record("a", pid=sleeper.pid, init_start=start_time(sleeper.pid) - 1))
    assert c.status() == "stopped"


def test_zombie_counts_as_stopped(store: StateStore) -> None:
    proc = subprocess.Popen(["true"])
    while Path(f"/proc/{proc.pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
        pass
    c = save(store, record("a", pid=proc.pid, init_start=start_time(proc.pid)))
    assert c.status() == "stopped"
    proc.wait()


def test_creating_with_a_dead_creator_is_stopped(store: StateStore, sleeper: subprocess.Popen) -> None:
    alive = save(store, record("a", status="creating", creator={"pid": sleeper.pid, "start": start_time(sleeper.pid)}))
    assert alive.status() == "creating"
    dead = save(store, record("b", status="creating", creator={"pid": sleeper.pid, "start": 1}))
    assert dead.status() == "stopped"


def test_state_json_fields(store: StateStore) -> None:
    c = save(store, record("a", rootfs="/b/rootfs", created="2026-01-01T00:00:00Z", owner="root",
                           annotations={"k": "v"}))
    assert c.state() == {"ociVersion": "1.3.0", "id": "a", "status": "stopped", "pid": 0, "bundle": "/b",
                         "rootfs": "/b/rootfs", "created": "2026-01-01T00:00:00Z", "owner": "root",
                         "annotations": {"k": "v"}}


def test_missing_and_corrupt_state(store: StateStore) -> None:
    with pytest.raises(ContainerNotFound):
        store.load("nope")
    store.make_dir("bad")
    Path(store.path("bad", "state.json")).write_text("{garbage")
    with pytest.raises(OciishError, match="corrupt"):
        store.load("bad")
    store.write("bad", {"id": "someone-else"})
    with pytest.raises(OciishError, match="corrupt"):
        store.load("bad")


def test_atomic_write_leaves_no_temp_files(store: StateStore) -> None:
    save(store, record("a"))
    store.write("a", record("a", pid=5))
    assert sorted(os.listdir(store.dir("a"))) == ["state.json"]
    assert store.load("a")["pid"] == 5
    assert oct(os.stat(store.dir("a")).st_mode & 0o777) == "0o711"


def test_make_dir_refuses_an_existing_id(store: StateStore) -> None:
    store.make_dir("a")
    with pytest.raises(OciishError, match="already exists"):
        store.make_dir("a")


def test_lock_is_exclusive_and_survives_unlink(store: StateStore) -> None:
    held = store.lock("a")
    with pytest.raises(OciishError, match="busy"):
        store.lock("a", timeout=0.05)
    held.release()
    store.remove_lock("a")
    with store.lock("a", timeout=0.05):
        assert Path(store.root, "a.lock").exists()


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b", "x" * 1025, "é/", "é", "abc\n", "a\x00", "ab٣"])
def test_invalid_ids(bad: str) -> None:
    with pytest.raises(OciishError):
        check_id(bad)


def test_valid_ids() -> None:
    for good in ("a", "A-b_c.d+e", "0" * 64):
        assert check_id(good) == good
