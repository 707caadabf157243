"""`exec`: another process in a running container, in all its namespaces and its cgroup."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from conftest import Bundle, Runtime, unique_id
from test_console import read_until_closed, typed_on_a_terminal

NAMESPACES = ("pid", "net", "ipc", "uts", "mnt", "cgroup")


def test_exec_joins_every_namespace_and_returns_the_status(runtime: Runtime, running: str) -> None:
    init = runtime.state(running)["pid"]
    script = "; ".join(f"readlink /proc/self/ns/{ns}" for ns in NAMESPACES) + "; exit 7"
    result = runtime("exec", running, "sh", "-c", script)
    assert result.returncode == 7, result.stderr
    assert result.stdout.split() == [os.readlink(f"/proc/{init}/ns/{ns}") for ns in NAMESPACES]


@pytest.mark.parametrize("tty", [False, True])
def test_the_process_of_run_and_exec_leads_its_own_session(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                           tty: bool) -> None:
    """pid = process group = session, with a terminal or without: the process group is not
    the runtime's, which the container cannot see (getpgrp would be 0)."""
    bundle.config["process"]["terminal"] = tty
    script = "cut -d' ' -f1,5,6 /proc/$$/stat; read line"
    bundle.shell(script)
    stdin = tmp_path / "stdin"
    stdin.write_text("\n")
    with typed_on_a_terminal("\n") if tty else stdin.open() as f:  # a terminal run needs a terminal
        result = runtime("run", "--bundle", str(bundle.path), unique_id(), stdin=f)
    assert result.returncode == 0 and result.stdout.split() == ["1", "1", "1"], result
    bundle.config["process"]["terminal"] = False
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    with typed_on_a_terminal("\n") if tty else stdin.open() as f:  # so does exec --tty
        result = runtime("exec", *(["-t"] if tty else []), cid, "sh", "-c", script, stdin=f)
    pid, group, session = result.stdout.split()
    assert result.returncode == 0 and pid == group == session and pid not in ("0", "1"), result
    runtime("delete", "--force", cid, check=True)


def test_detached_exec_writes_the_pid_file_and_joins_the_cgroup(runtime: Runtime, running: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "exec.pid"
    runtime("exec", "--detach", "--pid-file", str(pid_file), running, "sleep", "100", check=True)
    pid = int(pid_file.read_text())
    init = runtime.state(running)["pid"]
    assert Path(f"/proc/{pid}/cgroup").read_text() == Path(f"/proc/{init}/cgroup").read_text()
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
    assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00100\x00"


def test_exec_with_a_process_file(runtime: Runtime, running: str, tmp_path: Path) -> None:
    """What podman and containerd do: the whole process as JSON."""
    process = {"args": ["sh", "-c", "id -u; id -g; pwd; echo $GREETING"], "cwd": "/tmp", "env": ["GREETING=hi"],
               "user": {"uid": 1, "gid": 2}, "terminal": False}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    result = runtime("exec", "--process", str(path), running)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "2", "/tmp", "hi"]


def test_exec_flags(runtime: Runtime, running: str) -> None:
    result = runtime("exec", "--cwd", "/etc", "--env", "A=1", "--user", "3:4", running,
                     "sh", "-c", "pwd; echo $A; id -u; id -g")
    assert result.stdout.split() == ["/etc", "1", "3", "4"], result.stderr


def test_added_capabilities_never_become_inheritable(runtime: Runtime, running: str) -> None:
    """CVE-2022-29162: --cap adds to bounding, effective and permitted only."""
    result = runtime("exec", "--cap", "CAP_SYS_ADMIN", running, "grep", "^Cap", "/proc/self/status")
    fields = dict(line.split(":\t") for line in result.stdout.splitlines())
    sys_admin = 1 << 21
    assert int(fields["CapEff"], 16) & sys_admin and int(fields["CapBnd"], 16) & sys_admin
    assert int(fields["CapInh"], 16) == 0 and int(fields["CapAmb"], 16) == 0


def test_exec_tty_through_a_console_socket(runtime: Runtime, running: str, tmp_path: Path) -> None:
    sock_path = tmp_path / "console.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    try:
        result = runtime("exec", "--detach", "--tty", "--console-socket", str(sock_path), running,
                         "sh", "-c", "tty; echo done")
        assert result.returncode == 0, result.stderr
        conn, _ = server.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        conn.close()
    finally:
        server.close()
    try:
        output = read_until_closed(fds[0]).decode().replace("\r", "")
    finally:
        os.close(fds[0])
    assert "/dev/pts/" in output and "done" in output


def test_seccomp_applies_to_exec(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    result = runtime("exec", cid, "mkdir", "/tmp/x")
    assert result.returncode != 0 and "Permission denied" in result.stderr


def test_exec_errors(runtime: Runtime, bundle: Bundle) -> None:
    assert "does not exist" in runtime("exec", "nope", "true").stderr
    bundle.args("true")
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    runtime("start", cid, check=True)
    deadline = time.monotonic() + 5
    while runtime.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    stopped = runtime("exec", cid, "true")
    assert stopped.returncode == 255 and "cannot exec" in stopped.stderr and "stopped" in stopped.stderr


def test_missing_command_in_exec_is_reported(runtime: Runtime, running: str) -> None:
    result = runtime("exec", running, "no-such-command")
    assert result.returncode == 255
    assert "executable file not found in $PATH" in result.stderr
