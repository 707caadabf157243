"""Resource usage of a cgroup, in the shape of runc's `events --stats` data.

Each reader takes one directory (None or a missing file reads as zero, because a
controller or kernel feature may be absent) and returns the JSON runc prints for that
section, zero-valued `omitempty` fields left out as runc's encoder leaves them out, so
clients that parse runc's output (containerd, cadvisor) read ours.  `container_stats`
picks, per section, the v1 controller's directory or the cgroup2 one.

Units follow runc: cpu times in nanoseconds, memory in bytes.  On cgroup v2, `swap` is
memory+swap as on v1 (what the spec's `memory.swap` means) and "max" limits read as
2^64-1.
"""

from __future__ import annotations

import os
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

UNLIMITED = 2**64 - 1  # what a v2 "max" limit reads as
_NS_PER_USEC = 1000
_NS_PER_SEC = 1_000_000_000


# ---------------------------------------------------------------- file readers


def _text(directory: str | None, name: str) -> str | None:
    if directory is None:
        return None
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            return f.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _int(directory: str | None, name: str, max_value: int = 0) -> int:
    """A single-number file; "max" reads as `max_value`, anything unreadable as 0."""
    text = _text(directory, name)
    if text == "max":
        return max_value
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _keyed(directory: str | None, name: str) -> dict[str, int]:
    """A flat-keyed file (`key value` lines, e.g. memory.stat) as integers."""
    out = {}
    for line in (_text(directory, name) or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def _id_list(text: str | None) -> list[int]:
    """A cpuset list such as `0-3,8` as [0, 1, 2, 3, 8]."""
    ids: list[int] = []
    for part in (text or "").split(","):
        low, dash, high = part.strip().partition("-")
        if low.isdigit() and (not dash or high.isdigit()):
            ids.extend(range(int(low), int(high if dash else low) + 1))
    return ids


def _nonzero(**fields: Any) -> dict[str, Any]:
    """Go's omitempty: drop zero numbers and empty lists."""
    return {key: value for key, value in fields.items() if value}


# ---------------------------------------------------------------- cpu


def cpu_v1(cpuacct: str | None, cpu: str | None) -> dict[str, Any]:
    """cpuacct usage (per cpu, and user/kernel split) and cpu.stat throttling."""
    percpu_user, percpu_kernel = [], []
    for line in (_text(cpuacct, "cpuacct.usage_all") or "").splitlines()[1:]:  # "cpu user system" header
        fields = line.split()
        if len(fields) == 3:
            percpu_user.append(int(fields[1]))
            percpu_kernel.append(int(fields[2]))
    ticks = _keyed(cpuacct, "cpuacct.stat")  # in USER_HZ
    ns_per_tick = _NS_PER_SEC // os.sysconf("SC_CLK_TCK")
    usage = _nonzero(
        total=_int(cpuacct, "cpuacct.usage"),
        percpu=[int(v) for v in (_text(cpuacct, "cpuacct.usage_percpu") or "").split()],
        percpu_kernel=percpu_kernel,
        percpu_user=percpu_user,
    )
    usage.update(kernel=ticks.get("system", 0) * ns_per_tick, user=ticks.get("user", 0) * ns_per_tick)
    stat = _keyed(cpu, "cpu.stat")
    throttling = _nonzero(periods=stat.get("nr_periods"), throttledPeriods=stat.get("nr_throttled"),
                          throttledTime=stat.get("throttled_time"))
    return {"usage": usage, "throttling": throttling}


def cpu_v2(directory: str | None) -> dict[str, Any]:
    """cpu.stat, whose times are in microseconds."""
    stat = _keyed(directory, "cpu.stat")
    usage = _nonzero(total=stat.get("usage_usec", 0) * _NS_PER_USEC)
    usage.update(kernel=stat.get("system_usec", 0) * _NS_PER_USEC, user=stat.get("user_usec", 0) * _NS_PER_USEC)
    throttling = _nonzero(periods=stat.get("nr_periods"), throttledPeriods=stat.get("nr_throttled"),
                          throttledTime=stat.get("throttled_usec", 0) * _NS_PER_USEC)
    return {"usage": usage, "throttling": throttling}


# ---------------------------------------------------------------- cpuset

_CPUSET_FLAGS = ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                 "memory_spread_slab", "memory_pressure", "sched_load_balance", "sched_relax_domain_level")


def _cpuset(cpus: list[int], mems: list[int], flags: dict[str, int]) -> dict[str, Any]:
    """runc's field order: cpus, cpu_exclusive, mems, then the other flags."""
    out: dict[str, Any] = _nonzero(cpus=cpus)
    out["cpu_exclusive"] = flags["cpu_exclusive"]
    out.update(_nonzero(mems=mems))
    out.update((name, flags[name]) for name in _CPUSET_FLAGS[1:])
    return out


def cpuset_v1(directory: str | None) -> dict[str, Any]:
    flags = {name: _int(directory, f"cpuset.{name}") for name in _CPUSET_FLAGS}
    return _cpuset(_id_list(_text(directory, "cpuset.cpus")), _id_list(_text(directory, "cpuset.mems")), flags)


def cpuset_v2(directory: str | None) -> dict[str, Any]:
    """The effective sets; v2 has none of v1's flags, so they read as 0."""
    return _cpuset(_id_list(_text(directory, "cpuset.cpus.effective")),
                   _id_list(_text(directory, "cpuset.mems.effective")), dict.fromkeys(_CPUSET_FLAGS, 0))


# ---------------------------------------------------------------- memory


def _memory_entry(limit: int, usage: int, peak: int, failcnt: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"limit": limit}
    entry.update(_nonzero(usage=usage, max=peak))
    entry["failcnt"] = failcnt
    return entry


def _memory(cache: int, entries: dict[str, dict[str, Any]], raw: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = _nonzero(cache=cache)
    out.update(entries)
    out.update(_nonzero(raw=raw))
    return out


def memory_v1(directory: str | None) -> dict[str, Any]:
    """memory, memory+swap (memsw), kernel (kmem) and kernel TCP counters, and memory.stat."""
    def entry(prefix: str) -> dict[str, Any]:
        return _memory_entry(_int(directory, f"{prefix}.limit_in_bytes"), _int(directory, f"{prefix}.usage_in_bytes"),
                             _int(directory, f"{prefix}.max_usage_in_bytes"), _int(directory, f"{prefix}.failcnt"))

    raw = _keyed(directory, "memory.stat")
    entries = {"usage": entry("memory"), "swap": entry("memory.memsw"), "kernel": entry("memory.kmem"),
               "kernelTCP": entry("memory.kmem.tcp")}
    return _memory(raw.get("cache", 0), entries, raw)


def memory_v2(directory: str | None) -> dict[str, Any]:
    """memory.current/max/peak, swap added to memory as v1's memsw, and memory.stat."""
    limit = _int(directory, "memory.max", UNLIMITED)
    usage = _int(directory, "memory.current")
    swap_limit = _int(directory, "memory.swap.max", UNLIMITED)
    memsw_limit = UNLIMITED if UNLIMITED in (limit, swap_limit) else limit + swap_limit
    events = _keyed(directory, "memory.events")
    raw = _keyed(directory, "memory.stat")
    entries = {
        "usage": _memory_entry(limit, usage, _int(directory, "memory.peak"), events.get("max", 0)),
        "swap": _memory_entry(memsw_limit, usage + _int(directory, "memory.swap.current"), 0,
                              _keyed(directory, "memory.swap.events").get("fail", 0)),
        "kernel": _memory_entry(0, 0, 0, 0),  # v2 counts kernel memory inside memory.current
        "kernelTCP": _memory_entry(0, 0, 0, 0),
    }
    return _memory(raw.get("file", 0), entries, raw)


# ---------------------------------------------------------------- pids


def pids(directory: str | None) -> dict[str, Any]:
    """pids.current and pids.max (the same files on v1 and v2; "max" reads as no limit, 0)."""
    return _nonzero(current=_int(directory, "pids.current"), limit=_int(directory, "pids.max"))


# ---------------------------------------------------------------- block I/O

_BLKIO_FIELDS = (
    ("ioServiceBytesRecursive", "io_service_bytes_recursive"),
    ("ioServicedRecursive", "io_serviced_recursive"),
    ("ioQueueRecursive", "io_queued_recursive"),
    ("ioServiceTimeRecursive", "io_service_time_recursive"),
    ("ioWaitTimeRecursive", "io_wait_time_recursive"),
    ("ioMergedRecursive", "io_merged_recursive"),
    ("ioTimeRecursive", "time_recursive"),
    ("sectorsRecursive", "sectors_recursive"),
)
# The I/O schedulers' files (CFQ, then BFQ) count more than the throttle ones; the first
# family with any data wins, as in runc.
_BLKIO_PREFIXES = ("blkio.", "blkio.bfq.", "blkio.throttle.")
_DEVICE = re.compile(r"(\d+):(\d+)")


def _blkio_entry(major: int, minor: int, op: str, value: int) -> dict[str, Any]:
    return _nonzero(major=major, minor=minor, op=op, value=value)


def _blkio_lines(text: str | None) -> list[dict[str, Any]]:
    """`M:m [op] value` lines; the device-less `Total N` line is a sum and is skipped."""
    entries = []
    for line in (text or "").splitlines():
        fields = line.split()
        device = _DEVICE.fullmatch(fields[0]) if fields else None
        if device is None or len(fields) not in (2, 3) or not fields[-1].isdigit():
            continue
        op = fields[1] if len(fields) == 3 else ""
        entries.append(_blkio_entry(int(device[1]), int(device[2]), op, int(fields[-1])))
    return entries


def blkio_v1(directory: str | None) -> dict[str, Any]:
    for prefix in _BLKIO_PREFIXES:
        found = {key: _blkio_lines(_text(directory, prefix + name)) for key, name in _BLKIO_FIELDS}
        if any(found.values()):
            return _nonzero(**found)
    return {}


def io_v2(directory: str | None) -> dict[str, Any]:
    """io.stat (`M:m rbytes=.. wbytes=.. rios=.. wios=..`) as v1's bytes and operations per device."""
    service_bytes: list[dict[str, Any]] = []
    serviced: list[dict[str, Any]] = []
    for line in (_text(directory, "io.stat") or "").splitlines():
        device, *pairs = line.split() or [""]
        numbers = _DEVICE.fullmatch(device)
        if numbers is None:
            continue
        major, minor = int(numbers[1]), int(numbers[2])
        values = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        for op, prefix in (("Read", "r"), ("Write", "w")):
            service_bytes.append(_blkio_entry(major, minor, op, int(values.get(f"{prefix}bytes", 0))))
            serviced.append(_blkio_entry(major, minor, op, int(values.get(f"{prefix}ios", 0))))
    return _nonzero(ioServiceBytesRecursive=service_bytes, ioServicedRecursive=serviced)


# ---------------------------------------------------------------- hugetlb


def _page_sizes(directory: str | None, suffix: str) -> list[str]:
    """The page sizes with a `hugetlb.<size>.<suffix>` file (the rsvd variants excluded)."""
    try:
        names = os.listdir(directory) if directory else []
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = (re.fullmatch(rf"hugetlb\.([0-9]+[KMGTPE]?B)\.{re.escape(suffix)}", name) for name in names)
    return sorted(m[1] for m in found if m)


def _hugetlb_entry(usage: int, peak: int, failcnt: int) -> dict[str, Any]:
    entry = _nonzero(usage=usage, max=peak)
    entry["failcnt"] = failcnt
    return entry


def hugetlb_v1(directory: str | None) -> dict[str, Any]:
    return {
        size: _hugetlb_entry(_int(directory, f"hugetlb.{size}.usage_in_bytes"),
                             _int(directory, f"hugetlb.{size}.max_usage_in_bytes"),
                             _int(directory, f"hugetlb.{size}.failcnt"))
        for size in _page_sizes(directory, "limit_in_bytes")
    }


def hugetlb_v2(directory: str | None) -> dict[str, Any]:
    """hugetlb.<size>.current, and the `max` event count as the failure count (no peak on v2)."""
    return {
        size: _hugetlb_entry(_int(directory, f"hugetlb.{size}.current"), 0,
                             _keyed(directory, f"hugetlb.{size}.events").get("max", 0))
        for size in _page_sizes(directory, "max")
    }


# ---------------------------------------------------------------- everything


def container_stats(dirs: dict[str, str]) -> dict[str, Any]:
    """The `data` of a runc stats event, from a CgroupManager's `dirs` ("" = the cgroup2 directory).

    Each section comes from its v1 controller where one is mounted, else from the cgroup2
    directory (pure v2, or a hybrid host that keeps e.g. hugetlb in cgroup2).
    """
    unified = dirs.get("")

    def pick(controller: str, v1_reader: Any, v2_reader: Any) -> dict[str, Any]:
        return v1_reader(dirs[controller]) if controller in dirs else v2_reader(unified)

    if "cpuacct" in dirs or "cpu" in dirs:
        cpu = cpu_v1(dirs.get("cpuacct"), dirs.get("cpu"))
    else:
        cpu = cpu_v2(unified)
    return {
        "cpu": cpu,
        "cpuset": pick("cpuset", cpuset_v1, cpuset_v2),
        "memory": pick("memory", memory_v1, memory_v2),
        "pids": pids(dirs.get("pids", unified)),
        "blkio": pick("blkio", blkio_v1, io_v2),
        "hugetlb": pick("hugetlb", hugetlb_v1, hugetlb_v2),
        "intel_rdt": {},
        "network_interfaces": None,
    }
