"""`create`: validate the bundle, record the container, set up its init, leave it waiting.

Crash safety: the state directory and a "creating" record (with the cgroup plan) are
written before any resource exists, and the init's pid is recorded as soon as it is
known, so whatever point a create dies at, `delete --force` finds enough to clean up.
On any failure here, everything done so far is undone before the error is reported.
"""

from __future__ import annotations

import os
import pwd
import time

from ociish import OCI_VERSION, hostfile, jsonio, log
from ociish.errors import ConfigError, OciishError
from ociish.linux import proc as P
from ociish.process import plan as planner
from ociish.process.parent import Conversation, InitProcess, spawn
from ociish.spec.validate import load_config
from ociish.state.document import state_document
from ociish.state.store import FIFO_NAME, ContainerLock, StateStore, check_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociish.process.plantypes import CgroupPlan, ContainerPlan, IdMap
    from ociish.resctrl import IntelRdt
    from ociish.state.document import StateDocument


def rfc3339_now() -> str:
    """UTC now as Go's RFC3339Nano, as runc records it: no trailing zeros in the fraction."""
    ns = time.time_ns()
    fraction = f".{ns % 1_000_000_000:09d}".rstrip("0").rstrip(".")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + fraction + "Z"


def _sweep_inherited_fds(preserve_fds: int) -> None:
    """Only stdio and --preserve-fds may reach the container: every other fd the caller
    left open (containerd leaks its socket as fd 3) becomes close-on-exec here."""
    from ociish.linux.libc import close_range_cloexec

    if preserve_fds < 0:
        raise OciishError(f"--preserve-fds {preserve_fds}: must not be negative")
    for fd in range(3, 3 + preserve_fds):
        try:
            os.fstat(fd)
        except OSError:
            raise OciishError(f"--preserve-fds {preserve_fds}: fd {fd} is not open") from None
    close_range_cloexec(3 + preserve_fds)


def _connect(path: str, what: str) -> int:
    """A unix stream socket connected to ``path``, for the init to send an fd over."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise OciishError(f"{what} {path}: cannot connect: {e.strerror}") from None
    return sock.detach()


def _above(fd: int, minimum: int) -> int:
    """Move a runtime fd out of the range of fds preserved for the container."""
    if fd >= minimum:
        return fd
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, minimum)
    os.close(fd)
    return moved


def _cgroup_mounts(dirs: dict[str, str]) -> list[tuple[str, str | None, str]]:
    """(name under /sys/fs/cgroup, cgroup fs options or None for cgroup2, host dir) per hierarchy.

    Co-mounted controllers share one hierarchy, named after its mount point as on the host.
    """
    by_dir: dict[str, list[str]] = {}
    for controller, directory in dirs.items():
        by_dir.setdefault(directory, []).append(controller)
    result: list[tuple[str, str | None, str]] = []
    for directory, controllers in by_dir.items():
        if controllers == [""]:
            result.append(("", None, directory))
            continue
        options = ",".join(sorted(controllers))
        if options.startswith("name="):
            options = "none," + options
        result.append((",".join(sorted(c.removeprefix("name=") for c in controllers)), options, directory))
    return result


def _run_id_helper(helper: str, pid: int, mappings: list[dict[str, int]]) -> None:
    """newuidmap/newgidmap (shadow's setuid helpers, checked against /etc/subuid)."""
    import shutil
    import subprocess

    path = shutil.which(helper) or shutil.which(helper, path="/usr/bin:/bin:/usr/sbin:/sbin")
    kind = helper[3:6]
    if path is None:
        raise ConfigError(f"config.json: linux.{kind}Mappings: mapping more than your own id needs {helper} "
                          "(Debian package uidmap)")
    args = [str(v) for m in mappings for v in (m["containerID"], m["hostID"], m["size"])]
    result = subprocess.run([path, str(pid), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"config.json: linux.{kind}Mappings: {helper} refused: {result.stderr.strip()}")


def send_seccomp_listener(config: dict[str, Any], state: StateDocument, pid: int, listener_fd: int) -> None:
    """Send the notify fd with the ContainerProcessState (config-linux.md) to listenerPath."""
    import socket

    spec = config["linux"]["seccomp"]
    message = jsonio.dumps({"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid,
                            "metadata": spec.get("listenerMetadata", ""), "state": state})
    sock = socket.socket(fileno=_connect(spec["listenerPath"], "linux.seccomp.listenerPath"))
    try:
        socket.send_fds(sock, [message], [listener_fd])
    finally:
        sock.close()


def write_pid_file(path: str, pid: int) -> None:
    """Decimal pid, no newline (what conmon and the shim read), replaced atomically and
    never through a symlink (see ociish.hostfile)."""
    hostfile.replace(path, str(pid).encode(), "--pid-file")


class Prepared:
    """A create decided: the config, the cgroup manager (nothing made yet) and the whole
    plan, every part of it checked.  Nothing has been written, made or started."""

    __slots__ = ("config", "raw", "rootfs", "cgroup", "rdt", "plan")

    def __init__(self, config: dict[str, Any], raw: bytes, rootfs: str, cgroup: Any, rdt: IntelRdt | None,
                 plan: ContainerPlan) -> None:
        self.config = config
        self.raw = raw
        self.rootfs = rootfs
        self.cgroup = cgroup
        self.rdt = rdt
        self.plan = plan


def prepare(container_id: str, bundle: str, *, console_socket: str | None = None, no_pivot: bool = False,
            no_new_keyring: bool = False, preserve_fds: int = 0, systemd_cgroup: bool = False) -> Prepared:
    """Everything create will do, planned before its first side effect (and all that
    `create --dry-run` shows): a config that cannot be honoured fails here."""
    check_id(container_id)
    bundle = os.path.realpath(bundle)
    config, raw = load_config(bundle)
    rootfs = planner.rootfs_path(config, bundle)
    linux = config.get("linux") or {}
    if os.geteuid() != 0 and not systemd_cgroup:
        cgroup: Any = _NoCgroups()
    else:
        from ociish.cgroups import CgroupManager

        cgroup = CgroupManager.for_container(container_id, linux.get("cgroupsPath") or None, systemd=systemd_cgroup)
    rlimits = planner.rlimits(config.get("process") or {})
    rdt = None
    if linux.get("intelRdt") is not None:  # set, even empty: the container gets a group (config-linux.md)
        from ociish.resctrl import IntelRdt

        rdt = IntelRdt.for_container(linux["intelRdt"], container_id)
    init = planner.build_plan(
        config, container_id=container_id, bundle=bundle, rootfs=rootfs,
        options={"console": console_socket is not None, "no_pivot": no_pivot, "no_new_keyring": no_new_keyring,
                 "preserve_fds": preserve_fds, "fds": {}},
        cgroup_mounts=_cgroup_mounts(cgroup.dirs),
    )
    hooks = config.get("hooks") or {}
    plan: ContainerPlan = {
        "cgroup": cgroup.plan(linux.get("resources") or {}),
        "rlimits": rlimits,
        "runtime_hooks": {kind: hooks.get(kind) or [] for kind in ("prestart", "createRuntime", "poststart", "poststop")},
        "init": init,
    }
    return Prepared(config, raw, rootfs, cgroup, rdt, plan)


def create(store: StateStore, container_id: str, bundle: str, *, pid_file: str | None = None,
           console_socket: str | None = None, no_pivot: bool = False, no_new_keyring: bool = False,
           preserve_fds: int = 0, systemd_cgroup: bool = False) -> int:
    """Create the container; returns the init's pid."""
    check_id(container_id)
    _sweep_inherited_fds(preserve_fds)
    if pid_file:
        hostfile.refuse_symlink(pid_file, "--pid-file")  # before anything is made; written at the end
    prepared = prepare(container_id, bundle, console_socket=console_socket, no_pivot=no_pivot,
                       no_new_keyring=no_new_keyring, preserve_fds=preserve_fds, systemd_cgroup=systemd_cgroup)
    config, cgroup, plan = prepared.config, prepared.cgroup, prepared.plan
    init_plan = plan["init"]
    log.step("create", "planned")
    with store.lock(container_id) as lock:
        if store.exists(container_id):
            raise OciishError(f"container {container_id!r} already exists")
        from ociish.spec.unknown import unknown_key_warnings

        for warning in [*unknown_key_warnings(config), *init_plan["warnings"]]:
            log.warning(warning)
        seccomp = init_plan["seccomp"]
        if seccomp and seccomp["skipped"]:
            log.debug(f"linux.seccomp: not known on this architecture, skipped: {', '.join(seccomp['skipped'])}")
        cgroup.claim_missing()  # recorded before anything exists: see the module docstring
        record: dict[str, Any] = {
            **state_document(container_id, "creating", 0, init_plan["bundle"], config.get("annotations") or {}),
            "rootfs": prepared.rootfs,
            "created": "",
            "owner": pwd.getpwuid(os.geteuid()).pw_name,
            "creator": {"pid": os.getpid(), "start": P.start_time(os.getpid())},
            "init_start": None,
            "pid_namespace_new": planner.NAMESPACE_FLAGS["pid"] & init_plan["unshare_flags"] != 0,
            "cgroup": cgroup.to_record(),
            "intel_rdt": prepared.rdt.to_record() if prepared.rdt is not None else None,
            "hooks": {kind: plan["runtime_hooks"][kind] for kind in ("poststart", "poststop")},
        }
        log.step("create", "state")
        store.make_dir(container_id)
        creation = _Creation(store, lock, record, cgroup, prepared.rdt, config, plan)
        try:
            store.write(container_id, record, lock)
            store.write_file(container_id, "config.json", prepared.raw)
            creation.run(console_socket, preserve_fds)
            if pid_file:
                write_pid_file(pid_file, record["pid"])  # the last step: nothing can fail after it
        except BaseException:
            creation.rollback()
            raise
        if creation.init is not None:
            creation.init.close()  # its pidfd was kept for a rollback; none will come now
    return record["pid"]


def cgroup_owner(config: dict[str, Any]) -> tuple[int, int] | None:
    """The host uid and gid that get the container's cgroup (config-linux.md "Cgroup
    ownership"): those of process.user, when the container has a new cgroup namespace and
    /sys/fs/cgroup mounted read-write; else None.  The manager hands it over only on v2."""
    linux = config.get("linux") or {}
    if not any(ns.get("type") == "cgroup" and not ns.get("path") for ns in linux.get("namespaces") or []):
        return None
    if not any(m.get("source") == "cgroup" and m.get("destination") == "/sys/fs/cgroup"
               and "ro" not in (m.get("options") or []) for m in config.get("mounts") or []):
        return None
    user = (config.get("process") or {}).get("user") or {}
    return (_host_id(user.get("uid", 0), linux.get("uidMappings")),
            _host_id(user.get("gid", 0), linux.get("gidMappings")))


def _host_id(container_id: int, mappings: list[dict[str, int]] | None) -> int:
    """The host id a container id maps to (itself without a user namespace's mappings)."""
    for m in mappings or []:
        if m["containerID"] <= container_id < m["containerID"] + m["size"]:
            return m["hostID"] + container_id - m["containerID"]
    return container_id


class _NoCgroups:
    """A rootless container on cgroup v1 stays in its creator's cgroup: an unprivileged
    user can create none.  Limits are refused with a clear message; device rules are moot,
    since the user namespace already keeps the container from creating or opening
    devices it was not given."""

    dirs: dict[str, str] = {}

    def claim_missing(self) -> None:
        pass

    def to_record(self) -> None:
        return None

    def create(self) -> None:
        pass

    def place_init(self, pid: int) -> None:
        pass

    def delegate(self, uid: int, gid: int) -> None:
        pass  # cgroup v1 is never delegated

    def plan(self, resources: dict[str, Any]) -> CgroupPlan:
        limited = sorted(key for key, value in resources.items() if value and key != "devices")
        if limited:
            raise ConfigError(f"config.json: linux.resources.{limited[0]}: a rootless container cannot set cgroup "
                              "limits on this host (cgroup v1 cannot be delegated to an unprivileged user)")
        return {"writes": [], "device_program": None, "properties": [], "realtime_runtime": 0}

    def write(self, plan: CgroupPlan) -> None:
        pass

    def destroy(self) -> None:
        pass

    def oom_killed(self) -> bool:
        return False


class _Creation:
    """One create in progress: serves the init's requests (a StageZero) and knows what has
    been set up, so that rollback undoes exactly that."""

    def __init__(self, store: StateStore, lock: ContainerLock, record: dict[str, Any], cgroup: Any,
                 rdt: IntelRdt | None, config: dict[str, Any], plan: ContainerPlan) -> None:
        self.store = store
        self.lock = lock
        self.record = record
        self.cgroup = cgroup
        self.rdt = rdt
        self.config = config
        self.plan = plan
        self.rlimits = plan["rlimits"]
        self.init: InitProcess | None = None
        self.hooks_reached = False  # from here on a failure runs the poststop hooks (runtime.md step 12)
        self.id = record["id"]

    def run(self, console_socket: str | None, preserve_fds: int) -> None:
        floor = 3 + preserve_fds
        log.step("create", "cgroup")
        self.cgroup.create()
        if self.rdt is not None:
            self.rdt.create()
        fifo_path = self.store.path(self.id, FIFO_NAME)
        os.mkfifo(fifo_path, 0o622)
        os.chmod(fifo_path, 0o622)
        fds = self.plan["init"]["fds"]
        fds["fifo"] = _above(os.open(fifo_path, os.O_PATH | os.O_CLOEXEC), floor)
        inherit = [fds["fifo"], *range(3, floor)]
        if console_socket:
            fds["console"] = _above(_connect(console_socket, "--console-socket"), floor)
            inherit.append(fds["console"])

        log.step("create", "bootstrap")
        try:
            chan, self.init = spawn(self.plan["init"], inherit_fds=inherit, cgroup_join=self.place_init)
        finally:
            for key in ("fifo", "console"):
                if key in fds:
                    os.close(fds[key])
        try:
            try:
                Conversation(chan, self.init, self).run()
            except OciishError as e:
                if self.cgroup.oom_killed():
                    raise OciishError(f"{e.message}: container init was OOM-killed (memory limit too low?)") from None
                raise
        finally:
            chan.close()

    def place_init(self, pid: int) -> None:
        """Stage 1 into the container's cgroups and resctrl group, before it does anything."""
        self.cgroup.place_init(pid)
        if self.rdt is not None:
            self.rdt.join(pid)

    def write_usermap(self, pid: int) -> None:
        """Write the bootstrap's uid/gid maps: directly as root, or as an unprivileged user
        for the single mapping of its own ids (after denying setgroups, as the kernel
        requires), or through the setuid newuidmap/newgidmap helpers for anything wider."""
        linux = self.config.get("linux") or {}
        rootless = os.geteuid() != 0
        for kind, own in (("uid", os.geteuid()), ("gid", os.getegid())):
            mappings = linux.get(f"{kind}Mappings") or []
            try:
                if rootless and not (len(mappings) == 1 and mappings[0]["hostID"] == own and mappings[0]["size"] == 1):
                    _run_id_helper(f"new{kind}map", pid, mappings)
                    continue
                if rootless and kind == "gid":
                    with open(f"/proc/{pid}/setgroups", "w") as f:
                        f.write("deny")
                with open(f"/proc/{pid}/{kind}_map", "w") as f:
                    f.write("".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings))
            except OSError as e:
                raise ConfigError(f"config.json: linux.{kind}Mappings: the kernel refused the mapping: {e.strerror}") from None

    def bind_sources(self) -> list[tuple[str, str, IdMap | None]]:
        mounts = self.plan["init"]["mounts"]
        return [(f"mounts[{index}]", mounts[index]["source"], mounts[index]["idmap"])
                for index in self.plan["init"]["mount_sources"]]

    def on_pid(self, init: InitProcess) -> None:
        """Record the init, then move linux.netDevices into its network namespace, which
        exists now; the container process cannot start before this returns."""
        self.record["pid"] = init.pid
        self.record["init_start"] = init.start_time
        self.store.write(self.id, self.record, self.lock)
        if self.plan["init"]["net_devices"]:
            from ociish.linux import netdev

            log.step("create", "linux.netDevices")
            netdev.move(self.plan["init"]["net_devices"], init.pidfd)

    def at_hooks_point(self, init: InitProcess) -> None:
        """The init waits with its mounts and /dev done (runc's procHooks): apply the limits
        now (after the init's own setup forks and mknods, so even pids.limit 0 or a device
        deny-all cannot break it), then run the runtime-namespace hooks."""
        self.hooks_reached = True
        self.cgroup.write(self.plan["cgroup"])
        owner = cgroup_owner(self.config)
        if owner is not None:
            self.cgroup.delegate(*owner)
        from ociish.hooks import run_hooks

        hooks = self.plan["runtime_hooks"]
        state = jsonio.dumps(self.spec_state("creating", init.pid))
        for kind in ("prestart", "createRuntime"):
            if hooks[kind]:
                log.step("create", f"hooks.{kind}")
                run_hooks(kind, hooks[kind], state, self.record["bundle"])

    def on_created(self, init: InitProcess) -> None:
        self.record["status"] = "created"
        self.record["created"] = rfc3339_now()
        self.store.write(self.id, self.record, self.lock)

    def pass_seccomp_listener(self, init: InitProcess, listener_fd: int) -> None:
        send_seccomp_listener(self.config, self.spec_state("creating", init.pid), init.pid, listener_fd)

    def warn(self, message: str) -> None:
        log.warning(message)

    def spec_state(self, status: str, pid: int) -> StateDocument:
        return state_document(self.id, status, pid, self.record["bundle"], self.record["annotations"])

    def rollback(self) -> None:
        """Undo a failed create: processes, cgroups, state; poststop if hooks had begun."""
        if self.init is not None:
            self.init.kill()
        try:
            self.cgroup.destroy()
        except Exception as e:  # noqa: BLE001 - report, but finish the cleanup
            log.warning(f"cleanup after failed create: {e}")
        if self.rdt is not None:
            try:
                self.rdt.rollback()
            except OciishError as e:
                log.warning(f"cleanup after failed create: {e.message}")
        if self.hooks_reached:
            from ociish.hooks import run_hooks

            run_hooks("poststop", (self.config.get("hooks") or {}).get("poststop") or [],
                      jsonio.dumps(self.spec_state("stopped", 0)), warn=log.warning)
        self.store.remove(self.id)
        self.store.remove_lock(self.id)
