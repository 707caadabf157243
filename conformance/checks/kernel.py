"""Kernel-visible settings: UTS names, sysctls, personality, NUMA, clocks."""

from __future__ import annotations

import time

from conformance.harness import CheckContext
from conformance.linux import MEMPOLICY_MODES, PER_LINUX32
from conformance.registry import check

DAY = 86400


@check("config.hostname", "config.domainname")
def uts_names(ctx: CheckContext) -> None:
    """uname shows the configured host and domain names."""
    b = ctx.bundle()
    b.config["hostname"] = "conf-host"
    b.config["domainname"] = "conf.example"
    uts = ctx.observe(b)["uname"]
    ctx.expect(uts.get("nodename") == "conf-host", f"hostname is {uts.get('nodename')!r}",
               "config.hostname")
    ctx.expect(uts.get("domainname") == "conf.example",
               f"domainname is {uts.get('domainname')!r}", "config.domainname")


@check("config-linux.sysctl")
def sysctls(ctx: CheckContext) -> None:
    """Network and IPC namespaced sysctls read back as configured."""
    wanted = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"}
    b = ctx.bundle()
    b.linux["sysctl"] = wanted
    args = [a for k in wanted for a in ("--sysctl", k)]
    seen = ctx.observe(b, *args)["sysctl"]
    for key, value in wanted.items():
        ctx.expect(seen.get(key) == value, f"{key} is {seen.get(key)!r}, wanted {value!r}")


@check("config-linux.personality")
def personality(ctx: CheckContext) -> None:
    """LINUX32 sets the PER_LINUX32 persona (uname reports a 32-bit machine)."""
    b = ctx.bundle()
    b.linux["personality"] = {"domain": "LINUX32"}
    report = ctx.observe(b)
    persona = report["sched"]["personality"]
    ctx.expect(persona & 0xFF == PER_LINUX32,
               f"personality is {persona:#x}, machine {report['uname']['machine']}")


@check("config-linux.memoryPolicy")
def memory_policy(ctx: CheckContext) -> None:
    """MPOL_INTERLEAVE over node 0 is the probe's NUMA policy."""
    b = ctx.bundle()
    b.linux["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "0"}
    sched = ctx.observe(b)["sched"]
    ctx.expect(sched.get("mempolicy") == MEMPOLICY_MODES["MPOL_INTERLEAVE"]
               and sched.get("mempolicy_nodes") == 1,
               f"mempolicy is {sched.get('mempolicy')} nodes {sched.get('mempolicy_nodes')}")


@check("config-linux.timeOffsets")
def time_offsets(ctx: CheckContext) -> None:
    """Clocks in a new time namespace are shifted by the configured seconds."""
    offsets = {"monotonic": 10 * DAY, "boottime": 20 * DAY}
    b = ctx.bundle()
    b.set_namespace("time")
    b.linux["timeOffsets"] = {k: {"secs": v, "nanosecs": 0} for k, v in offsets.items()}
    clocks = ctx.observe(b)["clocks"]
    now = {"monotonic": time.clock_gettime(time.CLOCK_MONOTONIC),
           "boottime": time.clock_gettime(time.CLOCK_BOOTTIME)}
    for name, offset in offsets.items():
        shift = clocks[name] - now[name]
        ctx.expect(abs(shift - offset) < 60, f"{name} is shifted by {shift:.0f}s, "
                                              f"wanted {offset}s")
