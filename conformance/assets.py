"""Build the probe binary (cached) and the busybox rootfs template."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROBE_SOURCE = PACKAGE_DIR / "probe" / "probe.c"
ROOTFS_SCRIPT = PACKAGE_DIR.parent / "bundles" / "busybox" / "build-rootfs.sh"


class AssetError(RuntimeError):
    """A prerequisite (gcc, busybox, the rootfs script) is missing or broken."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ociish-conformance"


def build_probe() -> Path:
    """Compile probe.c statically, once per source version; return the binary."""
    digest = hashlib.sha256(PROBE_SOURCE.read_bytes()).hexdigest()[:16]
    target = cache_dir() / f"probe-{digest}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    cmd = ["gcc", "-static", "-O2", "-Wall", "-o", str(tmp), str(PROBE_SOURCE)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise AssetError("gcc not found: needed to build the probe") from exc
    if res.returncode != 0:
        raise AssetError(f"building the probe failed:\n{res.stderr}")
    tmp.replace(target)  # atomic: concurrent sessions never see half a file
    return target


def build_rootfs(dest: Path, probe: Path) -> Path:
    """Build the busybox rootfs template at dest with the probe at /probe."""
    if not ROOTFS_SCRIPT.exists():
        raise AssetError(f"{ROOTFS_SCRIPT} not found")
    res = subprocess.run(["sh", str(ROOTFS_SCRIPT), str(dest)], capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        raise AssetError(f"building the rootfs failed:\n{res.stderr}")
    shutil.copy2(probe, dest / "probe")
    os.chmod(dest / "probe", 0o755)
    return dest


def copy_rootfs(template: Path, dest: Path) -> None:
    """Give a bundle its own rootfs (runtimes create mount points in it)."""
    shutil.copytree(template, dest, symlinks=True)
