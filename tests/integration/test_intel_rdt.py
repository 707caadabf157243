"""linux.intelRdt on this host, which has no RDT hardware and no resctrl filesystem.

What a real resctrl tree gets (groups, schemata, tasks, MON groups, their removal) is
tested against a fake one in tests/unit/test_resctrl.py; here, that a container asking
for RDT where there is none fails the way config-linux.md says it must: an error, and
nothing made.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conftest import Bundle, Runtime, unique_id
from test_errors import assert_clean_failure


def _has_resctrl() -> bool:
    with open("/proc/filesystems") as f:
        return any(line.split()[-1:] == ["resctrl"] for line in f)


@pytest.mark.parametrize("spec", [{}, {"closID": "guaranteed_group"},
                                  {"l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20", "enableMonitoring": True}])
def test_intel_rdt_without_resctrl_is_an_error(runtime: Runtime, bundle: Bundle, spec: dict) -> None:
    if _has_resctrl():
        pytest.skip("this kernel has a resctrl filesystem")
    bundle.config["linux"]["intelRdt"] = spec
    bundle.write()
    err = assert_clean_failure(runtime, bundle, "config.json: linux.intelRdt: this host has no resctrl filesystem: "
                               "its CPU or its kernel lacks Intel RDT")
    assert len(err.strip().splitlines()) == 1
    assert not os.path.exists("/sys/fs/resctrl/guaranteed_group")


# `ociish` with resctrl's two /proc files replaced: a mountinfo naming a temporary
# directory as the resctrl mount, so create, exec and delete run for real against it;
# rmdir of a group takes its files with it, as in the kernel.
WRAPPER = """
import os, sys
from ociish import resctrl
resctrl.MOUNTINFO, resctrl.FILESYSTEMS = sys.argv[1:3]
del sys.argv[1:3]
real_rmdir, fake_root = os.rmdir, os.path.join(os.path.dirname(resctrl.MOUNTINFO), "resctrl")
def rmdir(path):
    for name in ("schemata", "tasks") if path.startswith(fake_root) else ():
        if os.path.isfile(os.path.join(path, name)):
            os.unlink(os.path.join(path, name))
    real_rmdir(path)
os.rmdir = rmdir
from ociish.cli import leave, main
leave(main())
"""


@pytest.fixture
def fake_tree(runtime: Runtime, tmp_path: Path) -> Path:
    root = tmp_path / "resctrl"
    for resource in ("L3", "MB"):
        (root / "info" / resource).mkdir(parents=True)
    (tmp_path / "mountinfo").write_text(f"40 22 0:36 / {root} rw,relatime - resctrl resctrl rw\n")
    (tmp_path / "filesystems").write_text("nodev\tresctrl\n")
    runtime.command = [sys.executable, "-c", WRAPPER, str(tmp_path / "mountinfo"), str(tmp_path / "filesystems"),
                       *runtime.command[3:]]
    return root


def test_create_exec_and_delete_go_through_the_group(runtime: Runtime, bundle: Bundle, fake_tree: Path) -> None:
    """The group is made with its schemata before the init starts, stage 1 is written to
    tasks, an exec'd process too, and delete removes the group it made."""
    bundle.config["linux"]["intelRdt"] = {"l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20"}
    bundle.args("sleep", "30")
    bundle.write()
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    group = fake_tree / cid
    assert (group / "schemata").read_text() == "MB:0=20\n"  # the last of the two writes (a file keeps only it)
    stage1 = int((group / "tasks").read_text())
    assert stage1 != runtime.state(cid)["pid"]  # the bootstrap, joined before it forked the init
    runtime("start", cid, check=True)
    runtime("exec", cid, "true", check=True)
    assert int((group / "tasks").read_text()) not in (stage1, runtime.state(cid)["pid"])
    runtime("delete", "--force", cid, check=True)
    assert not group.exists()


def test_a_failed_create_removes_the_group(runtime: Runtime, bundle: Bundle, fake_tree: Path) -> None:
    bundle.config["linux"]["intelRdt"] = {"closID": "made_here", "schemata": ["L3:0=f"]}
    bundle.args("/no/such/program")
    bundle.write()
    assert_clean_failure(runtime, bundle, "process.args[0]")
    assert os.listdir(fake_tree) == ["info"]


def test_a_shared_group_with_other_schemata_is_refused(runtime: Runtime, bundle: Bundle, fake_tree: Path) -> None:
    (fake_tree / "shared").mkdir()
    (fake_tree / "shared" / "schemata").write_text("    L3:0=7ff\n")
    bundle.config["linux"]["intelRdt"] = {"closID": "shared", "l3CacheSchema": "L3:0=f"}
    bundle.write()
    assert_clean_failure(runtime, bundle, "config.json: linux.intelRdt.l3CacheSchema: 'L3:0=f' does not match "
                         "the existing group")
    assert sorted(os.listdir(fake_tree / "shared")) == ["schemata"]


def test_update_writes_the_schemata_of_the_containers_group(runtime: Runtime, bundle: Bundle, fake_tree: Path) -> None:
    bundle.config["linux"]["intelRdt"] = {"l3CacheSchema": "L3:0=7f0"}
    bundle.args("sleep", "30")
    bundle.write()
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    runtime("update", "--l3-cache-schema", "L3:0=f", cid, check=True)
    assert (fake_tree / cid / "schemata").read_text() == "L3:0=f\n"
    runtime("delete", "--force", cid, check=True)


def test_update_of_a_container_without_intel_rdt_is_refused(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sleep", "30")
    bundle.write()
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    result = runtime("update", "--mem-bw-schema", "MB:0=20", cid)
    assert result.returncode == 1
    assert result.stderr.strip() == f"ociish: update --mem-bw-schema: container {cid!r} has no linux.intelRdt " \
                                    "(no resctrl group to write to)"
    runtime("delete", "--force", cid, check=True)
