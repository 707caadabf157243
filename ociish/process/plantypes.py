"""The types of the plan (process/plan.py builds it, process/init.py reads it).

For the type checker only: every module imports this under TYPE_CHECKING, so nothing
here (nor `typing`) is loaded at run time.  The plan itself stays plain dicts, lists and
tuples, because it travels to the sealed init marshal-encoded.  Every key is ReadOnly:
the type checker refuses a write into a plan once it is built, so the init only reads it.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from typing_extensions import ReadOnly

from ociish.cgroups.mapping import Write
from ociish.cgroups.systemd import Property
from ociish.state.document import StateDocument


class Capabilities(TypedDict):
    """Bit masks per set, already trimmed to what can be granted; `last` is the highest
    capability number the kernel knows."""

    bounding: ReadOnly[int]
    effective: ReadOnly[int]
    permitted: ReadOnly[int]
    inheritable: ReadOnly[int]
    ambient: ReadOnly[int]
    last: ReadOnly[int]


class ProcessPlan(TypedDict):
    """What the init (or an exec'd process) applies to itself from a `process` object."""

    args: ReadOnly[list[str]]
    env: ReadOnly[list[str]]
    cwd: ReadOnly[str]
    uid: ReadOnly[int]
    gid: ReadOnly[int]
    additional_gids: ReadOnly[list[int]]
    umask: ReadOnly[int | None]
    terminal: ReadOnly[bool]
    console_size: ReadOnly[tuple[int, int] | None]
    no_new_privileges: ReadOnly[bool]
    caps: ReadOnly[Capabilities]


class MountOptions(TypedDict):
    """A mount's options split by the step of the mount that needs them (mountopts.py)."""

    bind: ReadOnly[bool]
    rec: ReadOnly[bool]
    copy_up: ReadOnly[bool]
    idmap: ReadOnly[Literal["idmap", "ridmap"] | None]
    flags: ReadOnly[int]
    clear: ReadOnly[int]
    propagation: ReadOnly[list[int]]
    attr_set: ReadOnly[int]
    attr_clr: ReadOnly[int]
    data: ReadOnly[str]


class IdMap(TypedDict):
    """An idmapped bind mount's mapping (rootfs/idmap.py)."""

    uid: ReadOnly[list[dict[str, int]]]
    gid: ReadOnly[list[dict[str, int]]]
    rbind: ReadOnly[bool]
    recursive: ReadOnly[bool]


# (name under /sys/fs/cgroup, cgroup fs options or None for cgroup2, host dir of the container's cgroup)
CgroupHierarchy = tuple[str, str | None, str]


class MountStep(TypedDict):
    """One `mounts` entry, resolved: the source made absolute, the flags parsed."""

    destination: ReadOnly[str]
    type: ReadOnly[str | None]
    source: ReadOnly[str]
    bind: ReadOnly[bool]
    rec: ReadOnly[bool]
    copy_up: ReadOnly[bool]
    idmap: ReadOnly[IdMap | None]
    flags: ReadOnly[int]
    clear: ReadOnly[int]
    propagation: ReadOnly[list[int]]
    attr_set: ReadOnly[int]
    attr_clr: ReadOnly[int]
    data: ReadOnly[str]
    cgroup: ReadOnly[list[CgroupHierarchy]]  # a cgroup mount's hierarchies ([] for any other)
    cgroupns: ReadOnly[bool]  # a cgroup mount in a new cgroup namespace


class Device(TypedDict):
    """A node made in the container's /dev (a default one or a `linux.devices` entry)."""

    path: ReadOnly[str]
    type: ReadOnly[str]
    major: ReadOnly[int]
    minor: ReadOnly[int]
    mode: ReadOnly[int]
    uid: ReadOnly[int]
    gid: ReadOnly[int]
    host_path: ReadOnly[str]
    where: ReadOnly[str]
    configured: ReadOnly[bool]


class SeccompProgram(TypedDict):
    """The filter stage 0 compiled (security/seccomp.py) and what loading it needs."""

    bpf: ReadOnly[bytes]
    flags: ReadOnly[int]
    listener: ReadOnly[bool]
    skipped: ReadOnly[list[str]]  # syscalls this architecture does not know


# (kind, path, CLONE_NEW* flag) of a namespace joined by path
NamespacePath = tuple[str, str, int]
# (resource number, soft, hard, RLIMIT_ name), applied by stage 0 with prlimit
Rlimit = tuple[int, int, int, str]
Hook = dict[str, object]  # a config.json hook, passed on as given


class CgroupPlan(TypedDict):
    """What stage 0 writes in the container's cgroup (cgroups/manager.py), computed and
    checked before anything exists; written at the init's hooks point."""

    writes: ReadOnly[list[tuple[str, Write]]]  # (directory, file write), in order
    device_program: ReadOnly[bytes | None]  # cgroup v2's device filter (eBPF)
    properties: ReadOnly[list[Property]]  # the systemd driver's unit properties
    realtime_runtime: ReadOnly[int]  # cgroup v1 RT budget its new parents get first


class ProcessSettings(TypedDict):
    """What `process` asks of the scheduler and the LSM (planned alike for init and exec)."""

    scheduler: ReadOnly[tuple[int, ...] | None]
    io_priority: ReadOnly[tuple[int, int] | None]
    lsm_exec: ReadOnly[tuple[str, str] | None]
    memory_policy: ReadOnly[tuple[int, list[int], int] | None]  # set_mempolicy's (mode | flags, nodemask words, maxnode)


class BasePlan(ProcessSettings):
    """What stage 1 and the process it forks need, for the init as for an exec'd process."""

    debug: ReadOnly[bool]  # report each step to stage 0 for the --log file
    parent_pid: ReadOnly[int]
    id: ReadOnly[str]
    oom_score_adj: ReadOnly[int | None]
    ns_paths: ReadOnly[list[NamespacePath]]
    new_userns: ReadOnly[bool]
    unshare_flags: ReadOnly[int]
    time_offsets: ReadOnly[str]
    setgroups_allowed: ReadOnly[bool]
    process: ReadOnly[ProcessPlan]
    seccomp: ReadOnly[SeccompProgram | None]
    cpu_affinity: ReadOnly[list[int] | None]
    preserve_fds: ReadOnly[int]
    fds: ReadOnly[dict[str, int]]
    warnings: ReadOnly[list[str]]


class InitPlan(BasePlan):
    """`create`'s plan for the container init (stage 2)."""

    mode: ReadOnly[Literal["create"]]
    bundle: ReadOnly[str]
    rootfs: ReadOnly[str]
    readonly: ReadOnly[bool]
    mount_ns: ReadOnly[bool]
    loopback_up: ReadOnly[bool]
    net_devices: ReadOnly[list[tuple[str, str]]]  # (host name, name inside): moved by create, not the init
    mounts: ReadOnly[list[MountStep]]
    mount_sources: ReadOnly[list[int]]
    dev_readonly: ReadOnly[bool]
    devices: ReadOnly[list[Device]]
    bind_devices: ReadOnly[bool]
    dev_symlinks: ReadOnly[list[tuple[str, str]]]
    masked_paths: ReadOnly[list[str]]
    readonly_paths: ReadOnly[list[str]]
    rootfs_propagation: ReadOnly[int]
    hostname: ReadOnly[str | None]
    domainname: ReadOnly[str | None]
    sysctl: ReadOnly[dict[str, str]]
    personality: ReadOnly[int | None]
    hooks: ReadOnly[dict[str, list[Hook]]]
    hook_env: ReadOnly[dict[str, str]]
    state: ReadOnly[StateDocument]  # status and pid set by the init for each of its hooks
    no_pivot: ReadOnly[bool]
    new_keyring: ReadOnly[bool]


class ExecPlan(BasePlan):
    """`exec`'s: stage 1 joins the container's namespaces, then the process runs."""

    mode: ReadOnly[Literal["exec"]]


Plan = InitPlan | ExecPlan


class ContainerPlan(TypedDict):
    """Everything `create` does, decided and checked before its first side effect
    (`create --dry-run` prints it): stage 0's part, then the init's."""

    cgroup: ReadOnly[CgroupPlan]
    rlimits: ReadOnly[list[Rlimit]]
    runtime_hooks: ReadOnly[dict[str, list[Hook]]]  # prestart, createRuntime (run by create), poststart, poststop
    init: ReadOnly[InitPlan]
