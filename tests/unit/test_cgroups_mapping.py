"""Golden tests for linux.resources → cgroup file writes (ociish.cgroups.mapping)."""

from __future__ import annotations

import pytest

from ociish.cgroups import mapping
from ociish.cgroups.devices import default_device_rules, v1_line
from ociish.cgroups.mapping import (
    blkio_weight_to_io_weight,
    cpu_shares_to_weight,
    swap_to_v2,
    v1_plan,
    v1_writes,
    v2_plan,
    v2_writes,
)
from ociish.errors import ConfigError, NotSupportedError

DEFAULT_V1_DEVICE_WRITES = [("devices", "devices.allow", v1_line(r)) for r in default_device_rules()]

# (id, resources, expected v1 writes, expected v2 writes)
CASES = [
    ("empty", {}, [], []),
    (
        "memory limit only",
        {"memory": {"limit": 1048576}},
        [("memory", "memory.limit_in_bytes", "1048576")],
        [("memory.max", "1048576")],
    ),
    (
        "memory unlimited also frees swap on v2",
        {"memory": {"limit": -1}},
        [("memory", "memory.limit_in_bytes", "-1")],
        [("memory.max", "max"), ("memory.swap.max", "max")],
    ),
    (
        "memory + swap, fresh cgroup: memory first",
        {"memory": {"limit": 100, "swap": 300}},
        [("memory", "memory.limit_in_bytes", "100"), ("memory", "memory.memsw.limit_in_bytes", "300")],
        [("memory.max", "100"), ("memory.swap.max", "200")],
    ),
    (
        "swap equal to limit means no swap on v2",
        {"memory": {"limit": 100, "swap": 100}},
        [("memory", "memory.limit_in_bytes", "100"), ("memory", "memory.memsw.limit_in_bytes", "100")],
        [("memory.max", "100"), ("memory.swap.max", "0")],
    ),
    (
        "unlimited swap is raised before memory",
        {"memory": {"limit": 100, "swap": -1}},
        [("memory", "memory.memsw.limit_in_bytes", "-1"), ("memory", "memory.limit_in_bytes", "100")],
        [("memory.max", "100"), ("memory.swap.max", "max")],
    ),
    (
        "zero means unset for memory values",
        {"memory": {"limit": 0, "swap": 0, "reservation": 0, "kernel": 0}},
        [],
        [],
    ),
    (
        "reservation, kernel, kernelTCP",
        {"memory": {"reservation": 50, "kernel": 60, "kernelTCP": -1}},
        [
            ("memory", "memory.soft_limit_in_bytes", "50"),
            ("memory", "memory.kmem.limit_in_bytes", "60"),
            ("memory", "memory.kmem.tcp.limit_in_bytes", "-1"),
        ],
        [("memory.low", "50")],
    ),
    (
        "v1-only memory knobs at their v2-compatible values",
        {"memory": {"disableOOMKiller": False, "useHierarchy": True, "checkBeforeUpdate": True}},
        [("memory", "memory.oom_control", "0"), ("memory", "memory.use_hierarchy", "1")],
        [],
    ),
    (
        "swappiness -1 is unset",
        {"memory": {"swappiness": -1}},
        [],
        [],
    ),
    (
        "cpu shares and cfs",
        {"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10000}},
        [
            ("cpu", "cpu.shares", "1024"),
            ("cpu", "cpu.cfs_period_us", "100000"),
            ("cpu", "cpu.cfs_quota_us", "50000"),
            ("cpu", "cpu.cfs_burst_us", "10000"),
        ],
        [("cpu.weight", "100"), ("cpu.max", "50000 100000"), ("cpu.max.burst", "10000")],
    ),
    (
        "unlimited quota",
        {"cpu": {"quota": -1, "period": 250000}},
        [("cpu", "cpu.cfs_period_us", "250000"), ("cpu", "cpu.cfs_quota_us", "-1")],
        [("cpu.max", "max 250000")],
    ),
    (
        "quota alone keeps the period",
        {"cpu": {"quota": 20000}},
        [("cpu", "cpu.cfs_quota_us", "20000")],
        [("cpu.max", "20000")],
    ),
    (
        "zero means unset for cpu values",
        {"cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0}},
        [],
        [],
    ),
    (
        "idle group skips shares",
        {"cpu": {"idle": 1, "shares": 512}},
        [("cpu", "cpu.idle", "1")],
        [("cpu.idle", "1")],
    ),
    (
        "idle 0 is written before shares",
        {"cpu": {"idle": 0, "shares": 2}},
        [("cpu", "cpu.idle", "0"), ("cpu", "cpu.shares", "2")],
        [("cpu.idle", "0"), ("cpu.weight", "1")],
    ),
    (
        "cpuset",
        {"cpu": {"cpus": "0-3,7", "mems": "0"}},
        [("cpuset", "cpuset.cpus", "0-3,7"), ("cpuset", "cpuset.mems", "0")],
        [("cpuset.cpus", "0-3,7"), ("cpuset.mems", "0")],
    ),
    ("empty cpuset strings are unset", {"cpu": {"cpus": "", "mems": ""}}, [], []),
    ("pids limit", {"pids": {"limit": 32771}}, [("pids", "pids.max", "32771")], [("pids.max", "32771")]),
    ("pids unlimited", {"pids": {"limit": -1}}, [("pids", "pids.max", "max")], [("pids.max", "max")]),
    ("pids zero is a real limit", {"pids": {"limit": 0}}, [("pids", "pids.max", "0")], [("pids.max", "0")]),
    (
        "blkio weight and weightDevice",
        {"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}]}},
        [("blkio", "blkio.weight", "500"), ("blkio", "blkio.weight_device", "8:0 1000")],
        [("io.bfq.weight", "500"), ("io.bfq.weight", "8:0 1000")],
    ),
    (
        "throttles, merged per device on v2",
        {
            "blockIO": {
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 700}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 30}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 40}],
            }
        },
        [
            ("blkio", "blkio.throttle.read_bps_device", "8:0 600"),
            ("blkio", "blkio.throttle.write_bps_device", "8:16 700"),
            ("blkio", "blkio.throttle.read_iops_device", "8:0 30"),
            ("blkio", "blkio.throttle.write_iops_device", "8:16 40"),
        ],
        [("io.max", "8:0 rbps=600 riops=30"), ("io.max", "8:16 wbps=700 wiops=40")],
    ),
    (
        "hugepages, reservation file too",
        {"hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "1GB", "limit": 0}]},
        [
            ("hugetlb", "hugetlb.2MB.limit_in_bytes", "209715200"),
            ("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes", "209715200"),
            ("hugetlb", "hugetlb.1GB.limit_in_bytes", "0"),
            ("hugetlb", "hugetlb.1GB.rsvd.limit_in_bytes", "0"),
        ],
        [
            ("hugetlb.2MB.max", "209715200"),
            ("hugetlb.2MB.rsvd.max", "209715200"),
            ("hugetlb.1GB.max", "0"),
            ("hugetlb.1GB.rsvd.max", "0"),
        ],
    ),
    (
        "rdma",
        {"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "rxe3": {"hcaObjects": 10}}},
        [("rdma", "rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"), ("rdma", "rdma.max", "rxe3 hca_object=10")],
        [("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"), ("rdma.max", "rxe3 hca_object=10")],
    ),
    ("empty network", {"network": {"priorities": []}}, [], []),
    ("no device rules means no device writes", {"devices": None}, [], []),
]


@pytest.mark.parametrize("resources, v1, v2", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_golden(resources, v1, v2):
    assert v1_writes(resources) == v1
    assert v2_writes(resources) == v2


def test_network_is_v1_only():
    resources = {"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]}}
    assert v1_writes(resources) == [
        ("net_cls", "net_cls.classid", "1048577"),
        ("net_prio", "net_prio.ifpriomap", "eth0 500"),
    ]
    with pytest.raises(NotSupportedError, match=r"linux\.resources\.network"):
        v2_writes(resources)


def test_blkio_leaf_weights_are_v1_only():
    resources = {"blockIO": {"leafWeight": 300, "weightDevice": [{"major": 8, "minor": 0, "leafWeight": 200}]}}
    assert v1_writes(resources) == [
        ("blkio", "blkio.leaf_weight", "300"),
        ("blkio", "blkio.leaf_weight_device", "8:0 200"),
    ]
    with pytest.raises(NotSupportedError, match=r"linux\.resources\.blockIO\.leafWeight"):
        v2_writes(resources)
    with pytest.raises(NotSupportedError, match=r"weightDevice\[0\]\.leafWeight"):
        v2_writes({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 10, "leafWeight": 20}]}})


def test_fallback_files_carry_the_converted_value():
    plan = v1_plan({"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 10}]}})
    assert [w.fallback for w in plan] == [("blkio.bfq.weight", "500"), ("blkio.bfq.weight_device", "8:0 10")]
    plan = v2_plan({"blockIO": {"weight": 1000, "weightDevice": [{"major": 8, "minor": 0, "weight": 10}]}})
    assert [w.fallback for w in plan] == [("io.weight", "default 10000"), ("io.weight", "8:0 1")]


def test_only_reservation_files_are_optional():
    plan = v2_plan({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}], "pids": {"limit": 1}})
    assert [(w.filename, w.optional) for w in plan] == [
        ("pids.max", False),
        ("hugetlb.2MB.max", False),
        ("hugetlb.2MB.rsvd.max", True),
    ]


def test_writes_name_their_config_field():
    plan = v1_plan(
        {
            "memory": {"limit": 1, "swappiness": 10},
            "blockIO": {"throttleWriteIOPSDevice": [{"major": 1, "minor": 2, "rate": 3}]},
            "devices": [{"allow": False}],
        }
    )
    fields = [w.field for w in plan]
    assert fields[:3] == [
        "linux.resources.memory.limit",
        "linux.resources.memory.swappiness",
        "linux.resources.blockIO.throttleWriteIOPSDevice[0]",
    ]
    assert fields[3] == "linux.resources.devices[0]"
    assert set(fields[4:]) == {"linux.resources.devices (runtime default)"}


# ------------------------------------------------------------------ memory + swap order


@pytest.mark.parametrize(
    "current, limit, swap, first",
    [
        (None, 100, 300, "memory.limit_in_bytes"),  # unknown = fresh, unlimited cgroup
        (9223372036854771712, 100, 300, "memory.limit_in_bytes"),  # lowering from unlimited
        (100, 200, 400, "memory.memsw.limit_in_bytes"),  # raising: memsw must grow first
        (500, 200, 400, "memory.limit_in_bytes"),  # lowering: memory must shrink first
        (400, 200, 400, "memory.limit_in_bytes"),
        (500, 200, -1, "memory.memsw.limit_in_bytes"),
    ],
)
def test_memory_swap_order(current, limit, swap, first):
    writes = v1_writes({"memory": {"limit": limit, "swap": swap}}, current_memory_limit=current)
    assert [f for _, f, _ in writes][0] == first
    assert len(writes) == 2


def test_swap_alone_on_v1_is_allowed():
    assert v1_writes({"memory": {"swap": 300}}) == [("memory", "memory.memsw.limit_in_bytes", "300")]


# ------------------------------------------------------------------ devices


def test_v1_devices_rules_in_order_then_defaults():
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": True, "type": "b", "major": 8, "minor": -1, "access": "r"},
        {"allow": False, "type": "c", "major": 1, "access": "mw"},
    ]
    assert v1_writes({"devices": rules}) == [
        ("devices", "devices.deny", "a"),
        ("devices", "devices.allow", "c 10:229 rw"),
        ("devices", "devices.allow", "b 8:* r"),
        ("devices", "devices.deny", "c 1:* wm"),
        *DEFAULT_V1_DEVICE_WRITES,
    ]


def test_default_device_rules_match_runc():
    lines = [v1_line(r) for r in default_device_rules()]
    assert lines == [
        "c *:* m",
        "b *:* m",
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 5:1 rwm",
        "c 5:2 rwm",
        "c 136:* rwm",
        "c 10:200 rwm",
    ]
    assert all(r["allow"] for r in default_device_rules())


def test_empty_device_list_still_gets_defaults():
    assert v1_writes({"devices": []}) == DEFAULT_V1_DEVICE_WRITES


def test_v2_devices_are_no_file_writes():
    # CgroupManager attaches them as an eBPF program instead (test_cgroups_ebpf.py).
    assert v2_writes({"devices": [{"allow": False, "access": "rwm"}]}) == []
    assert v2_writes({"devices": []}) == []


# ------------------------------------------------------------------ unified


def test_unified_is_written_last_and_overrides():
    resources = {"unified": {"memory.max": "2048", "io.max": "259:0 rbps=2\n253:0 wiops=1"}, "memory": {"limit": 1024}}
    assert v2_writes(resources) == [
        ("memory.max", "1024"),
        ("memory.max", "2048"),
        ("io.max", "259:0 rbps=2\n253:0 wiops=1"),
    ]
    assert [w.controller for w in v2_plan(resources)] == ["memory", "memory", "io"]


def test_unified_on_v1_is_not_supported():
    with pytest.raises(NotSupportedError, match=r"linux\.resources\.unified"):
        v1_writes({"unified": {"memory.max": "1"}})
    assert v1_writes({"unified": {}}) == []


@pytest.mark.parametrize("key", ["../memory.max", "memory/max", "nodot", "memory..max", "", ".max"])
def test_unified_rejects_non_file_names(key):
    with pytest.raises(ConfigError, match=r"linux\.resources\.unified\."):
        v2_writes({"unified": {key: "1"}})


def test_unified_values_must_be_strings():
    with pytest.raises(ConfigError, match=r"unified\.pids\.max: expected a string"):
        v2_writes({"unified": {"pids.max": 5}})


# ------------------------------------------------------------------ conversions


@pytest.mark.parametrize(
    "shares, weight",
    [(1, 1), (2, 1), (3, 2), (512, 59), (1024, 100), (2048, 174), (100000, 4340), (262143, 10000), (262144, 10000),
     (10**6, 10000)],
)
def test_cpu_shares_to_weight(shares, weight):
    assert cpu_shares_to_weight(shares) == weight


@pytest.mark.parametrize("blkio, io", [(10, 1), (100, 910), (500, 4950), (1000, 10000)])
def test_blkio_weight_to_io_weight(blkio, io):
    assert blkio_weight_to_io_weight(blkio) == io


@pytest.mark.parametrize("weight", [1, 9, 1001])
def test_blkio_weight_out_of_range_for_v2(weight):
    with pytest.raises(ConfigError, match=r"linux\.resources\.blockIO\.weight: must be between 10 and 1000"):
        v2_writes({"blockIO": {"weight": weight}})


@pytest.mark.parametrize(
    "limit, swap, expected",
    [
        (None, None, None),
        (100, None, None),
        (-1, None, "max"),
        (100, -1, "max"),
        (-1, -1, "max"),
        (100, 100, "0"),
        (100, 250, "150"),
    ],
)
def test_swap_to_v2(limit, swap, expected):
    assert swap_to_v2(limit, swap) == expected


def test_swap_to_v2_refuses_swap_below_limit():
    with pytest.raises(ConfigError, match=r"^linux\.resources\.memory\.swap: memory\+swap \(50\) must be >="):
        swap_to_v2(100, 50)


@pytest.mark.parametrize("limit", [None, -1])
def test_swap_without_limit_is_an_error_on_v2(limit):
    with pytest.raises(ConfigError, match=r"linux\.resources\.memory\.swap: a swap limit needs a memory limit"):
        v2_writes({"memory": {"limit": limit, "swap": 300}})


# ------------------------------------------------------------------ errors name the field

ERRORS = [
    ({"memory": {"limit": 200, "swap": 100}}, ConfigError, r"memory\.swap: memory\+swap \(100\) must be >= "),
    ({"memory": {"limit": "1G"}}, ConfigError, r"memory\.limit: expected an integer"),
    ({"memory": {"limit": -2}}, ConfigError, r"memory\.limit: must be >= -1"),
    ({"memory": {"swappiness": 101}}, ConfigError, r"memory\.swappiness: must be between 0 and 100"),
    ({"memory": {"disableOOMKiller": "yes"}}, ConfigError, r"memory\.disableOOMKiller: expected a boolean"),
    ({"memory": []}, ConfigError, r"\.memory: expected an object"),
    ({"cpu": {"quota": 1000, "burst": 2000}}, ConfigError, r"cpu\.burst: 2000 exceeds cpu\.quota 1000"),
    ({"cpu": {"idle": 2}}, ConfigError, r"cpu\.idle: must be 0 or 1"),
    ({"cpu": {"quota": 500}}, ConfigError, r"cpu\.quota: must be at least 1000 µs \(or -1, unlimited\), got 500"),
    ({"cpu": {"quota": 50000, "period": 999}}, ConfigError, r"cpu\.period: must be between 1000 and 1000000 µs"),
    ({"cpu": {"period": 2000000}}, ConfigError, r"cpu\.period: must be between 1000 and 1000000 µs, got 2000000"),
    ({"cpu": {"realtimeRuntime": 2000, "realtimePeriod": 1000}}, ConfigError,
     r"cpu\.realtimeRuntime: 2000 exceeds cpu\.realtimePeriod 1000"),
    ({"cpu": {"shares": True}}, ConfigError, r"cpu\.shares: expected an integer"),
    ({"cpu": {"cpus": 3}}, ConfigError, r"cpu\.cpus: expected a string"),
    ({"pids": {"limit": 1.5}}, ConfigError, r"pids\.limit: expected an integer"),
    ({"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}}, ConfigError, r"weightDevice\[0\]: set at least one"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}}, ConfigError,
     r"throttleReadBpsDevice\[0\]\.minor: expected an integer"),
    ({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}, ConfigError, r"hugepageLimits\[0\]\.pageSize"),
    ({"hugepageLimits": [{"pageSize": "../2MB", "limit": 1}]}, ConfigError, r"hugepageLimits\[0\]\.pageSize"),
    ({"hugepageLimits": [{"pageSize": "2MB"}]}, ConfigError, r"hugepageLimits\[0\]\.limit"),
    ({"rdma": {"mlx": {}}}, ConfigError, r"\.rdma\.mlx: set at least one"),
    ({"network": {"priorities": [{"priority": 1}]}}, ConfigError, r"network\.priorities\[0\]"),
    ({"devices": [{"access": "r"}]}, ConfigError, r"devices\[0\]\.allow: required boolean"),
    ({"devices": [{"allow": True, "type": "x"}]}, ConfigError, r"devices\[0\]\.type"),
    ({"devices": [{"allow": True, "access": "rwx"}]}, ConfigError, r"devices\[0\]\.access"),
    ({"devices": [{"allow": True, "major": -5}]}, ConfigError, r"devices\[0\]\.major"),
    ({"devices": {"allow": True}}, ConfigError, r"\.devices: expected an array"),
]


@pytest.mark.parametrize("resources, exc, message", ERRORS)
def test_errors_name_the_field(resources, exc, message):
    for plan in (v1_writes, v2_writes):
        if plan is v2_writes and ("network" in resources or "devices" in resources):
            continue  # refused as unsupported on v2 before validation
        with pytest.raises(exc, match=r"^linux\.resources.*" + message):
            plan(resources)


V2_UNSUPPORTED = [
    ({"memory": {"swappiness": 0}}, "memory.swappiness"),
    ({"memory": {"disableOOMKiller": True}}, "memory.disableOOMKiller"),
    ({"memory": {"useHierarchy": False}}, "memory.useHierarchy"),
    ({"cpu": {"realtimeRuntime": 950000}}, "cpu.realtimeRuntime"),
    ({"cpu": {"realtimePeriod": 1000000}}, "cpu.realtimePeriod"),
]


@pytest.mark.parametrize("resources, field", V2_UNSUPPORTED)
def test_v1_only_knobs_are_unsupported_on_v2(resources, field):
    with pytest.raises(NotSupportedError, match=rf"linux\.resources\.{field}"):
        v2_writes(resources)
    assert v1_writes(resources)  # but v1 expresses them


def test_realtime_on_v1_period_first():
    assert v1_writes({"cpu": {"realtimeRuntime": 950000, "realtimePeriod": 1000000}}) == [
        ("cpu", "cpu.rt_period_us", "1000000"),
        ("cpu", "cpu.rt_runtime_us", "950000"),
    ]


def test_spec_example_covers_every_v1_controller():
    """The config-linux.md example resources, end to end."""
    resources = {
        "memory": {"limit": 536870912, "reservation": 536870912, "swap": 536870912, "kernel": -1, "kernelTCP": -1,
                   "swappiness": 0, "disableOOMKiller": False},
        "cpu": {"shares": 1024, "quota": 1000000, "burst": 1000000, "period": 500000, "realtimeRuntime": 950000,
                "realtimePeriod": 1000000, "cpus": "2-3", "mems": "0-7", "idle": 0},
        "pids": {"limit": 32771},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
        "network": {"classID": 1048577},
        "rdma": {"mlx5_1": {"hcaHandles": 3}},
        "blockIO": {"weight": 10},
        "devices": [{"allow": False, "access": "rwm"}],
    }
    controllers = {c for c, _, _ in v1_writes(resources)}
    assert controllers == {"memory", "cpu", "cpuset", "pids", "hugetlb", "net_cls", "blkio", "rdma", "devices"}


def test_resources_must_be_an_object():
    for plan in (mapping.v1_writes, mapping.v2_writes):
        with pytest.raises(ConfigError, match=r"^linux\.resources: expected an object"):
            plan([])
