"""linux.intelRdt against a fake resctrl tree: which groups are made, written, joined and removed.

No host here has RDT hardware, so the kernel's side is played by a temporary directory
laid out like /sys/fs/resctrl (a mountinfo line names it as the resctrl mount) and a
recorder of every write to a schemata or tasks file.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from ociish import resctrl
from ociish.errors import ConfigError, OciishError
from ociish.resctrl import IntelRdt


class FakeResctrl:
    """A resctrl look-alike: new groups get mon_groups/, writes are logged, bad lines refused."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resources: tuple[str, ...] = ("L3", "L2", "MB", "L3_MON"),
                 max_groups: int = 16) -> None:
        self.root = tmp_path / "resctrl"
        (self.root / "info").mkdir(parents=True)
        for name in resources:
            (self.root / "info" / name).mkdir(parents=True)
        (self.root / "info" / "last_cmd_status").write_text("ok\n")
        (self.root / "mon_groups").mkdir()
        (self.root / "schemata").write_text("    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n")
        self.mountinfo = tmp_path / "mountinfo"
        self.mountinfo.write_text("22 1 0:21 / / rw - ext4 /dev/vda rw\n"
                                  f"40 22 0:36 / {self.root} rw,relatime shared:20 - resctrl resctrl rw\n")
        self.filesystems = tmp_path / "filesystems"
        self.filesystems.write_text("nodev\tsysfs\nnodev\tresctrl\n")
        self.writes: list[tuple[str, str]] = []
        self.max_groups = max_groups
        real_mkdir, real_rmdir, real_open = os.mkdir, os.rmdir, open

        def mkdir(path: Any, mode: int = 0o777) -> None:
            if str(path).startswith(str(self.root)) and len(self.groups()) >= self.max_groups:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            real_mkdir(path, mode)
            if os.path.dirname(str(path)) == str(self.root):
                real_mkdir(os.path.join(path, "mon_groups"))

        def rmdir(path: Any) -> None:
            """A group goes with its MON groups, as in the kernel."""
            if os.path.isdir(os.path.join(path, "mon_groups")) and os.path.dirname(str(path)) == str(self.root):
                for name in os.listdir(os.path.join(path, "mon_groups")):
                    real_rmdir(os.path.join(path, "mon_groups", name))
                real_rmdir(os.path.join(path, "mon_groups"))
            real_rmdir(path)

        def fake_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if "w" in mode and str(path).startswith(str(self.root)):
                return _Recorder(self, self.relative(str(path)))
            return real_open(path, mode, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(os, "rmdir", rmdir)
        monkeypatch.setattr(resctrl, "open", fake_open, raising=False)

    def relative(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    def groups(self) -> list[str]:
        """Every group directory below the root (CTRL_MON and MON groups)."""
        found = []
        for dirpath, dirnames, _ in os.walk(self.root):
            if "info" in dirnames and dirpath == str(self.root):
                dirnames.remove("info")
            found += [self.relative(os.path.join(dirpath, d)) for d in dirnames if d != "mon_groups"]
        return sorted(found)

    def rdt(self, spec: dict[str, Any], container_id: str = "c1") -> IntelRdt:
        return IntelRdt.for_container(spec, container_id, str(self.mountinfo), str(self.filesystems))


class _Recorder:
    def __init__(self, fake: FakeResctrl, path: str) -> None:
        self.fake, self.path = fake, path

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def write(self, data: str) -> int:
        if "=zz" in data:  # a bitmask the kernel cannot parse
            (self.fake.root / "info" / "last_cmd_status").write_text("Non-hex character in the mask zz\n")
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        self.fake.writes.append((self.path, data))
        return len(data)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeResctrl:
    return FakeResctrl(tmp_path, monkeypatch)


def test_without_closid_the_container_gets_a_group_of_its_own(fake: FakeResctrl) -> None:
    rdt = fake.rdt({"l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20;1=70"})
    rdt.create()
    rdt.join(1234)
    assert fake.groups() == ["c1"]
    assert fake.writes == [("c1/schemata", "L3:0=7f0;1=1f\n"), ("c1/schemata", "MB:0=20;1=70\n"),
                           ("c1/tasks", "1234")]
    IntelRdt.from_record(rdt.to_record()).destroy()  # delete goes by the state record
    assert fake.groups() == []


def test_schemata_lines_come_after_the_two_schemas_one_write_each(fake: FakeResctrl) -> None:
    """A later line overrides an earlier one (in one write the kernel refuses a domain twice)."""
    fake.rdt({"closID": "g", "memBwSchema": "MB:0=20", "l3CacheSchema": "L3:0=f",
              "schemata": ["L3:0=7f0;1=1f", "L2:0=f", "MB:0=70"]}).create()
    assert [data for _, data in fake.writes] == ["L3:0=f\n", "MB:0=20\n", "L3:0=7f0;1=1f\n", "L2:0=f\n", "MB:0=70\n"]


def test_no_schemata_means_no_write_to_any_schemata_file(fake: FakeResctrl) -> None:
    rdt = fake.rdt({})
    rdt.create()
    rdt.join(7)
    assert fake.groups() == ["c1"] and fake.writes == [("c1/tasks", "7")]


def test_a_closid_group_made_here_stays_after_delete(fake: FakeResctrl) -> None:
    rdt = fake.rdt({"closID": "guaranteed", "l3CacheSchema": "L3:0=7f0"})
    rdt.create()
    IntelRdt.from_record(rdt.to_record()).destroy()
    assert fake.groups() == ["guaranteed"]


def test_an_existing_group_is_shared_when_its_schemata_match(fake: FakeResctrl) -> None:
    (fake.root / "shared").mkdir()
    (fake.root / "shared" / "schemata").write_text("    L3:0=07f0;1=1f\n    MB:0= 20;1=100\n")
    rdt = fake.rdt({"closID": "shared", "l3CacheSchema": "L3:0=7F0", "memBwSchema": "MB:0=20"})
    rdt.create()
    rdt.join(42)
    assert fake.writes == [("shared/tasks", "42")]  # never rewritten
    IntelRdt.from_record(rdt.to_record()).destroy()
    assert "shared" in fake.groups()


def test_an_existing_group_with_other_schemata_is_refused(fake: FakeResctrl) -> None:
    (fake.root / "shared").mkdir()
    (fake.root / "shared" / "schemata").write_text("    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n")
    with pytest.raises(ConfigError, match=r"linux\.intelRdt\.schemata\[0\]: 'L3:0=7f0' does not match the existing "
                                          r"group .*shared \(L3:0=7ff;1=7ff\)"):
        fake.rdt({"closID": "shared", "schemata": ["L3:0=7f0"]})


def test_a_closid_without_schemata_must_exist(fake: FakeResctrl) -> None:
    with pytest.raises(ConfigError, match=r"linux\.intelRdt\.closID: 'preset': no such group"):
        fake.rdt({"closID": "preset"})
    (fake.root / "preset").mkdir()
    rdt = fake.rdt({"closID": "preset"})
    rdt.create()
    rdt.join(5)
    assert fake.writes == [("preset/tasks", "5")]


def test_closid_slash_is_the_default_group(fake: FakeResctrl) -> None:
    rdt = fake.rdt({"closID": "/", "enableMonitoring": True})
    rdt.create()
    rdt.join(9)
    assert fake.writes == [("tasks", "9"), ("mon_groups/c1/tasks", "9")]
    IntelRdt.from_record(rdt.to_record()).destroy()
    assert fake.groups() == [] and (fake.root / "tasks").exists() is False  # the root is never removed
    assert fake.root.is_dir()


def test_monitoring_makes_a_mon_group_named_after_the_container_and_delete_removes_it(fake: FakeResctrl) -> None:
    (fake.root / "shared").mkdir()
    rdt = fake.rdt({"closID": "shared", "enableMonitoring": True}, "web")
    rdt.create()
    rdt.join(11)
    assert fake.writes == [("shared/tasks", "11"), ("shared/mon_groups/web/tasks", "11")]
    IntelRdt.from_record(rdt.to_record()).destroy()
    assert fake.groups() == ["shared"]


def test_a_failed_create_leaves_nothing(fake: FakeResctrl) -> None:
    rdt = fake.rdt({"schemata": ["L3:0=zz"], "enableMonitoring": True})
    with pytest.raises(ConfigError, match=r"linux\.intelRdt\.schemata\[0\]: 'L3:0=zz': the kernel refused it: "
                                          "Non-hex character in the mask zz"):
        rdt.create()
    rdt.rollback()
    assert fake.groups() == []


def test_a_full_mon_group_table_is_an_error_and_undone(fake: FakeResctrl) -> None:
    fake.max_groups = 1
    rdt = fake.rdt({"enableMonitoring": True})
    with pytest.raises(OciishError, match=r"linux\.intelRdt\.enableMonitoring: cannot create .*mon_groups/c1: "
                                          "no more groups of this kind can be made"):
        rdt.create()
    rdt.rollback()
    assert fake.groups() == []


def test_rollback_keeps_a_group_that_was_there(fake: FakeResctrl) -> None:
    (fake.root / "shared").mkdir()
    rdt = fake.rdt({"closID": "shared", "enableMonitoring": True})
    rdt.create()
    rdt.rollback()
    assert fake.groups() == ["shared"]


@pytest.mark.parametrize("spec,message", [
    ({"l3CacheSchema": "L3:0=f"}, r"linux\.intelRdt\.l3CacheSchema: 'L3:0=f': this host has no L3 resource"),
    ({"memBwSchema": "MB:0=20"}, r"linux\.intelRdt\.memBwSchema: 'MB:0=20': this host has no MB resource"),
    ({"enableMonitoring": True}, r"linux\.intelRdt\.enableMonitoring: this host's resctrl has no monitoring"),
])
def test_resources_the_host_lacks_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: dict,
                                              message: str) -> None:
    fake = FakeResctrl(tmp_path, monkeypatch, resources=())
    with pytest.raises(ConfigError, match=message):
        fake.rdt(spec)
    assert fake.groups() == []


@pytest.mark.parametrize("clos_id", ["", "a/b", "..", ".", "info", "mon_groups", "tasks"])
def test_closid_must_be_a_group_name(fake: FakeResctrl, clos_id: str) -> None:
    with pytest.raises(ConfigError, match=r"linux\.intelRdt\.closID: .*: not a group name"):
        fake.rdt({"closID": clos_id})


def test_an_existing_mon_group_is_refused(fake: FakeResctrl) -> None:
    (fake.root / "mon_groups" / "c1").mkdir()
    with pytest.raises(ConfigError, match=r"linux\.intelRdt\.enableMonitoring: the MON group .* already exists"):
        fake.rdt({"closID": "/", "enableMonitoring": True})


def test_unmounted_and_missing_resctrl_say_which(fake: FakeResctrl) -> None:
    fake.mountinfo.write_text("22 1 0:21 / / rw - ext4 /dev/vda rw\n")
    with pytest.raises(ConfigError, match=r"^config\.json: linux\.intelRdt: no resctrl filesystem is mounted"):
        fake.rdt({})
    fake.filesystems.write_text("nodev\tsysfs\n")
    with pytest.raises(ConfigError, match=r"^config\.json: linux\.intelRdt: this host has no resctrl filesystem: "
                                          "its CPU or its kernel lacks Intel RDT"):
        fake.rdt({})


def test_the_mount_point_comes_from_mountinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeResctrl(tmp_path, monkeypatch)
    assert fake.rdt({}).group == str(fake.root / "c1")


def test_update_writes_the_containers_own_group(fake: FakeResctrl) -> None:
    rdt = fake.rdt({"l3CacheSchema": "L3:0=7f0"})
    rdt.create()
    fake.writes.clear()
    IntelRdt.from_record(rdt.to_record()).update([("--l3-cache-schema", "L3:0=f"), ("--mem-bw-schema", "MB:0=50")])
    assert fake.writes == [("c1/schemata", "L3:0=f\n"), ("c1/schemata", "MB:0=50\n")]


def test_update_leaves_a_shared_group_alone(fake: FakeResctrl) -> None:
    (fake.root / "shared").mkdir()
    rdt = IntelRdt.from_record(fake.rdt({"closID": "shared"}).to_record())
    with pytest.raises(OciishError, match=r"update --mem-bw-schema: .*shared was there before the container"):
        rdt.update([("--mem-bw-schema", "MB:0=50")])
    assert fake.writes == []


@pytest.mark.parametrize("flag,line", [("--l3-cache-schema", "MB:0=20"), ("--mem-bw-schema", "L3:0=f")])
def test_update_lines_must_be_of_their_flags_resource(fake: FakeResctrl, flag: str, line: str) -> None:
    rdt = fake.rdt({})
    rdt.create()
    with pytest.raises(OciishError, match=f"update {flag}: {line!r}: expected one line starting with"):
        rdt.update([(flag, line)])


def test_update_reports_the_kernels_reason(fake: FakeResctrl) -> None:
    rdt = fake.rdt({})
    rdt.create()
    with pytest.raises(ConfigError, match=r"^update --l3-cache-schema: 'L3:0=zz': the kernel refused it: Non-hex"):
        rdt.update([("--l3-cache-schema", "L3:0=zz")])


def test_delete_after_a_create_killed_before_the_groups_is_quiet(fake: FakeResctrl) -> None:
    """The record names the groups before they exist: delete --force of such a container finds nothing to remove."""
    record = fake.rdt({"enableMonitoring": True}).to_record()
    IntelRdt.from_record(record).destroy()
    assert fake.groups() == []
