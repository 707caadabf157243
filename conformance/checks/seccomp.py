"""Seccomp: actions, errno values, argument filters, the notify listener."""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
from typing import Any

from conformance.bundle import PROBE
from conformance.checks import sh
from conformance.harness import CheckContext, CheckFailed
from conformance.registry import check

ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
PRIO_PGRP = 1
SIGSYS = 31


def seccomp(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES,
            "syscalls": list(rules), **extra}


@check("config-linux.seccomp.apply", "config-linux.seccomp.errnoRet", "config-linux.seccomp.args")
def seccomp_filter(ctx: CheckContext) -> None:
    """ERRNO rules fail their syscalls with EPERM, errnoRet, or only on matching args."""
    b = ctx.bundle()
    b.linux["seccomp"] = seccomp(
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["sched_yield"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOMSG},
        {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": PRIO_PGRP, "op": "SCMP_CMP_EQ"}]})
    report = ctx.observe(b, "--call", "getcwd", "--call", "sched_yield",
                         "--call", "getpriority-process", "--call", "getpriority-pgrp")
    calls = report["calls"]
    ctx.expect(report.status("Seccomp") == "2", f"Seccomp mode is {report.status('Seccomp')!r}",
               "config-linux.seccomp.apply")
    ctx.expect(calls["getcwd"] == errno.EPERM, f"getcwd gives errno {calls['getcwd']}",
               "config-linux.seccomp.apply")
    ctx.expect(calls["sched_yield"] == errno.ENOMSG,
               f"sched_yield gives errno {calls['sched_yield']}, wanted ENOMSG",
               "config-linux.seccomp.errnoRet")
    ctx.expect((calls["getpriority-process"], calls["getpriority-pgrp"]) == (0, errno.EPERM),
               f"getpriority(PRIO_PROCESS) errno {calls['getpriority-process']}, "
               f"getpriority(PRIO_PGRP) errno {calls['getpriority-pgrp']}",
               "config-linux.seccomp.args")


@check("config-linux.seccomp.kill")
def seccomp_kill(ctx: CheckContext) -> None:
    """SCMP_ACT_KILL_PROCESS kills the probe (a shell reports its SIGSYS death)."""
    b = ctx.bundle()
    b.linux["seccomp"] = seccomp({"names": ["getpriority"], "action": "SCMP_ACT_KILL_PROCESS"})
    b.process["args"] = sh(f"{PROBE} --call getpriority-pgrp; echo rc=$?")
    b.write()
    c = ctx.container(b)
    c.create()
    c.start()
    c.wait_stopped()
    out = c.stdout()
    ctx.expect(f"rc={128 + SIGSYS}" in out, f"the probe was not killed by SIGSYS: {out[-200:]!r}")


@check("config-linux.seccomp.errno-unsupported")
def errno_for_allow(ctx: CheckContext) -> None:
    """errnoRet/defaultErrnoRet with SCMP_ACT_ALLOW are rejected."""
    for label, policy in (
            ("defaultErrnoRet", seccomp(defaultErrnoRet=errno.EIO)),
            ("errnoRet", seccomp({"names": ["getcwd"], "action": "SCMP_ACT_ALLOW",
                                  "errnoRet": errno.EIO}))):
        b = ctx.bundle(label)
        b.linux["seccomp"] = policy
        rejected, detail = ctx.run_fails(b)
        ctx.expect(rejected, f"{label} with SCMP_ACT_ALLOW: {detail}")


@check("config-linux.seccomp.names-nonempty")
def empty_names(ctx: CheckContext) -> None:
    """A rule with no syscall names is rejected."""
    b = ctx.bundle()
    b.linux["seccomp"] = seccomp({"names": [], "action": "SCMP_ACT_ERRNO"})
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)


@check("config-linux.seccomp.metadata-requires-path")
def metadata_without_listener(ctx: CheckContext) -> None:
    """listenerMetadata without listenerPath is rejected."""
    b = ctx.bundle()
    b.linux["seccomp"] = seccomp({"names": ["getpriority"], "action": "SCMP_ACT_NOTIFY"},
                                 listenerMetadata="conformance")
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)


@check("config-linux.seccomp.listener-error")
def unreachable_listener(ctx: CheckContext) -> None:
    """A listenerPath nobody listens on makes the container fail."""
    b = ctx.bundle()
    b.linux["seccomp"] = seccomp({"names": ["getpriority"], "action": "SCMP_ACT_NOTIFY"},
                                 listenerPath=str(ctx.dir / "nobody.sock"))
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)


class Agent(threading.Thread):
    """A seccomp agent that takes one connection and records what arrived."""

    def __init__(self, path: str, timeout: float):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(2)
        self.sock.settimeout(timeout)
        self.payload = b""
        self.fds: list[int] = []
        self.late_fds = 0  # descriptors that came after the first message
        self.closed = False
        self.error = ""

    def run(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                while True:
                    data, fds, _, _ = socket.recv_fds(conn, 65536, 16)
                    if self.payload:
                        self.late_fds += len(fds)
                    self.fds += fds
                    if not data:
                        self.closed = True
                        break
                    self.payload += data
        except OSError as exc:
            self.error = str(exc)
        finally:
            for fd in self.fds:  # closing the notify fd lets blocked syscalls fail
                os.close(fd)
            self.sock.close()


@check("config-linux.seccomp.listener")
def notify_listener(ctx: CheckContext) -> None:
    """The runtime sends one container process state plus the seccomp fd, then closes."""
    path = str(ctx.dir / "agent.sock")
    agent = Agent(path, ctx.session.timeout)
    agent.start()
    b = ctx.bundle()
    b.linux["seccomp"] = seccomp({"names": ["getpriority"], "action": "SCMP_ACT_NOTIFY"},
                                 listenerPath=path, listenerMetadata="conformance-meta")
    b.process["args"] = ["/bin/true"]
    b.write()
    c = ctx.container(b)
    c.create()
    c.start()
    agent.join(ctx.session.timeout)
    ctx.require(agent.payload, f"nothing arrived on listenerPath {agent.error}")
    try:
        msg = json.loads(agent.payload)
    except ValueError:
        msg = None
    if not isinstance(msg, dict):
        raise CheckFailed(f"not one JSON object: {agent.payload[:200]!r}")
    ctx.expect(agent.closed, "the runtime did not close the connection")
    ctx.expect(msg.get("fds") == ["seccompFd"] and len(agent.fds) == 1,
               f"fds {msg.get('fds')} with {len(agent.fds)} descriptor(s) attached")
    ctx.expect(not agent.late_fds, f"{agent.late_fds} descriptor(s) came after the first "
                                   "message")
    ctx.expect(msg.get("metadata") == "conformance-meta", f"metadata {msg.get('metadata')!r}")
    ctx.expect(isinstance(msg.get("ociVersion"), str) and isinstance(msg.get("pid"), int),
               f"ociVersion/pid missing: {msg}")
    st = msg.get("state") or {}
    ctx.expect(st.get("id") == c.id and st.get("bundle") == str(b.path),
               f"state is not this container's: {st}")
