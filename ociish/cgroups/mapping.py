"""`linux.resources` → cgroup file writes, as pure functions (docs/cgroups.md "Resources → files").

`v1_plan` / `v2_plan` return every write in the order it must happen, each tagged with
the config field to blame if the host refuses it.  `v1_writes` / `v2_writes` are the
same lists stripped to `(controller, file, value)` / `(file, value)` for golden tests.
Nothing here touches the filesystem: `CgroupManager.apply` feeds in the one host fact
the order depends on (the current memory limit) and does the writing.

Zero means "unset" for the limits runc treats that way (memory limits, cpu shares,
quota, periods, realtime runtime, blkio weight), because Go-generated configs emit
zero values; pids.limit 0 is a real limit as the spec requires.
"""

from __future__ import annotations

import math
from collections import namedtuple

from ociish.cgroups import devices
from ociish.errors import ConfigError, NotSupportedError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

R = "linux.resources"
CFS_PERIOD_MIN, CFS_PERIOD_MAX = 1000, 1_000_000  # µs: what the kernel accepts for a cfs period (and quota's minimum)


class Write(namedtuple("Write", "field controller filename value fallback optional", defaults=(None, False))):
    """One file write.  `controller` is the v1 controller, or the v2 file prefix;
    `fallback` is the (filename, value) to write instead when `filename` does not exist on
    the host; `optional` skips it silently then (a kernel feature that may be absent)."""

    __slots__ = ()


# ---------------------------------------------------------------- value helpers


def _section(obj: dict[str, Any], key: str, field: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"{field}: expected an object, got {value!r}")
    return value


def _list(obj: dict[str, Any], key: str, field: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{field}: expected an array, got {value!r}")
    return value


def _int(value: Any, field: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{field}: must be >= {minimum}, got {value}")
    return value


def _opt_int(obj: dict[str, Any], key: str, field: str, minimum: int | None = None) -> int | None:
    """An integer where 0 (like absence) means unset."""
    value = obj.get(key)
    if value is None:
        return None
    return _int(value, field, minimum) or None


def _bool(obj: dict[str, Any], key: str, field: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{field}: expected a boolean, got {value!r}")
    return value


def _str(obj: dict[str, Any], key: str, field: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{field}: expected a string, got {value!r}")
    return value or None


def _v2_limit(value: int) -> str:
    return "max" if value < 0 else str(value)


def _device(entry: Any, field: str) -> str:
    """The `major:minor` of a blockIO entry (both required)."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{field}: expected an object, got {entry!r}")
    major = _int(entry.get("major"), f"{field}.major", 0)
    minor = _int(entry.get("minor"), f"{field}.minor", 0)
    return f"{major}:{minor}"


# ---------------------------------------------------------------- conversions


def cpu_shares_to_weight(shares: int) -> int:
    """cgroup v2 cpu.weight for v1 cpu.shares: runc's quadratic fit, 2→1, 1024→100, 262144→10000."""
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    log = math.log2(shares)
    return math.ceil(10 ** ((log * log + 125 * log) / 612 - 7 / 34))


def blkio_weight_to_io_weight(weight: int, field: str = f"{R}.blockIO.weight") -> int:
    """cgroup v2 io.weight (1..10000) for a v1 blkio weight (10..1000), linearly."""
    if not 10 <= weight <= 1000:
        raise ConfigError(f"{field}: must be between 10 and 1000, got {weight}")
    return 1 + (weight - 10) * 9999 // 990


def _check_swap(limit: int | None, swap: int | None) -> None:
    """`swap` is memory+swap, so a finite one may not be below the memory limit."""
    if limit is not None and swap is not None and 0 < swap < limit:
        raise ConfigError(f"{R}.memory.swap: memory+swap ({swap}) must be >= memory.limit ({limit})")


def swap_to_v2(limit: int | None, swap: int | None) -> str | None:
    """memory.swap.max for the spec's memory+swap `swap`: cgroup v2 limits swap alone."""
    if swap is None:
        return "max" if limit == -1 else None
    if swap == -1:
        return "max"
    if limit is None or limit == -1:
        raise ConfigError(f"{R}.memory.swap: a swap limit needs a memory limit on cgroup v2")
    _check_swap(limit, swap)
    return str(swap - limit)


def _memory_limits(mem: dict[str, Any]) -> tuple[int | None, int | None]:
    """Validated (limit, swap), None meaning unset."""
    limit = _opt_int(mem, "limit", f"{R}.memory.limit", -1)
    swap = _opt_int(mem, "swap", f"{R}.memory.swap", -1)
    _check_swap(limit, swap)
    return limit, swap


def _swappiness(mem: dict[str, Any]) -> int | None:
    value = mem.get("swappiness")
    if value is None or value == -1:  # -1 is Docker's "unset"
        return None
    value = _int(value, f"{R}.memory.swappiness")
    if not 0 <= value <= 100:
        raise ConfigError(f"{R}.memory.swappiness: must be between 0 and 100, got {value}")
    return value


def _cpu_values(cpu: dict[str, Any]) -> dict[str, int | None]:
    f = f"{R}.cpu"
    values = {
        "shares": _opt_int(cpu, "shares", f"{f}.shares", 0),
        "quota": _opt_int(cpu, "quota", f"{f}.quota"),
        "period": _opt_int(cpu, "period", f"{f}.period", 0),
        "realtimeRuntime": _opt_int(cpu, "realtimeRuntime", f"{f}.realtimeRuntime", -1),
        "realtimePeriod": _opt_int(cpu, "realtimePeriod", f"{f}.realtimePeriod", 0),
        "burst": None if cpu.get("burst") is None else _int(cpu["burst"], f"{f}.burst", 0),
        "idle": None if cpu.get("idle") is None else _int(cpu["idle"], f"{f}.idle"),
    }
    if values["idle"] not in (None, 0, 1):
        raise ConfigError(f"{f}.idle: must be 0 or 1, got {values['idle']}")
    quota, burst, period = values["quota"], values["burst"], values["period"]
    if burst is not None and quota is not None and 0 < quota < burst:
        raise ConfigError(f"{f}.burst: {burst} exceeds cpu.quota {quota}")
    # the kernel's bandwidth bounds (tg_set_cfs_bandwidth): EINVAL otherwise
    if period is not None and not CFS_PERIOD_MIN <= period <= CFS_PERIOD_MAX:
        raise ConfigError(f"{f}.period: must be between {CFS_PERIOD_MIN} and {CFS_PERIOD_MAX} µs, got {period}")
    if quota is not None and 0 < quota < CFS_PERIOD_MIN:
        raise ConfigError(f"{f}.quota: must be at least {CFS_PERIOD_MIN} µs (or -1, unlimited), got {quota}")
    runtime, rt_period = values["realtimeRuntime"], values["realtimePeriod"]
    if runtime is not None and rt_period is not None and runtime > rt_period:
        raise ConfigError(f"{f}.realtimeRuntime: {runtime} exceeds cpu.realtimePeriod {rt_period}")
    return values


def _hugepages(resources: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(field, pageSize, limit) per entry, pageSize in the kernel's `2MB`/`1GB` spelling."""
    out = []
    for i, entry in enumerate(_list(resources, "hugepageLimits", f"{R}.hugepageLimits")):
        import re  # here, not at the top: a config without hugepage limits is mapped without re (enum)

        field = f"{R}.hugepageLimits[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{field}: expected an object, got {entry!r}")
        size = entry.get("pageSize")
        if not isinstance(size, str) or not re.fullmatch(r"[1-9][0-9]*[KMGTPE]?B", size):
            raise ConfigError(f"{field}.pageSize: expected a size like '2MB' or '1GB', got {size!r}")
        out.append((field, size, _int(entry.get("limit"), f"{field}.limit", 0)))
    return out


def _rdma(resources: dict[str, Any]) -> list[Write]:
    """rdma.max lines; the file and format are the same on v1 and v2."""
    rdma = _section(resources, "rdma", f"{R}.rdma") or {}
    writes = []
    for dev, limits in rdma.items():
        field = f"{R}.rdma.{dev}"
        if not isinstance(limits, dict):
            raise ConfigError(f"{field}: expected an object, got {limits!r}")
        parts = [dev]
        for key, kernel_key in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")):
            if limits.get(key) is not None:
                parts.append(f"{kernel_key}={_int(limits[key], f'{field}.{key}', 0)}")
        if len(parts) == 1:
            raise ConfigError(f"{field}: set at least one of hcaHandles, hcaObjects")
        writes.append(Write(field, "rdma", "rdma.max", " ".join(parts)))
    return writes


def _pids(resources: dict[str, Any]) -> list[Write]:
    """pids.max on both versions; -1 (any negative) is unlimited, 0 is a real limit."""
    pids = _section(resources, "pids", f"{R}.pids") or {}
    if pids.get("limit") is None:
        return []
    limit = _int(pids["limit"], f"{R}.pids.limit")
    return [Write(f"{R}.pids.limit", "pids", "pids.max", _v2_limit(limit))]


_THROTTLE = (
    ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
    ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
    ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
    ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"),
)


def _throttles(blkio: dict[str, Any]) -> list[tuple[str, str, str, str, int]]:
    """(field, v1 file, v2 key, major:minor, rate) for every throttle entry, in config order."""
    out = []
    for key, v1_file, v2_key in _THROTTLE:
        for i, entry in enumerate(_list(blkio, key, f"{R}.blockIO.{key}")):
            field = f"{R}.blockIO.{key}[{i}]"
            dev = _device(entry, field)
            out.append((field, v1_file, v2_key, dev, _int(entry.get("rate"), f"{field}.rate", 0)))
    return out


def _weight_devices(blkio: dict[str, Any]) -> list[tuple[str, str, int | None, int | None]]:
    """(field, major:minor, weight, leafWeight) per weightDevice entry."""
    out = []
    for i, entry in enumerate(_list(blkio, "weightDevice", f"{R}.blockIO.weightDevice")):
        field = f"{R}.blockIO.weightDevice[{i}]"
        dev = _device(entry, field)
        weight = _opt_int(entry, "weight", f"{field}.weight", 0)
        leaf = _opt_int(entry, "leafWeight", f"{field}.leafWeight", 0)
        if weight is None and leaf is None:
            raise ConfigError(f"{field}: set at least one of weight, leafWeight")
        out.append((field, dev, weight, leaf))
    return out


# ---------------------------------------------------------------- cgroup v1


def _v1_memory(mem: dict[str, Any], current_limit: int | None) -> list[Write]:
    f = f"{R}.memory"
    limit, swap = _memory_limits(mem)
    writes = []
    if limit is not None:
        writes.append(Write(f"{f}.limit", "memory", "memory.limit_in_bytes", str(limit)))
    if swap is not None:
        memsw = Write(f"{f}.swap", "memory", "memory.memsw.limit_in_bytes", str(swap))
        # The kernel keeps memsw >= memory at every instant: raise memsw first when the
        # new memsw is above the current memory limit (or unlimited), else lower memory
        # first.  An unknown current limit is a fresh cgroup, i.e. unlimited.
        raise_first = swap == -1 or (current_limit is not None and current_limit < swap)
        writes.insert(0 if raise_first else len(writes), memsw)
    for key, filename in (
        ("reservation", "memory.soft_limit_in_bytes"),
        ("kernel", "memory.kmem.limit_in_bytes"),
        ("kernelTCP", "memory.kmem.tcp.limit_in_bytes"),
    ):
        value = _opt_int(mem, key, f"{f}.{key}", -1)
        if value is not None:
            writes.append(Write(f"{f}.{key}", "memory", filename, str(value)))
    swappiness = _swappiness(mem)
    if swappiness is not None:
        writes.append(Write(f"{f}.swappiness", "memory", "memory.swappiness", str(swappiness)))
    for key, filename in (("disableOOMKiller", "memory.oom_control"), ("useHierarchy", "memory.use_hierarchy")):
        flag = _bool(mem, key, f"{f}.{key}")
        if flag is not None:
            writes.append(Write(f"{f}.{key}", "memory", filename, "1" if flag else "0"))
    _bool(mem, "checkBeforeUpdate", f"{f}.checkBeforeUpdate")  # v1: the kernel itself refuses
    return writes


def _v1_cpu(cpu: dict[str, Any]) -> list[Write]:
    f = f"{R}.cpu"
    v = _cpu_values(cpu)
    writes = []
    if v["idle"] is not None:
        writes.append(Write(f"{f}.idle", "cpu", "cpu.idle", str(v["idle"])))
    if v["shares"] is not None and v["idle"] != 1:  # the kernel refuses shares on an idle group
        writes.append(Write(f"{f}.shares", "cpu", "cpu.shares", str(v["shares"])))
    for key, filename in (
        ("period", "cpu.cfs_period_us"),
        ("quota", "cpu.cfs_quota_us"),
        ("burst", "cpu.cfs_burst_us"),
        ("realtimePeriod", "cpu.rt_period_us"),
        ("realtimeRuntime", "cpu.rt_runtime_us"),
    ):
        value = v[key]
        if value is not None:
            text = "-1" if key == "quota" and value < 0 else str(value)
            writes.append(Write(f"{f}.{key}", "cpu", filename, text))
    for key in ("cpus", "mems"):
        cpuset = _str(cpu, key, f"{f}.{key}")
        if cpuset is not None:
            writes.append(Write(f"{f}.{key}", "cpuset", f"cpuset.{key}", cpuset))
    return writes


def _v1_blkio(blkio: dict[str, Any]) -> list[Write]:
    f = f"{R}.blockIO"
    writes = []
    weight = _opt_int(blkio, "weight", f"{f}.weight", 0)
    if weight is not None:
        writes.append(Write(f"{f}.weight", "blkio", "blkio.weight", str(weight), ("blkio.bfq.weight", str(weight))))
    leaf = _opt_int(blkio, "leafWeight", f"{f}.leafWeight", 0)
    if leaf is not None:
        writes.append(Write(f"{f}.leafWeight", "blkio", "blkio.leaf_weight", str(leaf)))
    for field, dev, dev_weight, dev_leaf in _weight_devices(blkio):
        if dev_weight is not None:
            line = f"{dev} {dev_weight}"
            fallback = ("blkio.bfq.weight_device", line)
            writes.append(Write(f"{field}.weight", "blkio", "blkio.weight_device", line, fallback))
        if dev_leaf is not None:
            writes.append(Write(f"{field}.leafWeight", "blkio", "blkio.leaf_weight_device", f"{dev} {dev_leaf}"))
    for field, v1_file, _, dev, rate in _throttles(blkio):
        writes.append(Write(field, "blkio", v1_file, f"{dev} {rate}"))
    return writes


def _v1_network(net: dict[str, Any]) -> list[Write]:
    f = f"{R}.network"
    writes = []
    if net.get("classID") is not None:
        class_id = _int(net["classID"], f"{f}.classID", 0)
        writes.append(Write(f"{f}.classID", "net_cls", "net_cls.classid", str(class_id)))
    for i, prio in enumerate(_list(net, "priorities", f"{f}.priorities")):
        field = f"{f}.priorities[{i}]"
        if not isinstance(prio, dict) or not isinstance(prio.get("name"), str) or not prio["name"]:
            raise ConfigError(f"{field}: expected an object with a 'name', got {prio!r}")
        value = _int(prio.get("priority"), f"{field}.priority", 0)
        writes.append(Write(field, "net_prio", "net_prio.ifpriomap", f"{prio['name']} {value}"))
    return writes


def v1_plan(resources: dict[str, Any], current_memory_limit: int | None = None) -> list[Write]:
    """Every cgroup v1 write for `resources`, in order; devices get the runtime defaults appended."""
    if not isinstance(resources, dict):
        raise ConfigError(f"{R}: expected an object, got {resources!r}")
    if _section(resources, "unified", f"{R}.unified"):
        raise NotSupportedError(f"{R}.unified", "needs a cgroup v2 host; this host's controllers are on cgroup v1")
    writes: list[Write] = []
    mem = _section(resources, "memory", f"{R}.memory")
    if mem:
        writes += _v1_memory(mem, current_memory_limit)
    cpu = _section(resources, "cpu", f"{R}.cpu")
    if cpu:
        writes += _v1_cpu(cpu)
    writes += _pids(resources)
    blkio = _section(resources, "blockIO", f"{R}.blockIO")
    if blkio:
        writes += _v1_blkio(blkio)
    for field, size, limit in _hugepages(resources):
        writes.append(Write(field, "hugetlb", f"hugetlb.{size}.limit_in_bytes", str(limit)))
        writes.append(Write(field, "hugetlb", f"hugetlb.{size}.rsvd.limit_in_bytes", str(limit), optional=True))
    net = _section(resources, "network", f"{R}.network")
    if net:
        writes += _v1_network(net)
    writes += _rdma(resources)
    if resources.get("devices") is not None:
        for i, rule in enumerate(devices.normalize_rules(resources["devices"])):
            field = f"{devices.FIELD}[{i}]" if i < len(resources["devices"]) else f"{devices.FIELD} (runtime default)"
            filename = "devices.allow" if rule["allow"] else "devices.deny"
            writes.append(Write(field, "devices", filename, devices.v1_line(rule)))
    return writes


def v1_writes(resources: dict[str, Any], current_memory_limit: int | None = None) -> list[tuple[str, str, str]]:
    """`v1_plan` as (controller, file, value) triples."""
    return [(w.controller, w.filename, w.value) for w in v1_plan(resources, current_memory_limit)]


# ---------------------------------------------------------------- cgroup v2


def _v2_memory(mem: dict[str, Any]) -> list[Write]:
    f = f"{R}.memory"
    limit, swap = _memory_limits(mem)
    writes = []
    if limit is not None:
        writes.append(Write(f"{f}.limit", "memory", "memory.max", _v2_limit(limit)))
    swap_max = swap_to_v2(limit, swap)
    if swap_max is not None:
        writes.append(Write(f"{f}.swap", "memory", "memory.swap.max", swap_max))
    reservation = _opt_int(mem, "reservation", f"{f}.reservation", -1)
    if reservation is not None:
        writes.append(Write(f"{f}.reservation", "memory", "memory.low", _v2_limit(reservation)))
    # kernel / kernelTCP: v2 accounts kernel memory inside memory.max; nothing to set.
    _opt_int(mem, "kernel", f"{f}.kernel", -1)
    _opt_int(mem, "kernelTCP", f"{f}.kernelTCP", -1)
    if _swappiness(mem) is not None:
        raise NotSupportedError(f"{f}.swappiness", "cgroup v2 has no per-cgroup swappiness")
    if _bool(mem, "disableOOMKiller", f"{f}.disableOOMKiller"):
        raise NotSupportedError(f"{f}.disableOOMKiller", "cgroup v2 cannot disable the OOM killer")
    if _bool(mem, "useHierarchy", f"{f}.useHierarchy") is False:
        raise NotSupportedError(f"{f}.useHierarchy", "cgroup v2 accounting is always hierarchical")
    _bool(mem, "checkBeforeUpdate", f"{f}.checkBeforeUpdate")  # enforced by CgroupManager.apply
    return writes


def _v2_cpu(cpu: dict[str, Any]) -> list[Write]:
    f = f"{R}.cpu"
    v = _cpu_values(cpu)
    if v["realtimeRuntime"] is not None or v["realtimePeriod"] is not None:
        key = "realtimeRuntime" if v["realtimeRuntime"] is not None else "realtimePeriod"
        raise NotSupportedError(f"{f}.{key}", "cgroup v2 has no realtime group scheduling")
    writes = []
    if v["idle"] is not None:
        writes.append(Write(f"{f}.idle", "cpu", "cpu.idle", str(v["idle"])))
    if v["shares"] is not None and v["idle"] != 1:
        writes.append(Write(f"{f}.shares", "cpu", "cpu.weight", str(cpu_shares_to_weight(v["shares"]))))
    quota, period = v["quota"], v["period"]
    if quota is not None or period is not None:
        text = "max" if quota is None or quota < 0 else str(quota)
        if period is not None:
            text += f" {period}"
        writes.append(Write(f"{f}.quota" if quota is not None else f"{f}.period", "cpu", "cpu.max", text))
    if v["burst"] is not None:
        writes.append(Write(f"{f}.burst", "cpu", "cpu.max.burst", str(v["burst"])))
    for key in ("cpus", "mems"):
        cpuset = _str(cpu, key, f"{f}.{key}")
        if cpuset is not None:
            writes.append(Write(f"{f}.{key}", "cpuset", f"cpuset.{key}", cpuset))
    return writes


def _v2_io(blkio: dict[str, Any]) -> list[Write]:
    f = f"{R}.blockIO"
    writes = []
    if _opt_int(blkio, "leafWeight", f"{f}.leafWeight", 0) is not None:
        raise NotSupportedError(f"{f}.leafWeight", "cgroup v2 has no leaf weight")
    weight = _opt_int(blkio, "weight", f"{f}.weight", 0)
    if weight is not None:
        io_weight = blkio_weight_to_io_weight(weight)
        writes.append(Write(f"{f}.weight", "io", "io.bfq.weight", str(weight), ("io.weight", f"default {io_weight}")))
    for field, dev, dev_weight, dev_leaf in _weight_devices(blkio):
        if dev_leaf is not None:
            raise NotSupportedError(f"{field}.leafWeight", "cgroup v2 has no leaf weight")
        assert dev_weight is not None  # _weight_devices refuses entries with neither
        io_weight = blkio_weight_to_io_weight(dev_weight, f"{field}.weight")
        writes.append(
            Write(f"{field}.weight", "io", "io.bfq.weight", f"{dev} {dev_weight}", ("io.weight", f"{dev} {io_weight}"))
        )
    per_device: dict[str, tuple[str, list[str]]] = {}
    for field, _, v2_key, dev, rate in _throttles(blkio):
        per_device.setdefault(dev, (field, []))[1].append(f"{v2_key}={rate}")
    for dev, (field, limits) in per_device.items():
        writes.append(Write(field, "io", "io.max", " ".join([dev, *limits])))
    return writes


def _unified(resources: dict[str, Any]) -> list[Write]:
    """`unified` keys are file names written verbatim, after everything else."""
    writes = []
    for key, value in (_section(resources, "unified", f"{R}.unified") or {}).items():
        import re  # as in _hugepages

        field = f"{R}.unified.{key}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*\.[A-Za-z0-9_.\-]+", key) or ".." in key:
            raise ConfigError(f"{field}: not a cgroup v2 file name")
        if not isinstance(value, str):
            raise ConfigError(f"{field}: expected a string, got {value!r}")
        writes.append(Write(field, key.split(".", 1)[0], key, value))
    return writes


def v2_plan(resources: dict[str, Any]) -> list[Write]:
    """Every cgroup v2 write for `resources`, in order, `unified` last so it overrides."""
    if not isinstance(resources, dict):
        raise ConfigError(f"{R}: expected an object, got {resources!r}")
    writes: list[Write] = []
    cpu = _section(resources, "cpu", f"{R}.cpu")
    if cpu:
        writes += _v2_cpu(cpu)
    mem = _section(resources, "memory", f"{R}.memory")
    if mem:
        writes += _v2_memory(mem)
    writes += _pids(resources)
    blkio = _section(resources, "blockIO", f"{R}.blockIO")
    if blkio:
        writes += _v2_io(blkio)
    for field, size, limit in _hugepages(resources):
        writes.append(Write(field, "hugetlb", f"hugetlb.{size}.max", str(limit)))
        writes.append(Write(field, "hugetlb", f"hugetlb.{size}.rsvd.max", str(limit), optional=True))
    net = _section(resources, "network", f"{R}.network")
    if net and (net.get("classID") is not None or net.get("priorities")):
        raise NotSupportedError(f"{R}.network", "cgroup v2 has no net_cls/net_prio controller")
    writes += _rdma(resources)
    # `devices` are no file on v2: CgroupManager.apply attaches them as an eBPF program (ebpf.py).
    return writes + _unified(resources)


def v2_writes(resources: dict[str, Any]) -> list[tuple[str, str]]:
    """`v2_plan` as (file, value) pairs."""
    return [(w.filename, w.value) for w in v2_plan(resources)]
