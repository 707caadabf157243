"""Container cgroups on cgroup v1, v2 and hybrid hosts (see docs/cgroups.md).

`CgroupManager` owns one container's cgroup; `mapping` turns `linux.resources` into
file writes as pure functions; `detect_mode` says which layout the host uses.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["CgroupManager", "detect_mode", "is_frozen"]


def __getattr__(name: str) -> Any:
    """Import the manager only when used: `state` needs just is_frozen below."""
    if name == "CgroupManager":
        from ociish.cgroups.manager import CgroupManager

        return CgroupManager
    if name == "detect_mode":
        from ociish.cgroups.detect import detect_mode

        return detect_mode
    raise AttributeError(name)


def is_frozen(record: dict[str, Any]) -> bool:
    """Whether a container's recorded cgroup (CgroupManager.to_record) is frozen."""
    from ociish.cgroups import freezer

    return freezer.is_frozen(record.get("paths") or {})
