"""Where a container's freezer is and whether it is frozen, without the manager's imports
(`state` asks on every call)."""

from __future__ import annotations

import os

from ociish.cgroups import fs

UNIFIED = ""  # the controller key of the cgroup2 hierarchy


def locate(dirs: dict[str, str]) -> tuple[str, str] | None:
    """(kind, directory): the v1 freezer if mounted, else cgroup2's cgroup.freeze."""
    if "freezer" in dirs:
        return "v1", dirs["freezer"]
    if UNIFIED in dirs:
        return "v2", dirs[UNIFIED]
    return None


def is_frozen(dirs: dict[str, str]) -> bool:
    """Whether the freezer has finished freezing the container."""
    where = locate(dirs)
    if where is None:
        return False
    kind, directory = where
    if kind == "v1":
        return fs.read_optional(os.path.join(directory, "freezer.state")) == "FROZEN"
    return fs.read_keyed(os.path.join(directory, "cgroup.events")).get("frozen") == "1"
