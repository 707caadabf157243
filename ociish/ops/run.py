"""`run`: create + start, then (unless --detach) wait for the process and delete it.

In the foreground ociish stays the container init's parent (a child subreaper since
create), forwards the signals it receives to it, and exits with its status: the exit
code, or 128+N when signal N killed it, as runc does.  A terminal container needs a
terminal to relay: without one, run refuses it before creating anything.
"""

from __future__ import annotations

import os

from ociish.errors import OciishError
from ociish.linux.cpython import signal
from ociish.ops.container import Container
from ociish.ops.create import create
from ociish.ops.delete import delete
from ociish.ops.start import start
from ociish.state.store import StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# signal.Signals' members, from the names signal.py makes them of
_NAMED = sorted({getattr(signal, name) for name in dir(signal)
                 if name.isupper() and name.startswith("SIG") and not name.startswith("SIG_")})
FORWARDED = tuple(s for s in _NAMED if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD,
                                                 signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU))
# those whose default action ends the process (the rest default to being ignored, or to continuing)
ENDING = frozenset(FORWARDED) - {signal.SIGCONT, signal.SIGURG, signal.SIGWINCH}


def run(store: StateStore, container_id: str, bundle: str, *, detach: bool, keep: bool, **create_options: Any) -> int:
    if create_options.get("console_socket") and not detach:
        raise OciishError("run: --console-socket needs --detach")
    if not detach and wants_terminal(bundle):
        from ociish import ptyproxy

        ptyproxy.require_terminal("config.json: process.terminal is true",
                                  "use --detach with --console-socket, or set process.terminal to false")

        with ptyproxy.console_socket() as (path, server):
            pid = create(store, container_id, bundle, **dict(create_options, console_socket=path))
            master = ptyproxy.receive_master(server)
        try:
            return _start_and_wait(store, container_id, pid, detach=False, keep=keep, relay_from=master)
        finally:
            os.close(master)
    pid = create(store, container_id, bundle, **create_options)
    return _start_and_wait(store, container_id, pid, detach=detach, keep=keep, relay_from=-1)


def wants_terminal(bundle: str) -> bool:
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
        with SignalsForwarded(pid, forward=not detach) as forwarding:
            start(store, container_id)
            if detach:
                return 0
            return relay_and_wait(pid, relay_from, forwarding)
    except BaseException:
        if not detach or not _running(store, container_id):
            delete(store, container_id, force=True)
        raise
    finally:
        if not detach and not keep:
            delete(store, container_id, force=True)


class SignalsForwarded:
    """While the block runs, the signals a foreground `run` or `exec` receives go on to
    ``pid`` (through a pidfd, so a recycled pid is never signalled).

    The kernel drops a signal sent to the init of a pid namespace that neither catches
    nor ignores it, so a `sleep` or a shell script without a trap would outlive the
    SIGTERM or ^C meant to end it, and `run` with it.  For such a signal the default
    action is carried out instead (SIGKILL), and `run` exits 128+N as if N had killed
    the process: it gets what it would get outside a pid namespace of its own.
    """

    def __init__(self, pid: int, *, forward: bool = True) -> None:
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.ended_by = 0  # the signal whose default action was carried out
        self.previous = {sig: signal.signal(sig, self._forward) for sig in FORWARDED} if forward else {}

    def _forward(self, signum: int, _frame: Any) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, signum)
            if signum in ENDING and _dropped_by_init(self.pid, signum):
                self.ended_by = self.ended_by or signum
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except OSError:
            pass

    def exit_status(self, status: int) -> int:
        return 128 + self.ended_by if self.ended_by and status == 128 + signal.SIGKILL else status

    def __enter__(self) -> "SignalsForwarded":
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        os.close(self.pidfd)


def relay_and_wait(pid: int, relay_from: int, forwarding: SignalsForwarded) -> int:
    """Relay the console (if any) until the process ends; its exit status."""
    if relay_from >= 0:
        from ociish import ptyproxy

        ptyproxy.relay(relay_from)
    return forwarding.exit_status(_wait(pid))


def _dropped_by_init(pid: int, signum: int) -> bool:
    """Whether ``pid`` is the init of its pid namespace and has no handler for ``signum``
    and does not ignore it (the kernel then drops the signal: pid_namespaces(7))."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            fields = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
        if fields[b"NSpid"].split()[-1] != b"1":
            return False
        handled = int(fields[b"SigCgt"], 16) | int(fields[b"SigIgn"], 16)
    except (OSError, KeyError, ValueError, IndexError):
        return False
    return not handled & (1 << (signum - 1))


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
