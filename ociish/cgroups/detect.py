"""Which cgroup hierarchies the host has, read from /proc/self/mountinfo.

mountinfo is used rather than statfs magic numbers because it also names the v1
controllers of every mount (co-mounts such as `cpu,cpuacct` included) and works
the same for a fake tree in a test directory.
"""

from __future__ import annotations

import os
from collections import namedtuple

from ociish.errors import OciishError

MOUNTINFO = "/proc/self/mountinfo"

# Super options of a v1 mount that name controllers; everything else (rw, xattr,
# release_agent=..., clone_children, ...) is a mount option.
V1_CONTROLLERS = frozenset(
    "cpu cpuacct cpuset memory devices freezer net_cls net_prio blkio perf_event hugetlb pids rdma misc debug".split()
)


class Hierarchies(namedtuple("Hierarchies", "mode v1 unified")):
    """The cgroup mounts under one root: the mode ("v1", "v2" or "hybrid"), v1 controller →
    mount point ("memory" → /sys/fs/cgroup/memory, "name=systemd" → ...), and the cgroup2
    mount or None.  (A namedtuple, not a dataclass: dataclasses imports inspect, ~5 ms.)"""

    __slots__ = ()


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    if "\\" not in text:
        return text  # the usual case, without importing re (and the enum it imports)
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def mounts(mountinfo: str, fstypes: tuple[str, ...] = ("cgroup", "cgroup2")) -> list[tuple[str, str, str]]:
    """(mount point, fs type, super options) of every mount of these types (cgroup, cgroup2)."""
    with open(mountinfo, encoding="utf-8") as f:
        lines = f.read().splitlines()
    mounts = []
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        tail = right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] in fstypes:
            mounts.append((_unescape(fields[4]), tail[0], tail[2]))
    return mounts


def hierarchies(root: str = "/sys/fs/cgroup", mountinfo: str = MOUNTINFO) -> Hierarchies:
    """The hierarchies mounted at or under `root`; raises OciishError if there are none."""
    root = os.path.normpath(root)
    v1: dict[str, str] = {}
    unified = None
    root_is_v2 = False
    for point, fstype, options in mounts(mountinfo):
        if point != root and not point.startswith(root + "/"):
            continue
        if fstype == "cgroup2":
            if point == root:
                root_is_v2 = True
            elif unified is None:
                unified = point
            continue
        for opt in options.split(","):
            if opt in V1_CONTROLLERS or opt.startswith("name="):
                v1.setdefault(opt, point)  # a later bind mount of the same hierarchy is ignored
    if root_is_v2:
        return Hierarchies("v2", {}, root)
    if v1:
        return Hierarchies("hybrid" if unified else "v1", v1, unified)
    raise OciishError(f"no cgroup filesystem is mounted at {root}")


def detect_mode(root: str = "/sys/fs/cgroup", mountinfo: str = MOUNTINFO) -> str:
    """"v1", "v2" or "hybrid" (v1 controllers plus a cgroup2 mount under `root`)."""
    return hierarchies(root, mountinfo).mode
