"""Namespaces: created, joined by path or inherited; user id mappings."""

from __future__ import annotations

from collections.abc import Callable

from conformance import host
from conformance.bundle import Bundle
from conformance.harness import CheckContext, CheckFailed
from conformance.registry import check, register

USER_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def with_user_namespace(b: Bundle) -> None:
    """Add a user namespace mapping container 0-65535 to host 100000+."""
    b.set_namespace("user")
    b.linux["uidMappings"] = USER_MAP
    b.linux["gidMappings"] = USER_MAP


def _new_namespace_check(kind: str) -> Callable[[CheckContext], None]:
    def run(ctx: CheckContext) -> None:
        b = ctx.bundle()
        if kind == "user":
            with_user_namespace(b)
        else:
            b.set_namespace(kind)
        try:
            seen = ctx.observe(b)["namespaces"]
        except CheckFailed as exc:
            # Unsupported (a SHOULD): judged by type.<kind> alone.
            ctx.expect(False, str(exc), f"config-linux.namespaces.type.{kind}")
            ctx.skip_requirement("config-linux.namespaces.new", f"{kind} not supported")
            return
        entry = {"network": "net", "mount": "mnt"}.get(kind, kind)
        ctx.expect(seen.get(entry) not in (None, ctx.session.host_ns.get(kind)),
                   f"{kind} namespace is {seen.get(entry)}, the runtime's is "
                   f"{ctx.session.host_ns.get(kind)}")

    run.__doc__ = f"A {kind} entry without path gives the process a new {kind} namespace."
    return run


for _kind in ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"):
    register(f"namespaces.new_{_kind}", "namespaces",
             (f"config-linux.namespaces.type.{_kind}", "config-linux.namespaces.new"),
             _new_namespace_check(_kind))


@check("config-linux.namespaces.join")
def join_by_path(ctx: CheckContext) -> None:
    """Entries with a path put the process into those very namespaces."""
    holder = host.spawn_namespace_holder("--uts", "--ipc", "--net", "--pid")
    ctx.defer(holder.kill)
    hpid = host.holder_pid(holder)
    theirs = host.namespaces(hpid)
    b = ctx.bundle()
    for kind, entry in (("uts", "uts"), ("ipc", "ipc"), ("network", "net"), ("pid", "pid")):
        b.set_namespace(kind, f"/proc/{hpid}/ns/{entry}")
    seen = ctx.observe(b)["namespaces"]
    for kind, entry in (("uts", "uts"), ("ipc", "ipc"), ("network", "net"), ("pid", "pid")):
        ctx.expect(seen.get(entry) == theirs[kind],
                   f"{kind}: process is in {seen.get(entry)}, the path names {theirs[kind]}")


@check("config-linux.namespaces.inherit")
def inherit_missing(ctx: CheckContext) -> None:
    """Types left out of the list are the runtime's own namespaces."""
    b = ctx.bundle()
    for kind in ("uts", "ipc", "network"):
        b.set_namespace(kind, present=False)
    b.config.pop("hostname")
    seen = ctx.observe(b)["namespaces"]
    for kind, entry in (("uts", "uts"), ("ipc", "ipc"), ("network", "net"), ("cgroup", "cgroup")):
        ctx.expect(seen.get(entry) == ctx.session.host_ns[kind],
                   f"{kind}: process is in {seen.get(entry)}, not the runtime's "
                   f"{ctx.session.host_ns[kind]}")


@check("config-linux.namespaces.path-type-mismatch")
def path_of_other_type(ctx: CheckContext) -> None:
    """A uts entry pointing at an ipc namespace (or a plain file) is rejected."""
    holder = host.spawn_namespace_holder("--ipc")
    ctx.defer(holder.kill)
    hpid = host.holder_pid(holder)
    (ctx.dir / "plain-file").write_text("")
    for label, path in (("ipc namespace", f"/proc/{hpid}/ns/ipc"),
                        ("regular file", str(ctx.dir / "plain-file"))):
        b = ctx.bundle(label.replace(" ", "-"))
        b.set_namespace("uts", path)
        rejected, detail = ctx.run_fails(b)
        ctx.expect(rejected, f"uts path to a {label}: {detail}")


@check("config-linux.namespaces.path-absolute")
def relative_path(ctx: CheckContext) -> None:
    """A relative namespace path is rejected (even one that resolves from cwd /)."""
    b = ctx.bundle()
    b.set_namespace("uts", "proc/1/ns/uts")
    b.write()
    c = ctx.container(b)
    res = c.create(check=False, cwd="/")
    ctx.expect(not res.ok, "create accepted the namespace path proc/1/ns/uts")


@check("config-linux.namespaces.duplicate")
def duplicate_type(ctx: CheckContext) -> None:
    """Two uts entries are rejected."""
    b = ctx.bundle()
    b.linux["namespaces"].append({"type": "uts"})
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)


@check("config-linux.user-mappings", "config-linux.user-mappings.no-chown")
def user_mappings(ctx: CheckContext) -> None:
    """uid_map/gid_map match the config and the rootfs keeps its owners."""
    b = ctx.bundle()
    with_user_namespace(b)
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    busybox = b.in_rootfs("/bin/busybox")
    before = (busybox.stat().st_uid, busybox.stat().st_gid)
    report = ctx.observe(b, "--read", "/proc/self/uid_map", "--read", "/proc/self/gid_map")
    for name, want in (("uid_map", "0 100000 65536"), ("gid_map", "0 200000 65536")):
        got = " ".join(report["read"][f"/proc/self/{name}"].get("data", "").split())
        ctx.expect(got == want, f"{name} is {got!r}, wanted {want!r}", "config-linux.user-mappings")
    after = (busybox.stat().st_uid, busybox.stat().st_gid)
    ctx.expect(after == before, f"/bin/busybox owner changed from {before} to {after}",
               "config-linux.user-mappings.no-chown")
