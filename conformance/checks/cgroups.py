"""cgroups: resource limits as the kernel holds them, paths, device rules."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance import host
from conformance.harness import CheckContext
from conformance.registry import check, register

MIB = 1 << 20
Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Variant:
    """Cgroup files to write (to test the host) and lines to find afterwards."""

    writes: Pairs
    expects: Pairs


def same(*pairs: tuple[str, str]) -> Variant:
    """Write each value, then expect it back as a line of the same file."""
    return Variant(pairs, pairs[-1:])


@dataclass(frozen=True)
class ResourceCase:
    """linux.resources fragment, the controller, and how the kernel shows it.

    variants are alternatives (e.g. blkio.weight vs blkio.bfq.weight); the
    first one this host keeps in a scratch cgroup is what the container's
    cgroup must show.  None kept: the check is skipped.
    """

    resources: dict[str, Any]
    controller: str
    variants: tuple[Variant, ...]


def _throttle(dev: tuple[int, int]) -> ResourceCase:
    keys = {"throttleReadBpsDevice": ("read_bps_device", 1048576),
            "throttleWriteBpsDevice": ("write_bps_device", 2097152),
            "throttleReadIOPSDevice": ("read_iops_device", 100),
            "throttleWriteIOPSDevice": ("write_iops_device", 200)}
    major, minor = dev
    pairs = tuple((f"blkio.throttle.{f}", f"{major}:{minor} {rate}") for f, rate in keys.values())
    res = {k: [{"major": major, "minor": minor, "rate": rate}] for k, (_, rate) in keys.items()}
    return ResourceCase({"blockIO": res}, "blkio", (Variant(pairs, pairs),))


def resource_cases() -> dict[str, ResourceCase]:
    """Requirement suffix -> case (the block device is the one under /tmp)."""
    major, minor = host.block_device(Path("/tmp"))
    dev = f"{major}:{minor}"
    mem = "memory"
    return {
        "memory.limit": ResourceCase({"memory": {"limit": 64 * MIB}}, mem,
                                     (same(("memory.limit_in_bytes", str(64 * MIB))),)),
        "memory.reservation": ResourceCase(
            {"memory": {"reservation": 32 * MIB}}, mem,
            (same(("memory.soft_limit_in_bytes", str(32 * MIB))),)),
        "memory.swap": ResourceCase(
            {"memory": {"limit": 64 * MIB, "swap": 128 * MIB}}, mem,
            (same(("memory.limit_in_bytes", str(64 * MIB)),
                  ("memory.memsw.limit_in_bytes", str(128 * MIB))),)),
        "memory.kernel": ResourceCase({"memory": {"kernel": 64 * MIB}}, mem,
                                      (same(("memory.kmem.limit_in_bytes", str(64 * MIB))),)),
        "memory.kernelTCP": ResourceCase(
            {"memory": {"kernelTCP": 16 * MIB}}, mem,
            (same(("memory.kmem.tcp.limit_in_bytes", str(16 * MIB))),)),
        "memory.swappiness": ResourceCase({"memory": {"swappiness": 37}}, mem,
                                          (same(("memory.swappiness", "37")),)),
        "memory.disableOOMKiller": ResourceCase(
            {"memory": {"disableOOMKiller": True}}, mem,
            (Variant((("memory.oom_control", "1"),),
                     (("memory.oom_control", "oom_kill_disable 1"),)),)),
        "memory.useHierarchy": ResourceCase({"memory": {"useHierarchy": True}}, mem,
                                            (same(("memory.use_hierarchy", "1")),)),
        "cpu.shares": ResourceCase({"cpu": {"shares": 512}}, "cpu",
                                   (same(("cpu.shares", "512")),)),
        "cpu.quota": ResourceCase({"cpu": {"quota": 50000, "period": 100000}}, "cpu",
                                  (same(("cpu.cfs_quota_us", "50000")),)),
        "cpu.period": ResourceCase({"cpu": {"quota": 50000, "period": 200000}}, "cpu",
                                   (same(("cpu.cfs_period_us", "200000")),)),
        "cpu.burst": ResourceCase(
            {"cpu": {"quota": 50000, "period": 100000, "burst": 20000}}, "cpu",
            (same(("cpu.cfs_quota_us", "50000"), ("cpu.cfs_burst_us", "20000")),)),
        "cpu.realtimeRuntime": ResourceCase({"cpu": {"realtimeRuntime": 10000}}, "cpu",
                                            (same(("cpu.rt_runtime_us", "10000")),)),
        "cpu.realtimePeriod": ResourceCase({"cpu": {"realtimePeriod": 500000}}, "cpu",
                                           (same(("cpu.rt_period_us", "500000")),)),
        "cpu.cpus": ResourceCase({"cpu": {"cpus": "0"}}, "cpuset",
                                 (same(("cpuset.cpus", "0")),)),
        "cpu.mems": ResourceCase({"cpu": {"mems": "0"}}, "cpuset",
                                 (same(("cpuset.mems", "0")),)),
        "cpu.idle": ResourceCase({"cpu": {"idle": 1}}, "cpu", (same(("cpu.idle", "1")),)),
        "blockIO.weight": ResourceCase(
            {"blockIO": {"weight": 300}}, "blkio",
            (same(("blkio.weight", "300")),
             Variant((("blkio.bfq.weight", "300"),), (("blkio.bfq.weight", "default 300"),)))),
        "blockIO.leafWeight": ResourceCase({"blockIO": {"leafWeight": 300}}, "blkio",
                                           (same(("blkio.leaf_weight", "300")),)),
        "blockIO.weightDevice": ResourceCase(
            {"blockIO": {"weightDevice": [{"major": major, "minor": minor, "weight": 500}]}},
            "blkio", (same(("blkio.weight_device", f"{dev} 500")),
                      same(("blkio.bfq.weight_device", f"{dev} 500")))),
        "blockIO.throttle": _throttle((major, minor)),
        "hugepageLimits": ResourceCase(
            {"hugepageLimits": [{"pageSize": "2MB", "limit": 10 * 2 * MIB}]}, "hugetlb",
            (same(("hugetlb.2MB.rsvd.limit_in_bytes", str(20 * MIB))),
             same(("hugetlb.2MB.limit_in_bytes", str(20 * MIB))))),
        "network.classID": ResourceCase({"network": {"classID": 1048577}}, "net_cls",
                                        (same(("net_cls.classid", "1048577")),)),
        "network.priorities": ResourceCase(
            {"network": {"priorities": [{"name": "lo", "priority": 5}]}}, "net_prio",
            (same(("net_prio.ifpriomap", "lo 5")),)),
        "pids.limit": ResourceCase({"pids": {"limit": 42}}, "pids", (same(("pids.max", "42")),)),
        "pids.zero": ResourceCase({"pids": {"limit": 0}}, "pids", (same(("pids.max", "0")),)),
        "rdma": ResourceCase({"rdma": {"mlx5_0": {"hcaHandles": 3}}}, "rdma",
                             (same(("rdma.max", "mlx5_0 hca_handle=3 hca_object=max")),)),
    }


def _resource_check(suffix: str) -> Callable[[CheckContext], None]:
    def run(ctx: CheckContext) -> None:
        case = resource_cases()[suffix]
        if case.controller not in host.cgroup_mounts():
            ctx.skip(f"no {case.controller} cgroup controller on this host")
        variant = next((v for v in case.variants if host.cgroup_keeps(
            case.controller, list(v.writes), list(v.expects), f"{ctx.id_stem}-scratch")), None)
        if variant is None:
            files = ", ".join(sorted({f for v in case.variants for f, _ in v.expects}))
            ctx.skip(f"this kernel does not keep {files}")
        b = ctx.bundle()
        b.linux["resources"] = case.resources
        b.write()
        c = ctx.container(b)
        c.create()
        cgdir = ctx.need(host.cgroup_dir(c.pid(), case.controller),
                         f"the container is in no {case.controller} cgroup")
        for fname, line in variant.expects:
            lines = (cgdir / fname).read_text().splitlines()
            ctx.expect(line in lines, f"{fname} is {' | '.join(lines)!r}, wanted {line!r}")
        c.delete(force=True)

    run.__doc__ = f"linux.resources {suffix} shows in the container's cgroup."
    return run


for _suffix in ("memory.limit", "memory.reservation", "memory.swap", "memory.kernel",
                "memory.kernelTCP", "memory.swappiness", "memory.disableOOMKiller",
                "memory.useHierarchy", "cpu.shares", "cpu.quota", "cpu.period", "cpu.burst",
                "cpu.realtimeRuntime", "cpu.realtimePeriod", "cpu.cpus", "cpu.mems", "cpu.idle",
                "blockIO.weight", "blockIO.leafWeight", "blockIO.weightDevice",
                "blockIO.throttle", "hugepageLimits", "network.classID",
                "network.priorities", "pids.limit", "pids.zero", "rdma"):
    register(f"cgroups.resources_{_suffix.replace('.', '_')}", "cgroups",
             (f"config-linux.{_suffix}",), _resource_check(_suffix))


@check("config-linux.devices-cgroup.order")
def device_rules_in_order(ctx: CheckContext) -> None:
    """For the same device, the later of an allow and a deny rule wins.

    The node is char 42:42, a number with no driver: an allowed open gives
    ENXIO, a denied one EPERM.
    """
    allow = {"allow": True, "type": "c", "major": 42, "minor": 42, "access": "rwm"}
    deny = {**allow, "allow": False}
    for label, rules, want in (("allow then deny", [allow, deny], errno.EPERM),
                               ("deny then allow", [deny, allow], errno.ENXIO)):
        b = ctx.bundle(label.replace(" ", "-"))
        os.mknod(b.in_rootfs("/testdev"), stat.S_IFCHR | 0o666, os.makedev(42, 42))
        b.linux["resources"] = {"devices": rules}
        got = ctx.observe(b, "--open", "/testdev")["open"]["/testdev"]
        ctx.expect(got == want, f"{label}: open gives errno {got}, wanted "
                                f"{errno.errorcode[want]}")


@check("config-linux.cgroups.path-absolute", "config-linux.cgroups.path-consistent")
def cgroups_path(ctx: CheckContext) -> None:
    """An absolute cgroupsPath is that path in every hierarchy, every time."""
    path = f"/{ctx.id_stem}-cg/leaf"
    b = ctx.bundle()
    b.linux["cgroupsPath"] = path
    b.write()
    seen = []
    for _ in range(2):
        c = ctx.container(b)
        c.create()
        cgroups = {k: v for k, v in host.process_cgroups(c.pid()).items() if k}
        seen.append(cgroups)
        wrong = {k: v for k, v in cgroups.items() if v != path}
        ctx.expect(not wrong, f"not at {path} in: {wrong}", "config-linux.cgroups.path-absolute")
        c.delete(force=True)
    ctx.expect(seen[0] == seen[1], f"second container landed elsewhere: {seen[1]}",
               "config-linux.cgroups.path-consistent")


@check("config-linux.cgroups.ownership-v1")
def no_chown_on_v1(ctx: CheckContext) -> None:
    """A user-namespaced container with a rw cgroup mount does not own its v1 cgroup."""
    from conformance.checks.namespaces import with_user_namespace

    b = ctx.bundle()
    with_user_namespace(b)
    b.set_namespace("cgroup")
    b.add_mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev"])
    b.write()
    c = ctx.container(b)
    c.create()
    cgdir = ctx.need(host.cgroup_dir(c.pid(), "memory"), "the container has no memory cgroup")
    owner = cgdir.stat().st_uid
    ctx.expect(owner == 0, f"{cgdir} is owned by uid {owner}")
    c.delete(force=True)


@check("config-linux.unified.missing-controller")
def unified_without_controller(ctx: CheckContext) -> None:
    """unified settings for a controller cgroup v2 lacks here are rejected."""
    v2 = host.cgroup_mounts().get("")
    if v2 is None:
        ctx.skip("no cgroup v2 hierarchy is mounted")
    if "memory" in (v2 / "cgroup.controllers").read_text().split():
        ctx.skip("the memory controller is available on cgroup v2 here")
    b = ctx.bundle()
    b.linux["resources"] = {"unified": {"memory.max": str(64 * MIB)}}
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)


@check("config-linux.intelRdt.no-resctrl")
def rdt_without_resctrl(ctx: CheckContext) -> None:
    """intelRdt without a mounted resctrl filesystem is rejected."""
    if " resctrl " in Path("/proc/self/mountinfo").read_text():
        ctx.skip("a resctrl filesystem is mounted here")
    b = ctx.bundle()
    b.linux["intelRdt"] = {"closID": "conformance"}
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)
