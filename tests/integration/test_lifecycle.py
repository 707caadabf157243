"""The lifecycle of runtime.md through the real CLI: every transition and every wrong-state error."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from conftest import Bundle, Runtime, cgroup_dirs, unique_id


def wait_status(runtime: Runtime, container_id: str, status: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = runtime.state(container_id)
        if state["status"] == status or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def test_create_start_kill_delete_walks_every_status(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    state = runtime.state(cid)
    assert state["status"] == "created"
    assert state["id"] == cid and state["bundle"] == str(bundle.path)
    assert state["pid"] > 0 and Path(f"/proc/{state['pid']}").exists()
    assert state["rootfs"] == str(bundle.rootfs) and state["created"].endswith("Z") and state["owner"] == ""
    runtime("start", cid, check=True)
    assert runtime.state(cid)["status"] == "running"
    runtime("kill", cid, "KILL", check=True)
    state = wait_status(runtime, cid, "stopped")
    assert state["status"] == "stopped" and state["pid"] == 0
    runtime("delete", cid, check=True)
    assert runtime("state", cid).returncode == 1
    assert runtime.ids() == [] and not cgroup_dirs(cid)


def test_create_does_not_run_the_process_until_start(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    bundle.shell("touch /out/marker; sleep 1000")
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    time.sleep(0.3)
    assert not (out / "marker").exists()
    runtime("start", cid, check=True)
    deadline = time.monotonic() + 5
    while not (out / "marker").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (out / "marker").exists()


def test_process_exit_makes_the_container_stopped(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("true")
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    runtime("start", cid, check=True)
    assert wait_status(runtime, cid, "stopped")["status"] == "stopped"
    runtime("delete", cid, check=True)


def test_pid_file_holds_the_init_pid_without_newline(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id()
    pid_file = tmp_path / "init.pid"
    runtime("create", "--bundle", str(bundle.path), "--pid-file", str(pid_file), cid, check=True)
    assert pid_file.read_text() == str(runtime.state(cid)["pid"])


def test_wrong_state_operations_fail_without_effect(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    pid = runtime.state(cid)["pid"]

    again = runtime("create", "--bundle", str(bundle.path), cid)
    assert again.returncode == 1 and "already exists" in again.stderr
    not_stopped = runtime("delete", cid)
    assert not_stopped.returncode == 1 and "not stopped" in not_stopped.stderr
    assert runtime.state(cid) == {**runtime.state(cid), "status": "created", "pid": pid}

    runtime("start", cid, check=True)
    twice = runtime("start", cid)
    assert twice.returncode == 1 and "running" in twice.stderr
    running = runtime("delete", cid)
    assert running.returncode == 1 and runtime.state(cid)["status"] == "running"

    runtime("kill", cid, "9", check=True)
    wait_status(runtime, cid, "stopped")
    dead = runtime("kill", cid, "TERM")
    assert dead.returncode == 1 and "not running" in dead.stderr
    start_stopped = runtime("start", cid)
    assert start_stopped.returncode == 1 and "stopped" in start_stopped.stderr
    assert runtime("kill", "--all", cid, "KILL").returncode == 0  # runc: --all on a stopped container is fine
    runtime("delete", cid, check=True)


def test_unknown_container_errors(runtime: Runtime) -> None:
    for args in (["state", "nope"], ["start", "nope"], ["kill", "nope"], ["delete", "nope"]):
        result = runtime(*args)
        assert result.returncode == 1, args
        assert result.stderr.strip() == "ociish: container 'nope' does not exist", args
    assert runtime("delete", "--force", "nope").returncode == 0


def test_create_without_an_id_fails(runtime: Runtime, bundle: Bundle) -> None:
    result = runtime("create", "--bundle", str(bundle.path))
    assert result.returncode == 1 and "container id is required" in result.stderr
    assert runtime.ids() == []


def test_delete_force_kills_created_and_running_containers(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "1000")
    created, running = unique_id(), unique_id()
    runtime("create", "--bundle", str(bundle.path), created, check=True)
    runtime("create", "--bundle", str(bundle.path), running, check=True)
    runtime("start", running, check=True)
    pids = [runtime.state(c)["pid"] for c in (created, running)]
    for cid in (created, running):
        runtime("delete", "--force", cid, check=True)
        assert not cgroup_dirs(cid)
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] in "ZX"
    assert runtime.ids() == []


def test_kill_accepts_signal_names_and_numbers(runtime: Runtime, bundle: Bundle) -> None:
    bundle.shell("trap 'exit 3' USR1; trap 'exit 4' HUP; while true; do sleep 0.05; done")
    for form in ("USR1", "SIGUSR1", "10", "sigusr1"):
        cid = unique_id()
        runtime("create", "--bundle", str(bundle.path), cid, check=True)
        runtime("start", cid, check=True)
        time.sleep(0.1)
        runtime("kill", cid, form, check=True)
        assert wait_status(runtime, cid, "stopped")["status"] == "stopped", form
        runtime("delete", cid, check=True)
    bad = runtime("kill", "whatever", "SIGNOPE")
    assert bad.returncode == 1 and "unknown signal" in bad.stderr


def test_run_returns_the_exit_status(runtime: Runtime, bundle: Bundle) -> None:
    bundle.shell("echo out; echo err >&2; exit 7")
    result = runtime("run", "--bundle", str(bundle.path), unique_id())
    assert result.returncode == 7
    assert result.stdout == "out\n" and result.stderr == "err\n"
    assert runtime.ids() == []


def _start_run(runtime: Runtime, bundle: Bundle, cid: str) -> subprocess.Popen:
    proc = subprocess.Popen([*runtime.command, "run", "--bundle", str(bundle.path), cid],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if cid in runtime.ids() and runtime.state(cid)["status"] == "running":
            return proc
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("container did not start")


def test_run_reports_death_by_signal_as_128_plus_n(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id()
    proc = _start_run(runtime, bundle, cid)
    runtime("kill", cid, "KILL", check=True)
    assert proc.wait(timeout=10) == 128 + 9
    assert runtime.ids() == []


def test_run_forwards_signals_to_the_container(runtime: Runtime, bundle: Bundle) -> None:
    bundle.shell("trap 'exit 42' TERM; while true; do sleep 0.05; done")
    cid = unique_id()
    proc = _start_run(runtime, bundle, cid)
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 42


def test_run_detach_leaves_it_running(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    assert runtime.state(cid)["status"] == "running"


def test_list_shows_containers(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "1000")
    cid = unique_id()
    assert runtime("list", "--format", "json").stdout.strip() == "null"
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    listed = json.loads(runtime("list", "--format", "json", check=True).stdout)
    assert [(c["id"], c["status"]) for c in listed] == [(cid, "created")]
    table = runtime("list", check=True).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[:3] == [cid, str(listed[0]["pid"]), "created"]
    assert runtime("list", "-q", check=True).stdout == cid + "\n"


def test_create_forms_users_type(runtime: Runtime, make_bundle, tmp_path: Path) -> None:
    b = make_bundle("mybundle").args("sleep", "1000")
    # `ociish create mybundle` from the bundle's parent directory: id and bundle are both "mybundle"
    runtime("create", "mybundle", cwd=tmp_path, check=True)
    assert runtime.state("mybundle")["bundle"] == str(b.path)
    # `ociish create ID BUNDLE`
    runtime("create", "second", str(b.path), check=True)
    assert runtime.state("second")["bundle"] == str(b.path)
    # `ociish create ID` inside the bundle directory
    runtime("create", "third", cwd=b.path, check=True)
    assert runtime.state("third")["bundle"] == str(b.path)
