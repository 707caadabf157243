"""`ociish spec` options: each one lands in config.json and does what it says in a real container."""

from __future__ import annotations

import json
import os
import pty
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import Runtime, unique_id

# Reads each setting back from inside; the cgroup files are v1's or v2's, whichever is mounted.
PROBE = r"""
first() { for f in "$@"; do [ -r "$f" ] && { cat "$f"; return; }; done; echo none; }
echo "env=$GREETING"
echo "cwd=$(pwd)"
echo "uid=$(id -u):$(id -g)"
echo "hostname=$(hostname)"
echo "tty=$(tty)"
touch /etc/probe 2>/dev/null && echo "etc=writable" || echo "etc=read-only"
touch /probe 2>/dev/null && echo "root=writable" || echo "root=read-only"
echo "data-content=$(cat /data/hello)"; touch /data/new 2>/dev/null && echo "data=writable" || echo "data=read-only"
echo "scratch=$(grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4)"
echo "memory=$(first /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes)"
echo "cpu=$(first /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us \
    /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us)"
echo "pids=$(first /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max)"
echo "interfaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ')"
echo "ipc=$(readlink /proc/self/ns/ipc)"
"""


@pytest.fixture
def spec_bundle(tmp_path: Path, busybox_rootfs: Path) -> Path:
    bundle = tmp_path / "bundle"
    shutil.copytree(busybox_rootfs, bundle / "rootfs", symlinks=True)
    (bundle / "rootfs" / "work").mkdir()
    return bundle


def spec(runtime: Runtime, bundle: Path, *options: str) -> dict[str, Any]:
    runtime("spec", "-b", str(bundle), *options, "--args", "sh", "-c", PROBE, check=True)
    return json.loads((bundle / "config.json").read_text())


def probe(runtime: Runtime, bundle: Path, **kwargs: Any) -> dict[str, str]:
    result = runtime("run", "--bundle", str(bundle), unique_id(), **kwargs)
    assert result.returncode == 0, result.stderr
    return dict(line.replace("\r", "").split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_every_option_round_trips_and_runs(runtime: Runtime, spec_bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello").write_text("from the host")
    config = spec(runtime, spec_bundle, "--env", "GREETING=hi there", "--cwd", "/work", "--user", "1000:1000",
                  "--hostname", "spec-box", "--no-terminal", "--no-readonly", "--readonly-path", "/etc",
                  "--mount", f"{data}:/data:ro", "--tmpfs", "/scratch:size=1m", "--memory", "64m", "--cpus", "0.5",
                  "--pids-limit", "20", "--network", "none", "--namespaces", "pid,ipc,uts,mount,cgroup")
    process, linux = config["process"], config["linux"]
    assert process["args"] == ["sh", "-c", PROBE] and "GREETING=hi there" in process["env"]
    assert process["cwd"] == "/work" and process["user"] == {"uid": 1000, "gid": 1000}
    assert process["terminal"] is False and config["root"]["readonly"] is False and config["hostname"] == "spec-box"
    assert "/etc" in linux["readonlyPaths"]
    assert {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "ro"]} in config["mounts"]
    assert {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777", "size=1m"]} in config["mounts"]
    assert linux["resources"]["memory"] == {"limit": 64 << 20}
    assert linux["resources"]["cpu"] == {"quota": 50_000, "period": 100_000}
    assert linux["resources"]["pids"] == {"limit": 20}
    assert [ns["type"] for ns in linux["namespaces"]] == ["pid", "ipc", "uts", "mount", "cgroup", "network"]

    os.chmod(spec_bundle / "rootfs" / "work", 0o777)
    seen = probe(runtime, spec_bundle)
    assert seen["env"] == "hi there" and seen["cwd"] == "/work" and seen["uid"] == "1000:1000"
    assert seen["hostname"] == "spec-box" and seen["tty"] == "not a tty"
    assert seen["etc"] == "read-only" and seen["data"] == "read-only" and seen["data-content"] == "from the host"
    assert not (data / "new").exists()
    assert seen["scratch"].startswith("tmpfs rw,nosuid,nodev") and "size=1024k" in seen["scratch"]
    assert seen["memory"] == str(64 << 20)
    assert seen["cpu"] in ("50000", "50000 100000")
    assert seen["pids"] == "20"
    assert seen["interfaces"] == "lo "


def test_read_only_root_host_network_terminal_and_shared_namespaces(runtime: Runtime, spec_bundle: Path) -> None:
    config = spec(runtime, spec_bundle, "--readonly", "--network", "host", "--terminal",
                  "--namespaces", "mount,pid")
    assert config["root"]["readonly"] is True and config["process"]["terminal"] is True
    assert [ns["type"] for ns in config["linux"]["namespaces"]] == ["mount", "pid"]
    assert "hostname" not in config  # no uts namespace of its own: the host's name stays
    master, terminal = pty.openpty()  # a foreground run relays a terminal: it needs one
    try:
        seen = probe(runtime, spec_bundle, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(master)
    assert seen["root"] == "read-only" and seen["tty"].startswith("/dev/pts/")
    assert seen["interfaces"].split() == sorted(os.listdir("/sys/class/net"))
    assert seen["ipc"] == os.readlink("/proc/self/ns/ipc")  # the host's ipc namespace, shared


def test_spec_refuses_bad_options_in_one_line(runtime: Runtime, tmp_path: Path) -> None:
    for options, message in ((["--memory", "1x"], "--memory: '1x'"), (["--mount", "/nope:/x"], "no such file"),
                             (["--cwd", "rel"], "must be an absolute path"),
                             (["--namespaces", "pid,bogus"], "'bogus': expected one of"),
                             (["--hostname", "h", "--namespaces", "mount"], "needs a uts namespace")):
        result = runtime("spec", "-b", str(tmp_path), *options)
        assert result.returncode == 1 and message in result.stderr, (options, result.stderr)
        assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "config.json").exists()
