"""Stats readers against fake v1 and v2 cgroup directories holding the kernel's file formats,
checked field by field against runc's `events --stats` shape (omitempty included)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from ociish.cgroups import stats

TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def tree(base: Path, files: dict[str, str]) -> str:
    base.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (base / name).write_text(content + "\n")
    return str(base)


V1 = {
    "cpuacct": {
        "cpuacct.usage": "7693290",
        "cpuacct.usage_percpu": "1927245 5766045 ",
        "cpuacct.usage_all": "cpu user system\n0 0 1927245\n1 4000000 1766045",
        "cpuacct.stat": "user 3\nsystem 1",
    },
    "cpu": {"cpu.stat": "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\nnr_bursts 0\nburst_time 0"},
    "cpuset": {
        "cpuset.cpus": "0-2,5", "cpuset.mems": "0", "cpuset.cpu_exclusive": "0", "cpuset.mem_hardwall": "0",
        "cpuset.mem_exclusive": "0", "cpuset.memory_migrate": "0", "cpuset.memory_spread_page": "0",
        "cpuset.memory_spread_slab": "0", "cpuset.memory_pressure": "0", "cpuset.sched_load_balance": "1",
        "cpuset.sched_relax_domain_level": "-1",
    },
    "memory": {
        "memory.limit_in_bytes": "104857600", "memory.usage_in_bytes": "745472",
        "memory.max_usage_in_bytes": "2514944", "memory.failcnt": "0",
        "memory.memsw.limit_in_bytes": "9223372036854771712", "memory.memsw.usage_in_bytes": "745472",
        "memory.memsw.max_usage_in_bytes": "2514944", "memory.memsw.failcnt": "0",
        "memory.kmem.limit_in_bytes": "9223372036854771712", "memory.kmem.usage_in_bytes": "262144",
        "memory.kmem.max_usage_in_bytes": "610304", "memory.kmem.failcnt": "0",
        "memory.kmem.tcp.limit_in_bytes": "9223372036854771712", "memory.kmem.tcp.usage_in_bytes": "0",
        "memory.kmem.tcp.max_usage_in_bytes": "0", "memory.kmem.tcp.failcnt": "0",
        "memory.stat": "cache 8192\nrss 49152\npgfault 772",
    },
    "pids": {"pids.current": "3", "pids.max": "max"},
    "blkio": {
        "blkio.bfq.io_service_bytes_recursive": "Total 0",  # BFQ present but idle: the throttle files count
        "blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096",
        "blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 0\n8:0 Total 1\nTotal 1",
    },
    "hugetlb": {
        "hugetlb.2MB.limit_in_bytes": "4194304", "hugetlb.2MB.usage_in_bytes": "2097152",
        "hugetlb.2MB.max_usage_in_bytes": "2097152", "hugetlb.2MB.failcnt": "1",
        "hugetlb.2MB.rsvd.limit_in_bytes": "4194304", "hugetlb.1GB.limit_in_bytes": "0",
    },
}

V2 = {
    "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20",
    "cpuset.cpus.effective": "0-1", "cpuset.mems.effective": "0",
    "memory.max": "1048576", "memory.current": "4096", "memory.peak": "8192",
    "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1",
    "memory.swap.max": "max", "memory.swap.current": "1024", "memory.swap.events": "high 0\nmax 0\nfail 0",
    "memory.stat": "anon 4096\nfile 12288",
    "pids.current": "2", "pids.max": "10",
    "io.stat": "8:16 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n253:0 rbytes=0 wbytes=0 rios=0 wios=0",
    "hugetlb.2MB.max": "max", "hugetlb.2MB.current": "0", "hugetlb.2MB.events": "max 3",
    "hugetlb.2MB.rsvd.max": "max",
}


def v1_dirs(tmp_path: Path) -> dict[str, str]:
    return {controller: tree(tmp_path / controller, files) for controller, files in V1.items()}


def test_v1_sections(tmp_path):
    d = v1_dirs(tmp_path)
    assert stats.cpu_v1(d["cpuacct"], d["cpu"]) == {
        "usage": {"total": 7693290, "percpu": [1927245, 5766045], "percpu_kernel": [1927245, 1766045],
                  "percpu_user": [0, 4000000], "kernel": TICK_NS, "user": 3 * TICK_NS},
        "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 5000},
    }
    cpuset = stats.cpuset_v1(d["cpuset"])
    assert list(cpuset)[:3] == ["cpus", "cpu_exclusive", "mems"]  # runc's field order
    assert cpuset["cpus"] == [0, 1, 2, 5] and cpuset["mems"] == [0]
    assert cpuset["sched_load_balance"] == 1 and cpuset["sched_relax_domain_level"] == -1
    memory = stats.memory_v1(d["memory"])
    assert memory["cache"] == 8192
    assert memory["usage"] == {"limit": 104857600, "usage": 745472, "max": 2514944, "failcnt": 0}
    assert memory["swap"]["limit"] == 9223372036854771712
    assert memory["kernelTCP"] == {"limit": 9223372036854771712, "failcnt": 0}  # zero usage/max omitted
    assert memory["raw"] == {"cache": 8192, "rss": 49152, "pgfault": 772}
    assert stats.pids(d["pids"]) == {"current": 3}  # "max": no limit, omitted
    assert stats.blkio_v1(d["blkio"]) == {
        "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096}, {"major": 8, "op": "Write"},
                                    {"major": 8, "op": "Total", "value": 4096}],
        "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1}, {"major": 8, "op": "Write"},
                                {"major": 8, "op": "Total", "value": 1}],
    }
    assert stats.hugetlb_v1(d["hugetlb"]) == {"1GB": {"failcnt": 0},
                                              "2MB": {"usage": 2097152, "max": 2097152, "failcnt": 1}}


def test_v1_scheduler_files_win_over_throttle_ones(tmp_path):
    directory = tree(tmp_path / "blkio", {"blkio.io_serviced_recursive": "8:0 Read 7\nTotal 7",
                                          "blkio.sectors_recursive": "8:0 12",
                                          "blkio.throttle.io_serviced_recursive": "8:0 Read 1"})
    assert stats.blkio_v1(directory) == {"ioServicedRecursive": [{"major": 8, "op": "Read", "value": 7}],
                                         "sectorsRecursive": [{"major": 8, "value": 12}]}


def test_v2_sections(tmp_path):
    d = tree(tmp_path / "c1", V2)
    assert stats.cpu_v2(d) == {"usage": {"total": 1_500_000, "kernel": 500_000, "user": 1_000_000},
                               "throttling": {"periods": 4, "throttledPeriods": 1, "throttledTime": 20_000}}
    cpuset = stats.cpuset_v2(d)
    assert cpuset["cpus"] == [0, 1] and cpuset["mems"] == [0] and cpuset["sched_load_balance"] == 0
    memory = stats.memory_v2(d)
    assert memory["cache"] == 12288
    assert memory["usage"] == {"limit": 1048576, "usage": 4096, "max": 8192, "failcnt": 2}
    assert memory["swap"] == {"limit": stats.UNLIMITED, "usage": 5120, "failcnt": 0}  # memory+swap, as on v1
    assert memory["kernel"] == memory["kernelTCP"] == {"limit": 0, "failcnt": 0}
    assert memory["raw"] == {"anon": 4096, "file": 12288}
    assert stats.pids(d) == {"current": 2, "limit": 10}
    assert stats.io_v2(d) == {
        "ioServiceBytesRecursive": [{"major": 8, "minor": 16, "op": "Read", "value": 512},
                                    {"major": 8, "minor": 16, "op": "Write", "value": 1024},
                                    {"major": 253, "op": "Read"}, {"major": 253, "op": "Write"}],
        "ioServicedRecursive": [{"major": 8, "minor": 16, "op": "Read", "value": 1},
                                {"major": 8, "minor": 16, "op": "Write", "value": 2},
                                {"major": 253, "op": "Read"}, {"major": 253, "op": "Write"}],
    }
    assert stats.hugetlb_v2(d) == {"2MB": {"failcnt": 3}}


def test_v2_memory_swap_limit_adds_up_when_both_are_finite(tmp_path):
    d = tree(tmp_path / "c1", {"memory.max": "1000", "memory.swap.max": "500", "memory.current": "10"})
    assert stats.memory_v2(d)["swap"] == {"limit": 1500, "usage": 10, "failcnt": 0}
    unlimited = tree(tmp_path / "c2", {"memory.max": "max"})
    assert stats.memory_v2(unlimited)["usage"]["limit"] == stats.UNLIMITED


def test_missing_directories_and_files_read_as_zero(tmp_path):
    empty = stats.container_stats({})
    assert empty == {
        "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
        "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
                   "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0,
                   "sched_load_balance": 0, "sched_relax_domain_level": 0},
        "memory": {"usage": {"limit": 0, "failcnt": 0}, "swap": {"limit": 0, "failcnt": 0},
                   "kernel": {"limit": 0, "failcnt": 0}, "kernelTCP": {"limit": 0, "failcnt": 0}},
        "pids": {},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }
    assert stats.memory_v1(str(tmp_path / "gone"))["usage"] == {"limit": 0, "failcnt": 0}


def test_container_stats_picks_v1_or_cgroup2_per_section(tmp_path):
    dirs = {c: d for c, d in v1_dirs(tmp_path).items() if c != "hugetlb"}
    dirs[""] = tree(tmp_path / "unified", V2)  # hybrid: hugetlb lives in cgroup2, like on this host
    data = stats.container_stats(dirs)
    assert list(data) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert data["memory"]["usage"]["limit"] == 104857600  # v1
    assert data["pids"] == {"current": 3}  # v1
    assert data["hugetlb"] == {"2MB": {"failcnt": 3}}  # cgroup2
    v2 = stats.container_stats({"": dirs[""]})
    assert v2["cpu"]["usage"]["total"] == 1_500_000 and v2["pids"] == {"current": 2, "limit": 10}
    assert orjson.loads(orjson.dumps(v2)) == v2  # every value is JSON (2^64-1 included)
