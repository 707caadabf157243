"""`delete`: remove a stopped container (any container with --force) and everything it
left: its processes, its cgroups, its state; and run its poststop hooks.

`delete --force` also cleans up after a create killed at any point, from whatever it
recorded (design.md "State and concurrency"); start's failure path destroys the
container with the same `destroy`.
"""

from __future__ import annotations

import os
import select
import time

from ociish.errors import OciishError, WrongState
from ociish.linux import proc as P
from ociish.linux.cpython import signal
from ociish.ops.container import Container, open_pidfd
from ociish.state.store import CONFIG_FILE, StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STOP_TIMEOUT = 10.0


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
        destroy(container, status)
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
    destroy(container, status, poststop=False)
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


def destroy(container: Container, status: str, poststop: bool = True) -> None:
    """Kill whatever is left, remove the cgroups, the resctrl groups and the state; run poststop hooks."""
    cgroup = container.cgroup()
    if status == "creating":
        creator = container.record.get("creator") or {}
        if P.is_alive(creator.get("pid", 0), creator.get("start")):
            os.kill(creator["pid"], signal.SIGKILL)
    if status != "stopped" or (cgroup is not None and cgroup.pids()):
        init_known = container.pid > 0 and container.init_alive()
        if cgroup is not None and not (init_known and container.record.get("pid_namespace_new", False)):
            # no pid namespace of its own, or an init whose pid create never recorded
            # (killed before it learnt it): everything in the cgroup goes
            cgroup.kill_all(signal.SIGKILL)
        elif init_known:
            try:
                container.signal_init(signal.SIGKILL)
            except WrongState:
                pass  # it exited meanwhile
        if cgroup is not None and cgroup.is_frozen():
            cgroup.thaw()
        if not wait_stopped(container):
            raise OciishError(f"container {container.id!r}: init did not exit after SIGKILL")
    if cgroup is not None:
        cgroup.destroy()
    if container.record.get("intel_rdt"):
        from ociish.resctrl import IntelRdt

        IntelRdt.from_record(container.record["intel_rdt"]).destroy()
    hooks = (container.record.get("hooks") or {}).get("poststop") or [] if poststop else []
    if hooks:
        from ociish import log
        from ociish.hooks import run_hooks  # it loads ctypes: only for a container with hooks

        run_hooks("poststop", hooks, container.hook_state("stopped"), warn=log.warning)
    container.store.remove(container.id)


def wait_stopped(container: Container, timeout: float = STOP_TIMEOUT) -> bool:
    """Wait for the init to exit (it need not be our child: pidfd, not waitpid)."""
    if container.pid <= 0:
        return True  # never recorded: the cgroup's removal waits for whatever was killed
    pidfd = open_pidfd(container.pid)
    if pidfd is None:
        return True
    try:
        deadline = time.monotonic() + timeout
        while container.init_alive():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            select.select([pidfd], [], [], min(remaining, 0.1))
        return True
    finally:
        os.close(pidfd)


