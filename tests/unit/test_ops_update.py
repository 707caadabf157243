"""`ociish update`: runc's flags and --resources into a LinuxResources change, the merge onto
the current resources, and the apply / roll back / record sequence (against a fake cgroup)."""

from __future__ import annotations

import io
import os
import sys
from typing import Any

import orjson
import pytest

from ociish.cli import _parser
from ociish.ops.container import Container
from ociish.errors import ConfigError, OciishError
from ociish.ops import update as up
from ociish.state.store import StateStore


def change_for(*argv: str) -> dict[str, Any]:
    return up.resources_from_args(_parser().parse_args(["update", *argv, "ID"]))


@pytest.mark.parametrize("text, expected", [
    ("1048576", 1048576), ("-1", -1), ("512k", 512 << 10), ("512K", 512 << 10), ("100m", 100 << 20),
    ("1g", 1 << 30), ("1GiB", 1 << 30), ("1gb", 1 << 30), ("1.5g", 3 << 29), ("2 MB", 2 << 20), ("0", 0),
])
def test_parse_bytes_reads_runc_sizes(text, expected):
    assert up.parse_bytes(text, "--memory") == expected


@pytest.mark.parametrize("text", ["", "12x", "1.5.5g", "-2", "m", "1e6"])
def test_parse_bytes_refuses_the_rest(text):
    with pytest.raises(OciishError, match=r"^update: invalid value for --memory: "):
        up.parse_bytes(text, "--memory")


def test_every_runc_flag_lands_in_its_field():
    change = change_for(
        "--memory", "1g", "--memory-reservation", "512m", "--memory-swap", "-1", "--kernel-memory", "1m",
        "--kernel-memory-tcp", "2m", "--cpu-share", "512", "--cpu-quota", "-1", "--cpu-period", "100000",
        "--cpu-rt-runtime", "950", "--cpu-rt-period", "1000", "--cpuset-cpus", "0-1", "--cpuset-mems", "0",
        "--pids-limit", "0", "--blkio-weight", "500",
    )
    assert change == {
        "memory": {"limit": 1 << 30, "reservation": 512 << 20, "swap": -1, "kernel": 1 << 20, "kernelTCP": 2 << 20},
        "cpu": {"shares": 512, "quota": -1, "period": 100000, "realtimeRuntime": 950, "realtimePeriod": 1000,
                "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 0},
        "blockIO": {"weight": 500},
    }
    assert change_for("--cpu-shares", "2") == {"cpu": {"shares": 2}}  # the brief's plural spelling too
    assert change_for() == {}


def test_the_flag_table_and_the_parser_agree():
    args = vars(_parser().parse_args(["update", "ID"]))
    assert set(up.FLAG_FIELDS) <= set(args)


@pytest.mark.parametrize("argv, message", [
    (["--cpu-quota", "x"], r"--cpu-quota: 'x' \(an integer\)"),
    (["--cpu-share", "-5"], r"--cpu-shares: -5 \(must be >= 0\)"),
    (["--memory", "lots"], r"--memory: 'lots'"),
])
def test_bad_flag_values_are_one_line_errors(argv, message):
    with pytest.raises(OciishError, match=message):
        change_for(*argv)


def test_intel_rdt_flags_are_schemata_lines_not_resources():
    args = _parser().parse_args(["update", "--mem-bw-schema", "MB:0=20", "--l3-cache-schema", "L3:0=ff", "ID"])
    assert up.resources_from_args(args) == {}
    assert up.rdt_lines_from_args(args) == [("--l3-cache-schema", "L3:0=ff"), ("--mem-bw-schema", "MB:0=20")]


def test_resources_file_and_stdin(tmp_path, monkeypatch):
    document = {"memory": {"limit": 1000000}, "devices": [{"allow": False, "access": "rwm"}]}
    path = tmp_path / "r.json"
    path.write_bytes(orjson.dumps(document))
    assert change_for("--resources", str(path)) == document
    assert change_for(f"--resources={path}") == document
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(orjson.dumps(document))))
    assert change_for("-r", "-") == document


def test_resources_errors(tmp_path):
    with pytest.raises(OciishError, match=r"^update: give either --resources or flags, not both \(--memory\)$"):
        change_for("-r", "x.json", "--memory", "1m")
    with pytest.raises(OciishError, match=r"^update: cannot read .*missing\.json: No such file"):
        change_for("-r", str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{memory")
    with pytest.raises(OciishError, match=r"bad\.json: not valid JSON"):
        change_for("-r", str(tmp_path / "bad.json"))
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(OciishError, match=r"expected a JSON object \(LinuxResources\), got list"):
        change_for("-r", str(tmp_path / "list.json"))


def test_merge_overlays_objects_and_replaces_the_rest():
    current = {"memory": {"limit": 100, "swap": 200}, "cpu": {"cpus": "0"}, "devices": [{"allow": False}],
               "unified": {"a.b": "1"}}
    change = {"memory": {"limit": 150, "reservation": None}, "devices": [], "unified": {"c.d": "2"},
              "pids": {"limit": 5}, "cpu": None}
    assert up.merge(current, change) == {
        "memory": {"limit": 150, "swap": 200}, "cpu": {"cpus": "0"}, "devices": [], "unified": {"a.b": "1", "c.d": "2"},
        "pids": {"limit": 5},
    }
    assert current["memory"] == {"limit": 100, "swap": 200}  # not modified in place


def test_unlimited_memory_lifts_a_finite_swap_unless_the_change_sets_it():
    current = {"memory": {"limit": 100, "swap": 200}, "pids": {"limit": 5}}
    lifted = up.unlimited_memory_lifts_swap
    assert lifted(up.merge(current, {"memory": {"limit": -1}}), {"memory": {"limit": -1}}) == {
        "memory": {"limit": -1, "swap": -1}, "pids": {"limit": 5}}
    both = {"memory": {"limit": -1, "swap": 300}}
    assert lifted(up.merge(current, both), both)["memory"] == {"limit": -1, "swap": 300}
    assert lifted(up.merge(current, {"memory": {"limit": 150}}), {"memory": {"limit": 150}})["memory"]["swap"] == 200
    assert lifted({"memory": {"limit": -1}}, {"memory": {"limit": -1}}) == {"memory": {"limit": -1}}  # no swap kept


# ------------------------------------------------------------------ update itself


class FakeCgroup:
    def __init__(self, fail_on: int | None = None, fail_restore: bool = False) -> None:
        self.applied: list[dict[str, Any]] = []
        self.fail_on = fail_on
        self.fail_restore = fail_restore

    def apply(self, resources: dict[str, Any]) -> None:
        self.applied.append(resources)
        if len(self.applied) == self.fail_on or (self.fail_restore and len(self.applied) > 1):
            raise ConfigError(f"refused #{len(self.applied)}")


@pytest.fixture
def container(tmp_path, monkeypatch):
    """A recorded container whose config.json has resources, with live_container faked."""
    store = StateStore(str(tmp_path / "state"))
    store.make_dir("c1")
    record = {"id": "c1", "pid": os.getpid()}
    store.write("c1", record)
    config = {"linux": {"resources": {"memory": {"limit": 100 << 20}, "devices": [{"allow": False, "access": "rwm"}]}}}
    store.write_file("c1", "config.json", orjson.dumps(config))
    cgroup = FakeCgroup()
    monkeypatch.setattr(up, "live_container", lambda s, cid, action: (Container(s, s.load(cid)), cgroup))
    return store, cgroup


def test_update_applies_the_merge_without_unchanged_devices_and_records_it(container):
    store, cgroup = container
    up.update(store, "c1", {"pids": {"limit": 10}})
    assert cgroup.applied == [{"memory": {"limit": 100 << 20}, "pids": {"limit": 10}}]
    assert store.load("c1")["resources"] == {"memory": {"limit": 100 << 20}, "pids": {"limit": 10},
                                             "devices": [{"allow": False, "access": "rwm"}]}
    up.update(store, "c1", {"memory": {"limit": 200 << 20}})  # now merged onto the recorded resources
    assert cgroup.applied[-1] == {"memory": {"limit": 200 << 20}, "pids": {"limit": 10}}
    new_rules = [{"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}]
    up.update(store, "c1", {"devices": new_rules})
    assert cgroup.applied[-1]["devices"] == new_rules  # devices written only when the update names them


def test_a_refused_update_restores_the_old_resources_and_records_nothing(container):
    store, cgroup = container
    cgroup.fail_on = 1
    with pytest.raises(ConfigError, match="refused #1"):
        up.update(store, "c1", {"memory": {"limit": 1}})
    assert cgroup.applied == [{"memory": {"limit": 1}}, {"memory": {"limit": 100 << 20}}]
    assert "resources" not in store.load("c1")


def test_a_failed_restore_is_a_warning_and_the_first_error_is_reported(container, capsys):
    store, cgroup = container
    cgroup.fail_on, cgroup.fail_restore = 1, True
    with pytest.raises(ConfigError, match="refused #1"):
        up.update(store, "c1", {"memory": {"limit": 1}})
    assert "restoring the previous resources failed" in capsys.readouterr().err
