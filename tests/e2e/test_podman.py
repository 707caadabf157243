"""podman (through conmon) driving the runtime: each scenario of issue 5, with ociish and runc.

podman calls the runtime's create (conmon), start, kill, pause, resume, update, exec
(conmon) and delete; logs, stats and top with default descriptors read the container
without the runtime.  docs/clients.md lists every call these tests cause.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from .conftest import IMAGE, PodmanClient, Runtime, ok, on_each_runtime, wait_for

pytestmark = pytest.mark.e2e


# Reports the signals podman forwards, ends with 3 on SIGTERM, otherwise waits.
SERVICE = 'trap "echo got-usr1" USR1; trap "echo got-term; exit 3" TERM; echo started; while :; do sleep 0.1; done'
# The container's own limits, from its cgroup files (v1 hierarchies or the v2 unified one).
SHOW_LIMITS = """
if [ -d /sys/fs/cgroup/memory ]; then
    cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max
    echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
else
    cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max
fi
"""


def logs(podman: PodmanClient, cid: str) -> str:
    return ok(podman("logs", cid))


def status(podman: PodmanClient, cid: str) -> str:
    return ok(podman("inspect", "--format", "{{.State.Status}}", cid)).strip()


def started(podman: PodmanClient, script: str = SERVICE) -> str:
    """A detached container that has printed "started"; its id."""
    cid = podman.start(script)
    wait_for(lambda: "started" in logs(podman, cid), "the container to start")
    return cid


@on_each_runtime()
def test_run_rm_returns_output_and_exit_code(podman: PodmanClient) -> None:
    result = podman("run", "--rm", IMAGE, "sh", "-c", "echo hello; echo oops >&2; exit 7")
    assert result.returncode == 7, result.stderr
    assert result.stdout == "hello\n"
    assert "oops" in result.stderr


@on_each_runtime()
def test_detached_logs_signals_stop_rm(podman: PodmanClient, runtime: Runtime) -> None:
    cid = started(podman)
    assert (runtime.default_root / cid).is_dir(), "podman passes no --root: state belongs in the default root"
    ok(podman("kill", "--signal", "USR1", cid))
    wait_for(lambda: "got-usr1" in logs(podman, cid), "SIGUSR1 to reach the container")
    ok(podman("stop", "--time", "10", cid))
    assert ok(podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", cid)).split() == ["exited", "3"]
    assert logs(podman, cid).splitlines() == ["started", "got-usr1", "got-term"]
    ok(podman("rm", cid))
    assert not (runtime.default_root / cid).exists()


@on_each_runtime()
def test_kill_ends_the_container(podman: PodmanClient) -> None:
    cid = started(podman)
    ok(podman("kill", cid))
    assert ok(podman("wait", cid)).strip() == "137"
    ok(podman("rm", cid))


@on_each_runtime()
def test_run_it_is_interactive_on_a_tty(podman: PodmanClient) -> None:
    podman.terminal("run", "-it", "--rm", IMAGE, "sh").check_shell(exit_code=3, tty="/dev/pts/0")


@on_each_runtime()
def test_pause_freezes_and_unpause_thaws(podman: PodmanClient) -> None:
    cid = started(podman, "echo started; while :; do echo tick; sleep 0.1; done")
    ok(podman("pause", cid))
    assert status(podman, cid) == "paused"
    time.sleep(0.3)  # a line written just before the freeze may still be on its way to the log
    frozen = logs(podman, cid)
    time.sleep(0.7)
    assert logs(podman, cid) == frozen
    ok(podman("unpause", cid))
    assert status(podman, cid) == "running"
    wait_for(lambda: len(logs(podman, cid)) > len(frozen), "the container to run again")


@on_each_runtime()
def test_stats_no_stream(podman: PodmanClient) -> None:
    cid = started(podman)
    (stats,) = json.loads(ok(podman("stats", "--no-stream", "--format", "json", cid)))
    assert stats["id"] == cid[:12]
    assert int(stats["pids"]) >= 1
    assert not stats["mem_usage"].startswith("0B")


@on_each_runtime()
def test_memory_pids_cpus_visible_inside(podman: PodmanClient) -> None:
    result = ok(podman("run", "--rm", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5", IMAGE,
                       "sh", "-c", SHOW_LIMITS))
    assert result.split("\n")[:3] == [str(64 << 20), "50", "50000 100000"]


@on_each_runtime()
def test_update_changes_the_limits_of_a_running_container(podman: PodmanClient) -> None:
    cid = started(podman, "echo started; while :; do cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                          "/sys/fs/cgroup/memory.max 2>/dev/null; sleep 0.1; done")
    ok(podman("update", "--memory", "96m", cid))
    wait_for(lambda: str(96 << 20) in logs(podman, cid), "the new memory limit inside the container")


@on_each_runtime()
def test_read_only_root_with_writable_tmp(podman: PodmanClient) -> None:
    result = podman("run", "--rm", "--read-only", IMAGE, "sh", "-c", "touch /x; touch /tmp/y && echo tmp-ok")
    assert result.returncode == 0, result.stderr
    assert "Read-only file system" in result.stderr
    assert result.stdout == "tmp-ok\n"


@on_each_runtime()
def test_read_only_root(podman: PodmanClient) -> None:
    result = podman("run", "--rm", "--read-only", "--read-only-tmpfs=false", IMAGE, "sh", "-c", "touch /x")
    assert result.returncode == 1
    assert "Read-only file system" in result.stderr


@on_each_runtime()
def test_top_default_descriptors(podman: PodmanClient) -> None:
    cid = started(podman)
    assert "while :; do sleep 0.1; done" in ok(podman("top", cid))


@on_each_runtime()
def test_create_failure_is_reported_with_podman_exit_codes(podman: PodmanClient) -> None:
    missing = podman("run", "--rm", IMAGE, "/nosuch")
    assert missing.returncode == 127, missing.stderr
    assert "no such file or directory" in missing.stderr
    not_executable = podman("run", "--rm", IMAGE, "/etc")
    assert not_executable.returncode == 126, not_executable.stderr
    assert "permission denied" in not_executable.stderr


@on_each_runtime()
def test_runtime_selected_by_its_containers_conf_name(podman: PodmanClient, runtime: Runtime) -> None:
    by_name = ("--runtime", runtime.name)
    path = ok(podman.podman(*by_name, "info", "--format", "{{.Host.OCIRuntime.Path}}")).strip()
    assert os.path.realpath(path) == os.path.realpath(runtime.path)
    assert ok(podman.podman(*by_name, "run", "--rm", IMAGE, "echo", "by-name")) == "by-name\n"


@on_each_runtime()
def test_exec(podman: PodmanClient) -> None:
    cid = started(podman)
    result = podman("exec", cid, "sh", "-c", "echo in-exec; echo oops >&2; exit 5")
    assert (result.returncode, result.stdout) == (5, "in-exec\n")
    assert "oops" in result.stderr
    assert podman("exec", cid, "/nosuch").returncode == 127
    assert ok(podman("exec", "-i", cid, "cat", input="piped\n")) == "piped\n"
    user_env_cwd = ok(podman("exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "65534", cid,
                             "sh", "-c", 'echo "$FOO $(pwd) $(id -u)"'))
    assert user_env_cwd == "bar /tmp 65534\n"
    ok(podman("exec", "-d", cid, "sh", "-c", "echo detached > /tmp/d"))
    wait_for(lambda: podman("exec", cid, "cat", "/tmp/d").stdout == "detached\n", "the detached exec to run")


@on_each_runtime()
def test_exec_it_is_interactive_on_a_tty(podman: PodmanClient) -> None:
    cid = started(podman)
    podman.terminal("exec", "-it", cid, "sh").check_shell(exit_code=4)


@on_each_runtime()
def test_top_with_ps_options_runs_ps_inside(podman: PodmanClient) -> None:
    cid = started(podman)
    assert "while :; do sleep 0.1; done" in ok(podman("top", cid, "-ef"))
