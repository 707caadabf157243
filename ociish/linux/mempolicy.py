"""linux.memoryPolicy → the arguments of set_mempolicy(2), checked in `create`.

The kernel answers every bad combination with a bare EINVAL, and some it accepts while
doing nothing the config asked (nodes it does not have are dropped from a nodemask that
still names one it has).  So the rules the kernel applies are checked here, before any
process exists, and each refusal names the field.  The init (and every process `exec`
starts: the policy is the container's) calls set_mempolicy before its credentials and
seccomp change; the policy then survives the execve.

Imported only for configs that set linux.memoryPolicy.
"""

from __future__ import annotations

import os

from ociish.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# <linux/mempolicy.h>: the mode is the low bits of set_mempolicy's first argument, the flags its high bits.
MODES = {
    "MPOL_DEFAULT": 0,
    "MPOL_PREFERRED": 1,
    "MPOL_BIND": 2,
    "MPOL_INTERLEAVE": 3,
    "MPOL_LOCAL": 4,
    "MPOL_PREFERRED_MANY": 5,
    "MPOL_WEIGHTED_INTERLEAVE": 6,
}
FLAGS = {
    "MPOL_F_STATIC_NODES": 1 << 15,
    "MPOL_F_RELATIVE_NODES": 1 << 14,
    "MPOL_F_NUMA_BALANCING": 1 << 13,
}
NODE_ROOT = "/sys/devices/system/node"
_FIELD = "config.json: linux.memoryPolicy"
# set_mempolicy refuses a nodemask longer than a page of bits (4 KiB pages)
_MAX_NODES = 4096 * 8
# modes that take no nodes at all; MPOL_PREFERRED without nodes means "the local node"
_NO_NODES = ("MPOL_DEFAULT", "MPOL_LOCAL")
_NUMA_BALANCING_MODES = ("MPOL_BIND", "MPOL_PREFERRED_MANY")


def policy(spec: dict[str, Any], node_root: str = NODE_ROOT) -> tuple[int, list[int], int]:
    """(mode | flags, nodemask as 64-bit words, maxnode): what set_mempolicy is given.

    ``node_root`` is sysfs's node directory (a fake one in tests)."""
    mode = spec["mode"]
    flags = list(dict.fromkeys(spec.get("flags") or []))
    nodes = parse_nodes(spec.get("nodes") or "")
    static, relative = "MPOL_F_STATIC_NODES" in flags, "MPOL_F_RELATIVE_NODES" in flags
    if static and relative:
        raise ConfigError(f"{_FIELD}.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")
    if mode in _NO_NODES:
        if nodes:
            raise ConfigError(f"{_FIELD}.nodes: {spec['nodes']!r}: {mode} takes no nodes")
        if flags:
            raise ConfigError(f"{_FIELD}.flags: {mode} takes no flags")
    elif not nodes and (mode != "MPOL_PREFERRED" or static or relative):
        raise ConfigError(f"{_FIELD}.nodes: {mode}{' with ' + ', '.join(flags) if flags else ''} needs at least one node")
    if "MPOL_F_NUMA_BALANCING" in flags and mode not in _NUMA_BALANCING_MODES:
        raise ConfigError(f"{_FIELD}.flags: MPOL_F_NUMA_BALANCING needs mode MPOL_BIND or MPOL_PREFERRED_MANY, not {mode}")
    if nodes and not relative:  # relative nodes number positions in the allowed set, not nodes
        _check_nodes(nodes, static, node_root)
    value = MODES[mode]
    for flag in flags:
        value |= FLAGS[flag]
    if not nodes:
        return value, [], 0
    words = [0] * (max(nodes) // 64 + 1)
    for node in nodes:
        words[node // 64] |= 1 << node % 64
    return value, words, 64 * len(words) + 1  # the kernel reads maxnode - 1 bits


def parse_nodes(text: str) -> list[int]:
    """ "0-3,7" → [0, 1, 2, 3, 7] (the kernel's list format, as in Mems_allowed_list)."""
    nodes: list[int] = []
    if not text.strip():
        return nodes
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not (first.isdigit() and (last.isdigit() if dash else True)) or int(last or first) < int(first):
            raise ConfigError(f"{_FIELD}.nodes: {text!r} is not a node list like 0-3,7")
        if int(last or first) >= _MAX_NODES:
            raise ConfigError(f"{_FIELD}.nodes: {text!r}: node {int(last or first)} is beyond any nodemask "
                              f"the kernel takes (nodes 0-{_MAX_NODES - 1})")
        nodes.extend(range(int(first), int(last or first) + 1))
    return nodes


def _check_nodes(nodes: list[int], static: bool, node_root: str) -> None:
    """Nodes must be memory nodes of this host (the kernel silently drops the others);
    with MPOL_F_STATIC_NODES one is enough, the kernel keeps the rest for when they appear."""
    try:
        with open(os.path.join(node_root, "has_memory")) as f:
            host = set(parse_nodes(f.read().strip()))
    except FileNotFoundError:
        raise ConfigError(f"{_FIELD}: this kernel has no NUMA memory policies ({node_root} does not exist)") from None
    missing = [node for node in nodes if node not in host]
    if missing and (not static or len(missing) == len(nodes)):
        have = ", ".join(str(node) for node in sorted(host))
        raise ConfigError(f"{_FIELD}.nodes: node {missing[0]} is not a memory node of this host "
                          f"(it has: {have}; {node_root})")
