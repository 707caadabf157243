"""The container process: args, env, cwd, user, capabilities, limits, tty."""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path

from conformance.bundle import PROBE
from conformance.harness import CheckContext
from conformance.linux import IOPRIO_CLASSES, SCHED_POLICIES, cap_mask, cap_names
from conformance.registry import check


@check("config.process.cwd")
def cwd(ctx: CheckContext) -> None:
    """The probe starts in process.cwd."""
    b = ctx.bundle()
    b.in_rootfs("/work/sub").mkdir(parents=True)
    b.process["cwd"] = "/work/sub"
    got = ctx.observe(b).data.get("cwd")
    ctx.expect(got == "/work/sub", f"cwd is {got!r}")


@check("config.process.env")
def env(ctx: CheckContext) -> None:
    """Each configured variable arrives with its exact value."""
    b = ctx.bundle()
    wanted = ["PATH=/bin:/usr/bin", "CONF_A=1", "CONF_SPACES=two words", "CONF_EMPTY=",
              "CONF_EQ=a=b"]
    b.process["env"] = wanted
    seen = ctx.observe(b)["env"]
    missing = [e for e in wanted if e not in seen]
    ctx.expect(not missing, f"missing or changed: {missing} (process saw {seen})")


@check("config.process.args")
def args(ctx: CheckContext) -> None:
    """argv is process.args verbatim; a bare args[0] is looked up in PATH."""
    b = ctx.bundle()
    b.process["env"] = ["PATH=/nonexistent:/"]
    b.process["args"] = ["probe", "with space", "", "--stat", "/"]
    b.write()
    report = ctx.observe(b, write=False)
    ctx.expect(report["argv"] == b.process["args"], f"argv is {report['argv']}")


@check("config.process.user", "config.process.additionalGids", "config.process.umask")
def user(ctx: CheckContext) -> None:
    """uid, gid, supplementary groups and umask as configured."""
    b = ctx.bundle()
    b.process["user"] = {"uid": 1234, "gid": 2345, "additionalGids": [5, 6, 3456],
                         "umask": 0o027}
    report = ctx.observe(b)
    u = report["user"]
    ctx.expect((u["uid"], u["euid"], u["suid"]) == (1234,) * 3, f"uids {u}",
               "config.process.user")
    ctx.expect((u["gid"], u["egid"], u["sgid"]) == (2345,) * 3, f"gids {u}",
               "config.process.user")
    groups = set(u["groups"]) - {2345}
    ctx.expect(groups == {5, 6, 3456}, f"supplementary groups {u['groups']}",
               "config.process.additionalGids")
    ctx.expect(report["umask"] == 0o027, f"umask {report['umask']:04o}", "config.process.umask")


def _below_our_limit(res: int, want: int) -> int:
    """want, clamped to our own hard limit (a runtime cannot raise it)."""
    hard = resource.getrlimit(res)[1]
    return want if hard == resource.RLIM_INFINITY else min(want, hard)


@check("config.process.rlimits")
def rlimits(ctx: CheckContext) -> None:
    """getrlimit inside equals each configured soft/hard pair."""
    wanted = {
        "RLIMIT_NOFILE": (_below_our_limit(resource.RLIMIT_NOFILE, 1000),
                          _below_our_limit(resource.RLIMIT_NOFILE, 2000)),
        "RLIMIT_CORE": (0, _below_our_limit(resource.RLIMIT_CORE, 4096)),
        "RLIMIT_NPROC": (_below_our_limit(resource.RLIMIT_NPROC, 500),
                         _below_our_limit(resource.RLIMIT_NPROC, 600)),
        "RLIMIT_MSGQUEUE": (_below_our_limit(resource.RLIMIT_MSGQUEUE, 8192),
                            _below_our_limit(resource.RLIMIT_MSGQUEUE, 16384)),
    }
    b = ctx.bundle()
    b.process["rlimits"] = [{"type": t, "soft": s, "hard": h} for t, (s, h) in wanted.items()]
    seen = ctx.observe(b)["rlimits"]
    for name, (soft, hard) in wanted.items():
        got = seen.get(name)
        ctx.expect(got == {"soft": soft, "hard": hard},
                   f"{name} is {got}, wanted soft {soft} hard {hard}")


@check("runtime.create.cannot-apply")
def rlimit_above_hard_limit(ctx: CheckContext) -> None:
    """A hard rlimit above the caller's own (no CAP_SYS_RESOURCE) must be an error."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    status = Path("/proc/self/status").read_text()
    cap_eff = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("CapEff")), 16)
    if hard == resource.RLIM_INFINITY or cap_eff & cap_mask(["CAP_SYS_RESOURCE"]):
        ctx.skip("we may raise RLIMIT_NOFILE here, so no value is unapplicable")
    b = ctx.bundle()
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard, "hard": hard + 1}]
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, f"hard RLIMIT_NOFILE {hard + 1} > our {hard}: {detail}")


_CAPS_BOUNDING = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
                  "CAP_AUDIT_WRITE"]
_CAPS_INHERITABLE = ["CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"]
_CAPS_AMBIENT = ["CAP_NET_BIND_SERVICE"]


@check("config.process.capabilities")
def capabilities(ctx: CheckContext) -> None:
    """All five sets match, for root and for an unprivileged user.

    The sets are chosen to be stable across execve: for root permitted and
    effective are bounding (plus inheritable); for another user they are
    what ambient keeps.
    """
    cases = {
        "root": ({"uid": 0, "gid": 0}, _CAPS_BOUNDING, _CAPS_BOUNDING),
        "uid 1000": ({"uid": 1000, "gid": 1000}, _CAPS_AMBIENT, _CAPS_AMBIENT),
    }
    for label, (usr, permitted, effective) in cases.items():
        b = ctx.bundle(label.replace(" ", "-"))
        b.process["user"] = usr
        configured = {"bounding": _CAPS_BOUNDING, "permitted": permitted,
                      "effective": effective, "inheritable": _CAPS_INHERITABLE,
                      "ambient": _CAPS_AMBIENT}
        b.process["capabilities"] = configured
        report = ctx.observe(b)
        for kind, names in configured.items():
            got = report.caps(kind)
            ctx.expect(got == cap_mask(names),
                       f"{label}: {kind} is {cap_names(got)}, wanted {sorted(names)}")


@check("config.process.capabilities-unknown")
def unknown_capability(ctx: CheckContext) -> None:
    """A capability the kernel does not know does not stop the container."""
    b = ctx.bundle()
    caps = b.process["capabilities"]
    for kind in caps:
        caps[kind] = [*caps[kind], "CAP_CONFORMANCE_UNKNOWN"]
    ctx.observe(b)


@check("config.process.noNewPrivileges")
def no_new_privileges(ctx: CheckContext) -> None:
    """NoNewPrivs is 1 with noNewPrivileges true and 0 with false."""
    for flag, want in ((True, "1"), (False, "0")):
        b = ctx.bundle(f"nnp-{flag}")
        b.process["noNewPrivileges"] = flag
        got = ctx.observe(b).status("NoNewPrivs")
        ctx.expect(got == want, f"noNewPrivileges {flag}: NoNewPrivs is {got!r}")


@check("config.process.oomScoreAdj", "config.process.oomScoreAdj-unset")
def oom_score_adj(ctx: CheckContext) -> None:
    """oomScoreAdj is applied; unset, the caller's value is inherited."""
    b = ctx.bundle("set")
    b.process["oomScoreAdj"] = 321
    got = ctx.observe(b)["oom_score_adj"]
    ctx.expect(got == 321, f"oom_score_adj is {got}, wanted 321", "config.process.oomScoreAdj")
    b = ctx.bundle("unset")
    b.process["args"] = [PROBE]
    b.write()
    c = ctx.container(b)
    c.create(oom_score_adj=123)
    c.start()
    c.wait_stopped()
    got = c.report()["oom_score_adj"]
    ctx.expect(got == 123, f"oom_score_adj is {got}, the runtime's caller had 123",
               "config.process.oomScoreAdj-unset")


@check("config.process.scheduler")
def scheduler(ctx: CheckContext) -> None:
    """SCHED_BATCH with nice 7 is the probe's policy and nice value."""
    b = ctx.bundle()
    b.process["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    sched = ctx.observe(b)["sched"]
    ctx.expect(sched["policy"] == SCHED_POLICIES["SCHED_BATCH"], f"policy is {sched['policy']}")
    ctx.expect(sched["nice"] == 7, f"nice is {sched['nice']}")


@check("config.process.ioPriority")
def io_priority(ctx: CheckContext) -> None:
    """ioprio_get shows the configured class and level."""
    b = ctx.bundle()
    b.process["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    got = ctx.observe(b)["sched"]["ioprio"]
    want = IOPRIO_CLASSES["IOPRIO_CLASS_BE"] << 13 | 6
    ctx.expect(got == want, f"ioprio is {got:#x}, wanted {want:#x}")


@check("config.process.execCPUAffinity")
def exec_cpu_affinity(ctx: CheckContext) -> None:
    """A process added with exec runs on execCPUAffinity.final."""
    if (os.cpu_count() or 1) < 2:
        ctx.skip("needs at least two CPUs to see an affinity change")
    b = ctx.bundle()
    b.process["args"] = ["/bin/sleep", "1000"]
    b.write()
    c = ctx.container(b)
    c.create()
    c.start()
    process = json.loads(json.dumps(b.process))
    process.update(args=[PROBE], execCPUAffinity={"final": "0"})
    c.exec(process)
    got = c.report()["sched"]["affinity"]
    ctx.expect(got == [0], f"exec'd process runs on CPUs {got}, wanted [0]")


@check("config.process.terminal", "config-linux.devices.console")
def terminal(ctx: CheckContext) -> None:
    """With terminal, stdio is a pty received on the console socket, /dev/console too."""
    b = ctx.bundle()
    report = ctx.observe(b, "--stat", "/dev/console", terminal=True)
    stdio = report["stdio"]
    ctx.expect(all(s.get("tty") for s in stdio), f"stdio is not a terminal: {stdio}",
               "config.process.terminal")
    console = report["stat"]["/dev/console"]
    ctx.expect(console.get("type") == "c" and
               (console.get("major"), console.get("minor")) ==
               (stdio[0].get("major"), stdio[0].get("minor")),
               f"/dev/console {console} is not the pty {stdio[0]}",
               "config-linux.devices.console")


@check("config.process.consoleSize-ignored")
def console_size_without_terminal(ctx: CheckContext) -> None:
    """consoleSize with terminal false is ignored: no error and no tty."""
    b = ctx.bundle()
    b.process["consoleSize"] = {"height": 10, "width": 40}
    stdio = ctx.observe(b)["stdio"]
    ctx.expect(not any(s.get("tty") for s in stdio), f"stdio is a terminal: {stdio}")
