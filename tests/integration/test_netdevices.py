"""linux.netDevices with real containers: a veth made by the test moves into the container's
network namespace (renamed when asked) with its permanent global addresses, up, and gone
from the host; once the container is deleted the kernel destroys it (a virtual device),
its peer with it.  What cannot work is refused by create with one line and nothing made."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Bundle, Runtime, expect_create_failure, unique_id

SYS_NET = Path("/sys/class/net")


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30).stdout


def in_netns(pid: int, what: str, name: str) -> str:
    """`ip -o WHAT show NAME` in the network namespace of ``pid``."""
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-o", what, "show", name],
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """A veth pair (names unique to this test); vethA has an IPv4 and an IPv6 global address,
    a link-local one of its own and a temporary one, which the move leaves behind."""
    suffix = uuid.uuid4().hex[:6]
    a, b = f"ocA{suffix}", f"ocB{suffix}"
    ip("link", "add", a, "type", "veth", "peer", "name", b)
    try:
        ip("addr", "add", "10.213.7.1/24", "dev", a)
        ip("addr", "add", "fd00:213:7::1/64", "dev", a, "nodad")
        ip("addr", "add", "fd00:213:8::1/64", "dev", a, "valid_lft", "600", "preferred_lft", "600")
        yield a, b
    finally:
        for name in (a, b):
            if (SYS_NET / name).exists():
                subprocess.run(["ip", "link", "del", name], capture_output=True)


def gone(*names: str, timeout: float = 10.0) -> bool:
    """The kernel frees a network namespace from a work queue, a moment after its last process."""
    deadline = time.monotonic() + timeout
    while any((SYS_NET / name).exists() for name in names):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("rename", [None, "ctr0", "ctr%d"])
def test_a_veth_moves_in_with_its_addresses(runtime: Runtime, bundle: Bundle, veth: tuple[str, str],
                                            rename: str | None) -> None:
    """Under its own name, renamed, or numbered by the kernel from a template."""
    a, b = veth
    inside = (rename or a).replace("%d", "0")
    bundle.config["linux"]["netDevices"] = {a: {"name": rename} if rename else {}}
    bundle.args("sleep", "1000")
    mac = (SYS_NET / a / "address").read_text().strip()
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    assert not (SYS_NET / a).exists() and (SYS_NET / b).exists()
    init = runtime.state(cid)["pid"]
    seen = in_netns(init, "addr", inside)
    assert "10.213.7.1/24" in seen and "fd00:213:7::1/64" in seen, seen
    assert "fd00:213:8::1" not in seen  # not permanent: left behind, as the spec says
    assert f"link/ether {mac}" in in_netns(init, "link", inside)
    assert "UP" in in_netns(init, "link", inside).split(">")[0]
    runtime("delete", "--force", cid, check=True)
    assert gone(a, b), "the veth outlived the container's network namespace"


def test_the_container_process_sees_it(runtime: Runtime, bundle: Bundle, veth: tuple[str, str]) -> None:
    """From inside, through the container's own sysfs and busybox ip, before anything else runs."""
    a, b = veth
    bundle.config["linux"]["netDevices"] = {a: {"name": "eth7"}}
    bundle.shell("ls /sys/class/net; ip -o addr show eth7")
    result = runtime("run", "--bundle", str(bundle.path), unique_id())
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split("\n", 2)[0:2]) == ["eth7", "lo"], result.stdout
    assert "inet 10.213.7.1/24" in result.stdout and "inet6 fd00:213:7::1/64" in result.stdout, result.stdout
    assert gone(a, b)


def test_into_a_network_namespace_given_by_path(runtime: Runtime, bundle: Bundle, veth: tuple[str, str]) -> None:
    """The device goes into the namespace the container joins, and stays with its owner after delete."""
    a, b = veth
    owner = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        time.sleep(0.2)
        netns = f"/proc/{owner.pid}/ns/net"
        assert Path(netns).resolve() != Path("/proc/self/ns/net").resolve()
        for ns in bundle.config["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = netns
        bundle.config["linux"]["netDevices"] = {a: {"name": "joined0"}}
        bundle.args("sleep", "1000")
        cid = unique_id()
        runtime("create", "--bundle", str(bundle.path), cid, check=True)
        runtime("delete", "--force", cid, check=True)
        assert "10.213.7.1/24" in in_netns(owner.pid, "addr", "joined0") and not (SYS_NET / a).exists()
    finally:
        owner.kill()
        owner.wait()
    assert gone(a, b)


@pytest.mark.parametrize("change,fragment", [
    (lambda config, a: config["linux"].update(namespaces=[ns for ns in config["linux"]["namespaces"]
                                                          if ns["type"] != "network"]),
     'linux.netDevices: moving network devices needs a network namespace of the container\'s own'),
    (lambda config, a: config["linux"]["netDevices"].update({"ocNoSuchIf0": {}}),
     "linux.netDevices.ocNoSuchIf0: the host has no network interface 'ocNoSuchIf0'"),
    (lambda config, a: config["linux"]["netDevices"].update({a: {"name": "bad/name"}}),
     "linux.netDevices.{a}.name: 'bad/name' is not a valid interface name"),
    (lambda config, a: config["linux"]["netDevices"].update({a: {"name": "lo"}}),
     "the container would have two interfaces named 'lo'"),
])
def test_refused_before_anything_is_made(runtime: Runtime, bundle: Bundle, veth: tuple[str, str], change: object,
                                         fragment: str) -> None:
    a, b = veth
    bundle.config["linux"]["netDevices"] = {a: {}}
    change(bundle.config, a)  # type: ignore[operator]
    expect_create_failure(runtime, bundle, fragment.replace("{a}", a))
    assert (SYS_NET / a).exists() and "10.213.7.1/24" in ip("-o", "addr", "show", a)  # untouched
