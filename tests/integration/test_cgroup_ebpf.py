"""The cgroup v2 device filter in the real kernel (root only).

The kernel consults BPF device programs of a task's cgroup2 cgroup on every host mode,
so even on this hybrid host the filter can be attached to a cgroup in the unified tree
and enforced: a shell moved into that cgroup opens devices, and each open is checked
against the policy.  ociish itself attaches the filter only on pure v2 hosts (elsewhere
the v1 devices controller does the job); this test exercises the same `ebpf.attach`.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from typing import Iterator

import pytest

from ociish.cgroups import detect, ebpf, fs
from ociish.cgroups.devices import normalize_rules

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs and make cgroups")


@pytest.fixture
def cgroup2_dir() -> Iterator[str]:
    found = detect.hierarchies()
    if found.unified is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    path = os.path.join(found.unified, f"ociish-ebpf-test-{uuid.uuid4().hex[:10]}")
    os.mkdir(path)
    yield path
    fs.rmdir(path)  # the kernel detaches the programs with the cgroup
    assert not os.path.exists(path)


def open_results(directory: str, *opens: str) -> list[str]:
    """Run a shell inside the cgroup; for each `<redirect> path`, "ok" or "denied"."""
    checks = "; ".join(f"if (: {spec}) 2>/dev/null; then echo ok; else echo denied; fi" for spec in opens)
    script = f"echo $$ > {directory}/cgroup.procs; {checks}"
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout.split()


def attached(directory: str) -> list[int]:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return ebpf.attached_ids(fd)
    finally:
        os.close(fd)


def test_the_filter_is_enforced_and_an_update_replaces_it(cgroup2_dir: str) -> None:
    opens = ("<> /dev/null", "<> /dev/zero", "< /dev/kmsg", "<> /dev/kmsg")
    assert open_results(cgroup2_dir, *opens) == ["ok", "ok", "ok", "ok"]

    ebpf.attach(cgroup2_dir, ebpf.device_program(normalize_rules([{"allow": False, "access": "rwm"}])))
    assert open_results(cgroup2_dir, *opens) == ["ok", "ok", "denied", "denied"]
    first = attached(cgroup2_dir)
    assert len(first) == 1

    kmsg_read_only = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 11,
                                                          "access": "r"}]
    ebpf.attach(cgroup2_dir, ebpf.device_program(normalize_rules(kmsg_read_only)))
    assert open_results(cgroup2_dir, *opens) == ["ok", "ok", "ok", "denied"]
    second = attached(cgroup2_dir)
    assert len(second) == 1 and second != first  # replaced, not stacked
