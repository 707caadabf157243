"""A container as the operations see it: its record, its derived status, its state, and
a signal to its init; and the live container that update, pause, events and ps act on.

Status is never trusted from the file alone (runtime.md "State"): it is derived from the
live init process, identified by pid *and* start time so a reused pid is not mistaken
for it, from the freezer, and from exec.fifo (present until `start`).
"""

from __future__ import annotations

import errno
import os

from ociish.errors import OciishError, WrongState
from ociish.linux import proc as P
from ociish.linux.cpython import signal
from ociish.state.document import state_document
from ociish.state.store import FIFO_NAME, StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociish.state.document import StateDocument

LIVE = ("created", "running", "paused")


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
        r = self.record
        return {**self.spec_state(), "rootfs": r.get("rootfs", ""), "created": r.get("created") or "",
                "owner": r.get("owner", "")}

    def spec_state(self, status: str | None = None) -> StateDocument:
        """The spec's state (what hooks and a seccomp listener read): the container's own, or
        with ``status`` forced (poststop's "stopped"); a live status always comes with the
        init's pid, never with 0."""
        live = self.status()
        r = self.record
        if not self.has("ociVersion", "bundle"):
            raise self.corrupt()
        return state_document(self.id, status or live, self.pid if live not in ("stopped", "creating") else 0,
                              r["bundle"], r.get("annotations") or {}, r["ociVersion"])

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

    def hook_state(self, status: str | None = None) -> bytes:
        """spec_state as a hook reads it on its stdin."""
        from ociish import jsonio

        return jsonio.dumps(self.spec_state(status))


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


def live_container(store: StateStore, container_id: str, action: str, allowed: tuple[str, ...] = LIVE,
                   wanted: str = "running") -> tuple[Container, Any]:
    """The container and its CgroupManager, if its status is one of `allowed`.

    Otherwise WrongState, worded like runc's "container not running":
    ``cannot pause container 'x': it is stopped, not running``.
    """
    container = Container.load(store, container_id)
    status = container.status()
    if status not in allowed:
        raise WrongState(f"cannot {action} container {container_id!r}: it is {status}, not {wanted}")
    return container, cgroup_of(container, action)


def cgroup_of(container: Container, action: str) -> Any:
    """The container's CgroupManager; a rootless container on cgroup v1 has none."""
    cgroup = container.cgroup()
    if cgroup is None:
        raise OciishError(f"cannot {action} container {container.id!r}: it has no cgroup of its own "
                          "(a rootless container on cgroup v1 stays in its creator's)")
    return cgroup
