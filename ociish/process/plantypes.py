"""The types of the plan (process/plan.py builds it, process/init.py reads it).

For the type checker only: every module imports this under TYPE_CHECKING, so nothing
here (nor `typing`) is loaded at run time.  The plan itself stays plain dicts, lists and
tuples, because it travels to the sealed init marshal-encoded.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from ociish.cgroups.mapping import Write
from ociish.cgroups.systemd import Property
from ociish.state.document import StateDocument


class Capabilities(TypedDict):
    """Bit masks per set, already trimmed to what can be granted; `last` is the highest
    capability number the kernel knows."""

    bounding: int
    effective: int
    permitted: int
    inheritable: int
    ambient: int
    last: int


class ProcessPlan(TypedDict):
    """What the init (or an exec'd process) applies to itself from a `process` object."""

    args: list[str]
    env: list[str]
    cwd: str
    uid: int
    gid: int
    additional_gids: list[int]
    umask: int | None
    terminal: bool
    console_size: tuple[int, int] | None
    no_new_privileges: bool
    caps: Capabilities


class MountOptions(TypedDict):
    """A mount's options split by the step of the mount that needs them (mountopts.py)."""

    bind: bool
    rec: bool
    copy_up: bool
    idmap: Literal["idmap", "ridmap"] | None
    flags: int
    clear: int
    propagation: list[int]
    attr_set: int
    attr_clr: int
    data: str


class IdMap(TypedDict):
    """An idmapped bind mount's mapping (rootfs/idmap.py)."""

    uid: list[dict[str, int]]
    gid: list[dict[str, int]]
    rbind: bool
    recursive: bool


# (name under /sys/fs/cgroup, cgroup fs options or None for cgroup2, host dir of the container's cgroup)
CgroupHierarchy = tuple[str, str | None, str]


class MountStep(TypedDict):
    """One `mounts` entry, resolved: the source made absolute, the flags parsed."""

    destination: str
    type: str | None
    source: str
    bind: bool
    rec: bool
    copy_up: bool
    idmap: IdMap | None
    flags: int
    clear: int
    propagation: list[int]
    attr_set: int
    attr_clr: int
    data: str
    cgroup: list[CgroupHierarchy]  # a cgroup mount's hierarchies ([] for any other)
    cgroupns: bool  # a cgroup mount in a new cgroup namespace


class Device(TypedDict):
    """A node made in the container's /dev (a default one or a `linux.devices` entry)."""

    path: str
    type: str
    major: int
    minor: int
    mode: int
    uid: int
    gid: int
    host_path: str
    where: str
    configured: bool


class SeccompProgram(TypedDict):
    """The filter stage 0 compiled (security/seccomp.py) and what loading it needs."""

    bpf: bytes
    flags: int
    listener: bool
    skipped: list[str]  # syscalls this architecture does not know


# (kind, path, CLONE_NEW* flag) of a namespace joined by path
NamespacePath = tuple[str, str, int]
# (resource number, soft, hard, RLIMIT_ name), applied by stage 0 with prlimit
Rlimit = tuple[int, int, int, str]
Hook = dict[str, object]  # a config.json hook, passed on as given


class CgroupPlan(TypedDict):
    """What stage 0 writes in the container's cgroup (cgroups/manager.py), computed and
    checked before anything exists; written at the init's hooks point."""

    writes: list[tuple[str, Write]]  # (directory, file write), in order
    device_program: bytes | None  # cgroup v2's device filter (eBPF)
    properties: list[Property]  # the systemd driver's unit properties
    realtime_runtime: int  # cgroup v1 RT budget its new parents get first


class ProcessSettings(TypedDict):
    """What `process` asks of the scheduler and the LSM (planned alike for init and exec)."""

    scheduler: tuple[int, ...] | None
    io_priority: tuple[int, int] | None
    lsm_exec: tuple[str, str] | None
    memory_policy: tuple[int, list[int], int] | None  # set_mempolicy's (mode | flags, nodemask words, maxnode)


class BasePlan(ProcessSettings):
    """What stage 1 and the process it forks need, for the init as for an exec'd process."""

    debug: bool  # report each step to stage 0 for the --log file
    parent_pid: int
    id: str
    oom_score_adj: int | None
    ns_paths: list[NamespacePath]
    new_userns: bool
    unshare_flags: int
    time_offsets: str
    setgroups_allowed: bool
    process: ProcessPlan
    seccomp: SeccompProgram | None
    cpu_affinity: list[int] | None
    preserve_fds: int
    fds: dict[str, int]
    warnings: list[str]


class InitPlan(BasePlan):
    """`create`'s plan for the container init (stage 2)."""

    mode: Literal["create"]
    bundle: str
    rootfs: str
    readonly: bool
    mount_ns: bool
    loopback_up: bool
    net_devices: list[tuple[str, str]]  # (host name, name inside): moved by create, not the init
    mounts: list[MountStep]
    mount_sources: list[int]
    dev_readonly: bool
    devices: list[Device]
    bind_devices: bool
    dev_symlinks: list[tuple[str, str]]
    masked_paths: list[str]
    readonly_paths: list[str]
    rootfs_propagation: int
    hostname: str | None
    domainname: str | None
    sysctl: dict[str, str]
    personality: int | None
    hooks: dict[str, list[Hook]]
    hook_env: dict[str, str]
    state: StateDocument  # status and pid set by the init for each of its hooks
    no_pivot: bool
    new_keyring: bool


class ExecPlan(BasePlan):
    """`exec`'s: stage 1 joins the container's namespaces, then the process runs."""

    mode: Literal["exec"]


Plan = InitPlan | ExecPlan


class ContainerPlan(TypedDict):
    """Everything `create` does, decided and checked before its first side effect
    (`create --dry-run` prints it): stage 0's part, then the init's."""

    cgroup: CgroupPlan
    rlimits: list[Rlimit]
    runtime_hooks: dict[str, list[Hook]]  # prestart, createRuntime (run by create), poststart, poststop
    init: InitPlan
