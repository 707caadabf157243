"""POSIX-platform hooks (config.md "Hooks", runtime.md "Lifecycle") through the real CLI.

Every hook is a small sh script appending "<kind> <mnt namespace> <state JSON from stdin>"
to one log file.  Host-side hooks write it directly; the startContainer hook is a script
inside the rootfs (its path resolves in the container) and writes through a bind mount of
the log's directory, so the log keeps the order of every hook of the lifecycle.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Bundle, Runtime, cgroup_dirs, unique_id

HOOK_SCRIPT = """#!/bin/sh
# $1 = hook kind, $2 = log file, $3 = exit status to return (default 0)
state=$(cat)
echo "$1 $(readlink /proc/self/ns/mnt) $state" >> "$2"
exit ${3:-0}
"""
CONTAINER_LOG_DIR = "/hooklog"
IN_RUNTIME_NAMESPACE = ("prestart", "createRuntime", "poststart", "poststop")  # the others run in the container's
CREATE_KINDS = ["prestart", "createRuntime", "createContainer"]


class HookLog:
    """Hook scripts plus the log they append to, wired into a bundle's config."""

    def __init__(self, tmp_path: Path, bundle: Bundle) -> None:
        self.bundle = bundle
        self.dir = tmp_path / "hooklog"
        self.dir.mkdir()
        self.path = self.dir / "log"
        self.path.touch()
        self.script = tmp_path / "hook.sh"
        for script in (self.script, bundle.rootfs / "hook.sh"):
            script.write_text(HOOK_SCRIPT)
            script.chmod(0o755)
        bundle.config["mounts"].append({"destination": CONTAINER_LOG_DIR, "type": "bind", "source": str(self.dir),
                                        "options": ["rbind"]})
        bundle.config["hooks"] = {}

    def add(self, kind: str, exit_status: int = 0) -> None:
        """Append a logging hook of ``kind``; startContainer's runs the rootfs copy."""
        if kind == "startContainer":
            hook = {"path": "/hook.sh", "args": ["hook.sh", kind, f"{CONTAINER_LOG_DIR}/log", str(exit_status)]}
        else:
            hook = {"path": str(self.script), "args": ["hook.sh", kind, str(self.path), str(exit_status)]}
        self.bundle.config["hooks"].setdefault(kind, []).append(hook)

    def entries(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, mount namespace, state) per logged hook run, in order."""
        result = []
        for line in self.path.read_text().splitlines():
            kind, ns, state = line.split(" ", 2)
            result.append((kind, ns, json.loads(state)))
        return result

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.entries()]


@pytest.fixture
def hooks(tmp_path: Path, bundle: Bundle) -> HookLog:
    return HookLog(tmp_path, bundle)


def wait_stopped(runtime: Runtime, cid: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while runtime.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline, "container did not stop"
        time.sleep(0.02)


def process_gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in "ZX"


def create(runtime: Runtime, bundle: Bundle) -> tuple[str, Any]:
    bundle.write()
    cid = unique_id()
    return cid, runtime("create", "--bundle", str(bundle.path), cid)


def assert_create_failed_cleanly(runtime: Runtime, cid: str, result: Any, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert runtime.ids() == [] and not cgroup_dirs(cid)


def test_hooks_run_in_lifecycle_order_with_the_state(runtime: Runtime, bundle: Bundle, hooks: HookLog) -> None:
    for kind in (*CREATE_KINDS, "startContainer", "poststart", "poststop"):
        hooks.add(kind)
    bundle.args("sleep", "1000")
    cid, result = create(runtime, bundle)
    assert result.returncode == 0, result.stderr
    assert hooks.kinds() == CREATE_KINDS
    init_pid = runtime.state(cid)["pid"]
    container_mnt = os.readlink(f"/proc/{init_pid}/ns/mnt")
    runtime("start", cid, check=True)
    assert hooks.kinds() == [*CREATE_KINDS, "startContainer", "poststart"]
    runtime("kill", cid, "KILL", check=True)
    wait_stopped(runtime, cid)
    runtime("delete", cid, check=True)
    assert hooks.kinds() == [*CREATE_KINDS, "startContainer", "poststart", "poststop"]

    expected_status = {"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
                       "startContainer": "created", "poststart": "running", "poststop": "stopped"}
    host_mnt = os.readlink("/proc/self/ns/mnt")
    for kind, ns, state in hooks.entries():
        assert state["id"] == cid and state["status"] == expected_status[kind], (kind, state)
        assert state["bundle"] == str(bundle.path) and state["ociVersion"], (kind, state)
        assert ns == (host_mnt if kind in IN_RUNTIME_NAMESPACE else container_mnt), kind
        if kind != "poststop":  # the pid "as seen by the host", even for hooks inside the container
            assert state["pid"] == init_pid, (kind, state)


def test_hook_gets_exactly_its_args_and_env(runtime: Runtime, bundle: Bundle, hooks: HookLog, tmp_path: Path) -> None:
    script = tmp_path / "argv.sh"
    out = tmp_path / "argv.out"
    script.write_text(f'#!/bin/sh\nprintf "%s|" "$0" "$@" > {out}\necho >> {out}\nenv | sort >> {out}\n')
    script.chmod(0o755)
    bundle.config["hooks"]["createRuntime"] = [{"path": str(script), "args": ["custom-name", "a b", ""],
                                                "env": ["HOOK_VAR=value one", "OTHER="]}]
    bundle.args("true")
    _, result = create(runtime, bundle)
    assert result.returncode == 0, result.stderr
    argv, *env = out.read_text().splitlines()
    assert argv == f"{script}|a b||"  # a script's $0 is the path the kernel ran, whatever args[0] says
    assert [line for line in env if not line.startswith("PWD=")] == ["HOOK_VAR=value one", "OTHER="]


def test_hook_without_env_inherits_the_runtime_environment(runtime: Runtime, bundle: Bundle, hooks: HookLog) -> None:
    """As runc and crun: no `env` means the runtime's environment, for the hooks the
    runtime runs and for those the container init runs; `env: []` means an empty one."""
    script = "#!/bin/sh\necho \"$1 marker=${OCIISH_TEST_MARKER-unset}\" >> \"$2\"\n"
    for path in (hooks.script, bundle.rootfs / "hook.sh"):
        path.write_text(script)
    for kind in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        hooks.add(kind)
    hooks.bundle.config["hooks"]["poststart"][0]["env"] = []
    bundle.args("sleep", "1000")
    env = {**os.environ, "OCIISH_TEST_MARKER": "from the caller"}
    bundle.write()
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True, env=env)
    runtime("start", cid, check=True, env=env)
    runtime("delete", "--force", cid, check=True, env=env)
    inherited = "marker=from the caller"
    assert hooks.path.read_text().splitlines() == [
        f"prestart {inherited}", f"createRuntime {inherited}", f"createContainer {inherited}",
        f"startContainer {inherited}", "poststart marker=unset", f"poststop {inherited}"]


def test_poststart_state_of_a_process_that_already_exited(runtime: Runtime, bundle: Bundle, hooks: HookLog) -> None:
    """Each poststart hook reads the state as it runs: once the process has exited that is
    "stopped" with pid 0, never a live status with pid 0 (runtime.md State)."""
    gate = hooks.dir / "gate"
    os.mkfifo(gate)
    # the process waits for the first hook, which lets it exit and waits until it has
    release = (f'pid=$(sed \'s/.*"pid":\\([0-9]*\\).*/\\1/\'); echo go > {gate}; '
               'while [ -e /proc/$pid/stat ] && ! grep -q "^State:.Z" /proc/$pid/status; do sleep 0.01; done')
    hooks.bundle.config["hooks"]["poststart"] = [{"path": "/bin/sh", "args": ["sh", "-c", release], "timeout": 20}]
    hooks.add("poststart")
    bundle.shell(f"read line < {CONTAINER_LOG_DIR}/gate")
    cid, result = create(runtime, bundle)
    assert result.returncode == 0, result.stderr
    runtime("start", cid, check=True)
    runtime("delete", cid, check=True)
    [(kind, _, state)] = hooks.entries()
    assert kind == "poststart" and (state["status"], state["pid"]) == ("stopped", 0), state


@pytest.mark.parametrize("failing", CREATE_KINDS)
def test_failing_create_hook_fails_create_and_runs_poststop(runtime: Runtime, bundle: Bundle, hooks: HookLog,
                                                             failing: str) -> None:
    for kind in CREATE_KINDS:
        hooks.add(kind, exit_status=3 if kind == failing else 0)
    hooks.add("poststop")
    bundle.args("true")
    cid, result = create(runtime, bundle)
    assert_create_failed_cleanly(runtime, cid, result, f"hooks.{failing}[0]")
    ran = CREATE_KINDS[:CREATE_KINDS.index(failing) + 1]
    assert hooks.kinds() == [*ran, "poststop"], "later hooks ran, or poststop did not (runtime.md step 12-13)"


def assert_start_failed_and_destroyed(runtime: Runtime, cid: str, hooks: HookLog, where: str) -> None:
    """runtime.md lifecycle steps 7/9: an error, the container stopped and destroyed (step 12),
    then the poststop hooks (step 13)."""
    start = runtime("start", cid)
    assert start.returncode == 1 and where in start.stderr, start.stderr
    assert runtime("state", cid).returncode == 1, "the failed container was not destroyed"
    assert runtime.ids() == [] and not cgroup_dirs(cid)
    assert hooks.kinds()[-1] == "poststop"


def test_failing_start_container_hook_fails_start(runtime: Runtime, bundle: Bundle, hooks: HookLog) -> None:
    hooks.add("startContainer", exit_status=4)
    hooks.add("poststart")
    hooks.add("poststop")
    bundle.shell(f"touch {CONTAINER_LOG_DIR}/process-ran")
    cid, result = create(runtime, bundle)
    assert result.returncode == 0, result.stderr
    assert_start_failed_and_destroyed(runtime, cid, hooks, "hooks.startContainer[0]")
    assert not (hooks.dir / "process-ran").exists(), "the process ran although its startContainer hook failed"
    assert hooks.kinds() == ["startContainer", "poststop"]


def test_failing_poststart_hook_fails_start_and_destroys_the_container(runtime: Runtime, bundle: Bundle,
                                                                       hooks: HookLog) -> None:
    hooks.add("poststart", exit_status=5)
    hooks.add("poststart")
    hooks.add("poststop")
    bundle.args("sleep", "1000")
    cid, result = create(runtime, bundle)
    assert result.returncode == 0, result.stderr
    pid = runtime.state(cid)["pid"]
    assert_start_failed_and_destroyed(runtime, cid, hooks, "hooks.poststart[0]")
    assert process_gone(pid), "the process still runs"
    assert hooks.kinds() == ["poststart", "poststop"]


def test_failing_poststop_hook_is_only_a_warning(runtime: Runtime, bundle: Bundle, hooks: HookLog) -> None:
    hooks.add("poststop", exit_status=6)
    hooks.add("poststop")
    bundle.args("true")
    cid, result = create(runtime, bundle)
    assert result.returncode == 0, result.stderr
    runtime("start", cid, check=True)
    wait_stopped(runtime, cid)
    deleted = runtime("delete", cid)
    assert deleted.returncode == 0, deleted.stderr
    assert "hooks.poststop[0]" in deleted.stderr
    assert hooks.kinds() == ["poststop", "poststop"] and runtime.ids() == []


def test_hook_timeout_kills_the_hook_and_fails_create(runtime: Runtime, bundle: Bundle, hooks: HookLog,
                                                       tmp_path: Path) -> None:
    script = tmp_path / "slow.sh"
    pid_file = tmp_path / "slow.pid"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    script.chmod(0o755)
    bundle.config["hooks"]["prestart"] = [{"path": str(script), "timeout": 1}]
    bundle.args("true")
    began = time.monotonic()
    cid, result = create(runtime, bundle)
    assert time.monotonic() - began < 10
    assert_create_failed_cleanly(runtime, cid, result, "hooks.prestart[0]", "timeout")
    assert process_gone(int(pid_file.read_text())), "the hook still runs"


def test_relative_hook_path_is_refused(runtime: Runtime, bundle: Bundle, hooks: HookLog) -> None:
    bundle.config["hooks"]["prestart"] = [{"path": "hook.sh"}]
    cid, result = create(runtime, bundle)
    assert_create_failed_cleanly(runtime, cid, result, "hooks.prestart[0].path")
