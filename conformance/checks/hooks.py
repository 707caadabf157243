"""Hooks: when each kind runs, in which namespaces, with what input; failures."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from conformance import host
from conformance.bundle import Bundle
from conformance.checks import marked_program, runs, sh, wait_for
from conformance.harness import CheckContext, Container
from conformance.registry import check, register

NS_COMPARED = ("mount", "uts", "ipc", "network", "pid")

# Host-side hook: records what it sees as one JSON line in the events file.
RECORDER = """#!{python} -S
import json, os, sys
raw = sys.stdin.read()
rec = {{"kind": sys.argv[1] if len(sys.argv) > 1 else "?", "argv": sys.argv, "stdin": raw,
        "env": open("/proc/self/environ", "rb").read().decode().split("\\0")[:-1],
        "ns": {{t: os.readlink("/proc/self/ns/" + e) for t, e in {ns!r}.items()}},
        "self_mounts": [l.split()[4] for l in open("/proc/self/mountinfo")]}}
try:
    pid = json.loads(raw).get("pid")
except ValueError:
    pid = None
if isinstance(pid, int) and pid > 0:
    rec["pid_alive"] = os.path.exists("/proc/%d" % pid)
    try:
        rec["pid_root"] = os.readlink("/proc/%d/root" % pid)
        rec["pid_cmdline"] = open("/proc/%d/cmdline" % pid, "rb").read().decode().split("\\0")
        rec["pid_ns"] = {{t: os.readlink("/proc/%d/ns/%s" % (pid, e)) for t, e in {ns!r}.items()}}
        rec["pid_mounts"] = [l.split()[4] for l in open("/proc/%d/mountinfo" % pid)]
    except OSError:
        pass
with open({events!r}, "a") as f:
    f.write(json.dumps(rec) + "\\n")
sys.exit(int(os.environ.get("OCF_EXIT", "0")))
"""

# In-container startContainer hook (busybox sh; path resolved in the rootfs).
START_HOOK = """#!/bin/sh
cat > /shared/startContainer.state
ns() { readlink /proc/self/ns/$1; }
fmt='{"kind":"startContainer","ns":{"mount":"%s","uts":"%s","ipc":"%s",'
fmt="$fmt"'"network":"%s","pid":"%s"}}\\n'
printf "$fmt" "$(ns mnt)" "$(ns uts)" "$(ns ipc)" "$(ns net)" "$(ns pid)" >> /shared/events
"""

PROGRAM_EVENT = "printf '{\"kind\":\"program\"}\\n' >> /shared/events"


class HookLab:
    """A bundle wired for hooks: a shared events file and a host recorder."""

    def __init__(self, ctx: CheckContext, name: str = "bundle"):
        self.ctx = ctx
        self.shared = ctx.scratch(f"{name}-shared")
        self.events = self.shared / "events"
        self.recorder = ctx.dir / f"{name}-recorder.py"
        ns = {t: {"mount": "mnt", "network": "net"}.get(t, t) for t in NS_COMPARED}
        self.recorder.write_text(RECORDER.format(python=sys.executable, ns=ns,
                                                 events=str(self.events)))
        self.recorder.chmod(0o755)
        self.bundle: Bundle = ctx.bundle(name)
        self.bundle.add_mount("/shared", "none", str(self.shared), ["bind", "rw"])

    def record(self, kind: str, label: str, fail: bool = False) -> None:
        """Add a recorder hook of kind that logs itself as label."""
        env = [f"OCF_HOOK={label}"] + (["OCF_EXIT=1"] if fail else [])
        self.bundle.add_hook(kind, str(self.recorder), [str(self.recorder), label], env)

    def read(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line]

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.read()]

    def event(self, kind: str) -> dict[str, Any]:
        return next((e for e in self.read() if e["kind"] == kind), {})


def _ns_match(ctx: CheckContext, req: str, label: str, seen: dict[str, str],
              want: dict[str, str], where: str) -> None:
    diff = [t for t in NS_COMPARED if seen.get(t) != want.get(t)]
    ctx.expect(seen and not diff, f"{label} ran outside the {where} namespace ({diff})", req)


@check(*[f"config.hooks.{k}.{a}" for k in ("prestart", "createRuntime", "createContainer",
                                          "startContainer", "poststart", "poststop")
         for a in ("when", "namespace")],
       "config.hooks.order", "config.hooks.state-stdin", "config.hooks.invocation")
def hook_lifecycle(ctx: CheckContext) -> None:
    """Every hook kind, watched through one container's whole life."""
    lab = HookLab(ctx)
    b = lab.bundle
    lab.record("prestart", "prestart")
    lab.record("createRuntime", "createRuntime-1")
    lab.record("createRuntime", "createRuntime-2")
    lab.record("createContainer", "createContainer")
    b.add_file("/hookstart.sh", START_HOOK, 0o755)
    b.add_hook("startContainer", "/hookstart.sh")
    lab.record("poststart", "poststart")
    lab.record("poststop", "poststop")
    b.process["args"] = sh(f"{PROGRAM_EVENT}; exec sleep 1000")
    b.write()
    rootfs = os.path.realpath(b.rootfs)
    c = ctx.container(b)
    c.create()
    container_ns = host.namespaces(c.pid())
    after_create = lab.kinds()
    _expect_sequence(ctx, after_create, [
        ("prestart", "createRuntime-1", "config.hooks.prestart.when"),
        ("createRuntime-1", "createRuntime-2", "config.hooks.order"),
        ("createRuntime-2", "createContainer", "config.hooks.createContainer.when")])
    for label in ("poststart", "startContainer", "poststop"):
        ctx.expect(label not in after_create, f"{label} ran during create",
                   f"config.hooks.{label}.when")
    for label, kind in (("prestart", "prestart"), ("createRuntime-1", "createRuntime")):
        ev = lab.event(label)
        when = f"config.hooks.{kind}.when"
        if not ctx.expect(ev, f"{label} did not run during create", when):
            continue
        ctx.expect(ev.get("pid_root") not in (None, rootfs),
                   f"{label} ran after pivot_root (root is {ev.get('pid_root')})", when)
        ctx.expect(f"{rootfs}/shared" in ev.get("pid_mounts", []),
                   f"{label} ran before the mounts were set up", when)
        ctx.expect(ev.get("pid_ns", {}).get("mount") != ctx.session.host_ns["mount"],
                   f"{label} ran before the container's namespaces existed", when)
        _ns_match(ctx, f"config.hooks.{kind}.namespace", label, ev.get("ns", {}),
                  ctx.session.host_ns, "runtime")
    # createContainer sees the container's mounts still under the rootfs path:
    # mounts are done and pivot_root is not.
    ev = lab.event("createContainer")
    ctx.expect(f"{rootfs}/shared" in ev.get("self_mounts", []),
               "createContainer did not run between mounting and pivot_root",
               "config.hooks.createContainer.when")
    _ns_match(ctx, "config.hooks.createContainer.namespace", "createContainer",
              ev.get("ns", {}), container_ns, "container")

    c.start()
    after_start = lab.kinds()[len(after_create):]
    ctx.expect("poststart" in after_start, "poststart had not run when start returned",
               "config.hooks.poststart.when")
    wait_for(lambda: "program" in lab.kinds())  # the program runs on its own time
    after_start = lab.kinds()[len(after_create):]
    ctx.expect("startContainer" in after_start and "program" in after_start
               and after_start.index("startContainer") < after_start.index("program")
               if "startContainer" in after_start else False,
               f"startContainer did not run before the program: {after_start}",
               "config.hooks.startContainer.when")
    _ns_match(ctx, "config.hooks.startContainer.namespace", "startContainer",
              lab.event("startContainer").get("ns", {}), container_ns, "container")
    post = lab.event("poststart")
    cmdline = post.get("pid_cmdline", [])
    ctx.expect("sleep" in cmdline or cmdline[:1] == ["/bin/sh"],
               f"at poststart the container process is {cmdline}, not the program",
               "config.hooks.poststart.when")
    _ns_match(ctx, "config.hooks.poststart.namespace", "poststart", post.get("ns", {}),
              ctx.session.host_ns, "runtime")

    c.kill("KILL")
    c.wait_stopped()
    ctx.expect("poststop" not in lab.kinds(), "poststop ran before delete",
               "config.hooks.poststop.when")
    c.delete()
    stop = lab.event("poststop")
    ctx.expect(stop, "poststop had not run when delete returned", "config.hooks.poststop.when")
    ctx.expect(not stop.get("pid_alive"), "poststop ran while the container process lived",
               "config.hooks.poststop.when")
    _ns_match(ctx, "config.hooks.poststop.namespace", "poststop", stop.get("ns", {}),
              ctx.session.host_ns, "runtime")

    _check_inputs(ctx, lab, c)


def _expect_sequence(ctx: CheckContext, seen: list[str],
                     pairs: list[tuple[str, str, str]]) -> None:
    """Each (first, then, req): both ran, first before then."""
    for first, then, req in pairs:
        ok = first in seen and then in seen and seen.index(first) < seen.index(then)
        ctx.expect(ok, f"expected {first} before {then}, hooks ran: {seen}", req)


def _check_inputs(ctx: CheckContext, lab: HookLab, c: Container) -> None:
    """Each hook got its args and env, and the state JSON on stdin."""
    states = [(e["kind"], e.get("stdin", "")) for e in lab.read() if "stdin" in e]
    start_state = lab.shared / "startContainer.state"
    states.append(("startContainer", start_state.read_text() if start_state.exists() else ""))
    for label, raw in states:
        try:
            st = json.loads(raw)
        except ValueError:
            st = None
        ctx.expect(isinstance(st, dict) and st.get("id") == c.id
                   and st.get("bundle") == str(lab.bundle.path)
                   and isinstance(st.get("status"), str),
                   f"{label}: stdin is not this container's state: {raw[:200]!r}",
                   "config.hooks.state-stdin")
    for ev in lab.read():
        if "argv" not in ev:
            continue
        ctx.expect(ev["argv"][1:] == [ev["kind"]] and ev["env"] == [f"OCF_HOOK={ev['kind']}"],
                   f"{ev['kind']}: argv {ev['argv']} env {ev['env']}", "config.hooks.invocation")


def _failing_hook_check(kind: str) -> Callable[[CheckContext], None]:
    """A failing `kind` hook: the operation errors and the container is stopped."""

    def run(ctx: CheckContext) -> None:
        lab = HookLab(ctx)
        b = lab.bundle
        marker = marked_program(b)
        b.add_hook(kind, "/bin/false")  # busybox's in the rootfs, coreutils' on the host
        lab.record("poststop", "poststop")
        b.write()
        c = ctx.container(b)
        req = f"runtime.lifecycle.{kind}-failure"
        at_create = kind in ("prestart", "createRuntime", "createContainer")
        res = c.create(check=False)
        if not at_create:
            ctx.require(res.ok, res.describe())
            res = c.start(check=False)
        ctx.expect(not res.ok, f"{'create' if at_create else 'start'} succeeded although "
                               f"the {kind} hook failed", req)
        if kind == "poststart":
            ctx.expect(wait_for(lambda: runs(marker) == 1, timeout=2),
                       "the program never ran", req)
        else:
            time.sleep(0.2)
            ctx.expect(runs(marker) == 0, "the program ran anyway", req)
        stopped = c.wait_status("stopped", timeout=3, check=False) or c.status() is None
        ctx.expect(stopped, f"the container is left {c.status()!r}", req)
        ctx.expect("poststop" in lab.kinds(), "poststop hooks did not run after the failure",
                   "runtime.lifecycle.failure-poststop")

    run.__doc__ = f"A failing {kind} hook stops the container with an error."
    return run


for _kind in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart"):
    register(f"hooks.failing_{_kind}", "hooks",
             (f"runtime.lifecycle.{_kind}-failure", "runtime.lifecycle.failure-poststop"),
             _failing_hook_check(_kind))


@check("runtime.lifecycle.poststop-failure", "runtime.warnings.continue")
def failing_poststop(ctx: CheckContext) -> None:
    """A failing poststop hook: delete still succeeds and later hooks run."""
    lab = HookLab(ctx)
    lab.record("poststop", "poststop-1", fail=True)
    lab.record("poststop", "poststop-2")
    lab.bundle.process["args"] = ["/bin/true"]
    lab.bundle.write()
    c = ctx.container(lab.bundle)
    c.create()
    c.start()
    c.wait_stopped()
    res = c.delete(check=False)
    ctx.expect(res.ok, f"delete failed: {res.describe()}")
    ctx.expect(c.state() is None, "the container still exists after delete")
    ctx.expect(lab.kinds() == ["poststop-1", "poststop-2"],
               f"poststop hooks that ran: {lab.kinds()}")
