"""The systemd driver's pure parts and its D-Bus client, against a stand-in connection.

No machine here runs systemd, so the client talks to `FakeConnection`, which takes the
jeepney messages the client builds (serialising each, so a body that does not fit its
signature fails here as it would on a real bus), answers as systemd does, and emits
JobRemoved for every job.  The driver on a real systemd is tested in the guest VM
(tests/vm/).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from jeepney import HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.wrappers import DBusAddress

from ociish.cgroups import paths, systemd
from ociish.errors import ConfigError, OciishError

INF = systemd.USEC_INFINITY
GROUPS = {("c", 136): "pts", ("c", 1): "mem", ("b", 8): "sd"}


def props(resources, mode="v2", version=252):
    return dict(systemd.unit_properties(resources, mode, version, GROUPS))


# ------------------------------------------------------------------ cgroupsPath → unit


@pytest.mark.parametrize("value, user, expected", [
    ("machine.slice:libpod:abc", False, ("machine.slice", "libpod-abc.scope")),
    (":docker:abc", False, ("system.slice", "docker-abc.scope")),
    (":docker:abc", True, ("user.slice", "docker-abc.scope")),
    ("kubepods-burstable-pod123.slice:cri-containerd:abc", False,
     ("kubepods-burstable-pod123.slice", "cri-containerd-abc.scope")),
    ("s.slice::abc", False, ("s.slice", "abc.scope")),
    (None, False, ("system.slice", "ociish-c1.scope")),
    ("", True, ("user.slice", "ociish-c1.scope")),
])
def test_unit_of_cgroups_path(value, user, expected):
    assert paths.systemd_unit("c1", value, user) == expected


def test_nested_slices_expand_as_systemd_does():
    path = paths.systemd_path("c1", "kubepods-burstable-pod123.slice:cri-containerd:abc")
    assert path == ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice/"
                    "cri-containerd-abc.scope")
    assert paths.systemd_path("c1", None, user=True) == "/user.slice/ociish-c1.scope"


# ------------------------------------------------------------------ resources → properties


def test_scope_properties():
    got = dict(systemd.scope_properties("ociish container c1", "machine.slice", 77, "v2"))
    assert got == {"Description": ("s", "ociish container c1"), "Slice": ("s", "machine.slice"),
                   "PIDs": ("au", [77]), "Delegate": ("b", True), "DefaultDependencies": ("b", False),
                   "MemoryAccounting": ("b", True), "CPUAccounting": ("b", True), "IOAccounting": ("b", True),
                   "TasksAccounting": ("b", True)}
    assert "BlockIOAccounting" in dict(systemd.scope_properties("d", "s.slice", 1, "v1"))


def test_v2_properties_follow_runcs_table():
    got = props({"memory": {"limit": 1 << 30, "reservation": 1 << 20, "swap": 2 << 30},
                 "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-2,9", "mems": "0"},
                 "pids": {"limit": 100}})
    assert got == {"MemoryMax": ("t", 1 << 30), "MemoryLow": ("t", 1 << 20), "MemorySwapMax": ("t", 1 << 30),
                   "CPUWeight": ("t", 100), "CPUQuotaPeriodUSec": ("t", 100000),
                   "CPUQuotaPerSecUSec": ("t", 500000), "TasksMax": ("t", 100),
                   "AllowedCPUs": ("ay", bytes([0b111, 0b10])), "AllowedMemoryNodes": ("ay", b"\x01")}


def test_v1_properties():
    got = props({"memory": {"limit": 1 << 30}, "cpu": {"shares": 512}, "blockIO": {"weight": 300},
                 "pids": {"limit": -1}}, mode="v1")
    assert got == {"MemoryLimit": ("t", 1 << 30), "CPUShares": ("t", 512), "BlockIOWeight": ("t", 300),
                   "TasksMax": ("t", INF)}


@pytest.mark.parametrize("cpu, expected", [
    ({"quota": 12345, "period": 100000}, {"CPUQuotaPeriodUSec": ("t", 100000), "CPUQuotaPerSecUSec": ("t", 130000)}),
    ({"quota": 20000}, {"CPUQuotaPerSecUSec": ("t", 200000)}),  # the kernel's default period
    ({"quota": -1}, {"CPUQuotaPerSecUSec": ("t", INF)}),
    ({"period": 50000}, {"CPUQuotaPeriodUSec": ("t", 50000), "CPUQuotaPerSecUSec": ("t", INF)}),
    ({"quota": 0, "period": 0}, {}),
])
def test_cpu_quota_is_rounded_up_to_whole_percents(cpu, expected):
    assert props({"cpu": cpu}) == expected


def test_old_systemd_gets_no_properties_it_lacks():
    got = props({"cpu": {"quota": 50000, "period": 100000, "cpus": "1"}}, version=241)
    assert got == {"CPUQuotaPerSecUSec": ("t", 500000)}


def test_zero_means_unset_and_a_zero_pids_limit_is_left_to_cgroupfs():
    assert props({"memory": {"limit": 0, "reservation": 0}, "cpu": {"shares": 0}, "pids": {"limit": 0}}) == {}


def test_unlimited_memory_and_swap():
    assert props({"memory": {"limit": -1, "swap": -1}}) == {"MemoryMax": ("t", INF), "MemorySwapMax": ("t", INF)}


def test_unified_keys_systemd_knows():
    got = props({"unified": {"memory.high": "1048576", "memory.min": "max", "pids.max": "7", "cpu.weight": "50",
                             "cpu.max": "max 20000", "cpuset.cpus": "1", "io.max": "8:0 rbps=1"}})
    assert got == {"MemoryHigh": ("t", 1048576), "MemoryMin": ("t", INF), "TasksMax": ("t", 7),
                   "CPUWeight": ("t", 50), "CPUQuotaPeriodUSec": ("t", 20000), "CPUQuotaPerSecUSec": ("t", INF),
                   "AllowedCPUs": ("ay", b"\x02")}
    assert props({"unified": {"cpu.max": "50000"}})["CPUQuotaPerSecUSec"] == ("t", 500000)
    with pytest.raises(ConfigError, match=r"^linux\.resources\.unified\.pids\.max: 'lots'"):
        props({"unified": {"pids.max": "lots"}})


def test_unified_is_v2_only():
    assert props({"unified": {"memory.high": "1"}}, mode="v1") == {}


def test_device_allow_list_is_translated():
    got = props({"devices": [{"allow": False, "access": "rwm"},
                             {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"}]})
    policy, allow = got["DevicePolicy"], got["DeviceAllow"]
    assert policy == ("s", "strict") and allow[0] == "a(ss)"
    entries = dict(allow[1])
    assert entries["/dev/block/8:0"] == "r"
    assert entries["/dev/char/1:3"] == "rwm" and entries["char-pts"] == "rwm"  # the runtime's defaults
    assert entries["char-*"] == "m" and entries["block-*"] == "m"


@pytest.mark.parametrize("rules", [
    [],  # no deny-all first: a deny list, which systemd cannot say
    [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "minor": 3, "access": "r"}],  # *:3
])
def test_device_rules_systemd_cannot_name_are_left_to_the_filter(rules):
    assert props({"devices": rules}) == {"DevicePolicy": ("s", "auto"), "DeviceAllow": ("a(ss)", [])}


def test_a_major_without_a_group_is_left_to_the_filter():
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 240, "access": "rw"}]
    assert props({"devices": rules})["DevicePolicy"] == ("s", "auto")


def test_device_groups_of_proc_devices():
    text = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n259 blkext\n"
    assert systemd.device_groups(text) == {("c", 1): "mem", ("c", 136): "pts", ("b", 8): "sd", ("b", 259): "blkext"}


def test_no_devices_key_sets_no_device_properties():
    assert "DevicePolicy" not in props({"pids": {"limit": 3}})  # an update that leaves devices alone


# ------------------------------------------------------------------ the bus


def test_bus_addresses(monkeypatch):
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert systemd.bus_address(False) == "unix:path=/run/dbus/system_bus_socket"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert systemd.bus_address(True) == "unix:path=/run/user/1000/bus"
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/b")
    assert systemd.bus_address(True) == "unix:path=/tmp/b"


def test_no_systemd_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setattr(systemd, "BOOTED", str(tmp_path / "absent"))
    with pytest.raises(OciishError, match=r"^--systemd-cgroup: systemd is not running on this host"):
        systemd.connect(False)


def test_an_unreachable_bus_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setattr(systemd, "BOOTED", str(tmp_path))
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/nobus")
    with pytest.raises(OciishError, match=r"^--systemd-cgroup: cannot connect to the systemd user bus at unix:path=.*"):
        systemd.connect(True)


class FakeConnection:
    """Answers as systemd's Manager does; every job is removed with `result`."""

    def __init__(self, result: str = "done", errors: dict[str, list[str]] | None = None) -> None:
        self.sent: list[tuple[str, str, tuple]] = []  # (member, signature, body)
        self.result = result
        self.errors = errors or {}  # member → error names for its next calls
        self.filters: list[tuple[Any, deque]] = []
        self.jobs = 0

    def send_and_get_reply(self, message, timeout=None):
        message.serialise(serial=1)  # the body must fit its signature
        fields = message.header.fields
        member = fields[HeaderFields.member]
        self.sent.append((member, fields.get(HeaderFields.signature, ""), message.body))
        if self.errors.get(member):
            return new_error(message, self.errors[member].pop(0), "s", ("no",))
        if member == "Subscribe" and "Subscribe" in self.members()[:-1]:  # systemd refuses a second one
            return new_error(message, "org.freedesktop.systemd1.AlreadySubscribed", "s", ("Client is already subscribed.",))
        if member == "Get":
            value = {"Version": ("s", "252.38-1~deb12u1"), "ControlGroup": ("s", "/user.slice")}[message.body[1]]
            return new_method_return(message, "v", (value,))
        if member in ("StartTransientUnit", "StopUnit"):
            self.jobs += 1
            job = f"/org/freedesktop/systemd1/job/{self.jobs}"
            emitter = DBusAddress(systemd.OBJECT, interface=systemd.MANAGER)
            for body in ((99, "/org/freedesktop/systemd1/job/99", "other.scope", "done"),  # another job's: skipped
                         (self.jobs, job, message.body[0], self.result)):
                signal = new_signal(emitter, "JobRemoved", "uoss", body)
                signal.header.fields[HeaderFields.sender] = ":1.2"  # the bus names systemd by its unique name
                for rule, queue in self.filters:  # as jeepney's connection filters incoming messages
                    if rule.matches(signal):
                        queue.append(signal)
            return new_method_return(message, "o", (job,))
        return new_method_return(message)

    def filter(self, rule, queue):
        conn = self

        class Handle:
            def __enter__(self):
                conn.filters.append((rule, queue))
                return queue

            def __exit__(self, *exc):
                conn.filters.remove((rule, queue))

        return Handle()

    def recv_until_filtered(self, queue, timeout=None):
        if not queue:
            raise TimeoutError
        message = queue.popleft()
        assert message.header.message_type == MessageType.signal
        return message

    def members(self) -> list[str]:
        return [member for member, _, _ in self.sent]


def test_start_scope_waits_for_its_job():
    conn = FakeConnection()
    client = systemd.Systemd(conn)
    properties = systemd.scope_properties("d", "machine.slice", 42, "v2")
    client.start_scope("libpod-x.scope", properties)
    assert conn.members() == ["AddMatch", "Subscribe", "StartTransientUnit"]
    _, signature, body = conn.sent[-1]
    assert signature == "ssa(sv)a(sa(sv))"
    assert body == ("libpod-x.scope", "replace", properties, [])


def test_a_failed_start_is_reset_and_reported():
    conn = FakeConnection(result="failed")
    with pytest.raises(OciishError, match=r"^systemd could not start unit x\.scope: the job ended with 'failed'"):
        systemd.Systemd(conn).start_scope("x.scope", [])
    assert conn.members()[-1] == "ResetFailedUnit"


def test_a_leftover_unit_is_reset_once_then_refused():
    exists = "org.freedesktop.systemd1.UnitExists"
    conn = FakeConnection(errors={"StartTransientUnit": [exists]})
    systemd.Systemd(conn).start_scope("x.scope", [])
    assert conn.members().count("StartTransientUnit") == 2 and "ResetFailedUnit" in conn.members()
    conn = FakeConnection(errors={"StartTransientUnit": [exists, exists]})
    with pytest.raises(OciishError, match=rf"^systemd refused to start unit x\.scope: no \({exists}\)"):
        systemd.Systemd(conn).start_scope("x.scope", [])


def test_no_job_signal_is_a_timeout_error():
    conn = FakeConnection()
    conn.filter = lambda rule, queue: FakeConnection.filter(FakeConnection(), rule, queue)  # signals go nowhere
    with pytest.raises(OciishError, match=r"^systemd did not finish the job for unit x\.scope"):
        systemd.Systemd(conn).start_scope("x.scope", [])


def test_set_properties_and_stop():
    conn = FakeConnection()
    client = systemd.Systemd(conn)
    client.set_properties("x.scope", [("TasksMax", ("t", 5)), ("AllowedCPUs", ("ay", b"\x01"))])
    client.set_properties("x.scope", [])  # nothing to say: no call
    assert conn.sent == [("SetUnitProperties", "sba(sv)", ("x.scope", True, [("TasksMax", ("t", 5)),
                                                                            ("AllowedCPUs", ("ay", b"\x01"))]))]
    client.stop("x.scope")
    assert conn.members()[-1] == "StopUnit" and conn.sent[-1][2] == ("x.scope", "replace")


def test_start_then_stop_on_one_connection_subscribes_once():
    """A create that fails after the scope started stops it on the same connection."""
    conn = FakeConnection()
    client = systemd.Systemd(conn)
    client.start_scope("x.scope", [])
    client.stop("x.scope")
    assert conn.members() == ["AddMatch", "Subscribe", "StartTransientUnit", "StopUnit"]


def test_attach_moves_a_process_into_the_unit():
    conn = FakeConnection()
    systemd.Systemd(conn).attach("x.scope", 7)
    assert conn.sent == [("AttachProcessesToUnit", "ssau", ("x.scope", "", [7]))]
    conn = FakeConnection(errors={"AttachProcessesToUnit": ["org.freedesktop.DBus.Error.AccessDenied"]})
    with pytest.raises(OciishError, match=r"^systemd could not move pid 7 into unit x\.scope: no"):
        systemd.Systemd(conn).attach("x.scope", 7)


def test_stopping_a_unit_systemd_already_dropped_is_fine():
    conn = FakeConnection(errors={"StopUnit": ["org.freedesktop.systemd1.NoSuchUnit"]})
    systemd.Systemd(conn).stop("x.scope")
    conn = FakeConnection(errors={"StopUnit": ["org.freedesktop.DBus.Error.AccessDenied"]})
    with pytest.raises(OciishError, match=r"^systemd refused to stop unit x\.scope"):
        systemd.Systemd(conn).stop("x.scope")


def test_manager_properties():
    client = systemd.Systemd(FakeConnection())
    assert client.version() == 252
    assert client.manager_property("ControlGroup") == "/user.slice"
