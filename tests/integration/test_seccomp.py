"""linux.seccomp, compiled by libseccomp in create and enforced on the container's process."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import Bundle, Runtime, run_output, unique_id

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "samples"


def with_profile(bundle: Bundle, profile: dict[str, Any], script: str) -> Bundle:
    bundle.config["linux"]["seccomp"] = profile
    return bundle.shell(script)


def test_blocked_syscall_returns_the_configured_errno(runtime: Runtime, bundle: Bundle) -> None:
    with_profile(bundle, {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["unshare", "no_such_syscall_anywhere"], "action": "SCMP_ACT_ERRNO"},
    ]}, "grep Seccomp: /proc/self/status; mkdir /tmp/x; unshare -r true; echo done")
    result = run_output(runtime, bundle)
    assert "Seccomp:\t2" in result.stdout and "done" in result.stdout
    assert "Permission denied" in result.stderr  # errnoRet 13 = EACCES
    assert "Operation not permitted" in result.stderr  # SCMP_ACT_ERRNO without errnoRet = EPERM
    assert not (bundle.rootfs / "tmp" / "x").exists()


def test_kill_action_kills_the_process(runtime: Runtime, bundle: Bundle) -> None:
    with_profile(bundle, {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}, "exec mkdir /tmp/x")
    result = run_output(runtime, bundle, check=False)
    assert result.returncode == 128 + 31  # SIGSYS


def test_argument_conditions(runtime: Runtime, bundle: Bundle) -> None:
    """kill(2) is refused only for signal 10 (SIGUSR1): an EQ condition on argument 1."""
    with_profile(bundle, {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}]},
        "trap '' USR1 HUP; kill -USR1 $$ && echo usr1-sent; kill -HUP $$ && echo hup-sent; echo done")
    result = run_output(runtime, bundle)
    assert "usr1-sent" not in result.stdout and "hup-sent" in result.stdout


def test_default_errno_with_an_allow_list(runtime: Runtime, bundle: Bundle) -> None:
    """defaultAction ERRNO + defaultErrnoRet: anything not allowed fails with that errno."""
    allowed = ["read", "write", "exit", "exit_group", "execve", "brk", "mmap", "munmap", "mprotect", "arch_prctl",
               "set_tid_address", "getpid", "getuid", "geteuid", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
               "close", "fcntl", "ioctl", "openat", "newfstatat", "fstat", "lseek", "getppid", "uname", "getcwd",
               "wait4", "prlimit64", "sigaltstack", "close_range", "dup2", "dup3", "readlink", "poll", "exit",
               "futex", "clone", "clone3", "set_robust_list", "rseq", "getrandom", "stat", "lstat", "access",
               "faccessat", "faccessat2", "statx", "getdents64", "chdir", "getpgrp", "setpgid", "getgid", "getegid"]
    with_profile(bundle, {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                          "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]},
                 "echo started; hostname newname; echo rc=$?")
    result = run_output(runtime, bundle)
    assert "started" in result.stdout and "rc=1" in result.stdout


@pytest.mark.parametrize("no_new_privileges", [False, True], ids=["privileged-load", "no-new-privs"])
def test_a_filter_cannot_break_the_runtimes_own_steps(runtime: Runtime, bundle: Bundle, no_new_privileges: bool) -> None:
    """A profile refusing what the runtime itself calls (getcwd for the cwd check, the id
    changes, access for the args[0] lookup) does not break the setup, with or without
    noNewPrivileges: those steps come before the filter, which then holds for the process."""
    bundle.config["process"]["noNewPrivileges"] = no_new_privileges
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    refused = ["getcwd", "setresuid", "setresgid", "setgroups", "access", "faccessat", "faccessat2"]
    with_profile(bundle, {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": refused, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]},
        "id -u; grep Seccomp: /proc/self/status; realpath . || echo getcwd-refused")
    result = run_output(runtime, bundle)
    assert result.stdout.split("\n")[:2] == ["1000", "Seccomp:\t2"], result
    assert "getcwd-refused" in result.stdout, result


@pytest.mark.skipif(not (SAMPLES / "config-podman.json").exists(), reason="podman's sample config is not beside the checkout")
def test_podmans_default_profile_loads(runtime: Runtime, bundle: Bundle) -> None:
    profile = json.loads((SAMPLES / "config-podman.json").read_text())["linux"]["seccomp"]
    with_profile(bundle, profile, "grep Seccomp: /proc/self/status; ls / > /dev/null && echo works")
    result = run_output(runtime, bundle)
    assert "Seccomp:\t2" in result.stdout and "works" in result.stdout


class Listener:
    """A seccomp agent's socket that takes ``count`` connections: each message and fd."""

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(count)
        self.received: list[tuple[dict[str, Any], list[int]]] = []
        self.thread = threading.Thread(target=self._serve, args=(count,))
        self.thread.start()

    def _serve(self, count: int) -> None:
        for _ in range(count):
            conn, _ = self.server.accept()
            with conn:
                payload, fds, _, _ = socket.recv_fds(conn, 65536, 1)
            self.received.append((json.loads(payload), fds))
            for fd in fds:  # no supervisor: the notified syscall then fails (ENOSYS) instead of hanging
                os.close(fd)

    def close(self) -> None:
        self.thread.join(timeout=10)
        self.server.close()


NOTIFY_MKDIR = {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}


def test_notify_listener_receives_the_fd_and_the_process_state(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    listener = Listener(tmp_path / "seccomp.sock", 1)
    try:
        with_profile(bundle, {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(listener.path),
                              "listenerMetadata": "hello-agent", "syscalls": [NOTIFY_MKDIR]},
                     "mkdir /tmp/x; echo done")
        cid = unique_id()
        result = runtime("run", "--bundle", str(bundle.path), cid)
    finally:
        listener.close()
    assert result.returncode == 0 and "done" in result.stdout
    ((state, fds),) = listener.received
    assert state["fds"] == ["seccompFd"] and state["metadata"] == "hello-agent"
    assert state["state"]["id"] == cid and state["pid"] == state["state"]["pid"] > 0
    assert len(fds) == 1


def test_an_exec_sends_its_own_listener_fd(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """An exec'd process gets the container's filter, so the agent gets its fd too (with its pid)."""
    listener = Listener(tmp_path / "seccomp.sock", 2)
    cid = unique_id()
    try:
        with_profile(bundle, {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(listener.path),
                              "listenerMetadata": "agent", "syscalls": [NOTIFY_MKDIR]}, "sleep 1000")
        runtime("create", "--bundle", str(bundle.path), cid, check=True)
        runtime("start", cid, check=True)
        result = runtime("exec", cid, "sh", "-c", "mkdir /tmp/y; echo exec-done")
        runtime("delete", "--force", cid, check=True)
    finally:
        listener.close()
    assert result.returncode == 0 and "exec-done" in result.stdout, result.stderr
    (init_state, _), (exec_state, fds) = listener.received
    assert exec_state["metadata"] == "agent" and exec_state["state"]["id"] == cid and len(fds) == 1
    assert exec_state["state"]["status"] == "running" and exec_state["pid"] != init_state["pid"] > 0


@pytest.mark.parametrize("profile, field", [
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY cannot be used for write"),
    ({"defaultAction": "SCMP_ACT_NOTIFY", "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ALLOW"}]},
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
], ids=["write", "default"])
@pytest.mark.parametrize("no_new_privileges", [True, False])
def test_notify_on_the_listener_handover_is_refused_not_a_hang(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                               profile: dict[str, Any], field: str,
                                                               no_new_privileges: bool) -> None:
    """The init writes the listener's fd number to create after loading the filter: a
    notified write would wait for an agent that has no fd yet, and create for the write."""
    listener = Listener(tmp_path / "seccomp.sock", 0)
    try:
        bundle.config["process"]["noNewPrivileges"] = no_new_privileges
        with_profile(bundle, {**profile, "listenerPath": str(listener.path)}, "true")
        result = runtime("run", "--bundle", str(bundle.path), unique_id(), timeout=30)  # the old hang, bounded
    finally:
        listener.close()
    assert result.returncode == 1 and result.stderr.startswith(f"ociish: config.json: {field}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and runtime.ids() == []
