"""Linux constants the checks compare against (names as used in config.json)."""

from __future__ import annotations

CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
    "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# /proc/self/status field for each capability set in config.json.
CAP_SET_FIELDS: dict[str, str] = {
    "bounding": "CapBnd",
    "effective": "CapEff",
    "inheritable": "CapInh",
    "permitted": "CapPrm",
    "ambient": "CapAmb",
}


def cap_mask(names: list[str] | tuple[str, ...]) -> int:
    """Bit mask of the named capabilities."""
    return sum(1 << CAPABILITIES.index(n) for n in set(names))


def cap_names(mask: int) -> list[str]:
    """Names of the capabilities set in mask (unknown bits as numbers)."""
    return [CAPABILITIES[b] if b < len(CAPABILITIES) else str(b)
            for b in range(64) if mask >> b & 1]


# Namespace type in config.json -> entry in /proc/<pid>/ns.
NAMESPACE_FILES: dict[str, str] = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}

# (path, major, minor) of the devices every container must have.
DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)

SCHED_POLICIES: dict[str, int] = {
    "SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
    "SCHED_IDLE": 5, "SCHED_DEADLINE": 6,
}

IOPRIO_CLASSES: dict[str, int] = {
    "IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3,
}

MEMPOLICY_MODES: dict[str, int] = {
    "MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2,
    "MPOL_INTERLEAVE": 3, "MPOL_LOCAL": 4,
}

PER_LINUX32 = 0x0008

