"""`start`: release a created container's init, and wait until its process runs.

The init blocks opening exec.fifo for writing; opening it for reading releases it.  It
keeps its end open with close-on-exec, so EOF means the execve happened, and anything
written after its byte is the reason it did not (design.md "Processes").
"""

from __future__ import annotations

import os
import select

from ociish.errors import OciishError, WrongState
from ociish.ops.container import Container, open_pidfd
from ociish.ops.delete import destroy
from ociish.state.store import FIFO_NAME, StateStore


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
                from ociish.hooks import run_hooks

                # the state as each hook runs: "running", or "stopped" with pid 0 once the
                # process has exited (which it may do before, or while, the hooks run)
                run_hooks("poststart", poststart, container.hook_state)
        except OciishError:
            # runtime.md lifecycle: a start that fails stops and destroys the container
            # (steps 12 and 13: undo create, run poststop)
            destroy(container, container.status())
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


