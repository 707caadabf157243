"""Mounts: types, order, destinations, every Linux mount option, propagation."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from conformance import host
from conformance.harness import CheckContext
from conformance.mountinfo import Mount
from conformance.probe_report import ProbeReport
from conformance.registry import check, register

TARGET = "/mnt/opt"

# Host flags of the "locked" submount of a mount tree; the "plain" one has none.
LOCKED_FLAGS = "ro,nosuid,nodev,noexec,noatime,nodiratime,nosymfollow"


def make_tree(ctx: CheckContext, shared: bool = False) -> Path:
    """A host tmpfs with two submounts, `plain` and `locked`, for (r)bind tests."""
    tree = ctx.scratch("tree")
    host.mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tree))
    ctx.defer(lambda: host.umount_under(tree))
    for sub, opts in (("plain", "size=1m"), ("locked", f"size=1m,{LOCKED_FLAGS}")):
        (tree / sub).mkdir()
        host.mount("-t", "tmpfs", "-o", opts, "tmpfs", str(tree / sub))
    (tree / "plain" / "hello").write_text("hello")  # plain is rw until remounted
    if shared:
        host.mount("--make-rshared", str(tree))
    return tree


Expect = Callable[[Mount], str | None]


def has(flag: str) -> Expect:
    return lambda m: None if flag in m.options else f"lacks {flag} ({_opts(m)})"


def lacks(*flags: str) -> Expect:
    return lambda m: next((f"still has {f} ({_opts(m)})" for f in flags if f in m.options), None)


def super_has(flag: str) -> Expect:
    return lambda m: None if flag in m.super_options else f"superblock lacks {flag} ({_opts(m)})"


def super_lacks(flag: str) -> Expect:
    return lambda m: f"superblock has {flag} ({_opts(m)})" if flag in m.super_options else None


def propagation(kind: str) -> Expect:
    return lambda m: None if m.propagation == kind else f"propagation is {m.propagation} " \
                                                       f"({' '.join(sorted(m.tags)) or 'no tags'})"


def mounted(m: Mount) -> str | None:
    return None


def _opts(m: Mount) -> str:
    return ",".join(sorted(m.options)) + " / " + ",".join(sorted(m.super_options))


@dataclass(frozen=True)
class OptionCase:
    """How to observe one option.

    kind is "tmpfs" (a tmpfs at TARGET), "tree" (an rbind of a host tree,
    judged on TARGET and on the submount `sub`) or "propagation" (a bind of a
    shared host tree, judged on TARGET).
    """

    options: tuple[str, ...]
    expect: Expect
    kind: str = "tmpfs"
    sub: str = ""


_CASES: dict[str, OptionCase] = {
    "async": OptionCase(("sync", "async"), super_lacks("sync")),
    "atime": OptionCase(("noatime", "atime"), lacks("noatime")),
    "defaults": OptionCase(("defaults",), has("rw")),
    "dev": OptionCase(("nodev", "dev"), lacks("nodev")),
    "diratime": OptionCase(("nodiratime", "diratime"), lacks("nodiratime")),
    "dirsync": OptionCase(("dirsync",), super_has("dirsync")),
    "exec": OptionCase(("noexec", "exec"), lacks("noexec")),
    "iversion": OptionCase(("iversion",), mounted),
    "lazytime": OptionCase(("lazytime",), super_has("lazytime")),
    "loud": OptionCase(("loud",), mounted),
    "noatime": OptionCase(("noatime",), has("noatime")),
    "nodev": OptionCase(("nodev",), has("nodev")),
    "nodiratime": OptionCase(("nodiratime",), has("nodiratime")),
    "noexec": OptionCase(("noexec",), has("noexec")),
    "noiversion": OptionCase(("noiversion",), mounted),
    "nolazytime": OptionCase(("lazytime", "nolazytime"), super_lacks("lazytime")),
    "norelatime": OptionCase(("norelatime",), mounted),
    "nostrictatime": OptionCase(("strictatime", "nostrictatime"), has("relatime")),
    "nosuid": OptionCase(("nosuid",), has("nosuid")),
    "relatime": OptionCase(("relatime",), has("relatime")),
    "ro": OptionCase(("ro",), has("ro")),
    "rw": OptionCase(("ro", "rw"), has("rw")),
    "silent": OptionCase(("silent",), mounted),
    "strictatime": OptionCase(("strictatime",), lacks("relatime", "noatime")),
    "suid": OptionCase(("nosuid", "suid"), lacks("nosuid")),
    "sync": OptionCase(("sync",), super_has("sync")),
    "nosymfollow": OptionCase(("nosymfollow",), has("nosymfollow")),
    "symfollow": OptionCase(("nosymfollow", "symfollow"), lacks("nosymfollow")),
    "private": OptionCase(("bind", "private"), propagation("private"), "propagation"),
    "shared": OptionCase(("bind", "shared"), propagation("shared"), "propagation"),
    "slave": OptionCase(("bind", "slave"), propagation("slave"), "propagation"),
    "unbindable": OptionCase(("bind", "unbindable"), propagation("unbindable"), "propagation"),
    "rprivate": OptionCase(("rbind", "rprivate"), propagation("private"), "propagation", "plain"),
    "rshared": OptionCase(("rbind", "rshared"), propagation("shared"), "propagation", "plain"),
    "rslave": OptionCase(("rbind", "rslave"), propagation("slave"), "propagation", "plain"),
    "runbindable": OptionCase(("rbind", "runbindable"), propagation("unbindable"),
                              "propagation", "plain"),
    "rro": OptionCase(("rbind", "rro"), has("ro"), "tree", "plain"),
    "rrw": OptionCase(("rbind", "rrw"), has("rw"), "tree", "locked"),
    "rnosuid": OptionCase(("rbind", "rnosuid"), has("nosuid"), "tree", "plain"),
    "rsuid": OptionCase(("rbind", "rsuid"), lacks("nosuid"), "tree", "locked"),
    "rdev": OptionCase(("rbind", "rdev"), lacks("nodev"), "tree", "locked"),
    "rnoexec": OptionCase(("rbind", "rnoexec"), has("noexec"), "tree", "plain"),
    "rexec": OptionCase(("rbind", "rexec"), lacks("noexec"), "tree", "locked"),
    "rnoatime": OptionCase(("rbind", "rnoatime"), has("noatime"), "tree", "plain"),
    "ratime": OptionCase(("rbind", "ratime"), lacks("noatime"), "tree", "locked"),
    "rnodiratime": OptionCase(("rbind", "rnodiratime"), has("nodiratime"), "tree", "plain"),
    "rdiratime": OptionCase(("rbind", "rdiratime"), lacks("nodiratime"), "tree", "locked"),
    "rrelatime": OptionCase(("rbind", "rrelatime"), has("relatime"), "tree", "locked"),
    "rnorelatime": OptionCase(("rbind", "rnorelatime"), mounted, "tree", "plain"),
    "rstrictatime": OptionCase(("rbind", "rstrictatime"), lacks("relatime", "noatime"),
                               "tree", "locked"),
    "rnostrictatime": OptionCase(("rbind", "rnostrictatime"), lacks("noatime"), "tree", "plain"),
    "rnosymfollow": OptionCase(("rbind", "rnosymfollow"), has("nosymfollow"), "tree", "plain"),
    "rsymfollow": OptionCase(("rbind", "rsymfollow"), lacks("nosymfollow"), "tree", "locked"),
}


def _option_check(name: str, case: OptionCase) -> Callable[[CheckContext], None]:
    def run(ctx: CheckContext) -> None:
        b = ctx.bundle()
        if case.kind == "tmpfs":
            b.add_mount(TARGET, "tmpfs", "tmpfs", ["size=1m", *case.options])
        else:
            tree = make_tree(ctx, shared=case.kind == "propagation")
            b.add_mount(TARGET, "none", str(tree), list(case.options))
            if case.kind == "propagation":
                b.linux["rootfsPropagation"] = "slave"
        report = ctx.observe(b)
        points = [TARGET] + ([f"{TARGET}/{case.sub}"] if case.sub else [])
        for point in points:
            m = report.mount_at(point)
            if m is None:
                ctx.expect(False, f"nothing mounted at {point}")
            else:
                problem = case.expect(m)
                ctx.expect(problem is None, f"{point}: {problem}")

    run.__doc__ = f"Mount option {name} has its effect."
    return run


for _name, _case in _CASES.items():
    register(f"mounts.option_{_name}", "mounts", (f"config.mounts.option.{_name}",),
             _option_check(_name, _case))


@check("config.mounts.option.bind", "config.mounts.option.rbind")
def bind_and_rbind(ctx: CheckContext) -> None:
    """bind leaves submounts out; rbind brings them along."""
    tree = make_tree(ctx)
    b = ctx.bundle()
    b.add_mount("/mnt/bind", "none", str(tree), ["bind"])
    b.add_mount("/mnt/rbind", "none", str(tree), ["rbind"])
    report = ctx.observe(b, "--read", "/mnt/rbind/plain/hello")
    ctx.expect(report.mount_at("/mnt/bind") is not None, "bind: nothing mounted",
               "config.mounts.option.bind")
    ctx.expect(report.mount_at("/mnt/bind/plain") is None, "bind: the submount came along",
               "config.mounts.option.bind")
    ctx.expect(report.mount_at("/mnt/rbind/plain") is not None, "rbind: the submount is missing",
               "config.mounts.option.rbind")
    ctx.expect(report["read"]["/mnt/rbind/plain/hello"].get("data") == "hello",
               "rbind: the submount's file is not readable", "config.mounts.option.rbind")


@check("config.mounts.option.remount")
def remount(ctx: CheckContext) -> None:
    """A second entry with remount changes the existing mount instead of stacking."""
    b = ctx.bundle()
    b.add_mount(TARGET, "tmpfs", "tmpfs", ["size=1m"])
    b.add_mount(TARGET, "tmpfs", "tmpfs", ["remount", "ro", "size=1m"])
    report = ctx.observe(b)
    at = [m for m in report.mounts if m.point == TARGET]
    ctx.expect(len(at) == 1, f"{len(at)} mounts at {TARGET}, wanted one remounted")
    ctx.expect(at and "ro" in at[-1].options, f"{TARGET} is not read-only after remount")


@check("config.mounts.apply")
def mount_types(ctx: CheckContext) -> None:
    """tmpfs, proc, sysfs, mqueue, devpts, cgroup and bind mounts all appear."""
    src = ctx.scratch("src")
    (src / "hello").write_text("dir bind")
    (ctx.dir / "file.txt").write_text("file bind")
    b = ctx.bundle()
    wanted = {"/mnt/tmpfs": "tmpfs", "/mnt/proc": "proc", "/mnt/sys": "sysfs",
              "/mnt/mqueue": "mqueue", "/mnt/pts": "devpts"}
    for point, fstype in wanted.items():
        opts = ["newinstance"] if fstype == "devpts" else (["ro"] if fstype == "sysfs" else [])
        b.add_mount(point, fstype, fstype, opts)
    b.add_mount("/sys/fs/cgroup", "cgroup", "cgroup", ["ro", "nosuid", "noexec", "nodev"])
    b.add_mount("/mnt/dir", "none", str(src), ["bind"])
    b.add_mount("/mnt/file", "none", str(ctx.dir / "file.txt"), ["bind"])
    report = ctx.observe(b, "--read", "/mnt/dir/hello", "--read", "/mnt/file")
    for point, fstype in wanted.items():
        m = report.mount_at(point)
        ctx.expect(m is not None and m.fstype == fstype,
                   f"{point}: {m.fstype if m else 'nothing'} mounted, wanted {fstype}")
    cg = [m for m in report.mounts if m.point.startswith("/sys/fs/cgroup")
          and m.fstype in ("cgroup", "cgroup2")]
    ctx.expect(cg, "no cgroup filesystem under /sys/fs/cgroup")
    for path, text in (("/mnt/dir/hello", "dir bind"), ("/mnt/file", "file bind")):
        got = report["read"][path].get("data")
        ctx.expect(got == text, f"{path} reads {got!r}, wanted {text!r}")


@check("config.mounts.order")
def mount_order(ctx: CheckContext) -> None:
    """Later entries nest inside and stack over earlier ones."""
    src = ctx.scratch("src")
    b = ctx.bundle()
    b.add_mount("/mnt/a", "tmpfs", "tmpfs", ["size=1m"])
    b.add_mount("/mnt/a/b", "none", str(src), ["bind"])
    b.add_mount("/mnt/c", "tmpfs", "tmpfs", ["size=1m"])
    b.add_mount("/mnt/c", "tmpfs", "tmpfs", ["size=2m"])
    report = ctx.observe(b)
    outer = ctx.need(report.mount_at("/mnt/a"), "nothing mounted at /mnt/a")
    inner = ctx.need(report.mount_at("/mnt/a/b"), "nothing mounted at /mnt/a/b")
    ctx.expect(inner.parent_id == outer.mount_id,
               "/mnt/a/b is not mounted inside the tmpfs at /mnt/a")
    top = report.mount_at("/mnt/c")
    size = top.super_value("size") if top else None
    ctx.expect(size == "2048k", f"the visible /mnt/c has size {size}, wanted the second (2048k)")


@check("config.mounts.relative-destination")
def relative_destination(ctx: CheckContext) -> None:
    """A destination without a leading / is mounted relative to the root."""
    b = ctx.bundle()
    b.add_mount("mnt/relative", "tmpfs", "tmpfs", ["size=1m"])
    m = ctx.observe(b).mount_at("/mnt/relative")
    ctx.expect(m is not None and m.fstype == "tmpfs", "nothing mounted at /mnt/relative")


@check("config.mounts.fs-options")
def filesystem_options(ctx: CheckContext) -> None:
    """size= and mode= reach tmpfs as filesystem data."""
    b = ctx.bundle()
    b.add_mount(TARGET, "tmpfs", "tmpfs", ["size=3m", "mode=0711"])
    m = ctx.need(ctx.observe(b).mount_at(TARGET), f"nothing mounted at {TARGET}")
    ctx.expect(m.super_value("size") == "3072k", f"size is {m.super_value('size')}")
    ctx.expect(m.super_value("mode") == "711", f"mode is {m.super_value('mode')}")


@check("config-linux.default-filesystems")
def default_filesystems(ctx: CheckContext) -> None:
    """The usual /proc, /sys, /dev/pts and /dev/shm have the expected types."""
    report = ctx.observe(ctx.bundle())
    for point, fstype in (("/proc", "proc"), ("/sys", "sysfs"), ("/dev/pts", "devpts"),
                          ("/dev/shm", "tmpfs")):
        m = report.mount_at(point)
        ctx.expect(m is not None and m.fstype == fstype, f"{point} is not {fstype}")


@check("config-linux.rootfsPropagation")
def rootfs_propagation(ctx: CheckContext) -> None:
    """Each rootfsPropagation value shows on the container's / mount.

    The bundle's rootfs is made a shared mount on the host first, so that
    `slave` has a peer group to receive from.
    """
    for kind in ("shared", "slave", "private", "unbindable"):
        b = ctx.bundle(kind)
        host.mount("--bind", str(b.rootfs), str(b.rootfs))
        ctx.defer(partial(host.umount_under, b.rootfs))
        host.mount("--make-shared", str(b.rootfs))
        b.linux["rootfsPropagation"] = kind
        report: ProbeReport = ctx.observe(b)
        root = report.mount_at("/")
        ctx.expect(root is not None and root.propagation == kind,
                   f"{kind}: / has propagation {root.propagation if root else None}")


@check("config.mounts.idmap")
def idmapped_mount(ctx: CheckContext) -> None:
    """An idmap bind mount shows root-owned files as the mapped host id."""
    src = ctx.scratch("src")
    (src / "owned").write_text("")
    os.chown(src / "owned", 0, 0)
    b = ctx.bundle()
    b.add_mount("/mnt/idmap", "none", str(src), ["bind", "idmap"],
                uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
                gidMappings=[{"containerID": 0, "hostID": 2000, "size": 1}])
    st = ctx.observe(b, "--stat", "/mnt/idmap/owned")["stat"]["/mnt/idmap/owned"]
    ctx.expect((st.get("uid"), st.get("gid")) == (1000, 2000),
               f"owner is {st.get('uid')}:{st.get('gid')}, wanted 1000:2000")


@check("config.mounts.idmap-requires-mapping")
def idmap_without_mapping(ctx: CheckContext) -> None:
    """idmap with no mappings and no user namespace is rejected."""
    b = ctx.bundle()
    b.add_mount("/mnt/idmap", "none", str(ctx.scratch("src")), ["bind", "idmap"])
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)


@check("config.mounts.mappings-paired")
def unpaired_mappings(ctx: CheckContext) -> None:
    """uidMappings without gidMappings on a mount is rejected."""
    b = ctx.bundle()
    b.add_mount("/mnt/idmap", "none", str(ctx.scratch("src")), ["bind", "idmap"],
                uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)
