"""Bundles written by `runc spec` run unchanged (apart from a non-interactive process) under ociish,
and the container sees what runc's own container sees."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Bundle, Runtime, unique_id

RUNC = shutil.which("runc") or "/usr/sbin/runc"
pytestmark = pytest.mark.skipif(not Path(RUNC).exists(), reason="runc is not installed (/usr/sbin/runc)")

# What a container can tell about itself; every line is comparable across runtimes.
PROBE = ("echo hostname=$(hostname); echo id=$(id); grep -E '^(Cap|NoNewPrivs)' /proc/self/status; "
         "echo dev=$(ls /dev); echo umask=$(umask); echo nofile=$(ulimit -n)/$(ulimit -Hn); "
         "echo uid_map=$(cat /proc/self/uid_map); echo root=$(touch /x 2>/dev/null && echo rw || echo ro); "
         "echo mounts=$(cut -d' ' -f5 /proc/self/mountinfo | grep -v '^/sys/fs/cgroup/' | sort -u)")


def runc_bundle(tmp_path: Path, rootfs: Path, name: str, *spec_flags: str) -> Bundle:
    """A busybox bundle whose config.json is exactly `runc spec`'s, with a probe as its process."""
    bundle = Bundle(tmp_path / name, rootfs)
    subprocess.run([RUNC, "spec", *spec_flags, "--bundle", str(bundle.path)], check=True, capture_output=True)
    bundle.config = json.loads((bundle.path / "config.json").read_text())
    bundle.config["process"]["terminal"] = False
    bundle.shell(PROBE)
    return bundle


def probe_lines(result: subprocess.CompletedProcess) -> dict[str, str]:
    pairs = (line.replace(":\t", "=", 1).split("=", 1) for line in result.stdout.splitlines())
    return {key: " ".join(value.split()) for key, value in pairs}


def run_ociish(runtime: Runtime, bundle: Bundle) -> subprocess.CompletedProcess:
    result = runtime("run", "--bundle", str(bundle.path), unique_id())
    if result.returncode != 0 and "not supported yet" in result.stderr:
        pytest.skip(f"ociish refuses this runc config: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    return result


def run_runc(bundle: Bundle, tmp_path: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([RUNC, "--root", str(tmp_path / "runc-state"), "run", "--bundle", str(bundle.path),
                             unique_id("runc")], check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        pytest.skip(f"runc itself cannot run this bundle here: {result.stderr.strip()}")
    return result


SPEC_FLAGS = {"root": (), "rootless": ("--rootless",)}


@pytest.mark.parametrize("flavour", list(SPEC_FLAGS))
def test_runc_spec_bundle_runs(runtime: Runtime, busybox_rootfs: Path, tmp_path: Path, flavour: str) -> None:
    bundle = runc_bundle(tmp_path, busybox_rootfs, flavour, *SPEC_FLAGS[flavour])
    seen = probe_lines(run_ociish(runtime, bundle))
    default_caps = f"{(1 << 29) | (1 << 5) | (1 << 10):016x}"  # AUDIT_WRITE, KILL, NET_BIND_SERVICE
    assert seen["hostname"] == "runc"
    assert seen["id"].startswith("uid=0(root) gid=0(root)")
    assert {seen[k] for k in ("CapBnd", "CapEff", "CapPrm")} == {default_caps}
    assert seen["NoNewPrivs"] == "1" and seen["nofile"] == "1024/1024" and seen["root"] == "ro"
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"} <= set(seen["dev"].split())
    assert runtime.ids() == []


@pytest.mark.parametrize("flavour", list(SPEC_FLAGS))
def test_runc_spec_bundle_looks_the_same_as_under_runc(runtime: Runtime, busybox_rootfs: Path, tmp_path: Path,
                                                       flavour: str) -> None:
    bundle = runc_bundle(tmp_path, busybox_rootfs, flavour, *SPEC_FLAGS[flavour])
    ours = probe_lines(run_ociish(runtime, bundle))
    theirs = probe_lines(run_runc(bundle, tmp_path))
    assert ours == theirs
