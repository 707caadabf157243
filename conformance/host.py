"""Observations and scratch resources on the host (the runtime namespace)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

from conformance import mountinfo
from conformance.linux import NAMESPACE_FILES

CGROUP_ROOT = Path("/sys/fs/cgroup")


def namespaces(pid: int | str = "self") -> dict[str, str]:
    """config.json namespace type -> `type:[inode]` link of process pid."""
    found = {}
    for kind, entry in NAMESPACE_FILES.items():
        try:
            found[kind] = os.readlink(f"/proc/{pid}/ns/{entry}")
        except OSError:
            continue
    return found


def cgroup_mounts() -> dict[str, Path]:
    """Controller name ("" for cgroup2) -> mount point, from our mountinfo."""
    mounts: dict[str, Path] = {}
    for m in mountinfo.read():
        if m.fstype == "cgroup2":
            mounts.setdefault("", Path(m.point))
        elif m.fstype == "cgroup":
            for opt in m.super_options - {"rw", "ro"}:
                if "=" not in opt or opt.startswith("name="):
                    mounts.setdefault(opt, Path(m.point))
    return mounts


def process_cgroups(pid: int) -> dict[str, str]:
    """Controller name ("" for cgroup2) -> cgroup path of process pid."""
    paths: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for ctrl in controllers.split(",") if controllers else [""]:
            paths[ctrl] = path
    return paths


def cgroup_dir(pid: int, controller: str) -> Path | None:
    """Host directory of pid's cgroup in controller's hierarchy, if mounted."""
    mount = cgroup_mounts().get(controller)
    path = process_cgroups(pid).get(controller)
    if mount is None or path is None:
        return None
    return mount / path.lstrip("/")


def find_cgroups(fragment: str) -> list[Path]:
    """Cgroup directories whose name contains fragment, deepest first."""
    hits = [Path(d) for d, _, _ in os.walk(CGROUP_ROOT) if fragment in Path(d).name]
    return sorted(hits, key=lambda p: len(p.parts), reverse=True)


def remove_cgroups(dirs: list[Path]) -> None:
    """rmdir leftover cgroups (children first), ignoring ones still busy."""
    for d in dirs:
        for sub in sorted((Path(p) for p, _, _ in os.walk(d)),
                          key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()


def mount(*args: str) -> None:
    """Run mount(8) on the host; raise on failure."""
    subprocess.run(["mount", *args], check=True, capture_output=True)


def umount_under(path: Path) -> None:
    """Lazily detach everything mounted at or below path, deepest first."""
    root = str(path)
    points = {m.point for m in mountinfo.read()}
    for point in sorted((p for p in points if p == root or p.startswith(root + "/")),
                        key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def spawn_namespace_holder(*unshare_flags: str) -> subprocess.Popen[bytes]:
    """A sleeping process in fresh namespaces, for configs that join by path."""
    return subprocess.Popen(["unshare", *unshare_flags, "--fork", "--kill-child",
                             "sleep", "120"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def holder_pid(holder: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
    """Pid of the sleeping child of an `unshare --fork` holder."""
    deadline = time.monotonic() + timeout
    children = Path(f"/proc/{holder.pid}/task/{holder.pid}/children")
    while time.monotonic() < deadline:
        text = children.read_text().split() if children.exists() else []
        if text:
            return int(text[0])
        time.sleep(0.01)
    raise RuntimeError("namespace holder did not start")


def block_device(path: Path) -> tuple[int, int]:
    """(major, minor) of the whole disk holding path."""
    dev = os.stat(path).st_dev
    sysfs = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if (sysfs / "partition").exists():
        major, minor = (sysfs.resolve().parent / "dev").read_text().split(":")
        return int(major), int(minor)
    return os.major(dev), os.minor(dev)


def cgroup_keeps(controller: str, writes: list[tuple[str, str]],
                 expects: list[tuple[str, str]], name: str) -> bool:
    """Does this kernel keep these settings? Tried in a scratch cgroup `name`."""
    mount = cgroup_mounts().get(controller)
    if mount is None:
        return False
    scratch = mount / name
    scratch.mkdir()
    try:
        for fname, value in writes:
            (scratch / fname).write_text(value)
        return all(line in (scratch / fname).read_text().splitlines()
                   for fname, line in expects)
    except OSError:
        return False
    finally:
        scratch.rmdir()
