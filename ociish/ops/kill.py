"""`kill`: a signal to the container's init, or with --all to every process in its cgroup."""

from __future__ import annotations

from ociish.errors import WrongState
from ociish.linux.cpython import signal
from ociish.ops.container import LIVE, Container
from ociish.state.store import StateStore


def kill(store: StateStore, container_id: str, signum: int, all_processes: bool = False) -> None:
    """Signal a live container's init (or all its processes); kill takes no lock."""
    container = Container.load(store, container_id)
    status = container.status()
    if status not in LIVE:
        if all_processes and status == "stopped":
            return  # runc: `kill --all` of a stopped container is not an error
        raise WrongState(container.not_running(status))
    # the cgroup manager only where it is needed: a plain kill signals the init's pidfd
    cgroup = container.cgroup() if all_processes or (signum == signal.SIGKILL and status == "paused") else None
    if all_processes and cgroup is not None:
        cgroup.kill_all(signum)
    else:
        container.signal_init(signum)
        if cgroup is not None:
            cgroup.thaw()  # paused and SIGKILLed: a frozen process cannot die (v1)
