"""The state store and container operations under bad records, unknown ids and races,
in-process (the integration tests drive the same through the CLI with real containers)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import record
from ociish.ops.container import Container
from ociish.ops.create import write_pid_file
from ociish.ops.delete import delete, destroy, wait_stopped
from ociish.ops.kill import kill
from ociish.ops.start import start
from ociish.errors import ContainerNotFound, DamagedState, OciishError, WrongState
from ociish.linux.proc import start_time
from ociish.state.store import StateStore




def save(store: StateStore, rec: dict[str, Any]) -> None:
    store.make_dir(rec["id"])
    store.write(rec["id"], rec)


def entries(store: StateStore) -> list[str]:
    return sorted(os.listdir(store.root)) if os.path.isdir(store.root) else []


# ------------------------------------------------------------------ lock files


def test_commands_on_an_unknown_id_leave_no_lock_file(store: StateStore) -> None:
    from ociish.ops.pause import pause

    for operation in (lambda: start(store, "ghost"), lambda: pause(store, "ghost"),
                      lambda: delete(store, "ghost", force=False)):
        with pytest.raises(ContainerNotFound):
            operation()
    assert entries(store) == []


def test_a_lock_released_without_a_container_takes_its_file_along(store: StateStore) -> None:
    with store.lock("a"):
        assert entries(store) == ["a.lock"]
    assert entries(store) == []
    save(store, record("b"))
    with store.lock("b"):
        pass
    assert entries(store) == ["b", "b.lock"]


def test_delete_force_of_a_missing_container_removes_a_stale_lock_unless_held(store: StateStore) -> None:
    store.ensure_root()
    Path(store.root, "stale.lock").touch()  # a create killed between its lock and its mkdir
    delete(store, "stale", force=True)
    assert entries(store) == []
    held = store.lock("busy")  # a create holding it right now
    try:
        delete(store, "busy", force=True)
        assert entries(store) == ["busy.lock"]
    finally:
        held.release()
    assert entries(store) == []


def test_the_lock_file_keeps_the_record_and_outlives_a_lost_directory(store: StateStore,
                                                                      sleeper: subprocess.Popen) -> None:
    rec = record("a", status="running", pid=sleeper.pid, init_start=start_time(sleeper.pid), pid_namespace_new=False)
    with store.lock("a") as lock:
        store.make_dir("a")
        store.write("a", rec, lock)
        assert store.kept_record("a", lock) == rec
    store.remove("a")  # the directory lost to damage
    for operation in (lambda: store.load("a"), lambda: start(store, "a"), lambda: delete(store, "a", force=False)):
        with pytest.raises(DamagedState, match="only its lock file is left"):
            operation()
    assert entries(store) == ["a.lock"] and list(store.ids()) == ["a"]
    delete(store, "a", force=True)  # kills the init the kept record names
    assert sleeper.wait(timeout=10) == -signal.SIGKILL
    assert entries(store) == []


def test_a_missing_record_is_damage_only_while_no_command_holds_the_lock(store: StateStore) -> None:
    store.make_dir("a")  # a create between its mkdir and its first record, or a damaged directory
    with pytest.raises(DamagedState, match="holds no state.json"):
        store.load("a")
    other = StateStore(store.root)  # another command, in the middle of a create or a delete
    with other.lock("a"):
        with pytest.raises(ContainerNotFound):
            store.load("a")
        with pytest.raises(DamagedState):
            other.load("a")  # the holder itself knows nobody else is at work


def test_a_write_the_host_refuses_leaves_no_temp_file(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    store.make_dir("a")

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OciishError, match="^no space left on device writing the state of 'a'$"):
        store.write("a", record("a"))
    monkeypatch.undo()
    assert os.listdir(store.dir("a")) == []


@pytest.mark.parametrize("bad", ["../escape", "a/b", "..", ""])
def test_an_id_never_names_a_path_outside_the_root(store: StateStore, tmp_path: Path, bad: str) -> None:
    for operation in (lambda: store.lock(bad), lambda: store.path(bad, "state.json"), lambda: store.exists(bad),
                      lambda: start(store, bad), lambda: Container.load(store, bad)):
        with pytest.raises(OciishError, match="container id"):
            operation()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ------------------------------------------------------------------ records


def test_records_as_create_writes_them_load(store: StateStore) -> None:
    save(store, record("a", cgroup={"version": 1, "mode": "hybrid", "driver": "cgroupfs", "cgroup": "/ociish/a",
                                    "paths": {"": "/sys/fs/cgroup/unified/ociish/a"}, "created": []}))
    assert store.load("a")["cgroup"]["cgroup"] == "/ociish/a"


BAD_RECORDS = {
    "pid a string": {"pid": "1"},
    "pid negative": {"pid": -1},
    "pid beyond any pid": {"pid": 2 ** 40},
    "pid a boolean": {"pid": True},
    "status a number": {"status": 3},
    "bundle a list": {"bundle": ["/b"]},
    "creator a number": {"creator": 7},
    "creator pid a string": {"creator": {"pid": "7", "start": None}},
    "init_start a string": {"init_start": "x"},
    "cgroup a number": {"cgroup": 5},
    "cgroup paths a list": {"cgroup": {"version": 1, "paths": ["/x"], "created": []}},
    "cgroup paths not strings": {"cgroup": {"version": 1, "paths": {"": 5}, "created": []}},
    "cgroup created not strings": {"cgroup": {"version": 1, "paths": {}, "created": [1]}},
    "hooks a list": {"hooks": []},
    "a hook without a path": {"hooks": {"poststop": [{"args": ["x"]}]}},
    "annotations a string": {"annotations": "x"},
}


@pytest.mark.parametrize("field", BAD_RECORDS)
def test_a_record_of_the_wrong_shape_is_corrupt_not_a_crash(store: StateStore, field: str) -> None:
    save(store, record("a", **BAD_RECORDS[field]))
    with pytest.raises(OciishError, match="is corrupt"):
        store.load("a")


@pytest.mark.parametrize("content", [b"", b"\0" * 64, b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe", b"{}"])
def test_unparsable_records_are_corrupt(store: StateStore, content: bytes) -> None:
    store.make_dir("a")
    Path(store.path("a", "state.json")).write_bytes(content)
    with pytest.raises(OciishError, match="is corrupt"):
        store.load("a")


@pytest.mark.parametrize("missing", ["status", "pid"])
def test_a_record_without_status_or_pid_is_corrupt_for_every_command(store: StateStore, missing: str) -> None:
    rec = record("a")
    del rec[missing]
    save(store, rec)
    container = Container.load(store, "a")
    for operation in (container.status, container.state, lambda: kill(store, "a", signal.SIGTERM)):
        with pytest.raises(OciishError, match="is corrupt"):
            operation()


def test_delete_without_force_refuses_a_record_it_cannot_trust(store: StateStore) -> None:
    rec = record("a")
    del rec["cgroup"]
    save(store, rec)
    with pytest.raises(OciishError, match="is corrupt"):
        delete(store, "a", force=False)
    delete(store, "a", force=True)
    assert entries(store) == []


# ------------------------------------------------------------------ signals and exits


def test_kill_of_a_stopped_container_says_what_runc_says(store: StateStore) -> None:
    save(store, record("a", status="running"))
    with pytest.raises(WrongState, match="^container not running: 'a' is stopped$"):
        kill(store, "a", signal.SIGTERM)


def test_an_init_that_exits_between_the_check_and_the_signal_is_not_running(
        store: StateStore, sleeper: subprocess.Popen, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race of a kill with the process's exit: alive at the check, gone (and reaped)
    when the signal is sent, so pidfd_send_signal meets ESRCH."""
    save(store, record("a", status="running", pid=sleeper.pid, init_start=start_time(sleeper.pid)))
    container = Container.load(store, "a")
    assert container.status() == "running"

    def alive_then_gone() -> bool:
        sleeper.kill()
        sleeper.wait()
        return True

    monkeypatch.setattr(container, "init_alive", alive_then_gone)
    with pytest.raises(WrongState, match="container not running"):
        container.signal_init(signal.SIGTERM)


class FakeCgroup:
    def __init__(self, pids: list[int]) -> None:
        self._pids = pids
        self.calls: list[str] = []

    def pids(self) -> list[int]:
        return self._pids

    def kill_all(self, signum: int) -> None:
        self.calls.append(f"kill_all {signum}")

    def is_frozen(self) -> bool:
        return False

    def destroy(self) -> None:
        self.calls.append("destroy")


def test_destroy_kills_the_cgroup_when_create_died_before_recording_the_init(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """pid 0 in the record (create killed between the init's fork and its "pid" message)
    but processes in the cgroup: they go through the cgroup, not through an unknown pid."""
    save(store, record("a", status="creating", pid=0, creator={"pid": 0, "start": None}))
    container = Container.load(store, "a")
    cgroup = FakeCgroup([12345])
    monkeypatch.setattr(container, "cgroup", lambda: cgroup)
    assert container.status() == "stopped" and wait_stopped(container, timeout=0)
    destroy(container, "stopped")
    assert cgroup.calls == [f"kill_all {signal.SIGKILL}", "destroy"]
    assert entries(store) == []


def test_a_pid_file_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OciishError, match=r"^--pid-file .*/missing/init.pid: cannot open its directory: No such file"):
        write_pid_file(str(tmp_path / "missing" / "init.pid"), 42)
    (tmp_path / "dir").mkdir()
    with pytest.raises(OciishError, match="/dir: is a directory"):
        write_pid_file(str(tmp_path / "dir"), 42)  # a directory in the way
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]
    write_pid_file(str(tmp_path / "ok.pid"), 42)
    assert (tmp_path / "ok.pid").read_text() == "42"


def test_a_pid_now_naming_a_thread_is_not_the_init(store: StateStore, thread_id: int) -> None:
    """With a small pid_max a dead init's pid soon names a thread of another process, and
    pidfd_open refuses threads (ENOENT; EINVAL before Linux 6.9): that is "not running",
    not an internal error."""
    save(store, record("a", status="running", pid=thread_id, init_start=start_time(thread_id)))
    container = Container.load(store, "a")
    with pytest.raises(WrongState, match="container not running"):
        container.signal_init(signal.SIGCONT)
    assert wait_stopped(container, timeout=0)


@pytest.fixture
def thread_id() -> Iterator[int]:
    """The id of a live thread that is not its process's leader: what a recycled pid can name."""
    named, release = threading.Event(), threading.Event()
    tids: list[int] = []

    def thread() -> None:
        tids.append(threading.get_native_id())
        named.set()
        release.wait(10)

    worker = threading.Thread(target=thread)
    worker.start()
    named.wait(10)
    yield tids[0]
    release.set()
    worker.join()


def test_events_on_a_pid_now_naming_a_thread(store: StateStore, thread_id: int) -> None:
    import io

    from ociish.ops.events import events

    cgroup = {"version": 1, "mode": "v2", "driver": "cgroupfs", "cgroup": "/ociish/a",
              "paths": {"": "/nonexistent/ociish/a"}, "created": []}
    save(store, record("a", status="running", pid=thread_id, init_start=start_time(thread_id), cgroup=cgroup))
    with pytest.raises(WrongState):
        events(store, "a", stats_only=False, interval="1s", out=io.StringIO())
