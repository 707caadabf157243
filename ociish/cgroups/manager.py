"""CgroupManager: one container's cgroup in every hierarchy of the host.

The manager is created once from the config (`for_container`), persisted in
state.json (`to_record`) and rebuilt by later commands (`from_record`), so no
later process has to re-resolve `cgroupsPath` or re-detect the host.

With the systemd driver the cgroup is a transient scope unit that systemd creates when
the init is placed (`place_init`) and removes when it is stopped (`destroy`); limits go
to the unit's properties and to the files (`apply`).  The bus is only connected to,
and jeepney only imported, for such a container (ociish/cgroups/systemd.py).
"""

from __future__ import annotations

import errno
import os
import time

from ociish import log
from ociish.cgroups import freezer, fs, paths
from ociish.errors import ConfigError, NotSupportedError, OciishError
from ociish.linux import syscalls as S
from ociish.linux.cpython import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociish.cgroups.mapping import Write
    from ociish.cgroups.systemd import Property, Systemd
    from ociish.process.plantypes import CgroupPlan

# detect, mapping and devices are imported where create and update use them: delete and
# kill, which only find, signal and remove a recorded cgroup, never pay for them

RECORD_VERSION = 1
UNIFIED = freezer.UNIFIED

# In hybrid mode, a v1 controller that is not mounted may instead be enabled in the
# cgroup2 tree (this host keeps hugetlb there).  Only controllers fed by exactly one
# `linux.resources` key can move over, since the v2 plan is built from that key alone.
_V2_EQUIVALENT = {"memory": "memory", "pids": "pids", "blkio": "blockIO", "hugetlb": "hugepageLimits", "rdma": "rdma"}

# Files whose acceptance depends on another write of the same update (quota vs burst,
# period vs the parent's quota): on EINVAL they are retried once after the rest.
_ORDER_SENSITIVE = frozenset(
    {
        "cpu.cfs_period_us",
        "cpu.cfs_quota_us",
        "cpu.cfs_burst_us",
        "cpu.rt_period_us",
        "cpu.rt_runtime_us",
        "cpu.max",
        "cpu.max.burst",
    }
)

_UNSUPPORTED_ERRNOS = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})

# The files a delegated cgroup's owner may write (cgroups(7)); the spec's fallback list.
DELEGATE_LIST = "/sys/kernel/cgroup/delegate"
_DELEGATE_FALLBACK = ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads")


class CgroupManager:
    """Creates, configures, freezes, signals and removes one container's cgroups."""

    FREEZE_TIMEOUT = 10.0

    def __init__(
        self, mode: str, driver: str, cgroup: str, dirs: dict[str, str], created: list[str] | None = None,
        unit: dict[str, Any] | None = None,
    ) -> None:
        self.mode = mode  # "v1" | "v2" | "hybrid"
        self.driver = driver  # "cgroupfs" | "systemd"
        self.cgroup = cgroup  # the path inside every hierarchy, e.g. /ociish/<id>
        self.dirs = dict(dirs)  # controller (or "" for cgroup2) → host directory
        self.created = list(created or [])  # directories this container made, in creation order
        # systemd driver: {"name": scope, "slice": its slice, "user": a user's systemd, "description": ...}
        self.unit = dict(unit) if unit else None
        self.bus: Systemd | None = None  # connected when first needed

    # ------------------------------------------------------------ construction

    @classmethod
    def for_container(
        cls,
        container_id: str,
        cgroups_path: str | None,
        *,
        systemd: bool = False,
        root: str = "/sys/fs/cgroup",
        mountinfo: str | None = None,
        bus: Systemd | None = None,
    ) -> CgroupManager:
        """Resolve `cgroupsPath` to a directory per hierarchy (nothing is created yet).

        The systemd driver asks the bus (`bus`, else the host's or, rootless, the user's
        systemd) where the manager's own cgroup is: a user's units live below it.
        """
        from ociish.cgroups import detect

        found = detect.hierarchies(root, mountinfo or detect.MOUNTINFO)
        unit = None
        if not systemd:
            cgroup = paths.cgroupfs_path(container_id, cgroups_path)
        else:
            user = os.geteuid() != 0
            slice_name, name = paths.systemd_unit(container_id, cgroups_path, user)
            if name.endswith(".slice"):
                raise NotSupportedError(paths.FIELD, f"{cgroups_path!r} names a slice: a container's unit is a scope")
            if user and found.mode != "v2":
                raise ConfigError(f"{paths.FIELD}: a rootless container can use the systemd cgroup driver only on "
                                  f"cgroup v2 (this host's cgroups are {found.mode})")
            if bus is None:
                from ociish.cgroups import systemd as systemd_driver

                bus = systemd_driver.connect(user)
            base = str(bus.manager_property("ControlGroup")).rstrip("/") if user else ""
            cgroup = base + paths.systemd_path(container_id, cgroups_path, user)
            unit = {"name": name, "slice": slice_name, "user": user,
                    "description": f"ociish container {container_id}"}
        mounts = dict(found.v1)
        if found.unified:
            mounts[UNIFIED] = found.unified
        dirs = {controller: mount + cgroup for controller, mount in mounts.items()}
        manager = cls(found.mode, "systemd" if systemd else "cgroupfs", cgroup, dirs, unit=unit)
        manager.bus = bus
        return manager

    def to_record(self) -> dict[str, Any]:
        """What state.json keeps so that later commands find the same cgroups."""
        record = {
            "version": RECORD_VERSION,
            "mode": self.mode,
            "driver": self.driver,
            "cgroup": self.cgroup,
            "paths": dict(self.dirs),
            "created": list(self.created),
        }
        if self.unit:
            record["unit"] = dict(self.unit)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CgroupManager:
        """The manager `to_record` described."""
        try:
            if record["version"] != RECORD_VERSION:
                raise OciishError(f"unknown cgroup record version {record['version']!r} in state.json")
            return cls(record["mode"], record["driver"], record["cgroup"], record["paths"], record["created"],
                       record.get("unit"))
        except (KeyError, TypeError, ValueError) as e:
            raise OciishError(f"corrupt cgroup record in state.json: {e!r}") from None

    # ------------------------------------------------------------ queries

    def path_for(self, controller: str) -> str | None:
        """The host directory holding `controller`'s files ("" = the cgroup2 tree), or None."""
        if controller in self.dirs:
            return self.dirs[controller]
        return self.dirs[UNIFIED] if self.mode == "v2" else None

    def _leaves(self) -> list[str]:
        """Every distinct container directory (co-mounted controllers share one)."""
        return list(dict.fromkeys(self.dirs.values()))

    def _mount(self, leaf: str) -> str:
        return leaf[: len(leaf) - len(self.cgroup)]

    def pids(self) -> list[int]:
        """Every pid in the container's cgroup, including its sub-cgroups."""
        tracking = self.dirs.get(UNIFIED) or self.dirs.get("freezer") or self.dirs.get("pids")
        return fs.procs(tracking or self._leaves()[0], recursive=True)

    def oom_source(self) -> tuple[str, str] | None:
        """(kind, directory) of the memory accounting: ("v1", memory dir) or ("v2", cgroup2 dir)."""
        if "memory" in self.dirs:
            return "v1", self.dirs["memory"]
        if UNIFIED in self.dirs:
            return "v2", self.dirs[UNIFIED]
        return None

    def oom_kills(self) -> int:
        """How many processes of this container the kernel OOM-killed (v1 memory.oom_control,
        v2 memory.events, which counts sub-cgroups too)."""
        source = self.oom_source()
        if source is None:
            return 0
        kind, directory = source
        info = fs.read_keyed(os.path.join(directory, "memory.oom_control" if kind == "v1" else "memory.events"))
        try:
            return int(info.get("oom_kill", "0"))
        except ValueError:
            return 0

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed a process of this container."""
        return self.oom_kills() > 0

    # ------------------------------------------------------------ create / join / destroy

    def claim_missing(self) -> None:
        """Record, before create(), every directory create() is about to make.

        The caller persists to_record() right after this, so a create killed half-way
        still leaves a record that lets destroy() remove what was made.  systemd makes
        a scope's levels itself (and a slice's cgroup is the slice's): none is claimed.
        """
        if self.unit:
            return
        for leaf in self._leaves():
            parent = self._mount(leaf)
            for name in self.cgroup.strip("/").split("/"):
                parent = os.path.join(parent, name)
                if not os.path.isdir(parent) and parent not in self.created:
                    self.created.append(parent)

    def create(self) -> None:
        """Make the cgroup in every hierarchy; an existing one is reused only if empty and thawed.

        A systemd scope comes into being with its first process: see place_init.
        """
        if self.unit:
            return
        try:
            for leaf in self._leaves():
                self._create_levels(leaf)
            for leaf in self._leaves():
                if leaf not in self.created and fs.procs(leaf):
                    raise ConfigError(f"{paths.FIELD}: cgroup {leaf} already exists and has processes")
            if self.is_frozen():
                raise ConfigError(f"{paths.FIELD}: cgroup {self.cgroup} already exists and is frozen")
        except OSError as e:
            self._rollback()
            raise OciishError(f"cannot create cgroup {e.filename or self.cgroup}: {e.strerror}") from None
        except BaseException:
            self._rollback()
            raise

    def _create_levels(self, leaf: str) -> None:
        is_unified = leaf == self.dirs.get(UNIFIED)
        is_cpuset = leaf == self.dirs.get("cpuset")
        parent = self._mount(leaf)
        for name in self.cgroup.strip("/").split("/"):
            if is_unified:
                _enable_controllers(parent)  # before the child exists, so it inherits them
            current = os.path.join(parent, name)
            if fs.mkdir(current) and current not in self.created:
                self.created.append(current)
            if is_cpuset:
                _inherit_cpuset(parent, current)  # a cpuset with no cpus refuses tasks
            parent = current
        if is_unified and fs.read_optional(os.path.join(leaf, "cgroup.type")) == "domain invalid":
            raise ConfigError(f"{paths.FIELD}: cgroup {leaf} is an invalid domain inside a threaded subtree")

    def _rollback(self) -> None:
        """Undo a failed create without hiding its error."""
        try:
            self.destroy()
        except OciishError:
            pass

    def place_init(self, pid: int) -> None:
        """Put the container's first process into its cgroup.

        systemd driver: start the scope holding it (systemd creates the cgroup and moves
        the process, in every hierarchy it manages), then make the levels of the
        hierarchies systemd leaves alone (v1 cpuset, freezer, ...), enable the cgroup2
        controllers systemd does not manage in the levels above, and join them all.
        """
        if self.unit:
            from ociish.cgroups import systemd

            unit = self.unit
            self._systemd().start_scope(
                unit["name"], systemd.scope_properties(unit["description"], unit["slice"], pid, self.mode))
            try:
                for leaf in self._leaves():
                    self._create_levels(leaf)
            except OSError as e:
                raise OciishError(f"cannot create cgroup {e.filename or self.cgroup}: {e.strerror}") from None
        self.join(pid)

    def _systemd(self) -> Systemd:
        if self.bus is None:
            from ociish.cgroups import systemd

            self.bus = systemd.connect(bool(self.unit and self.unit["user"]))
        return self.bus

    def join(self, pid: int, instead: dict[str, str] | None = None) -> None:
        """Move `pid` into the container's cgroup in every hierarchy (the cgroup2 one included),
        or into the sub-cgroup ``instead`` names for a hierarchy's directory (exec --cgroup).

        An unprivileged user may move a process only between cgroups below one it owns: a
        process `exec` starts in its caller's cgroup (a login session's scope, a service)
        is outside the user's systemd, so that systemd is asked to move it, as it was asked
        to place the init."""
        for leaf in self._leaves():
            target = (instead or {}).get(leaf, leaf)
            try:
                fs.write_text(os.path.join(target, "cgroup.procs"), str(pid))
            except OSError as e:
                if e.errno in (errno.EACCES, errno.EPERM) and self.unit and self.unit["user"] and target == leaf:
                    self._systemd().attach(self.unit["name"], pid)
                    continue
                raise OciishError(f"cannot move pid {pid} into cgroup {target}: {e.strerror}") from None

    def destroy(self) -> None:
        """Remove the directories this container created, leaves first; missing ones are fine.

        A systemd scope is stopped first; whatever of its cgroup remains (a sub-cgroup
        the container made, a v1 hierarchy systemd does not manage) is removed after.
        """
        leaves = set(self._leaves())
        ours = list(self.created)
        if self.unit:
            self._systemd().stop(self.unit["name"])
            ours += [leaf for leaf in leaves if leaf not in ours]
        failures = []
        for directory in sorted(ours, key=lambda d: d.count("/"), reverse=True):
            try:
                if directory in leaves:
                    fs.rmtree(directory)
                else:
                    S.rmdir(directory)
            except FileNotFoundError:
                continue
            except OSError as e:
                # A shared parent (e.g. /ociish) that other containers still use stays.
                if directory not in leaves and e.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    continue
                failures.append(f"{directory}: {e.strerror}")
        if failures:
            raise OciishError(f"cannot remove cgroup {'; '.join(failures)}")

    def delegate(self, uid: int, gid: int, delegate_list: str = DELEGATE_LIST) -> None:
        """Hand the cgroup to the container's user (config-linux.md "Cgroup ownership").

        Only on pure cgroup v2: delegation is not secure on v1, so elsewhere this does
        nothing.  The caller decides whether the config asks for it (new cgroupns and a
        read-write cgroup mount).  Only the directory and the kernel's delegatable files
        change owner, so the container cannot raise its own limits.
        """
        if self.mode != "v2":
            return
        names = (fs.read_optional(delegate_list) or "").split() or list(_DELEGATE_FALLBACK)
        leaf = self.dirs[UNIFIED]
        for path in [leaf, *(os.path.join(leaf, name) for name in names)]:
            try:
                S.chown(path, uid, gid)
            except FileNotFoundError:
                continue  # not every listed file exists in every cgroup
            except OSError as e:
                raise OciishError(f"cannot hand cgroup {path} to uid {uid}: {e.strerror}") from None

    # ------------------------------------------------------------ resources

    def apply(self, resources: dict[str, Any]) -> None:
        """Write `linux.resources` (for update); errors name the config field."""
        self.write(self.plan(resources))

    def plan(self, resources: dict[str, Any]) -> CgroupPlan:
        """Every write for `resources`, in order and checked against this host, before any is
        made: create plans its limits before its first side effect."""
        writes = self._targets(resources)
        for _, write in writes:
            if write.filename in _ONLINE:
                _check_cpuset(write)
        return {
            "writes": writes,
            "device_program": self._device_filter(resources),
            "properties": self._unit_properties(resources) if self.unit else [],
            "realtime_runtime": (resources.get("cpu") or {}).get("realtimeRuntime") or 0,
        }

    def write(self, plan: CgroupPlan) -> None:
        """Make the writes `plan` computed (with --debug, one log line each)."""
        self._grant_realtime_budget(plan["realtime_runtime"])
        if plan["properties"]:
            self._set_unit_properties(plan["properties"])
        deferred = []
        for directory, write in plan["writes"]:
            log.step("create", f"{write.field}: {write.filename} = {write.value}")
            try:
                _write(directory, write)
            except OSError as e:
                if e.errno == errno.EINVAL and write.filename in _ORDER_SENSITIVE:
                    deferred.append((directory, write))
                else:
                    raise _write_error(directory, write, e) from None
        for directory, write in deferred:
            try:
                _write(directory, write)
            except OSError as e:
                raise _write_error(directory, write, e) from None
        if plan["device_program"] is not None:
            from ociish.cgroups import ebpf

            log.step("create", "linux.resources.devices: device filter")
            ebpf.attach(self.dirs[UNIFIED], plan["device_program"])

    def _unit_properties(self, resources: dict[str, Any]) -> list[Property]:
        from ociish.cgroups import systemd

        return systemd.unit_properties(resources, self.mode, self._systemd().version())

    def _set_unit_properties(self, properties: list[Property]) -> None:
        """The limits systemd knows, as properties of the scope, so that systemd keeps them
        when it next rewrites its cgroups.  On v1 systemd rewrites device rules by first
        denying all, so the container is frozen meanwhile (as runc does)."""
        freeze = (self.mode != "v2" and any(name == "DevicePolicy" for name, _ in properties)
                  and self._freezer() is not None and not self.is_frozen())
        if freeze:
            self.freeze()
        try:
            assert self.unit is not None  # a plan has properties for a systemd scope only
            log.step("create", "systemd: properties")
            self._systemd().set_properties(self.unit["name"], properties)
        finally:
            if freeze:
                self.thaw()

    def _grant_realtime_budget(self, runtime: int) -> None:
        """v1 RT group scheduling: a cgroup gets no more realtime runtime than its parent
        has, and a new cgroup starts with none.  The levels this container created above
        its own, and the runtime's shared default parent (/ociish), receive the requested
        budget first, top-down; parents someone else made are left as they are."""
        leaf = self.dirs.get("cpu")
        if self.mode == "v2" or runtime <= 0 or leaf is None:
            return
        ours = set(self.created) | {self._mount(leaf) + paths.DEFAULT_PARENT}
        for directory in sorted(ours, key=len):
            if directory != leaf and leaf.startswith(directory + "/"):
                path = os.path.join(directory, "cpu.rt_runtime_us")
                try:
                    if int(fs.read_text(path)) < runtime:
                        fs.write_text(path, str(runtime))
                except (OSError, ValueError) as e:
                    raise ConfigError(f"linux.resources.cpu.realtimeRuntime: cannot give {directory} a realtime "
                                      f"budget of {runtime}: {getattr(e, 'strerror', e)}") from None

    def _device_filter(self, resources: dict[str, Any]) -> bytes | None:
        """On pure v2, the eBPF program for `devices` (v1 and hybrid write them as files).

        Assembled before any write, so a bad rule fails the apply before anything changed.
        """
        if self.mode != "v2" or resources.get("devices") is None:
            return None
        from ociish.cgroups import devices, ebpf

        return ebpf.device_program(devices.normalize_rules(resources["devices"]))

    def _targets(self, resources: dict[str, Any]) -> list[tuple[str, Write]]:
        """(directory, write) for every write, checked against what this host offers."""
        from ociish.cgroups import mapping

        if self.mode == "v2":
            plan = mapping.v2_plan(resources)
            self._check_memory_usage(resources)
            return _v2_targets(plan, self.dirs[UNIFIED])
        plan = mapping.v1_plan(resources, self._current_memory_limit(resources))
        targets = []
        moved: dict[str, None] = {}
        for write in plan:
            if write.controller in self.dirs:
                targets.append((self.dirs[write.controller], write))
                continue
            key = _V2_EQUIVALENT.get(write.controller)
            if key is None or UNIFIED not in self.dirs:
                raise NotSupportedError(write.field, f"the {write.controller} controller is not mounted on this host")
            moved[key] = None
        for key in moved:
            targets += _v2_targets(mapping.v2_plan({key: resources[key]}), self.dirs[UNIFIED])
        return targets

    def _current_memory_limit(self, resources: dict[str, Any]) -> int | None:
        """v1 memory.limit_in_bytes, which decides the memory/memsw write order."""
        mem = resources.get("memory")
        if not isinstance(mem, dict) or not mem.get("limit") or not mem.get("swap") or "memory" not in self.dirs:
            return None
        try:
            return int(fs.read_text(os.path.join(self.dirs["memory"], "memory.limit_in_bytes")))
        except (OSError, ValueError):
            return None

    def _check_memory_usage(self, resources: dict[str, Any]) -> None:
        """memory.checkBeforeUpdate on v2: refuse a limit below current usage instead of OOM-killing."""
        mem = resources.get("memory") or {}
        limit = mem.get("limit")
        if mem.get("checkBeforeUpdate") is not True or not isinstance(limit, int) or limit <= 0:
            return
        try:
            usage = int(fs.read_text(os.path.join(self.dirs[UNIFIED], "memory.current")))
        except (OSError, ValueError):
            return
        if limit < usage:
            raise ConfigError(
                f"linux.resources.memory.limit: {limit} is below the current usage {usage} (checkBeforeUpdate)"
            )

    # ------------------------------------------------------------ freezer and signals

    def _freezer(self) -> tuple[str, str] | None:
        return freezer.locate(self.dirs)

    def freeze(self) -> None:
        """Stop every task of the container (pause)."""
        self._set_frozen(True)

    def thaw(self) -> None:
        """Let the container's tasks run again (resume)."""
        self._set_frozen(False)

    def is_frozen(self) -> bool:
        """Whether the freezer has finished freezing the container."""
        return freezer.is_frozen(self.dirs)

    def _set_frozen(self, frozen: bool) -> None:
        """Request a freezer state and poll until the kernel reports it: freezing is asynchronous."""
        freezer = self._freezer()
        if freezer is None:
            raise OciishError("cannot freeze or thaw: this host has no cgroup freezer")
        kind, directory = freezer
        if kind == "v1":
            control, request = os.path.join(directory, "freezer.state"), "FROZEN" if frozen else "THAWED"
        else:
            control, request = os.path.join(directory, "cgroup.freeze"), "1" if frozen else "0"
        deadline = time.monotonic() + self.FREEZE_TIMEOUT
        delay = 0.001
        while True:
            try:
                # Re-requesting on v1 retries tasks that could not be frozen the first time.
                fs.write_text(control, request)
            except OSError as e:
                raise OciishError(f"cannot {'freeze' if frozen else 'thaw'} cgroup {directory}: {e.strerror}") from None
            if self.is_frozen() == frozen:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        if frozen:
            try:
                self._set_frozen(False)  # do not leave a half-frozen container behind
            except OciishError:
                pass
        state = "frozen" if frozen else "thawed"
        raise OciishError(f"cgroup {directory} was not {state} within {self.FREEZE_TIMEOUT:g}s")

    def kill_all(self, signum: int) -> None:
        """Signal every process of the container: cgroup.kill for SIGKILL, else freeze → signal → thaw."""
        if signum == signal.SIGKILL and self._cgroup_kill():
            if self.is_frozen():
                self.thaw()  # v1-frozen tasks only act on the SIGKILL once thawed
            return
        was_frozen = self.is_frozen()
        froze = False
        if not was_frozen and self._freezer() is not None:
            try:
                self.freeze()  # so no task can fork a child we would miss
                froze = True
            except OciishError:
                pass  # signal what we can see rather than nothing, as runc does
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
        finally:
            if froze or (was_frozen and signum == signal.SIGKILL):
                self.thaw()


    def _cgroup_kill(self) -> bool:
        """SIGKILL the whole cgroup2 subtree at once; False if the kernel has no cgroup.kill."""
        if UNIFIED not in self.dirs:
            return False
        try:
            fs.write_text(os.path.join(self.dirs[UNIFIED], "cgroup.kill"), "1")
        except FileNotFoundError:
            return False
        except OSError as e:
            raise OciishError(f"cannot kill cgroup {self.dirs[UNIFIED]}: {e.strerror}") from None
        return True


# ---------------------------------------------------------------- helpers


def _enable_controllers(directory: str) -> None:
    """Delegate every available controller to `directory`'s children (cgroup2 only).

    All at once first; if the kernel refuses the set, one by one, keeping what it
    accepts.  A controller that stays off is reported by `apply` if a resource needs it.
    """
    available = fs.read_text(os.path.join(directory, "cgroup.controllers")).split()
    control = os.path.join(directory, "cgroup.subtree_control")
    enabled = set(fs.read_text(control).split())
    missing = [c for c in available if c not in enabled]
    if not missing:
        return
    try:
        fs.write_text(control, " ".join(f"+{c}" for c in missing))
    except OSError:
        for c in missing:
            try:
                fs.write_text(control, f"+{c}")
            except OSError:
                continue


def _inherit_cpuset(parent: str, child: str) -> None:
    """Copy cpuset.cpus / cpuset.mems from the parent where the child's are still empty (v1)."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not fs.read_text(os.path.join(child, name)):
            fs.write_text(os.path.join(child, name), fs.read_text(os.path.join(parent, name)))


def _v2_targets(plan: list[Write], leaf: str) -> list[tuple[str, Write]]:
    """Pair cgroup2 writes with the leaf, refusing controllers not enabled for it.  A leaf
    create has yet to make gets what its nearest existing parent offers (create enables
    every one of them on the way down)."""
    directory = leaf
    while True:
        try:
            available = set(fs.read_text(os.path.join(directory, "cgroup.controllers")).split())
            break
        except FileNotFoundError:
            if directory in ("/", "") or os.path.isdir(directory):
                raise OciishError(f"cgroup {leaf} does not exist") from None
            directory = os.path.dirname(directory)
    for write in plan:
        if write.controller != "cgroup" and write.controller not in available:
            raise NotSupportedError(write.field, f"the {write.controller} controller is not available in {leaf}")
    return [(leaf, write) for write in plan]


# cpuset file → the host's list of what exists to be given (sysfs)
_ONLINE = {"cpuset.cpus": "/sys/devices/system/cpu/online", "cpuset.mems": "/sys/devices/system/node/online"}


def _check_cpuset(write: Write) -> None:
    """A cpu or memory node list the kernel would refuse: malformed, or naming one the
    host does not have online (a host without NUMA has node 0 alone)."""
    from ociish.cpulist import parse_cpu_list

    source = _ONLINE[write.filename]
    online = fs.read_optional(source) or "0"
    missing = sorted(set(parse_cpu_list(write.value, write.field)) - set(parse_cpu_list(online, source)))
    if missing:
        what = "cpu" if write.filename == "cpuset.cpus" else "memory node"
        raise ConfigError(f"{write.field}: {write.value!r} names {what} {missing[0]}, which this host does not "
                          f"have online ({source}: {online})")


def _write(directory: str, write: Write) -> None:
    """One planned write, honouring its fallback file and optional flag."""
    try:
        fs.write_text(os.path.join(directory, write.filename), write.value)
    except FileNotFoundError:
        if not os.path.isdir(directory):
            raise OciishError(f"cgroup {directory} does not exist") from None
        if write.optional:
            return
        if write.fallback is None:
            raise
        fs.write_text(os.path.join(directory, write.fallback[0]), write.fallback[1])


def _write_error(directory: str, write: Write, e: OSError) -> ConfigError:
    """The one-line error for a write the host refused."""
    if e.errno == errno.ENOENT:
        name = f"{write.filename} (or {write.fallback[0]})" if write.fallback else write.filename
        return NotSupportedError(write.field, f"{name} does not exist in {directory}")
    if e.errno in _UNSUPPORTED_ERRNOS:
        return NotSupportedError(write.field, f"the kernel does not support {write.filename}")
    return ConfigError(f"{write.field}: the kernel refused {write.value!r} for {write.filename}: {e.strerror}")
