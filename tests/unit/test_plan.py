"""The planner: config.json → the init's instructions, and the configs it refuses."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from ociish.errors import ConfigError
from ociish.linux import libc as L
from ociish.process.plan import build_plan, rlimits
from ociish.spec.defaults import default_config


def plan(config: dict[str, Any], **options: Any) -> dict[str, Any]:
    return build_plan(config, container_id="c", bundle="/b", rootfs="/b/rootfs", options=options,
                      cgroup_mounts=[("memory", "memory", "/sys/fs/cgroup/memory/c")])


@pytest.fixture
def config() -> dict[str, Any]:
    config = copy.deepcopy(default_config())
    config["process"]["terminal"] = False
    return config


def test_default_config_plan(config: dict[str, Any]) -> None:
    p = plan(config)
    cgroup = L.CLONE_NEWCGROUP if {"type": "cgroup"} in config["linux"]["namespaces"] else 0  # cgroup v2 hosts
    assert p["unshare_flags"] == (L.CLONE_NEWPID | L.CLONE_NEWNET | L.CLONE_NEWIPC | L.CLONE_NEWUTS
                                  | L.CLONE_NEWNS | cgroup)
    assert not p["new_userns"] and p["mount_ns"] and p["readonly"]
    assert [d["path"] for d in p["devices"]] == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                                  "/dev/urandom", "/dev/tty"]
    assert p["mounts"][0]["destination"] == "/proc" and p["mounts"][-1]["cgroup"]
    assert p["rootfs_propagation"] == 0
    assert p["process"]["umask"] is None and p["process"]["caps"]["bounding"]  # unset: the caller's umask


@pytest.mark.parametrize("field,value,message", [
    ("hostname", "h", "hostname: setting it needs a uts namespace of the container.s own"),
    ("domainname", "d", "domainname: setting it needs a uts namespace of the container.s own"),
])
def test_uts_fields_need_a_uts_namespace(config: dict[str, Any], field: str, value: str, message: str) -> None:
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "uts"]
    config.pop("hostname")
    config[field] = value
    with pytest.raises(ConfigError, match=message):
        plan(config)


def test_mappings_without_a_user_namespace(config: dict[str, Any]) -> None:
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    with pytest.raises(ConfigError, match="mappings need a new user namespace"):
        plan(config)


def test_terminal_and_console_socket_go_together(config: dict[str, Any]) -> None:
    config["process"]["terminal"] = True
    with pytest.raises(ConfigError, match="--console-socket is required"):
        plan(config)
    assert plan(config, console=True)["process"]["terminal"]
    config["process"]["terminal"] = False
    with pytest.raises(ConfigError, match="process.terminal is not true"):
        plan(config, console=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="an unprivileged create is refused before the names are read")
@pytest.mark.parametrize("devices,message", [
    ({"lo": {"name": "a/b"}}, "linux.netDevices.lo.name: 'a/b' is not a valid interface name"),
    ({"lo": {"name": "sixteen-bytes-xx"}}, "linux.netDevices.lo.name: 'sixteen-bytes-xx' is not a valid"),
    ({"lo": {"name": "e%d%d"}}, "at most one '%d'"),
    ({"lo": {"name": "eth 0"}}, "is not a valid interface name"),
    ({"..": {}}, "linux.netDevices...: '..' is not a valid interface name"),
    ({"lo": {}}, "the container would have two interfaces named 'lo'"),
    ({"lo": {"name": "x"}, "ociish-absent0": {"name": "x"}}, "two interfaces named 'x'"),
    ({"ociish-absent0": {}}, "linux.netDevices.ociish-absent0: the host has no network interface 'ociish-absent0'"),
])
def test_net_devices_are_checked_before_anything_exists(config: dict[str, Any], devices: dict[str, Any],
                                                        message: str) -> None:
    config["linux"]["netDevices"] = devices
    with pytest.raises(ConfigError, match="^config.json: ") as caught:
        plan(config)
    assert message in caught.value.message


@pytest.mark.skipif(os.geteuid() != 0, reason="an unprivileged create is refused before the names are read")
def test_net_devices_need_a_network_namespace(config: dict[str, Any]) -> None:
    config["linux"]["netDevices"] = {"lo": {"name": "host-lo"}}
    assert plan(config)["net_devices"] == [("lo", "host-lo")]
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
    with pytest.raises(ConfigError, match=r"^config.json: linux.netDevices: .*linux.namespaces has no \"network\""):
        plan(config)


def test_bind_source_must_exist(config: dict[str, Any]) -> None:
    config["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/dir", "options": ["rbind"]})
    with pytest.raises(ConfigError, match=r"mounts\[7\].source"):
        plan(config)


def test_relative_bind_source_is_relative_to_the_bundle(config: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    config["mounts"].append({"destination": "rel/dest", "source": "data", "options": ["bind"]})
    p = build_plan(config, container_id="c", bundle=str(tmp_path), rootfs=str(tmp_path), options={}, cgroup_mounts=[])
    assert p["mounts"][-1]["source"] == str(tmp_path / "data")
    assert p["mounts"][-1]["destination"] == "/rel/dest"


def test_mounts_need_a_mount_namespace(config: dict[str, Any]) -> None:
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "mount"]
    with pytest.raises(ConfigError, match="need a new mount namespace"):
        plan(config)


def test_host_dev_bind_skips_the_default_devices(config: dict[str, Any]) -> None:
    config["mounts"][1] = {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}
    assert plan(config)["devices"] == []


def test_configured_device_replaces_a_default_one(config: dict[str, Any]) -> None:
    config["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 5}]
    devices = plan(config)["devices"]
    assert [d for d in devices if d["path"] == "/dev/null"] == [
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "mode": 0o600, "uid": 5, "gid": 0,
         "host_path": "/dev/null", "where": "linux.devices[0]", "configured": True}]


def test_namespace_path_of_the_wrong_type(config: dict[str, Any]) -> None:
    config["linux"]["namespaces"][1] = {"type": "network", "path": "/proc/self/ns/ipc"}
    with pytest.raises(ConfigError, match=r"linux.namespaces\[1\].path: '/proc/self/ns/ipc' is a ipc namespace, expected network"):
        plan(config)
    config["linux"]["namespaces"][1] = {"type": "network", "path": "/etc/hostname"}
    with pytest.raises(ConfigError, match="is not a namespace file|No such file"):
        plan(config)


def test_joined_namespace_is_not_unshared(config: dict[str, Any]) -> None:
    config["linux"]["namespaces"][1] = {"type": "network", "path": "/proc/self/ns/net"}
    p = plan(config)
    assert not p["unshare_flags"] & L.CLONE_NEWNET
    assert p["ns_paths"] == [("network", "/proc/self/ns/net", L.CLONE_NEWNET)]


def test_rlimits() -> None:
    assert rlimits({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 2**64 - 1}]})[0][1:3] == (10, -1)
    with pytest.raises(ConfigError, match="not a Linux rlimit"):
        rlimits({"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]})
    with pytest.raises(ConfigError, match="exceeds hard limit"):
        rlimits({"rlimits": [{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}]})


def test_plan_is_marshalable(config: dict[str, Any]) -> None:
    import marshal

    p = plan(config)
    assert marshal.loads(marshal.dumps(p)) == p
    assert os.getpid() == p["parent_pid"]


def test_lsm_labels_for_an_absent_lsm_are_errors(config: dict[str, Any]) -> None:
    if os.path.exists("/sys/module/apparmor/parameters/enabled") or os.path.isdir("/sys/fs/selinux"):
        pytest.skip("this host runs an LSM")
    config["process"]["apparmorProfile"] = "docker-default"
    with pytest.raises(ConfigError, match="AppArmor is not enabled on this host"):
        plan(config)
    del config["process"]["apparmorProfile"]
    config["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
    with pytest.raises(ConfigError, match="SELinux is not enabled on this host"):
        plan(config)


def test_scheduler_and_io_priority(config: dict[str, Any]) -> None:
    config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 7}
    p = plan(config)
    assert p["scheduler"] == (3, 1, 5, 0, 0, 0, 0) and p["io_priority"] == (3, 7)
    config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_RT"}  # the spec's schema requires only the class
    assert plan(config)["io_priority"] == (1, 0)
