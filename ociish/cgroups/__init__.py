"""Container cgroups on cgroup v1, v2 and hybrid hosts (see docs/cgroups.md).

`CgroupManager` owns one container's cgroup; `mapping` turns `linux.resources` into
file writes as pure functions; `detect_mode` says which layout the host uses.
"""

from ociish.cgroups.detect import detect_mode
from ociish.cgroups.manager import CgroupManager

__all__ = ["CgroupManager", "detect_mode"]
