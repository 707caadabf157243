"""Lifecycle operations: create, start, state, kill, delete and their errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conformance import host, mountinfo
from conformance.checks import marked_program, runs, sh, wait_for
from conformance.harness import CheckContext
from conformance.registry import check

# How long a created container is watched for running its program anyway.
SETTLE = 0.3


@check("runtime.scope.operations", "runtime.create.new-container",
       "runtime.create.program-deferred", "runtime.start.runs-program",
       "runtime.state.status")
def walkthrough(ctx: CheckContext) -> None:
    """create, state, start, kill and delete one container, watching each step."""
    b = ctx.bundle()
    marker = marked_program(b)
    b.write()
    c = ctx.container(b)
    c.create()
    st = c.state()
    ctx.expect(st is not None, "state fails right after create", "runtime.create.new-container")
    ctx.expect(st and st.get("status") == "created",
               f"status after create is {st and st.get('status')!r}", "runtime.state.status")
    time.sleep(SETTLE)
    ctx.expect(runs(marker) == 0, "the program ran before start",
               "runtime.create.program-deferred")
    c.start()
    ctx.expect(wait_for(lambda: runs(marker) > 0), "the program did not run after start",
               "runtime.start.runs-program")
    status = c.status()
    ctx.expect(status == "running", f"status after start is {status!r}", "runtime.state.status")
    c.kill("KILL")
    ctx.expect(c.wait_stopped(check=False), f"status after kill is {c.status()!r}",
               "runtime.state.status")
    c.delete()
    ctx.expect(c.state() is None, "state still answers after delete",
               "runtime.scope.operations")


@check("runtime.kill.signal")
def kill_delivers_signal(ctx: CheckContext) -> None:
    """kill sends the named signal (trapped by the program) and works on created."""
    b = ctx.bundle()
    ready, got = b.in_rootfs("/ready"), b.in_rootfs("/got")
    b.process["args"] = sh("trap 'echo USR1 >> /got' USR1; echo > /ready; "
                           "while :; do sleep 0.05; done")
    b.write()
    c = ctx.container(b)
    c.create()
    c.start()
    ctx.require(wait_for(ready.exists), "the program never became ready")
    c.kill("USR1")
    ctx.expect(wait_for(lambda: got.exists() and "USR1" in got.read_text()),
               "the program never saw SIGUSR1")
    c.kill("KILL")
    c.wait_stopped()
    created = ctx.container(b)
    created.create()
    created.kill("KILL")
    ctx.expect(created.wait_stopped(check=False),
               f"SIGKILL to a created container left it {created.status()!r}")


@check("runtime.start.not-created")
def start_twice(ctx: CheckContext) -> None:
    """start on a running, then on a stopped container fails and changes nothing."""
    b = ctx.bundle()
    marker = marked_program(b)
    b.write()
    c = ctx.container(b)
    c.create()
    c.start()
    ctx.require(wait_for(lambda: runs(marker) == 1), "the program did not run")
    res = c.start(check=False)
    ctx.expect(not res.ok, "a second start on a running container succeeded")
    time.sleep(SETTLE)
    ctx.expect(runs(marker) == 1, "the program ran a second time")
    ctx.expect(c.status() == "running", f"status became {c.status()!r}")
    c.kill("KILL")
    c.wait_stopped()
    res = c.start(check=False)
    ctx.expect(not res.ok, "start on a stopped container succeeded")
    ctx.expect(c.status() == "stopped", f"status became {c.status()!r}")
    ctx.expect(runs(marker) == 1, "the program ran again after stopping")


@check("runtime.kill.not-running")
def kill_stopped(ctx: CheckContext) -> None:
    """kill on a stopped container fails and it stays stopped."""
    b = ctx.bundle()
    b.process["args"] = ["/bin/true"]
    b.write()
    c = ctx.container(b)
    c.create()
    c.start()
    c.wait_stopped()
    res = c.kill("KILL", check=False)
    ctx.expect(not res.ok, "kill on a stopped container succeeded")
    ctx.expect(c.status() == "stopped", f"status became {c.status()!r}")


@check("runtime.delete.not-stopped")
def delete_live(ctx: CheckContext) -> None:
    """delete (without force) of a running and of a created container fails."""
    b = ctx.bundle()
    b.process["args"] = ["/bin/sleep", "1000"]
    b.write()
    running = ctx.container(b)
    running.create()
    running.start()
    res = running.delete(check=False)
    ctx.expect(not res.ok, "delete of a running container succeeded")
    ctx.expect(running.status() == "running",
               f"running container is {running.status()!r} after delete")
    created = ctx.container(b)
    created.create()
    res = created.delete(check=False)
    ctx.expect(not res.ok, "delete of a created container succeeded")
    ctx.expect(created.status() == "created",
               f"created container is {created.status()!r} after delete")


@check("runtime.delete.resources")
def delete_cleans_up(ctx: CheckContext) -> None:
    """After delete the state is gone and so are the container's own cgroups."""
    b = ctx.bundle()
    b.process["args"] = ["/bin/true"]
    b.write()
    c = ctx.container(b)
    c.create()
    mine = host.process_cgroups(os.getpid())
    theirs = host.process_cgroups(c.pid())
    mounts = host.cgroup_mounts()
    dirs = [mounts[ctrl] / path.lstrip("/") for ctrl, path in theirs.items()
            if ctrl in mounts and path != mine.get(ctrl)]
    ctx.require(dirs, "the container has no cgroup of its own to watch")
    c.start()
    c.wait_stopped()
    c.delete()
    ctx.expect(c.state() is None, "state still answers after delete")
    left = [str(d) for d in dirs if d.exists()]
    ctx.expect(not left, f"cgroups left after delete: {left}")


@check("runtime.delete.keep-foreign")
def delete_keeps_foreign(ctx: CheckContext) -> None:
    """delete keeps a bind-mount source and a namespace the container joined."""
    holder = host.spawn_namespace_holder("--uts")
    ctx.defer(holder.kill)
    hpid = host.holder_pid(holder)
    uts = host.namespaces(hpid)["uts"]
    src = ctx.scratch("src")
    (src / "keep").write_text("keep me")
    b = ctx.bundle()
    b.add_mount("/data", "none", str(src), ["rbind", "rw"])
    b.set_namespace("uts", f"/proc/{hpid}/ns/uts")
    b.config.pop("hostname")
    b.process["args"] = ["/bin/true"]
    b.write()
    c = ctx.container(b)
    c.create()
    c.start()
    c.wait_stopped()
    c.delete()
    ctx.expect((src / "keep").exists(), "the bind-mount source lost its content")
    ctx.expect(holder.poll() is None and host.namespaces(hpid).get("uts") == uts,
               "the joined uts namespace's holder is gone")


@check("runtime.state.op-no-id", "runtime.start.op-no-id", "runtime.kill.op-no-id",
       "runtime.delete.op-no-id", "runtime.create.op-missing-args")
def operations_without_id(ctx: CheckContext) -> None:
    """Every operation fails when it is not given a container ID (or bundle)."""
    for op, req in (("state", "runtime.state.op-no-id"), ("start", "runtime.start.op-no-id"),
                    ("kill", "runtime.kill.op-no-id"), ("delete", "runtime.delete.op-no-id")):
        res = ctx.runtime.invoke(op)
        ctx.expect(not res.ok, f"`{op}` without an ID succeeded", req)
    b = ctx.bundle()
    b.write()
    res = ctx.runtime.invoke("create", "--bundle", str(b.path))
    ctx.expect(not res.ok, "create without an ID succeeded", "runtime.create.op-missing-args")
    empty = ctx.scratch("not-a-bundle")
    cid = ctx.new_id()
    res = ctx.runtime.invoke("create", cid, cwd=empty)
    ctx.expect(not res.ok, "create with no bundle (cwd has no config.json) succeeded",
               "runtime.create.op-missing-args")


@check("runtime.state.op-unknown")
def state_unknown(ctx: CheckContext) -> None:
    """state of an ID that was never created fails."""
    res, _ = ctx.runtime.state(ctx.new_id())
    ctx.expect(not res.ok, "state of an unknown ID succeeded")


@check("runtime.create.duplicate-id")
def duplicate_id(ctx: CheckContext) -> None:
    """A second create with the same ID fails and the first container is intact."""
    first, second = ctx.bundle("first"), ctx.bundle("second")
    first.write()
    second.write()
    c = ctx.container(first)
    c.create()
    res = ctx.container(second, c.id).create(check=False)
    ctx.expect(not res.ok, "create with an ID in use succeeded")
    st = c.state() or {}
    ctx.expect(st.get("status") == "created", f"first container is {st.get('status')!r}")
    ctx.expect(st.get("bundle") == str(first.path),
               f"state now names bundle {st.get('bundle')!r}")


@check("runtime.create.invalid-id")
def invalid_ids(ctx: CheckContext) -> None:
    """create with an empty ID or one containing '/' fails."""
    b = ctx.bundle()
    b.write()
    for bad in ("", f"{ctx.new_id()}/x"):
        res = ctx.runtime.create(bad, b.path)
        if ctx.expect(not res.ok, f"create with ID {bad!r} succeeded"):
            continue
        ctx.created.append(bad)  # so that cleanup deletes it


@check("runtime.start.no-process")
def start_without_process(ctx: CheckContext) -> None:
    """Without process in config.json the container never runs anything."""
    b = ctx.bundle()
    b.config.pop("process")
    b.write()
    c = ctx.container(b)
    if c.create(check=False).ok:
        ctx.expect(not c.start(check=False).ok, "start succeeded with no process")


@check("runtime.lifecycle.config-snapshot")
def config_snapshot(ctx: CheckContext) -> None:
    """Rewriting config.json between create and start changes nothing."""
    b = ctx.bundle()
    b.config["hostname"] = "before"
    b.process["args"] = ["/probe"]
    b.write()
    c = ctx.container(b)
    c.create()
    b.config["hostname"] = "after"
    b.process["args"] = ["/probe", "--stat", "/after"]
    b.write()
    c.start()
    c.wait_stopped()
    report = c.report()
    ctx.expect(report["uname"]["nodename"] == "before",
               f"hostname is {report['uname']['nodename']!r}")
    ctx.expect(report["argv"] == ["/probe"], f"argv is {report['argv']}")


@check("runtime.lifecycle.create-applies")
def create_applies(ctx: CheckContext) -> None:
    """Right after create, namespaces, mounts and cgroup limits are in place."""
    b = ctx.bundle()
    b.add_mount("/created", "tmpfs", "tmpfs", ["size=1m"])
    b.linux["resources"] = {"pids": {"limit": 77}}
    b.write()
    c = ctx.container(b)
    c.create()
    pid = c.pid()
    ns = host.namespaces(pid)
    for kind in ("pid", "network", "ipc", "uts", "mount"):
        ctx.expect(ns.get(kind) != ctx.session.host_ns.get(kind),
                   f"no new {kind} namespace after create")
    mounts = mountinfo.read(Path(f"/proc/{pid}/mountinfo"))
    ctx.expect(any(m.point.endswith("/created") for m in mounts),
               "the tmpfs is not mounted after create")
    pids_dir = host.cgroup_dir(pid, "pids")
    if pids_dir is not None:
        limit = (pids_dir / "pids.max").read_text().strip()
        ctx.expect(limit == "77", f"pids.max is {limit} after create")
    c.delete(force=True)

