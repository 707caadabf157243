"""`ociish spec`: a default config.json a user can edit, for a root or rootless container.

It is what `runc spec` writes on the same host, byte for byte, but for three members:
ociVersion (the spec version ociish implements), the hostname (the runtime's name, as
runc's is "runc"), and /sys/devices/virtual/powercap among the masked paths (as runc
1.2 and later mask it: energy readings leak what other processes compute).

The options of `ociish spec` (args, mounts, limits, …) change these defaults through
`ociish.bundle.ConfigBuilder`, which other tools use the same way."""

from __future__ import annotations

import os

from ociish import OCI_VERSION
from ociish.errors import OciishError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_config(rootless: bool = False) -> dict[str, Any]:
    """A minimal, locked-down container: new namespaces, few capabilities, read-only root."""
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] + ([] if rootless else ["gid=5"])},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    ]
    if rootless:
        mounts.append({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    else:
        mounts.append({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]})
    mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    # a cgroup namespace only where the host is on cgroup v2 alone, as runc does
    types = ["pid", "network", "ipc", "uts", "mount"] + (["cgroup"] if _unified_cgroups() else [])
    linux: dict[str, Any] = {}
    if rootless:
        types.remove("network")
        types.append("user")
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    linux.update(namespaces=[{"type": t} for t in types], maskedPaths=list(MASKED_PATHS),
                 readonlyPaths=list(READONLY_PATHS))
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {name: list(DEFAULT_CAPS) for name in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "ociish",
        "mounts": mounts,
        "linux": linux,
    }


def _unified_cgroups() -> bool:
    from ociish.cgroups.detect import detect_mode

    try:
        return detect_mode() == "v2"
    except OciishError:
        return False


def write_config(bundle: str, config: dict[str, Any]) -> str:
    """Write <bundle>/config.json as runc does: tab-indented, no newline at the end, never
    over an existing file."""
    from ociish.jsonio import dumps_go

    path = os.path.join(bundle, "config.json")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise OciishError(f"{path} already exists; remove it first") from None
    except OSError as e:
        raise OciishError(f"cannot write {path}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(dumps_go(config, indent="\t").encode())
    return path
