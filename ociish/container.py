"""A container as later commands see it: its record, its derived status, and the
operations start, kill and delete.

Status is never trusted from the file alone (runtime.md "State"): it is derived from the
live init process, identified by pid *and* start time so a reused pid is not mistaken
for it, from the freezer, and from exec.fifo (present until `start`).
"""

from __future__ import annotations

import errno
import os
import select
import _signal as signal  # the C module: signal.py wraps it in IntEnums, and enum costs ~3.5 ms
import time

from ociish.errors import ContainerNotFound, OciishError, WrongState
from ociish.linux import proc as P
from ociish.state.store import CONFIG_FILE, FIFO_NAME, StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STOP_TIMEOUT = 10.0


class Container:
    def __init__(self, store: StateStore, record: dict[str, Any]) -> None:
        self.store = store
        self.record = record
        self.id: str = record["id"]

    @classmethod
    def load(cls, store: StateStore, container_id: str) -> "Container":
        return cls(store, store.load(container_id))

    @property
    def pid(self) -> int:
        return int(self.record.get("pid") or 0)

    def init_alive(self) -> bool:
        return P.is_alive(self.pid, self.record.get("init_start"))

    def has(self, *keys: str) -> bool:
        """Whether the record has these fields (every record create writes has them all;
        store.load checked the types of those present)."""
        return all(key in self.record for key in keys)

    def corrupt(self) -> OciishError:
        return self.store.corrupt(self.id)

    def cgroup(self) -> Any:
        cgroup_record = self.record.get("cgroup")
        if not cgroup_record:
            return None
        from ociish.cgroups import CgroupManager

        return CgroupManager.from_record(cgroup_record)

    def status(self) -> str:
        record = self.record
        if not self.has("status", "pid"):
            raise self.corrupt()
        if record.get("status") == "creating":
            creator = record.get("creator") or {}
            if P.is_alive(creator.get("pid", 0), creator.get("start")):
                return "creating"
            # the creator died mid-create: re-read once, it may have just finished
            record = self.record = self.store.load(self.id)
            if record.get("status") == "creating":
                return "stopped"
        if not self.init_alive():
            return "stopped"
        if record.get("cgroup"):
            from ociish.cgroups import is_frozen

            if is_frozen(record["cgroup"]):
                return "paused"
        if os.path.exists(self.store.path(self.id, FIFO_NAME)):
            return "created"
        return "running"

    def state(self) -> dict[str, Any]:
        """The spec's state plus runc's rootfs, created and owner."""
        status = self.status()
        r = self.record
        if not self.has("ociVersion", "bundle"):
            raise self.corrupt()
        return {
            "ociVersion": r["ociVersion"],
            "id": self.id,
            "status": status,
            "pid": self.pid if status not in ("stopped", "creating") else 0,
            "bundle": r["bundle"],
            "rootfs": r.get("rootfs", ""),
            "created": r.get("created") or "",
            "owner": r.get("owner", ""),
            "annotations": r.get("annotations") or {},
        }

    def signal_init(self, signum: int) -> None:
        """Signal the init through a pidfd opened, then checked, for the recorded process.

        An init that exits on the way is WrongState, not an error of ours: clients signal
        containers whose process may have just finished.
        """
        pidfd = open_pidfd(self.pid)
        if pidfd is None:
            raise WrongState(self.not_running("stopped"))
        try:
            if not self.init_alive():
                raise WrongState(self.not_running("stopped"))
            try:
                signal.pidfd_send_signal(pidfd, signum)
            except ProcessLookupError:  # exited, and was reaped, since the check
                raise WrongState(self.not_running("stopped")) from None
        finally:
            os.close(pidfd)

    def not_running(self, status: str) -> str:
        """runc's words for it: containerd's shim recognises "container not running" and
        treats the kill as of a process already finished."""
        return f"container not running: {self.id!r} is {status}"

    def kill(self, signum: int, all_processes: bool = False) -> None:
        status = self.status()
        if status not in ("created", "running", "paused"):
            if all_processes and status == "stopped":
                return  # runc: `kill --all` of a stopped container is not an error
            raise WrongState(self.not_running(status))
        # the cgroup manager only where it is needed: a plain kill signals the init's pidfd
        cgroup = self.cgroup() if all_processes or (signum == signal.SIGKILL and status == "paused") else None
        if all_processes and cgroup is not None:
            cgroup.kill_all(signum)
        else:
            self.signal_init(signum)
            if cgroup is not None:
                cgroup.thaw()  # paused and SIGKILLed: a frozen process cannot die (v1)

    def wait_stopped(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Wait for the init to exit (it need not be our child: pidfd, not waitpid)."""
        if self.pid <= 0:
            return True  # never recorded: the cgroup's removal waits for whatever was killed
        pidfd = open_pidfd(self.pid)
        if pidfd is None:
            return True
        try:
            deadline = time.monotonic() + timeout
            while self.init_alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                select.select([pidfd], [], [], min(remaining, 0.1))
            return True
        finally:
            os.close(pidfd)

    def destroy(self, status: str, poststop: bool = True) -> None:
        """Kill whatever is left, remove the cgroups and the state; run poststop hooks."""
        cgroup = self.cgroup()
        if status == "creating":
            creator = self.record.get("creator") or {}
            if P.is_alive(creator.get("pid", 0), creator.get("start")):
                os.kill(creator["pid"], signal.SIGKILL)
        if status != "stopped" or (cgroup is not None and cgroup.pids()):
            init_known = self.pid > 0 and self.init_alive()
            if cgroup is not None and not (init_known and self.record.get("pid_namespace_new", False)):
                # no pid namespace of its own, or an init whose pid create never recorded
                # (killed before it learnt it): everything in the cgroup goes
                cgroup.kill_all(signal.SIGKILL)
            elif init_known:
                try:
                    self.signal_init(signal.SIGKILL)
                except WrongState:
                    pass  # it exited meanwhile
            if cgroup is not None and cgroup.is_frozen():
                cgroup.thaw()
            if not self.wait_stopped():
                raise OciishError(f"container {self.id!r}: init did not exit after SIGKILL")
        if cgroup is not None:
            cgroup.destroy()
        hooks = (self.record.get("hooks") or {}).get("poststop") or [] if poststop else []
        if hooks:
            run_hooks_warning_only("poststop", hooks, self.hook_state("stopped"))
        self.store.remove(self.id)

    def hook_state(self, status: str | None = None) -> bytes:
        """The state a hook reads: the container's own, or with ``status`` forced (poststop's
        "stopped"); a live status always comes with the init's pid, never with 0."""
        from ociish import jsonio

        state = self.state()
        if status is not None:
            state["status"] = status
        if state["status"] == "stopped":
            state["pid"] = 0
        return jsonio.dumps({k: state[k] for k in ("ociVersion", "id", "status", "pid", "bundle", "annotations")})


def open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid`, or None when no process has that pid any more: it is gone
    (ESRCH), or the number now names a thread of some other process (ENOENT, or EINVAL
    before Linux 6.9); pids come round again quickly where pid_max is small.  A process
    that reused the pid is told apart by its start time, as everywhere else."""
    try:
        return os.pidfd_open(pid)
    except OSError as e:
        if e.errno in (errno.ESRCH, errno.ENOENT, errno.EINVAL):
            return None
        raise


def run_hooks_warning_only(kind: str, hooks: list[dict[str, Any]], state_json: bytes) -> None:
    """poststart/poststop failures are warnings (config.md), and the rest still run."""
    from ociish import log
    from ociish.hooks import HookError, run_hook

    for index, hook in enumerate(hooks):
        try:
            run_hook(f"hooks.{kind}[{index}]", hook, state_json, None)
        except HookError as e:
            log.warning(e.message)


def start(store: StateStore, container_id: str) -> None:
    """Release a created container's init (runtime.md "start")."""
    with store.lock(container_id):
        container = Container.load(store, container_id)
        status = container.status()
        if status != "created":
            raise WrongState(f"cannot start container {container_id!r}: it is {status}, not created")
        fifo_path = store.path(container_id, FIFO_NAME)
        # the pidfd first: opening the fifo releases the init, whose process may then exit
        # (and be reaped by conmon or the shim) before a later pidfd_open could find it
        pidfd = open_pidfd(container.pid)
        if pidfd is None or not container.init_alive():
            if pidfd is not None:
                os.close(pidfd)
            raise WrongState(f"cannot start container {container_id!r}: its init has exited")
        try:
            fifo = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            os.close(pidfd)
            raise WrongState(f"cannot start container {container_id!r}: it was already started") from None
        try:
            failure = _release(fifo, pidfd, container)
        finally:
            os.close(fifo)
            os.close(pidfd)
            os.unlink(fifo_path)
        try:
            if failure:
                raise OciishError(f"container {container_id!r} did not start: {failure}")
            poststart = (container.record.get("hooks") or {}).get("poststart") or []
            if poststart:
                from ociish.hooks import run_hook

                for index, hook in enumerate(poststart):
                    # the state as each hook runs: "running", or "stopped" with pid 0 once the
                    # process has exited (which it may do before, or while, the hooks run)
                    run_hook(f"hooks.poststart[{index}]", hook, container.hook_state(), None)
        except OciishError:
            # runtime.md lifecycle: a start that fails stops and destroys the container
            # (steps 12 and 13: undo create, run poststop)
            container.destroy(container.status())
            store.remove_lock(container_id)
            raise


def _release(fifo: int, pidfd: int, container: Container) -> str:
    """Read the init's byte from exec.fifo, then wait for the execve to close the fifo.

    Returns what the init wrote after its byte: the reason the process never ran.
    """
    poller = select.poll()
    poller.register(fifo, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    released = False
    reason = b""
    while True:
        events = dict(poller.poll())
        if fifo in events:
            try:
                data = os.read(fifo, 4096)
            except BlockingIOError:
                continue
            if not data:
                if released:
                    break
                # the init closed without releasing: it died before start
                raise WrongState(f"cannot start container {container.id!r}: its init exited")
            if not released:
                released, data = True, data[1:]
            reason += data
        elif pidfd in events and not released:
            raise WrongState(f"cannot start container {container.id!r}: its init exited")
        elif pidfd in events:
            poller.unregister(pidfd)
    return reason.decode(errors="replace")


def delete(store: StateStore, container_id: str, force: bool) -> None:
    """Remove a stopped container (any container with --force) and everything it left."""
    if not store.exists(container_id):
        if not force:
            store.load(container_id)  # says why: no such container, or only its lock file is left
        else:
            # runc compatibility: clients call `delete --force` on gone containers.  A lock
            # file alone is a create killed before it made the directory, or a directory
            # lost to damage: the record kept in it still names the init and the cgroups.
            lock = store.lock_if_idle(container_id)
            if lock is not None:
                with lock:
                    _destroy_kept(store, container_id, lock)
                    store.remove_lock(container_id)
            return
    with store.lock(container_id) as lock:
        try:
            container = Container.load(store, container_id)
            if not container.has("cgroup"):  # destroy goes by it (status() checks the rest)
                raise container.corrupt()
            status = container.status()
        except OciishError:
            # no record (a create killed between mkdir and its first write left only the
            # directory), a damaged or unreadable one: --force removes what can still be found
            if not force:
                raise
            if not _destroy_kept(store, container_id, lock):
                _destroy_unrecorded(store, container_id)
            store.remove(container_id)
            store.remove_lock(container_id)
            return
        if status != "stopped" and not force:
            raise WrongState(f"cannot delete container {container_id!r}: it is {status}, not stopped "
                             "(use --force to kill it)")
        container.destroy(status)
        store.remove_lock(container_id)


def _destroy_kept(store: StateStore, container_id: str, lock: Any) -> bool:
    """Kill the init and remove the cgroups named by the record kept in the lock file (see
    StateStore.write); False when the lock file kept none.  The poststop hooks of a
    container whose state is damaged do not run: no state can be given to them."""
    record = store.kept_record(container_id, lock)
    if record is None:
        return False
    container = Container(store, record)
    creator = record.get("creator") or {}
    if record.get("status") == "creating" and P.is_alive(creator.get("pid", 0), creator.get("start")):
        status = "creating"
    else:
        status = "running" if container.pid > 0 and container.init_alive() else "stopped"
    container.destroy(status, poststop=False)
    return True


def _destroy_unrecorded(store: StateStore, container_id: str) -> None:
    """Kill and remove the cgroup of a container whose record is missing or unreadable,
    when the lock file kept no copy of it either.

    create saves config.json right after the first record and before it makes anything,
    so its linux.cgroupsPath (or the default path) names the cgroup, under either driver.
    Only a cgroup made since create began is this container's (create fails on a cgroup
    another container is using): an older one at the same path, a live container with
    the same id under another state root, stays.  When create began is the time of the
    lock file it took (when never written to), or else of config.json.
    """
    times = []
    for path in (store.lock_path(container_id), store.path(container_id, CONFIG_FILE)):
        try:
            info = os.stat(path)
        except OSError:
            continue
        if path == store.path(container_id, CONFIG_FILE) or info.st_size == 0:
            times.append(info.st_mtime_ns)
    if not os.path.exists(store.path(container_id, CONFIG_FILE)) or not times:
        return  # create died before saving config.json, so before making anything else
    since = times[0]
    try:
        cgroups_path = store.load_config(container_id)["linux"]["cgroupsPath"]
    except Exception:  # noqa: BLE001 - unreadable too: the default path
        cgroups_path = None
    from ociish.cgroups import CgroupManager

    for systemd in (False, True):
        try:
            cgroup = CgroupManager.for_container(
                container_id, cgroups_path if isinstance(cgroups_path, str) and cgroups_path else None, systemd=systemd)
            leaves = [d for d in dict.fromkeys(cgroup.dirs.values()) if os.path.isdir(d)]
            if not leaves or any(os.stat(d).st_ctime_ns < since for d in leaves):
                continue
        except (OciishError, OSError):
            continue
        cgroup.created = leaves
        if cgroup.pids():
            cgroup.kill_all(signal.SIGKILL)
        cgroup.destroy()
