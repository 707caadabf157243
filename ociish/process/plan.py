"""config.json → the init's plan: every decision made in `create`, before any process exists.

Pure apart from a few stat()s of host paths (namespace files, bind sources), so a config
the runtime cannot honour is refused with a clear message and nothing to clean up.  The
plan is plain data (marshal-able): the init only executes it.
"""

from __future__ import annotations

import fcntl
import os
import resource

from ociish import log
from ociish.cpulist import parse_cpu_list
from ociish.errors import ConfigError, NotSupportedError
from ociish.linux import caps as C
from ociish.linux import libc as L
from ociish.rootfs.mountopts import parse_options
from ociish.safepath import clean
from ociish.state.document import state_document

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociish.process.plantypes import (Capabilities, CgroupHierarchy, Device, ExecPlan, IdMap, InitPlan, MountStep,
                                          ProcessPlan, ProcessSettings, Rlimit, SeccompProgram)

NAMESPACE_FLAGS = {
    "pid": L.CLONE_NEWPID,
    "network": L.CLONE_NEWNET,
    "mount": L.CLONE_NEWNS,
    "ipc": L.CLONE_NEWIPC,
    "uts": L.CLONE_NEWUTS,
    "user": L.CLONE_NEWUSER,
    "cgroup": L.CLONE_NEWCGROUP,
    "time": L.CLONE_NEWTIME,
}
_NS_GET_NSTYPE = 0xB703
_NSFS_MAGIC = 0x6E736673

# The devices config-linux.md says every container gets (char 1:3 …), mode 0666, root-owned.
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)
DEV_SYMLINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)
# The spec's four values, plus the r-forms CRI-O writes (runc accepts them too).
ROOTFS_PROPAGATION = {
    "private": L.MS_PRIVATE,
    "shared": L.MS_SHARED,
    "slave": L.MS_SLAVE,
    "unbindable": L.MS_UNBINDABLE,
}
ROOTFS_PROPAGATION.update({"r" + name: flag | L.MS_REC for name, flag in list(ROOTFS_PROPAGATION.items())})
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}


def rootfs_path(config: dict[str, Any], bundle: str) -> str:
    """Absolute rootfs path (root.path is absolute or relative to the resolved bundle);
    must be a directory reached through no symlink, as runc requires: the path recorded
    and shown in the state is then the one the container really has."""
    root = config.get("root")
    if not isinstance(root, dict) or not root.get("path"):
        raise ConfigError("config.json: root.path: missing required field")
    path = os.path.normpath(os.path.join(bundle, root["path"]))
    if not os.path.isdir(path):
        raise ConfigError(f"config.json: root.path: {root['path']!r}: no directory at {path}")
    real = os.path.realpath(path)
    if real != path:
        raise ConfigError(f"config.json: root.path: {root['path']!r}: {path} is reached through a symlink "
                          f"(it resolves to {real}); name the directory itself")
    return path


def namespaces(config: dict[str, Any]) -> dict[str, str | None]:
    """type → path (None for a new namespace), with each path checked to be that type."""
    result: dict[str, str | None] = {}
    for index, ns in enumerate(config.get("linux", {}).get("namespaces") or []):
        kind, path = ns["type"], ns.get("path") or None
        if kind in result:
            raise ConfigError(f"config.json: linux.namespaces[{index}].type: duplicate namespace {kind!r}")
        if path is not None:
            _check_namespace_file(path, kind, f"linux.namespaces[{index}].path")
        result[kind] = path
    return result


def _check_namespace_file(path: str, kind: str, where: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise ConfigError(f"config.json: {where}: {path!r}: {e.strerror}") from None
    try:
        if L.fstatfs_type(fd) != _NSFS_MAGIC:
            raise ConfigError(f"config.json: {where}: {path!r} is not a namespace file")
        actual = fcntl.ioctl(fd, _NS_GET_NSTYPE)
        if actual != NAMESPACE_FLAGS[kind]:
            names = {flag: name for name, flag in NAMESPACE_FLAGS.items()}
            raise ConfigError(f"config.json: {where}: {path!r} is a {names.get(actual, '?')} namespace, expected {kind}")
    finally:
        os.close(fd)


def build_plan(config: dict[str, Any], *, container_id: str, bundle: str, rootfs: str, options: dict[str, Any],
               cgroup_mounts: list[CgroupHierarchy]) -> InitPlan:
    """The complete, validated instructions for stages 1 and 2.

    ``options`` carries the create flags: console (bool), no_pivot, no_new_keyring,
    preserve_fds, fds.
    ``cgroup_mounts`` lists (hierarchy name, fs options or None for cgroup2, host dir of
    the container's cgroup) for `cgroup` mounts.
    """
    linux = config.get("linux") or {}
    proc = config.get("process")
    if not isinstance(proc, dict):
        raise ConfigError("config.json: process: missing required field")

    ns = namespaces(config)
    new_userns = "user" in ns and ns["user"] is None
    new = {kind for kind, path in ns.items() if path is None and kind != "user"}
    unshare_flags = 0
    for kind in new:
        unshare_flags |= NAMESPACE_FLAGS[kind]
    ns_paths = [(kind, path, NAMESPACE_FLAGS[kind]) for kind, path in ns.items() if path is not None]

    for field in ("hostname", "domainname"):
        if config.get(field) and "uts" not in ns:  # "" is unset, as runc and crun take it
            raise ConfigError(f"config.json: {field}: setting it needs a uts namespace of the container's own "
                              "(linux.namespaces), not the runtime's")
    if linux.get("timeOffsets") and "time" not in new:
        raise ConfigError("config.json: linux.timeOffsets: needs a new time namespace (linux.namespaces)")
    if (linux.get("uidMappings") or linux.get("gidMappings")) and not new_userns:  # [] is none, as runc's
        raise ConfigError("config.json: linux.uidMappings: mappings need a new user namespace (linux.namespaces)")
    if new_userns and not (linux.get("uidMappings") and linux.get("gidMappings")):
        raise ConfigError("config.json: linux.uidMappings: a new user namespace needs uidMappings and gidMappings")

    net_devices: list[tuple[str, str]] = []
    if linux.get("netDevices"):
        from ociish.linux import netdev

        net_devices = netdev.check(linux["netDevices"], ("network" in ns, ns.get("network")))

    mount_ns = "mount" in ns
    terminal = bool(proc.get("terminal"))
    if terminal != bool(options.get("console")):
        raise ConfigError("process.terminal is true: --console-socket is required" if terminal
                          else "--console-socket given but process.terminal is not true")
    container_maps = (linux["uidMappings"], linux["gidMappings"]) if new_userns else None
    mounts = [_mount_entry(m, index, bundle, cgroup_mounts, "cgroup" in new, container_maps)
              for index, m in enumerate(config.get("mounts") or [])]
    if not mount_ns:
        # each would mount on the host's own tree (runc refuses them the same way)
        asked = [name for name, value in (("mounts", mounts), ("linux.maskedPaths", linux.get("maskedPaths")),
                                          ("linux.readonlyPaths", linux.get("readonlyPaths")),
                                          ("linux.devices", linux.get("devices")), ("process.terminal", terminal),
                                          ("root.readonly", (config.get("root") or {}).get("readonly"))) if value]
        if asked:
            raise ConfigError(f"config.json: {', '.join(asked)}: need a new mount namespace "
                              "(linux.namespaces has no \"mount\")")

    # a read-only /dev is mounted writable and made read-only once setup is done (runc's
    # order): the devices, /dev/pts and the console are made under it first
    dev_readonly = False
    for index, m in enumerate(mounts):
        if m["destination"] == "/dev" and not m["bind"] and m["flags"] & L.MS_RDONLY:
            mounts[index] = {**m, "flags": m["flags"] & ~L.MS_RDONLY}
            dev_readonly = True
    dev_from_host = any(m["bind"] and m["destination"] == "/dev" for m in mounts)
    devices: list[Device] = [] if dev_from_host else [
        {"path": path, "type": "c", "major": major, "minor": minor, "mode": 0o666, "uid": 0, "gid": 0,
         "host_path": path, "where": "linux.devices", "configured": False} for path, major, minor in DEFAULT_DEVICES]
    for index, dev in enumerate(linux.get("devices") or []):
        devices = [d for d in devices if d["path"] != clean(dev["path"])]
        devices.append(_device_entry(dev, index))

    warnings: list[str] = []
    process_plan = _process_plan(proc, terminal, warnings, "config.json")

    propagation = linux.get("rootfsPropagation")
    personality = linux.get("personality")
    hooks = config.get("hooks") or {}
    root = config.get("root") or {}
    plan: InitPlan = {
        "mode": "create",
        "debug": log.debug_enabled(),
        "cpu_affinity": None,  # execCPUAffinity is for exec'd processes, not the init (config.md)
        "parent_pid": os.getpid(),
        "id": container_id,
        "bundle": bundle,
        "rootfs": rootfs,
        "readonly": bool(root.get("readonly")),
        "mount_ns": mount_ns,
        "new_userns": new_userns,
        "unshare_flags": unshare_flags,
        "ns_paths": ns_paths,
        "loopback_up": "network" in new,  # a new network namespace's lo starts down (runc brings it up)
        "net_devices": net_devices,  # (host name, name inside): create moves them (linux/netdev.py)
        # setgroups(2) is denied in a user namespace an unprivileged user made (see create)
        "setgroups_allowed": not (new_userns and os.geteuid() != 0),
        "time_offsets": _time_offsets(linux.get("timeOffsets") or {}),
        "oom_score_adj": proc.get("oomScoreAdj"),
        "mounts": mounts,
        # the mounts whose source create opens for the init (see parent.py): every bind in a
        # user namespace (an unprivileged create cannot join the init's mount namespace to
        # do so, nor can runc), and every idmapped one (only the host's root can map it)
        "mount_sources": [index for index, m in enumerate(mounts)
                          if m["idmap"] or (m["bind"] and "user" in ns and os.geteuid() == 0)],
        "dev_readonly": dev_readonly,
        "devices": devices,
        "bind_devices": new_userns,
        "dev_symlinks": list(DEV_SYMLINKS),
        "masked_paths": list(linux.get("maskedPaths") or []),
        "readonly_paths": list(linux.get("readonlyPaths") or []),
        # applied as given (recursive only for the r-forms) to the new root after pivot_root;
        # during setup the tree is always a recursive slave of the host, so nothing leaks back
        "rootfs_propagation": ROOTFS_PROPAGATION[propagation] if propagation else 0,
        "hostname": config.get("hostname") or None,
        "domainname": config.get("domainname") or None,
        "sysctl": checked_sysctls(linux.get("sysctl") or {}, ns),
        "seccomp": _seccomp(linux.get("seccomp")),
        "personality": None if personality is None else _personality(personality),
        **_process_settings(proc, linux),
        "process": process_plan,
        "hooks": {kind: hooks.get(kind) or [] for kind in ("createContainer", "startContainer")},
        # what the init's hooks without `env` inherit: the runtime's environment (the init's own is empty)
        "hook_env": dict(os.environ) if any(hook.get("env") is None for kind in ("createContainer", "startContainer")
                                            for hook in hooks.get(kind) or []) else {},
        "state": state_document(container_id, "creating", 0, bundle, config.get("annotations") or {}),
        "no_pivot": bool(options.get("no_pivot")),
        "new_keyring": not options.get("no_new_keyring"),
        "preserve_fds": options.get("preserve_fds", 0),
        "fds": dict(options.get("fds") or {}),
        "warnings": warnings,
    }
    return plan


def _process_plan(proc: dict[str, Any], terminal: bool, warnings: list[str], label: str) -> ProcessPlan:
    """What the init or an exec'd process applies to itself from a `process` object."""
    user = proc.get("user") or {}
    plan: ProcessPlan = {
        "args": list(proc.get("args") or []),
        "env": list(proc.get("env") or []),
        "cwd": proc.get("cwd") or "/",
        "uid": user.get("uid", 0),
        "gid": user.get("gid", 0),
        "additional_gids": list(user.get("additionalGids") or []),
        "umask": user.get("umask"),  # unset: keep the caller's (config.md)
        "terminal": terminal,
        "console_size": _console_size(proc) if terminal else None,
        "no_new_privileges": bool(proc.get("noNewPrivileges")),
        # no capabilities member is no capabilities, as runc and crun read it (never all of the runtime's)
        "caps": capability_sets(proc.get("capabilities") or {}, warnings),
    }
    if not plan["args"]:
        raise ConfigError(f"{label}: process.args: at least one entry is required")
    return plan


def _process_settings(proc: dict[str, Any], linux: dict[str, Any]) -> ProcessSettings:
    return {
        "scheduler": _scheduler(proc.get("scheduler")),
        "io_priority": _io_priority(proc.get("ioPriority")),
        "lsm_exec": lsm_exec_label(proc, linux),
        "memory_policy": _memory_policy(linux.get("memoryPolicy")),
    }


def _memory_policy(spec: dict[str, Any] | None) -> tuple[int, list[int], int] | None:
    """set_mempolicy's arguments, for the init and every exec'd process alike."""
    if not spec:
        return None
    from ociish.linux.mempolicy import policy

    return policy(spec)


NS_FILES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
            "cgroup": "cgroup", "time": "time"}


def build_exec_plan(config: dict[str, Any], proc: dict[str, Any], *, container_id: str, init_pid: int,
                    options: dict[str, Any]) -> ExecPlan:
    """Instructions for a process joining a running container (`exec`).

    It enters every namespace the container has, through its init's /proc/PID/ns files,
    and applies its own `process` settings; the container's seccomp profile applies to
    it as to the init (runc does the same).
    """
    linux = config.get("linux") or {}
    terminal = bool(proc.get("terminal"))
    if terminal != bool(options.get("console")):
        raise ConfigError("process.terminal is true: --console-socket (or --tty in the foreground) is required"
                          if terminal else "--console-socket given but the process has no terminal")
    warnings: list[str] = []
    kinds = [ns["type"] for ns in linux.get("namespaces") or []]
    affinity = proc.get("execCPUAffinity") or {}
    return {
        "mode": "exec",
        "debug": log.debug_enabled(),
        "parent_pid": os.getpid(),
        "id": container_id,
        "oom_score_adj": proc.get("oomScoreAdj"),
        "ns_paths": [(kind, f"/proc/{init_pid}/ns/{NS_FILES[kind]}", NAMESPACE_FLAGS[kind]) for kind in kinds],
        "new_userns": False,
        "unshare_flags": 0,
        "time_offsets": "",
        "setgroups_allowed": not ("user" in kinds and os.geteuid() != 0),
        "process": _process_plan(proc, terminal, warnings, "process.json"),
        "seccomp": _seccomp(linux.get("seccomp")),
        **_process_settings(proc, linux),
        "cpu_affinity": parse_cpu_list(affinity.get("final") or "", "process.execCPUAffinity.final"),
        "preserve_fds": options.get("preserve_fds", 0),
        "fds": dict(options.get("fds") or {}),
        "warnings": warnings,
    }


def _mount_entry(m: dict[str, Any], index: int, bundle: str, cgroup_mounts: list[CgroupHierarchy],
                 cgroupns: bool, container_maps: tuple[list[Any], list[Any]] | None) -> MountStep:
    where = f"mounts[{index}]"
    options = parse_options(list(m.get("options") or []))
    kind = m.get("type") or None
    bind = options["bind"] or kind == "bind"
    source = m.get("source")
    if bind:
        if not source:
            raise ConfigError(f"config.json: {where}.source: a bind mount needs a source")
        source = os.path.normpath(os.path.join(bundle, source))
        if not os.path.exists(source):
            raise ConfigError(f"config.json: {where}.source: {m['source']!r}: no such file or directory")
    elif kind is None:
        raise ConfigError(f"config.json: {where}.type: required unless options include bind or rbind")
    destination = clean(m["destination"])
    if destination == "/" and index != 0:
        raise ConfigError(f"config.json: {where}.destination: a mount over / must be the first mount")
    data = options["data"]
    if kind == "overlay" and not bind:
        data = _overlay_data(data, bundle)
    cgroup = kind == "cgroup" and not bind
    return {
        "destination": destination,
        "type": kind,
        "source": source or kind or "",
        "bind": bind,
        "rec": options["rec"],
        "copy_up": options["copy_up"],
        "idmap": _idmap(m, options["idmap"], bind, options["rec"], where, container_maps),
        "flags": options["flags"],
        "clear": options["clear"],
        "propagation": options["propagation"],
        "attr_set": options["attr_set"],
        "attr_clr": options["attr_clr"],
        "data": data,
        "cgroup": cgroup_mounts if cgroup else [],
        "cgroupns": cgroup and cgroupns,
    }


def _idmap(m: dict[str, Any], option: str | None, bind: bool, rbind: bool, where: str,
           container_maps: tuple[list[Any], list[Any]] | None) -> IdMap | None:
    """What an idmapped mount needs (see rootfs/idmap.py), None for an ordinary mount.

    Mappings without idmap/ridmap still idmap the mount (non-recursively): the spec only
    asks for the option so that older runtimes fail instead of ignoring them.  The schema
    has already required uidMappings and gidMappings together."""
    uid_maps, gid_maps = m.get("uidMappings"), m.get("gidMappings")
    if not (uid_maps or gid_maps or option):
        return None
    if not bind:
        raise ConfigError(f"config.json: {where}: only bind mounts (options bind or rbind) can be idmapped")
    if not uid_maps:
        if container_maps is None:
            raise ConfigError(f"config.json: {where}.options: {option} without uidMappings and gidMappings "
                              "takes the mapping of a new user namespace; a joined one's is not known")
        uid_maps, gid_maps = container_maps
    if os.geteuid() != 0:
        raise ConfigError(f"config.json: {where}: idmapped mounts need the host's root "
                          "(the kernel lets no one else map a host filesystem)")
    return {"uid": list(uid_maps), "gid": list(gid_maps or ()), "rbind": rbind, "recursive": option == "ridmap"}


def _overlay_data(data: str, bundle: str) -> str:
    """overlay's directory options, relative to the bundle as bind sources are."""
    options = []
    for option in data.split(","):
        key, eq, value = option.partition("=")
        if eq and key in ("lowerdir", "upperdir", "workdir"):
            value = ":".join(os.path.join(bundle, part) for part in value.split(":"))
        options.append(f"{key}{eq}{value}")
    return ",".join(options)


def _device_entry(dev: dict[str, Any], index: int) -> Device:
    where = f"linux.devices[{index}]"
    kind = dev["type"]
    if kind != "p" and ("major" not in dev or "minor" not in dev):
        raise ConfigError(f"config.json: {where}: major and minor are required for type {kind!r}")
    return {
        "path": clean(dev["path"]),
        "type": kind,
        "major": dev.get("major", 0),
        "minor": dev.get("minor", 0),
        "mode": dev.get("fileMode", 0o666) & 0o7777,
        "uid": dev.get("uid", 0),
        "gid": dev.get("gid", 0),
        "host_path": dev["path"],
        "where": where,
        "configured": True,
    }


def capability_sets(spec: dict[str, list[str]], warnings: list[str], available: int | None = None) -> Capabilities:
    """Bit masks the init applies; what cannot be granted becomes a warning (config.md).

    ``available`` is the runtime's own bounding set (read from /proc/self/status when not
    given): no process can hand out a capability it cannot have itself.
    """
    if available is None:
        available = own_bounding_set()
    masks = {}
    # one line per capability (and reason), naming the sets: as runc, a name copied into
    # every set is one problem, not five
    problems: dict[tuple[str, str], list[str]] = {}
    for name in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        mask, unknown = C.cap_mask(list(spec.get(name) or []))
        for cap in unknown:
            problems.setdefault((f"unknown capability {cap!r} ignored", ""), []).append(name)
        masks[name] = mask
    dropped = {
        "bounding": masks["bounding"] & ~available,
        "effective": masks["effective"] & ~(masks["permitted"] & available),
        "permitted": masks["permitted"] & ~available,
        "inheritable": masks["inheritable"] & ~(masks["bounding"] & available),
        "ambient": masks["ambient"] & ~(masks["permitted"] & masks["inheritable"] & masks["bounding"] & available),
    }
    reasons = {"bounding": "the runtime does not hold it", "permitted": "the runtime does not hold it",
               "effective": "not permitted", "inheritable": "not in the bounding set",
               "ambient": "not both permitted and inheritable"}
    for name, bits in dropped.items():
        for n in (n for n in range(len(C.CAPABILITIES)) if bits >> n & 1):
            cap = C.CAPABILITIES[n]
            if name == "ambient":
                # runc raises what it can and is silent about the rest (`runc spec`'s own config
                # asks for ambient capabilities it does not make inheritable): one debug line each
                log.debug(f"process.capabilities.ambient: {cap} cannot be raised ({reasons[name]})")
            else:  # the root cause first: a capability the runtime lacks is dropped from every set
                reason = reasons[name] if available >> n & 1 else reasons["bounding"]
                problems.setdefault((f"{cap} cannot be granted", reason), []).append(name)
        masks[name] &= ~bits
    for (problem, reason), sets in problems.items():
        warnings.append(f"process.capabilities: {problem} ({', '.join(sets)}{': ' + reason if reason else ''})")
    return {"bounding": masks["bounding"], "effective": masks["effective"], "permitted": masks["permitted"],
            "inheritable": masks["inheritable"], "ambient": masks["ambient"], "last": C.last_cap()}


def own_bounding_set() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return (1 << (C.last_cap() + 1)) - 1


# Sysctls a namespace isolates (the kernel's per-namespace tables); anything else is global.
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
                "kernel.shmmni", "kernel.shm_rmid_forced"}


def _sysctl_namespace(key: str) -> str | None:
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return "ipc"
    if key.startswith("net."):
        return "network"
    if key == "kernel.domainname":
        return "uts"
    return None


def checked_sysctls(sysctl: dict[str, str], ns: dict[str, str | None]) -> dict[str, str]:
    """Only keys isolated by a namespace of the container's own: any other write would
    change the host's kernel (runc refuses them the same way)."""
    result = {}
    for raw_key, value in sysctl.items():
        key = raw_key.replace("/", ".")
        kind = _sysctl_namespace(key)
        if kind is None:
            raise ConfigError(f"config.json: linux.sysctl[{raw_key!r}]: not isolated by any namespace; "
                              "setting it would change the host")
        if kind not in ns:
            raise ConfigError(f"config.json: linux.sysctl[{raw_key!r}]: needs a {kind} namespace of the "
                              "container's own (linux.namespaces), or it would change the host")
        result[key] = value
    return result


def _seccomp(spec: dict[str, Any] | None) -> SeccompProgram | None:
    if not spec:
        return None
    from ociish.security.seccomp import compile_filter

    return compile_filter(spec)


def _console_size(proc: dict[str, Any]) -> tuple[int, int] | None:
    size = proc.get("consoleSize")
    return (size["height"], size["width"]) if size else None


def _time_offsets(offsets: dict[str, dict[str, int]]) -> str:
    clocks = {"monotonic": "monotonic", "boottime": "boottime"}
    lines = []
    for clock, value in offsets.items():
        if clock not in clocks:
            raise ConfigError(f"config.json: linux.timeOffsets.{clock}: only monotonic and boottime can be offset")
        lines.append(f"{clocks[clock]} {value.get('secs', 0)} {value.get('nanosecs', 0)}\n")
    return "".join(lines)


SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
                  "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
               "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}


def _scheduler(spec: dict[str, Any] | None) -> tuple[int, ...] | None:
    """sched_setattr(2) arguments: (policy, flags, nice, priority, runtime, deadline, period)."""
    if not spec:
        return None
    flags = 0
    for flag in spec.get("flags") or []:
        flags |= SCHED_FLAGS[flag]
    return (SCHED_POLICIES[spec["policy"]], flags, spec.get("nice", 0), spec.get("priority", 0),
            spec.get("runtime", 0), spec.get("deadline", 0), spec.get("period", 0))


def _io_priority(spec: dict[str, Any] | None) -> tuple[int, int] | None:
    """(class, level); the spec's schema requires only the class, and runc's level is then 0."""
    return None if not spec else (IO_CLASSES[spec["class"]], spec.get("priority", 0))


def lsm_exec_label(proc: dict[str, Any], linux: dict[str, Any]) -> tuple[str, str] | None:
    """(procfs attr file, value) that labels the process at execve, or None.

    A label for an LSM the host does not run is an error, never silently dropped."""
    profile, label = proc.get("apparmorProfile"), proc.get("selinuxLabel")
    if profile and label:
        raise ConfigError("config.json: process.apparmorProfile and process.selinuxLabel: only one LSM can label the process")
    if linux.get("mountLabel") and not os.path.isdir("/sys/fs/selinux"):
        raise ConfigError("config.json: linux.mountLabel: SELinux is not enabled on this host")
    if profile:
        try:
            with open("/sys/module/apparmor/parameters/enabled") as f:
                enabled = f.read().strip() == "Y"
        except OSError:
            enabled = False
        if not enabled:
            raise ConfigError(f"config.json: process.apparmorProfile: {profile!r} asked, but AppArmor is not enabled on this host")
        return "apparmor/exec", f"exec {profile}"
    if label:
        if not os.path.isdir("/sys/fs/selinux"):
            raise ConfigError(f"config.json: process.selinuxLabel: {label!r} asked, but SELinux is not enabled on this host")
        return "exec", label
    return None


def _personality(personality: dict[str, Any]) -> int:
    domain = personality.get("domain")
    if domain not in PERSONALITY_DOMAINS:
        raise ConfigError(f"config.json: linux.personality.domain: {domain!r}: expected LINUX or LINUX32")
    if personality.get("flags"):
        raise NotSupportedError("linux.personality.flags")
    return PERSONALITY_DOMAINS[domain]


def _rlim(value: int) -> int:
    """uint64 config value → what resource.prlimit takes (2^64-1 is RLIM_INFINITY)."""
    return resource.RLIM_INFINITY if value >= 2**63 else value


def rlimits(proc: dict[str, Any]) -> list[Rlimit]:
    """(resource number, soft, hard, type) per process.rlimits entry; unknown types are errors."""
    result = []
    seen = set()
    for index, limit in enumerate(proc.get("rlimits") or []):
        kind = limit["type"]
        number = getattr(resource, kind, None)
        if not kind.startswith("RLIMIT_") or not isinstance(number, int):
            raise ConfigError(f"config.json: process.rlimits[{index}].type: {kind!r} is not a Linux rlimit")
        if kind in seen:
            raise ConfigError(f"config.json: process.rlimits[{index}].type: duplicate rlimit {kind!r}")
        seen.add(kind)
        if limit["soft"] > limit["hard"]:
            raise ConfigError(f"config.json: process.rlimits[{index}]: soft limit {limit['soft']} exceeds hard limit {limit['hard']}")
        result.append((number, _rlim(limit["soft"]), _rlim(limit["hard"]), kind))
    return result
