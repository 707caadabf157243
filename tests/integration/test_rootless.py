"""Rootless: an unprivileged host user runs the whole lifecycle in a user namespace that
maps its own uid to root, with state under $XDG_RUNTIME_DIR/ociish and no cgroups."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import REPO, unique_id
from ociish.spec.defaults import default_config

USER = "ociish-rootless"


@pytest.fixture(scope="module")
def user() -> Iterator[pwd.struct_passwd]:
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs root, useradd and setpriv to make an unprivileged user")
    created = subprocess.run(["useradd", "-M", "-s", "/bin/sh", USER], capture_output=True).returncode == 0
    entry = pwd.getpwnam(USER)
    runtime_dir = Path(f"/run/user/{entry.pw_uid}")
    runtime_dir.mkdir(parents=True, exist_ok=True)
    os.chown(runtime_dir, entry.pw_uid, entry.pw_gid)
    runtime_dir.chmod(0o700)
    yield entry
    shutil.rmtree(runtime_dir, ignore_errors=True)
    if created:
        subprocess.run(["userdel", USER], capture_output=True)


def as_user(entry: pwd.struct_passwd, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `ociish ARGS` as the user.  The interpreter (and maybe the checkout) live under
    /root, which only root may traverse: a private mount namespace lays a traversable
    tmpfs over /root with just those trees bind-mounted back; nothing changes on the host."""
    needed = sorted({Path(p).parts[2] for p in (sys.base_prefix, sys.prefix, str(REPO))
                     if Path(p).is_relative_to("/root") and len(Path(p).parts) > 2})
    binds = " && ".join(f"mkdir -p /root/{n} && mount --bind /mnt/realroot/{n} /root/{n}" for n in needed)
    expose = ("mount --make-rprivate / && mkdir -p /mnt/realroot && mount --bind /root /mnt/realroot && "
              "mount -t tmpfs -o mode=711 tmpfs /root" + (f" && {binds}" if binds else "")) if needed else "true"
    environment = {"XDG_RUNTIME_DIR": f"/run/user/{entry.pw_uid}", "PATH": "/usr/bin:/bin", "HOME": "/tmp",
                   **(env or {})}
    command = ["unshare", "-m", "sh", "-c", f'{expose} && exec setpriv --reuid={entry.pw_uid} '
               f'--regid={entry.pw_gid} --clear-groups "$@"', "sh",
               "env", "-i", *(f"{k}={v}" for k, v in environment.items()), sys.executable, "-m", "ociish", *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        result = subprocess.run(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=60)
        out.seek(0)
        err.seek(0)
        result.stdout, result.stderr = out.read().decode(), err.read().decode()
    return result


@pytest.fixture
def rootless_bundle(user: pwd.struct_passwd, busybox_rootfs: Path) -> Iterator[Path]:
    """A bundle the user can reach (pytest's tmp dirs are root-only)."""
    bundle = Path(tempfile.mkdtemp(prefix="ociish-rootless-", dir="/tmp"))
    bundle.chmod(0o755)
    shutil.copytree(busybox_rootfs, bundle / "rootfs", symlinks=True)
    yield bundle
    shutil.rmtree(bundle, ignore_errors=True)


def write_config(bundle: Path, config: dict[str, Any]) -> None:
    (bundle / "config.json").write_text(json.dumps(config))
    (bundle / "config.json").chmod(0o644)


def test_spec_rootless_config_runs_as_the_user(user: pwd.struct_passwd, rootless_bundle: Path) -> None:
    """`ociish spec --rootless`, run by the user, maps the user's own ids and just works."""
    os.chown(rootless_bundle, user.pw_uid, user.pw_gid)
    written = as_user(user, "spec", "--rootless", "--bundle", str(rootless_bundle))
    assert written.returncode == 0, written.stderr
    config = json.loads((rootless_bundle / "config.json").read_text())
    assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": user.pw_uid, "size": 1}]
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "echo hello from $(id -u)"]
    write_config(rootless_bundle, config)
    result = as_user(user, "run", "--bundle", str(rootless_bundle), unique_id("rl"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from 0\n"


def rootless_config(user: pwd.struct_passwd, script: str) -> dict[str, Any]:
    config = default_config(rootless=True)
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": user.pw_uid, "size": 1}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": user.pw_gid, "size": 1}]
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", script]
    return config


def test_rootless_lifecycle(user: pwd.struct_passwd, rootless_bundle: Path) -> None:
    write_config(rootless_bundle, rootless_config(user, "id -u; cat /proc/self/uid_map; sleep 1000"))
    cid = unique_id("rl")
    try:
        created = as_user(user, "create", "--bundle", str(rootless_bundle), cid)
        assert created.returncode == 0, created.stderr
        state = json.loads(as_user(user, "state", cid).stdout)
        assert state["status"] == "created" and state["owner"] == ""  # runc's state leaves it empty
        assert as_user(user, "list", "--format", "json").stdout.count(f'"owner":"{USER}"') == 1
        assert Path(f"/run/user/{user.pw_uid}/ociish/{cid}/state.json").exists()
        init = Path(f"/proc/{state['pid']}/status").read_text()
        assert f"Uid:\t{user.pw_uid}" in init  # the init is the user on the host, root only inside
        assert as_user(user, "start", cid).returncode == 0
        assert json.loads(as_user(user, "state", cid).stdout)["status"] == "running"
        assert as_user(user, "kill", cid, "KILL").returncode == 0
        deleted = as_user(user, "delete", "--force", cid)
        assert deleted.returncode == 0, deleted.stderr
        assert not Path(f"/run/user/{user.pw_uid}/ociish/{cid}").exists()
    finally:
        as_user(user, "delete", "--force", cid)


def test_rootless_run_sees_root_inside(user: pwd.struct_passwd, rootless_bundle: Path) -> None:
    write_config(rootless_bundle, rootless_config(user, "id -u; hostname; cat /proc/self/uid_map"))
    result = as_user(user, "run", "--bundle", str(rootless_bundle), unique_id("rl"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == "0" and lines[1] == "ociish"
    assert lines[2].split() == ["0", str(user.pw_uid), "1"]


def test_rootless_limits_are_a_clear_error(user: pwd.struct_passwd, rootless_bundle: Path) -> None:
    config = rootless_config(user, "true")
    config["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    write_config(rootless_bundle, config)
    result = as_user(user, "create", "--bundle", str(rootless_bundle), unique_id("rl"))
    assert result.returncode == 1
    assert "linux.resources.memory: a rootless container cannot set cgroup limits" in result.stderr
    assert not any(Path(f"/run/user/{user.pw_uid}/ociish").glob("rl-*"))


def test_rootless_net_devices_are_a_clear_error(user: pwd.struct_passwd, rootless_bundle: Path) -> None:
    """Moving a host interface needs the host's CAP_NET_ADMIN: refused before anything is made."""
    config = rootless_config(user, "true")
    config["linux"]["netDevices"] = {"lo": {"name": "hostlo"}}
    config["linux"]["namespaces"].append({"type": "network"})
    write_config(rootless_bundle, config)
    result = as_user(user, "create", "--bundle", str(rootless_bundle), unique_id("rl"))
    assert result.returncode == 1
    assert result.stderr.strip() == "ociish: config.json: linux.netDevices: moving a host network interface needs root"
    assert not any(Path(f"/run/user/{user.pw_uid}/ociish").glob("rl-*"))
