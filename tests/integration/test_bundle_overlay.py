"""`ociish bundle create --base`: containers that share one base rootfs and cannot damage it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Runtime, unique_id


@pytest.fixture
def base(tmp_path: Path, busybox_rootfs: Path) -> Path:
    """A base of the test's own (a bug that writes into it must not spoil other tests)."""
    path = tmp_path / "base"
    shutil.copytree(busybox_rootfs, path, symlinks=True)
    return path


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under root with its mode and content (or link target)."""
    result = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            st = path.lstat()
            if path.is_symlink():
                content = os.readlink(path)
            elif path.is_file():
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = ""
            result[str(path.relative_to(root))] = (st.st_mode, content)
    return result


def make(runtime: Runtime, bundle: Path, base: Path, *options: str, script: str) -> None:
    runtime("bundle", "create", str(bundle), "--base", str(base), *options, "--no-terminal",
            "--args", "sh", "-c", script, check=True)


def run(runtime: Runtime, bundle: Path) -> subprocess.CompletedProcess:
    return runtime("run", "--bundle", str(bundle), unique_id())


def host_mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(path) in line]


def test_the_overlays_live_only_in_the_containers_mount_namespace(runtime: Runtime, base: Path, tmp_path: Path) -> None:
    (base / "dev" / "stale").write_text("a file left in the base's /dev")
    bundle = tmp_path / "a"
    make(runtime, bundle, base, "--overlay", script="sleep 1000")
    assert "dev" not in os.listdir(bundle / "overlay" / "upper")  # /dev is the config's tmpfs, not the base's
    config = json.loads((bundle / "config.json").read_text())
    assert config["root"] == {"path": "rootfs", "readonly": False}
    assert config["mounts"][0]["type"] == "overlay" and config["annotations"]["ociish.bundle.base"] == str(base)
    cid = unique_id()
    runtime("create", "--bundle", str(bundle), cid, check=True)
    inside = Path(f"/proc/{runtime.state(cid)['pid']}/mountinfo").read_text()
    assert inside.count(" - overlay ") == len(os.listdir(bundle / "overlay" / "upper")) >= 3  # bin, etc, usr, ...
    assert host_mounts_under(tmp_path) == []
    assert " /dev rw,nosuid - tmpfs " in inside.replace(",relatime", "")
    runtime("delete", "--force", cid, check=True)
    assert host_mounts_under(tmp_path) == []


def test_an_overlay_bundle_writes_to_its_own_layer(runtime: Runtime, base: Path, tmp_path: Path) -> None:
    before = snapshot(base)
    bundle = tmp_path / "a"
    make(runtime, bundle, base, "--overlay", script="echo new > /etc/new; rm /etc/passwd; mkdir /opt; echo y > /opt/y; "
         "cat /etc/new /opt/y; test -e /etc/passwd || echo passwd-gone")
    result = run(runtime, bundle)
    assert result.returncode == 0 and result.stdout == "new\ny\npasswd-gone\n", result.stderr
    upper = bundle / "overlay" / "upper"
    assert (upper / "etc" / "new").read_text() == "new\n"
    assert os.stat(upper / "etc" / "passwd").st_rdev == 0  # a whiteout, in the bundle's own layer
    assert (bundle / "rootfs" / "opt" / "y").read_text() == "y\n"  # a new top-level directory
    assert snapshot(base) == before
    assert host_mounts_under(tmp_path) == []


def test_deleting_sh_and_friends_breaks_only_that_container(runtime: Runtime, base: Path, tmp_path: Path) -> None:
    before = snapshot(base)
    damage = "rm -rf /bin/* /sbin/* /usr/bin /etc/passwd && echo damaged"
    make(runtime, tmp_path / "a", base, "--overlay", script=damage)
    make(runtime, tmp_path / "b", base, "--overlay", script="ls /bin/sh /usr/bin/env && grep -c root /etc/passwd")
    result = run(runtime, tmp_path / "a")
    assert result.returncode == 0 and result.stdout == "damaged\n", result.stderr
    again = run(runtime, tmp_path / "a")  # the damage lasts for a
    assert again.returncode == 1 and "exec: 'sh': executable file not found" in again.stderr
    other = run(runtime, tmp_path / "b")  # ... and only for a
    assert other.returncode == 0 and other.stdout == "/bin/sh\n/usr/bin/env\n1\n", other.stderr
    assert snapshot(base) == before


def test_a_read_only_shared_base_refuses_the_damage(runtime: Runtime, base: Path, tmp_path: Path) -> None:
    before = snapshot(base)
    make(runtime, tmp_path / "ro", base, script="rm /bin/sh; rm -rf /etc; touch /new; ls /bin/sh")
    config = json.loads((tmp_path / "ro" / "config.json").read_text())
    assert config["root"] == {"path": str(base), "readonly": True}  # the base itself: no copy, no layer
    assert not (tmp_path / "ro" / "rootfs").exists()
    result = run(runtime, tmp_path / "ro")
    assert result.returncode == 0 and result.stdout == "/bin/sh\n"
    assert result.stderr.count("Read-only file system") >= 3
    assert snapshot(base) == before


def test_an_overlay_bundle_can_be_read_only_too(runtime: Runtime, base: Path, tmp_path: Path) -> None:
    make(runtime, tmp_path / "a", base, "--overlay", "--readonly",
         script="touch /etc/x || touch /new || rm /bin/sh || echo all-refused")
    result = run(runtime, tmp_path / "a")
    assert result.stdout == "all-refused\n" and result.stderr.count("Read-only file system") == 3


def test_readonly_paths_protect_chosen_paths_in_a_writable_rootfs(runtime: Runtime, base: Path, tmp_path: Path) -> None:
    (base / "root" / "notes").write_text("keep me\n")
    make(runtime, tmp_path / "a", base, "--overlay", "--readonly-path", "/etc", "--readonly-path", "/root/notes",
         script="rm /etc/passwd; echo x > /etc/passwd; rm /root/notes; echo ok > /root/ok; "
                "cat /root/ok /root/notes; grep -c root /etc/passwd")
    result = run(runtime, tmp_path / "a")
    assert result.returncode == 0 and result.stdout == "ok\nkeep me\n1\n", result.stderr
    assert result.stderr.count("Read-only file system") == 2 and "resource busy" in result.stderr
    assert (tmp_path / "a" / "overlay" / "upper" / "root" / "ok").exists()


def test_readonly_paths_keep_binaries_runnable(runtime: Runtime, base: Path, tmp_path: Path) -> None:
    make(runtime, tmp_path / "a", base, "--overlay", "--readonly-path", "/bin", script="rm /bin/sh; ls /bin/sh")
    result = run(runtime, tmp_path / "a")
    assert result.returncode == 0 and result.stdout == "/bin/sh\n", result.stderr


def test_bundle_create_refuses_mistakes_in_one_line_and_leaves_nothing(
        runtime: Runtime, base: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd:base"
    odd.mkdir()
    (tmp_path / "exists").mkdir()
    cases = [
        (["x", "--base", str(base), "--no-readonly"], "must stay read-only (use --overlay"),
        (["x", "--base", str(tmp_path / "missing"), "--overlay"], "not a directory"),
        (["x", "--base", str(odd), "--overlay"], "cannot use a path containing , : or"),
        (["exists", "--base", str(base), "--overlay"], "already exists"),
        (["x", "--base", str(base), "--overlay", "--memory", "lots"], "--memory: 'lots'"),
        ([str(base / "inside"), "--base", str(base), "--overlay"], "must not contain each other"),
    ]
    for argv, message in cases:
        name = argv[0] if argv[0].startswith("/") else str(tmp_path / argv[0])
        result = runtime("bundle", "create", name, *argv[1:])
        assert result.returncode == 1 and message in result.stderr, (argv, result.stderr)
        assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not (tmp_path / "x").exists() and not (base / "inside").exists()
