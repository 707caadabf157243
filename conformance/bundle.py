"""OCI bundles for checks: a private rootfs copy plus a config.json."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from collections.abc import Callable
from typing import Any

from conformance.assets import copy_rootfs
from conformance.model import SPEC_VERSION

PROBE = "/probe"
DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "TERM=xterm"]
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

_BASE_CONFIG: dict[str, Any] = {
    "ociVersion": SPEC_VERSION,
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": [PROBE],
        "env": DEFAULT_ENV,
        "cwd": "/",
        "capabilities": {k: DEFAULT_CAPS for k in
                         ("bounding", "effective", "permitted")},
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
    "hostname": "conformance",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                     "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ],
    "linux": {
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
    },
}


def base_config() -> dict[str, Any]:
    """A fresh, minimal config that runs the probe in new namespaces."""
    return copy.deepcopy(_BASE_CONFIG)


class Bundle:
    """A bundle directory: rootfs/ (copied from the template) and config.json."""

    def __init__(self, path: Path, template: Path):
        self.path = path
        self.rootfs = path / "rootfs"
        path.mkdir(parents=True)
        copy_rootfs(template, self.rootfs)
        self.config = base_config()

    @property
    def process(self) -> dict[str, Any]:
        return self._section("process")

    @property
    def linux(self) -> dict[str, Any]:
        return self._section("linux")

    def _section(self, key: str) -> dict[str, Any]:
        section: dict[str, Any] = self.config.setdefault(key, {})
        return section

    def write(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=2))

    def in_rootfs(self, container_path: str) -> Path:
        """Host path of a path inside the container's root filesystem."""
        return self.rootfs / container_path.lstrip("/")

    def add_file(self, container_path: str, text: str = "", mode: int = 0o644) -> Path:
        """Create a file (and its parents) in the rootfs."""
        path = self.in_rootfs(container_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, mode)
        return path

    def add_mount(self, destination: str, type_: str | None = None,
                  source: str | None = None, options: list[str] | None = None,
                  **extra: Any) -> dict[str, Any]:
        """Append a mount entry to config.mounts and return it."""
        entry: dict[str, Any] = {"destination": destination}
        if type_ is not None:
            entry["type"] = type_
        if source is not None:
            entry["source"] = source
        if options is not None:
            entry["options"] = options
        entry.update(extra)
        self.config.setdefault("mounts", []).append(entry)
        return entry

    def set_namespace(self, kind: str, path: str | None = None,
                      present: bool = True) -> None:
        """Add, replace (with a path) or remove a linux.namespaces entry."""
        spaces = [n for n in self.linux.setdefault("namespaces", []) if n["type"] != kind]
        if present:
            spaces.append({"type": kind, **({"path": path} if path else {})})
        self.linux["namespaces"] = spaces

    def add_hook(self, kind: str, path: str, args: list[str] | None = None,
                 env: list[str] | None = None, **extra: Any) -> None:
        hook: dict[str, Any] = {"path": path, **extra}
        if args is not None:
            hook["args"] = args
        if env is not None:
            hook["env"] = env
        self.config.setdefault("hooks", {}).setdefault(kind, []).append(hook)


def setting(path: str, value: Any) -> Callable[[Bundle], None]:
    """A change to a bundle that sets one config member, named by its dotted path
    (creating the objects on the way)."""

    def change(b: Bundle) -> None:
        *parents, last = path.split(".")
        node = b.config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return change
