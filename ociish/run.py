"""`run`: create + start, then (unless --detach) wait for the process and delete it.

In the foreground ociish stays the container init's parent (a child subreaper since
create), forwards the signals it receives to it, and exits with its status: the exit
code, or 128+N when signal N killed it, as runc does.
"""

from __future__ import annotations

import os
import signal

from ociish.container import Container, delete, start
from ociish.create import create
from ociish.errors import OciishError
from ociish.state.store import StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORWARDED = tuple(s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD,
                                                          signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU))


def run(store: StateStore, container_id: str, bundle: str, *, detach: bool, keep: bool, **create_options: Any) -> int:
    if create_options.get("console_socket") and not detach:
        raise OciishError("run: --console-socket needs --detach")
    if not detach and _wants_terminal(bundle):
        from ociish import ptyproxy

        with ptyproxy.console_socket() as (path, server):
            pid = create(store, container_id, bundle, **dict(create_options, console_socket=path))
            master = ptyproxy.receive_master(server)
        try:
            return _start_and_wait(store, container_id, pid, detach=False, keep=keep, relay_from=master)
        finally:
            os.close(master)
    pid = create(store, container_id, bundle, **create_options)
    return _start_and_wait(store, container_id, pid, detach=detach, keep=keep, relay_from=-1)


def _wants_terminal(bundle: str) -> bool:
    """process.terminal of the bundle (create validates the file; here only peek)."""
    from ociish import jsonio

    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            config = jsonio.loads(f.read())
        return bool(config["process"]["terminal"]) is True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _start_and_wait(store: StateStore, container_id: str, pid: int, *, detach: bool, keep: bool,
                    relay_from: int) -> int:
    try:
        with SignalsForwarded(pid, forward=not detach):
            start(store, container_id)
            if detach:
                return 0
            return relay_and_wait(pid, relay_from)
    except BaseException:
        if not detach or not _running(store, container_id):
            delete(store, container_id, force=True)
        raise
    finally:
        if not detach and not keep:
            delete(store, container_id, force=True)


class SignalsForwarded:
    """While the block runs, the signals a foreground `run` or `exec` receives go on to
    ``pid`` (through a pidfd, so a recycled pid is never signalled)."""

    def __init__(self, pid: int, *, forward: bool = True) -> None:
        self.pidfd = os.pidfd_open(pid)
        self.previous = {sig: signal.signal(sig, self._forward) for sig in FORWARDED} if forward else {}

    def _forward(self, signum: int, _frame: Any) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, signum)
        except OSError:
            pass

    def __enter__(self) -> None:
        pass

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        os.close(self.pidfd)


def relay_and_wait(pid: int, relay_from: int) -> int:
    """Relay the console (if any) until the process ends; its exit status."""
    if relay_from >= 0:
        from ociish import ptyproxy

        ptyproxy.relay(relay_from)
    return _wait(pid)


def _wait(pid: int) -> int:
    """The init is our child (subreaper): its status, 128+N for death by signal N."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 0
        if os.WIFEXITED(status):
            return os.WEXITSTATUS(status)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)


def _running(store: StateStore, container_id: str) -> bool:
    try:
        return Container.load(store, container_id).status() in ("created", "running", "paused")
    except OciishError:
        return False
