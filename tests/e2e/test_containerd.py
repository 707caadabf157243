"""containerd (through containerd-shim-runc-v2) driving the runtime, with ociish and runc.

`ctr run --runc-binary R` sets the runc shim's BinaryName option, the same option the
documented CRI runtime handler sets for Kubernetes.  The shim calls create, start, exec,
ps --format json, pause, resume, kill [--all] and delete [--force]; `ctr task metrics`
reads the cgroups itself.  docs/clients.md lists every call.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import IMAGE, NAMESPACE, OCIISH, Containerd, CtrClient, Runtime, ok, on_each_runtime, wait_for

pytestmark = pytest.mark.e2e


# Ends with 3 on SIGTERM, otherwise waits (the shell's own loop: no child left behind).
SERVICE = 'trap "exit 3" TERM; while :; do sleep 0.1; done'


def task(ctr: CtrClient, cid: str) -> tuple[int, str]:
    """(pid, status) of the container's task, as `ctr task ls` shows it."""
    for line in ok(ctr("task", "ls")).splitlines()[1:]:
        name, pid, status = line.split()
        if name == cid:
            return int(pid), status
    raise AssertionError(f"no task {cid}")


def task_pids(ctr: CtrClient, cid: str) -> list[int]:
    """`ctr task ps`: the shim runs `ps --format json` and shows the host pids it printed."""
    return [int(line.split()[0]) for line in ok(ctr("task", "ps", cid)).splitlines()[1:]]


@on_each_runtime()
def test_run_rm_returns_output_and_exit_code(ctr: CtrClient) -> None:
    result = ctr(*ctr.run_args("--rm"), IMAGE, ctr.new_id(), "sh", "-c", "echo hello; exit 6")
    assert result.returncode == 6, result.stderr
    assert result.stdout == "hello\n"


@on_each_runtime()
def test_runc_binary_is_the_shim_binary_name_option(ctr: CtrClient, runtime: Runtime) -> None:
    cid = ctr.start(SERVICE)
    bundle = ctr.containerd.home / "state" / "io.containerd.runtime.v2.task" / NAMESPACE / cid
    options = json.loads((bundle / "options.json").read_text())
    assert options["binary_name"] == runtime.path  # what BinaryName in config.toml sets for CRI
    assert (ctr.state_root / cid).is_dir(), "the shim's --root is where the runtime keeps the state"
    assert task(ctr, cid)[1] == "RUNNING"


@on_each_runtime()
def test_task_ps_lists_host_pids(ctr: CtrClient) -> None:
    cid = ctr.start("sleep 1000 & wait")
    init_pid = task(ctr, cid)[0]
    pids = wait_for(lambda: pids if len(pids := task_pids(ctr, cid)) == 2 else [], "both processes to show")
    assert init_pid in pids
    (child,) = set(pids) - {init_pid}
    assert Path(f"/proc/{child}/cmdline").read_bytes() == b"sleep\x001000\x00"


@on_each_runtime()
def test_task_pause_and_resume(ctr: CtrClient) -> None:
    cid = ctr.start(SERVICE)
    ok(ctr("task", "pause", cid))
    assert task(ctr, cid)[1] == "PAUSED"
    ok(ctr("task", "resume", cid))
    assert task(ctr, cid)[1] == "RUNNING"


@on_each_runtime()
def test_task_metrics(ctr: CtrClient) -> None:
    cid = ctr.start(SERVICE)
    metrics = dict(line.split(None, 1) for line in ok(ctr("task", "metrics", cid)).splitlines() if line.strip())
    assert int(metrics["pids.current"]) >= 1


@on_each_runtime()
def test_task_kill_then_delete(ctr: CtrClient, runtime: Runtime) -> None:
    cid = ctr.start(SERVICE)
    ok(ctr("task", "kill", cid))
    wait_for(lambda: task(ctr, cid)[1] == "STOPPED", "the task to stop")
    deleted = ctr("task", "delete", cid)
    assert deleted.returncode == 0, deleted.stderr
    assert "exit code 3" in deleted.stderr, "the exit status of the TERM trap comes back"
    assert not (ctr.state_root / cid).exists()
    ok(ctr("containers", "delete", cid))


@on_each_runtime()
def test_task_delete_force_kills_every_process(ctr: CtrClient) -> None:
    cid = ctr.start("sleep 1000 & wait")
    deleted = ctr("task", "delete", "--force", cid)
    assert deleted.returncode == 0, deleted.stderr
    assert "exit code 137" in deleted.stderr
    ok(ctr("containers", "delete", cid))


@on_each_runtime()
def test_run_tty_is_interactive(ctr: CtrClient) -> None:
    ctr.terminal(*ctr.run_args("--tty", "--rm"), IMAGE, ctr.new_id(), "sh").check_shell(exit_code=2, tty="/dev/pts/0")


@on_each_runtime()
def test_create_failure_message_comes_from_the_json_log(ctr: CtrClient) -> None:
    result = ctr(*ctr.run_args("--rm"), IMAGE, ctr.new_id(), "/nosuch")
    assert result.returncode == 1
    assert "OCI runtime create failed" in result.stderr and "no such file or directory" in result.stderr
    assert "unable to retrieve OCI runtime error" not in result.stderr, "log.json must be JSON lines"


@on_each_runtime()
def test_task_exec(ctr: CtrClient) -> None:
    cid = ctr.start(SERVICE)
    result = ctr(*ctr.exec_args(), cid, "sh", "-c", "echo in-exec; exit 5")
    assert (result.returncode, result.stdout) == (5, "in-exec\n"), result.stderr
    assert ok(ctr(*ctr.exec_args(), cid, "cat", input="piped\n")) == "piped\n"


@on_each_runtime()
def test_task_exec_tty(ctr: CtrClient) -> None:
    cid = ctr.start(SERVICE)
    ctr.terminal(*ctr.exec_args("--tty"), cid, "sh").check_shell(exit_code=4)


@pytest.mark.e2e
def test_documented_cri_runtime_handler_loads(containerd_daemon: Containerd) -> None:
    """The CRI plugin validates its runtimes at start-up: "ok" means the snippet is usable."""
    plugins = ok(containerd_daemon.ctr("plugins", "list")).splitlines()
    assert any(line.split()[:2] == ["io.containerd.grpc.v1", "cri"] and line.split()[-1] == "ok" for line in plugins)
    dump = subprocess.run(["containerd", "--config", str(containerd_daemon.config), "config", "dump"],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    assert f'BinaryName = "{OCIISH}"' in dump
