"""linux.netDevices: host network interfaces moved into the container's network namespace.

`check` runs while the plan is made, before anything exists, and refuses what cannot work
(no network namespace of the container's, an unprivileged create, a bad or duplicate name,
an interface the host does not have).  `move` runs in `create` (stage 0) once the init's
network namespace exists and before the container process can start: each interface is
moved with its new name (rtnetlink RTM_NEWLINK with IFLA_NET_NS_FD and IFLA_IFNAME, so a
name already taken inside fails with EEXIST, and a `%d` template lets the kernel pick),
given back the permanent global addresses the move made the kernel drop, and set up.

The namespace owns the interfaces from then on: nothing moves them back.  When it goes
away the kernel returns physical devices to the host and destroys virtual ones (a veth
with its peer), as config-linux.md describes.

pyroute2 speaks rtnetlink; it costs ~180 ms of imports (asyncio among them), so only a
create whose config has netDevices loads it.
"""

from __future__ import annotations

import errno
import os

from ociish.errors import ConfigError, OciishError
from ociish.linux import libc as L

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FIELD = "linux.netDevices"
IFNAMSIZ = 16
RT_SCOPE_UNIVERSE = 0
IFA_F_PERMANENT = 0x80
# the address flags a caller may set (the kernel sets the rest itself)
_SETTABLE_FLAGS = 0x02 | 0x04 | 0x10 | 0x100 | 0x200 | 0x400  # NODAD OPTIMISTIC HOMEADDRESS MANAGETEMPADDR NOPREFIXROUTE MCAUTOJOIN


def check(devices: dict[str, Any], network_namespace: tuple[bool, str | None]) -> list[tuple[str, str]]:
    """(host name, name inside) for each entry, or a ConfigError naming the field.

    ``network_namespace`` is (listed in linux.namespaces, its path or None for a new one)."""
    listed, path = network_namespace
    if not listed:
        raise ConfigError(f"config.json: {FIELD}: moving network devices needs a network namespace of the "
                          "container's own (linux.namespaces has no \"network\")")
    if os.geteuid() != 0:
        raise ConfigError(f"config.json: {FIELD}: moving a host network interface needs root")
    import socket

    moves = []
    taken = set() if path else {"lo"}  # a new namespace holds only its loopback
    for host_name, entry in devices.items():
        where = f"{FIELD}.{host_name}"
        if not _valid_name(host_name, template=False):
            raise ConfigError(f"config.json: {where}: {host_name!r} is not a valid interface name")
        target = (entry or {}).get("name") or host_name
        if not _valid_name(target, template=True):
            raise ConfigError(f"config.json: {where}.name: {target!r} is not a valid interface name "
                              f"(1 to {IFNAMSIZ - 1} bytes, no '/', ':' or white space, not '.' or '..', "
                              "at most one '%d')")
        if "%" not in target:
            if target in taken:
                raise ConfigError(f"config.json: {where}.name: the container would have two interfaces named "
                                  f"{target!r}")
            taken.add(target)
        try:
            socket.if_nametoindex(host_name)
        except OSError:
            raise ConfigError(f"config.json: {where}: the host has no network interface {host_name!r}") from None
        moves.append((host_name, target))
    return moves


def _valid_name(name: str, *, template: bool) -> bool:
    """The kernel's dev_valid_name, and for a template its one %d."""
    if not name or len(name.encode()) >= IFNAMSIZ or name in (".", ".."):
        return False
    if any(c in "/:" or c.isspace() for c in name):
        return False
    if "%" in name:
        return template and name.count("%") == 1 and "%d" in name
    return True


def move(moves: list[tuple[str, str]], init_pidfd: int) -> None:
    """Move each (host name, name inside) into the network namespace of the init ``init_pidfd``."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    netns, inside = _enter(init_pidfd, IPRoute)
    try:
        with IPRoute() as host:
            for host_name, target in moves:
                where = f"config.json: {FIELD}.{host_name}"
                try:
                    _move_one(host, inside, netns, host_name, target)
                except NetlinkError as e:
                    reason = os.strerror(e.code)
                    if e.code == errno.EEXIST:
                        reason = f"the container's network namespace already has an interface named {target!r}"
                    raise OciishError(f"{where}: cannot move it into the container: {reason}") from None
                except LookupError as e:
                    raise OciishError(f"{where}: {e.args[0]}") from None
    finally:
        inside.close()
        os.close(netns)


def _enter(init_pidfd: int, iproute: Any) -> tuple[int, Any]:
    """An fd of the init's network namespace and a netlink socket inside it: made there by
    this process, which then returns to its own (a socket stays in the namespace it was
    made in)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        L.setns(init_pidfd, L.CLONE_NEWNET)
        try:
            netns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            inside = iproute()
        finally:
            L.setns(own, L.CLONE_NEWNET)
    finally:
        os.close(own)
    return netns, inside


def _move_one(host: Any, inside: Any, netns: int, host_name: str, target: str) -> None:
    found = host.link_lookup(ifname=host_name)
    if not found:
        raise LookupError(f"the host has no network interface {host_name!r}")
    index = found[0]
    addresses = [a for a in host.get_addr(index=index)
                 if a["scope"] == RT_SCOPE_UNIVERSE and _flags(a) & IFA_F_PERMANENT]
    before = {link["index"] for link in inside.get_links()}
    host.link("set", index=index, net_ns_fd=netns, ifname=target)
    # the kernel may have given it another index (and a template a name): the new link is it
    [moved] = [link for link in inside.get_links() if link["index"] not in before]
    name = moved.get_attr("IFLA_IFNAME")
    for address in addresses:
        inside.addr("add", index=moved["index"], **_address_request(address, host_name, name))
    inside.link("set", index=moved["index"], state="up")


def _flags(address: Any) -> int:
    flags = address.get_attr("IFA_FLAGS")
    return int(address["flags"] if flags is None else flags)


def _address_request(address: Any, old_name: str, new_name: str) -> dict[str, Any]:
    """The RTM_NEWADDR fields that recreate ``address`` on the renamed interface."""
    request: dict[str, Any] = {"family": address["family"], "prefixlen": address["prefixlen"],
                               "flags": _flags(address) & _SETTABLE_FLAGS}
    for attr, key in (("IFA_ADDRESS", "address"), ("IFA_LOCAL", "local"), ("IFA_BROADCAST", "broadcast")):
        value = address.get_attr(attr)
        if value is not None:
            request[key] = value
    label = address.get_attr("IFA_LABEL")
    if label and label.startswith(old_name):  # "eth0" or an alias "eth0:1" follows the new name
        request["label"] = new_name + label[len(old_name):]
    return request
