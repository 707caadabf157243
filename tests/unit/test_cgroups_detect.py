"""Host cgroup layout detection from mountinfo (ociish.cgroups.detect)."""

from __future__ import annotations

import pytest

from ociish.cgroups import detect_mode
from ociish.cgroups.detect import hierarchies
from ociish.errors import OciishError

COMMON = "23 1 0:21 / /proc rw,nosuid - proc proc rw\n31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"

HYBRID = COMMON + """\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

LEGACY_COMOUNT = COMMON + """\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
34 31 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory,clone_children
35 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
36 1 0:31 / /mnt/other/memory rw - cgroup cgroup rw,memory
37 31 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
"""

UNIFIED = COMMON.splitlines()[0] + "\n30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"


def _write(tmp_path, text):
    path = tmp_path / "mountinfo"
    path.write_text(text)
    return str(path)


def test_hybrid(tmp_path):
    found = hierarchies("/sys/fs/cgroup", _write(tmp_path, HYBRID))
    assert found.mode == "hybrid"
    assert found.unified == "/sys/fs/cgroup/unified"
    assert found.v1["cpu"] == "/sys/fs/cgroup/cpu"
    assert found.v1["cpuacct"] == "/sys/fs/cgroup/cpuacct"
    assert found.v1["name=systemd"] == "/sys/fs/cgroup/systemd"
    assert set(found.v1) == {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "name=systemd"}


def test_legacy_with_comounts(tmp_path):
    mountinfo = _write(tmp_path, LEGACY_COMOUNT)
    found = hierarchies("/sys/fs/cgroup/", mountinfo)
    assert found.mode == "v1" and found.unified is None
    assert found.v1["cpu"] == found.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert found.v1["net_cls"] == found.v1["net_prio"] == "/sys/fs/cgroup/net_cls,net_prio"
    assert found.v1["memory"] == "/sys/fs/cgroup/memory"  # not the mount outside the root
    assert "clone_children" not in found.v1 and "xattr" not in found.v1
    assert detect_mode("/sys/fs/cgroup", mountinfo) == "v1"


def test_unified(tmp_path):
    found = hierarchies("/sys/fs/cgroup", _write(tmp_path, UNIFIED))
    assert (found.mode, found.v1, found.unified) == ("v2", {}, "/sys/fs/cgroup")


def test_escaped_mount_points(tmp_path):
    text = r"32 31 0:29 / /tmp/my\040root/memory rw - cgroup cgroup rw,memory" + "\n"
    found = hierarchies("/tmp/my root", _write(tmp_path, text))
    assert found.v1 == {"memory": "/tmp/my root/memory"}


def test_no_cgroups(tmp_path):
    with pytest.raises(OciishError, match="no cgroup filesystem is mounted at /sys/fs/cgroup"):
        detect_mode("/sys/fs/cgroup", _write(tmp_path, COMMON))


def test_this_host():
    assert detect_mode() in ("v1", "v2", "hybrid")
