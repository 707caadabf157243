"""User mistakes: one clear line, exit status 1, and nothing left behind on the host."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import Bundle, Runtime, cgroup_dirs, unique_id


def host_mounts(*under: Path) -> list[str]:
    """Mount points of the host under these directories (other activity on the host may
    mount elsewhere meanwhile)."""
    points = (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
    return sorted(p for p in points if any(p.startswith(str(d)) for d in under))


def assert_clean_failure(runtime: Runtime, bundle: Bundle, expected: str, *extra: str) -> str:
    """create must fail with exit 1 and a one-line message containing ``expected``,
    leaving no state, cgroup or mount behind."""
    mounts_before = host_mounts(bundle.path, runtime.root)
    cid = unique_id()
    result = runtime(*extra, "create", "--bundle", str(bundle.path), cid)
    assert result.returncode == 1, result.stderr
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert runtime.ids() == [] and not cgroup_dirs(cid)
    assert not (runtime.root / f"{cid}.lock").exists()
    assert host_mounts(bundle.path, runtime.root) == mounts_before
    return result.stderr


def test_invalid_json(runtime: Runtime, bundle: Bundle) -> None:
    (bundle.path / "config.json").write_text("{not json")
    err = assert_clean_failure(runtime, bundle, "config.json: not valid JSON")
    assert len(err.strip().splitlines()) == 1


def test_schema_errors_name_each_path(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["user"]["uid"] = -1
    bundle.config["linux"]["namespaces"].append({"type": "pidd"})
    bad = len(bundle.config["linux"]["namespaces"]) - 1
    bundle.write()
    err = assert_clean_failure(runtime, bundle, "config.json: process.user.uid: -1: expected an integer >= 0")
    assert f"linux.namespaces[{bad}].type" in err
    validate = runtime("validate", "--bundle", str(bundle.path))
    assert validate.returncode == 1
    assert [line for line in validate.stderr.splitlines() if line] == [line for line in err.splitlines() if line]


def test_log_file_gets_exactly_one_json_error_line(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.config["process"]["user"]["uid"] = -1
    bundle.config["process"]["cwd"] = "relative"
    bundle.write()
    log = tmp_path / "log.json"
    assert_clean_failure(runtime, bundle, "process.user.uid", "--log", str(log), "--log-format", "json")
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "error"
    assert "process.user.uid" in entry["msg"] and "process.cwd" in entry["msg"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", entry["time"])


WHOLE_NUMBER_FLOATS = {
    "process.user.uid": ("0.0", lambda c: c["process"]["user"].update(uid=0.0)),
    "process.user.gid": ("-0.0", lambda c: c["process"]["user"].update(gid=-0.0)),
    "process.user.additionalGids[0]": ("0.0", lambda c: c["process"]["user"].update(additionalGids=[0.0])),
    "process.rlimits[0].hard": ("1024.0", lambda c: c["process"]["rlimits"][0].update(hard=1024.0)),
    "linux.resources.pids.limit": ("10.0", lambda c: c["linux"].setdefault("resources", {}).update(pids={"limit": 10.0})),
}


@pytest.mark.parametrize("field", WHOLE_NUMBER_FLOATS)
def test_a_whole_number_float_is_not_an_integer(runtime: Runtime, bundle: Bundle, field: str) -> None:
    text, change = WHOLE_NUMBER_FLOATS[field]
    change(bundle.config)
    bundle.write()
    err = assert_clean_failure(runtime, bundle, f"config.json: {field}: {text}: expected an integer")
    assert len(err.strip().splitlines()) == 1, err


def test_missing_rootfs(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["root"]["path"] = "nowhere"
    bundle.write()
    assert_clean_failure(runtime, bundle, "root.path")


@pytest.mark.parametrize("where", ["root.path itself", "a directory on the way"])
def test_a_symlinked_root_path_is_refused(runtime: Runtime, bundle: Bundle, tmp_path: Path, where: str) -> None:
    """As runc: the rootfs must be named by its real path (the bundle may be reached through one)."""
    if where == "root.path itself":
        (bundle.path / "rootfs-link").symlink_to("rootfs")
        bundle.config["root"]["path"] = "rootfs-link"
    else:
        (tmp_path / "link").symlink_to(bundle.path)
        bundle.config["root"]["path"] = str(tmp_path / "link" / "rootfs")
    bundle.write()
    err = assert_clean_failure(runtime, bundle, "config.json: root.path: ")
    assert f"resolves to {bundle.rootfs}" in err and len(err.strip().splitlines()) == 1, err


def test_a_bundle_reached_through_a_symlink_runs(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    (tmp_path / "bundle-link").symlink_to(bundle.path)
    bundle.args("true")
    result = runtime("run", "--bundle", str(tmp_path / "bundle-link"), unique_id())
    assert result.returncode == 0, result.stderr


def test_missing_config(runtime: Runtime, tmp_path: Path) -> None:
    result = runtime("create", "--bundle", str(tmp_path), unique_id())
    assert result.returncode == 1 and "config.json: no such file" in result.stderr
    assert runtime.ids() == []


@pytest.mark.parametrize("args0", ["/no/such/binary", "no-such-command"])
def test_missing_executable_is_a_create_error(runtime: Runtime, bundle: Bundle, args0: str) -> None:
    bundle.args(args0)
    err = assert_clean_failure(runtime, bundle, "process.args[0]")
    # podman maps these words to exit status 127 ("command not found")
    assert "no such file or directory" in err or "executable file not found in $PATH" in err


def test_failure_inside_the_init_is_reported_and_rolled_back(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["mounts"].append({"destination": "/mnt", "type": "nosuchfs", "source": "none"})
    bundle.write()
    assert_clean_failure(runtime, bundle, "mounts[7] (/mnt)")


def test_bad_command_line(runtime: Runtime) -> None:
    for args in (["frobnicate"], ["kill"], ["create", "--preserve-fds", "x", "id"]):
        result = runtime(*args)
        assert result.returncode == 1, args
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_invalid_container_id(runtime: Runtime, bundle: Bundle) -> None:
    for bad in ("../escape", "a/b", ".."):
        result = runtime("create", "--bundle", str(bundle.path), bad)
        assert result.returncode == 1 and "invalid container id" in result.stderr
    assert runtime.ids() == []


def test_systemd_cgroup_needs_systemd(runtime: Runtime, bundle: Bundle) -> None:
    """runc refuses the same way ("systemd not running on this host"); the driver itself is
    tested on a systemd host in tests/vm/."""
    if Path("/run/systemd/system").is_dir():
        pytest.skip("this host runs systemd")
    err = assert_clean_failure(runtime, bundle, "--systemd-cgroup: systemd is not running on this host",
                               "--systemd-cgroup")
    assert len(err.strip().splitlines()) == 1
