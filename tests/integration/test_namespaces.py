"""linux.namespaces, hostname and domainname through real containers (config-linux.md "Namespaces").

Namespace identity is compared by the `/proc/<pid>/ns/<type>` link (``type:[inode]``):
what the container reads for itself against what the test process (in the runtime
namespaces) reads for itself.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Bundle, Runtime, expect_create_failure, run_output, unique_id

# config.json namespace type → name of its link under /proc/<pid>/ns (time only where the kernel has it)
NS_LINK = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt", "cgroup": "cgroup"}
HAS_TIME_NS = os.path.exists("/proc/self/ns/time")
if HAS_TIME_NS:
    NS_LINK["time"] = "time"


def host_ns(link: str, pid: str = "self") -> str:
    return os.readlink(f"/proc/{pid}/ns/{link}")


def ns_report(links: list[str]) -> str:
    """A script printing "<link> <readlink /proc/self/ns/<link>>" per line."""
    return "; ".join(f"echo {link} $(readlink /proc/self/ns/{link})" for link in links)


def container_ns(runtime: Runtime, bundle: Bundle, links: list[str]) -> dict[str, str]:
    """Run the bundle with a script reading its own namespace links; link name → target."""
    bundle.shell(ns_report(links))
    out = run_output(runtime, bundle).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def set_namespaces(bundle: Bundle, entries: list[dict[str, Any]]) -> None:
    bundle.config["linux"]["namespaces"] = entries
    if not any(e["type"] == "uts" and "path" not in e for e in entries):
        # no uts namespace of its own: a hostname would be refused, or rename the joined one
        bundle.config.pop("hostname", None)


def create_sleeper(runtime: Runtime, bundle: Bundle) -> int:
    """A created (not started) container whose init waits in its namespaces; its host pid."""
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    return runtime.state(cid)["pid"]


def test_every_listed_namespace_is_new(runtime: Runtime, bundle: Bundle) -> None:
    """pid, network, ipc, uts, mount, cgroup (and time) without a path are all fresh namespaces."""
    types = list(NS_LINK)
    set_namespaces(bundle, [{"type": t} for t in types])
    seen = container_ns(runtime, bundle, [NS_LINK[t] for t in types])
    same = [t for t in types if seen[NS_LINK[t]] == host_ns(NS_LINK[t])]
    assert same == [], f"namespaces shared with the host although listed as new: {same}"
    assert all(seen[NS_LINK[t]].startswith(NS_LINK[t] + ":[") for t in types), seen


@pytest.mark.skipif(not HAS_TIME_NS, reason="the kernel has no time namespaces")
def test_time_namespace_offsets_the_boot_clock(runtime: Runtime, bundle: Bundle) -> None:
    offset = 1000 * 86400
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": offset, "nanosecs": 0}}
    bundle.args("cat", "/proc/uptime")
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    inside = float(run_output(runtime, bundle).stdout.split()[0])
    assert offset + host_uptime <= inside < offset + host_uptime + 60


def test_container_process_is_pid_1_of_its_pid_namespace(runtime: Runtime, bundle: Bundle) -> None:
    bundle.shell("echo $$; ls /proc | grep -c '^[0-9]'")
    pid, count = run_output(runtime, bundle).stdout.split()
    assert pid == "1"
    assert int(count) <= 3, "processes of the host are visible in the container's /proc"


def test_unlisted_namespaces_are_inherited(runtime: Runtime, bundle: Bundle) -> None:
    """With only a mount namespace listed, every other namespace is the runtime's own."""
    set_namespaces(bundle, [{"type": "mount"}])
    bundle.config["mounts"] = [{"destination": "/proc", "type": "proc", "source": "proc"}]  # all the probe needs
    inherited = [link for link in NS_LINK.values() if link != "mnt"]
    seen = container_ns(runtime, bundle, [*inherited, "mnt"])
    assert {link: seen[link] for link in inherited} == {link: host_ns(link) for link in inherited}
    assert seen["mnt"] != host_ns("mnt")


def test_unlisted_mount_namespace_is_inherited(runtime: Runtime, bundle: Bundle) -> None:
    """Without a mount namespace (and so without mounts) the init shares the host's mount table."""
    set_namespaces(bundle, [{"type": "pid"}])
    bundle.config["mounts"] = []
    bundle.config["linux"].pop("maskedPaths")
    bundle.config["linux"].pop("readonlyPaths")
    pid = create_sleeper(runtime, bundle)
    assert host_ns("mnt", str(pid)) == host_ns("mnt")
    assert host_ns("pid", str(pid)) != host_ns("pid")
    assert os.readlink(f"/proc/{pid}/root") == str(bundle.rootfs)


def test_without_a_mount_namespace_nothing_is_mounted_on_the_host(runtime: Runtime, bundle: Bundle) -> None:
    """The container runs to its end, and the host's mount table is as it was."""
    set_namespaces(bundle, [{"type": "pid"}])
    bundle.config["mounts"] = []
    bundle.config["linux"].pop("maskedPaths")
    bundle.config["linux"].pop("readonlyPaths")
    with open("/proc/self/mountinfo") as f:
        before = [line for line in f if str(bundle.path) in line]
    assert run_output(runtime, bundle.args("echo", "ran")).stdout == "ran\n"
    with open("/proc/self/mountinfo") as f:
        assert [line for line in f if str(bundle.path) in line] == before == []


def test_without_a_mount_namespace_the_refusal_names_the_fields(runtime: Runtime, bundle: Bundle) -> None:
    set_namespaces(bundle, [{"type": "pid"}])
    bundle.config["linux"].pop("readonlyPaths")
    expect_create_failure(runtime, bundle, "config.json: mounts, linux.maskedPaths: need a new mount namespace")


def test_loopback_is_up_in_a_new_network_namespace(runtime: Runtime, bundle: Bundle) -> None:
    """As runc: lo is up (with 127.0.0.1) in a network namespace of the container's own."""
    bundle.shell("cat /sys/class/net/lo/flags; ip -4 addr show dev lo")
    out = run_output(runtime, bundle).stdout
    assert int(out.split()[0], 16) & 1, out  # IFF_UP
    assert "inet 127.0.0.1/8" in out, out  # the kernel gives lo its address when it comes up


def test_namespaces_are_joined_by_path(runtime: Runtime, make_bundle: Callable[[str], Bundle]) -> None:
    """B joins A's network, ipc, uts and pid namespaces through /proc/<A>/ns/* and sees A's hostname."""
    a = make_bundle("a")
    a.config["hostname"] = "container-a"
    a_pid = create_sleeper(runtime, a)
    b = make_bundle("b")
    joined = {"network": "net", "ipc": "ipc", "uts": "uts", "pid": "pid"}
    set_namespaces(b, [{"type": "mount"}, {"type": "cgroup"}]
                   + [{"type": t, "path": f"/proc/{a_pid}/ns/{link}"} for t, link in joined.items()])
    b.shell(ns_report([*joined.values(), "mnt"]) + "; echo hostname $(hostname)")
    seen = dict(line.split(" ", 1) for line in run_output(runtime, b).stdout.splitlines())
    assert {link: seen[link] for link in joined.values()} == {link: host_ns(link, str(a_pid)) for link in joined.values()}
    assert seen["mnt"] not in (host_ns("mnt", str(a_pid)), host_ns("mnt"))
    assert seen["hostname"] == "container-a"


@pytest.mark.parametrize("problem", ["missing path", "regular file", "wrong type", "duplicate type"])
def test_bad_namespace_entries_fail_create_cleanly(runtime: Runtime, bundle: Bundle, tmp_path: Path, problem: str) -> None:
    """A path that is no namespace, or one of another type, or a type listed twice: an error naming the entry."""
    fake = tmp_path / "fake-netns"
    fake.write_text("")
    entry, fragments = {
        "missing path": ({"type": "network", "path": str(tmp_path / "no-such-netns")}, ["No such file"]),
        "regular file": ({"type": "network", "path": str(fake)}, ["not a namespace"]),
        "wrong type": ({"type": "network", "path": "/proc/self/ns/ipc"}, ["ipc", "expected network"]),
        "duplicate type": ({"type": "network"}, ["duplicate"]),
    }[problem]
    namespaces = bundle.config["linux"]["namespaces"]
    if problem == "duplicate type":
        namespaces.append(entry)
        index = len(namespaces) - 1
    else:
        index = namespaces.index({"type": "network"})
        namespaces[index] = entry
    expect_create_failure(runtime, bundle, f"linux.namespaces[{index}]", *fragments)


def test_hostname_and_domainname_are_set_inside_only(runtime: Runtime, bundle: Bundle) -> None:
    host_before = socket.gethostname()
    bundle.config["hostname"] = "inner-host"
    bundle.config["domainname"] = "inner.example"
    bundle.shell("hostname; cat /proc/sys/kernel/domainname")
    assert run_output(runtime, bundle).stdout.splitlines() == ["inner-host", "inner.example"]
    assert socket.gethostname() == host_before


def test_an_empty_hostname_or_mapping_list_is_unset(runtime: Runtime, bundle: Bundle) -> None:
    """As runc and crun read them: "" leaves the names as they were (the host's, copied into
    the new uts namespace), without a uts namespace too; [] is no mappings, without a user
    namespace too."""
    bundle.config["hostname"] = bundle.config["domainname"] = ""
    bundle.shell("hostname; cat /proc/sys/kernel/domainname")
    with open("/proc/sys/kernel/domainname") as f:
        assert run_output(runtime, bundle).stdout.splitlines() == [socket.gethostname(), f.read().strip()]
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "uts"]
    bundle.config["linux"]["uidMappings"] = bundle.config["linux"]["gidMappings"] = []
    bundle.args("true")
    run_output(runtime, bundle)


@pytest.mark.parametrize("field", ["hostname", "domainname"])
def test_hostname_without_new_uts_namespace_is_refused(runtime: Runtime, bundle: Bundle, field: str) -> None:
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "uts"]
    bundle.config.pop("hostname", None)
    bundle.config[field] = "nope"
    expect_create_failure(runtime, bundle, field, "uts namespace")
