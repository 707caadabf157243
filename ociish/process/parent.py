"""Stage 0: start the sealed bootstrap, answer its requests, and watch the init come up.

The conversation (see process/init.py for the other side)::

    parent  → joined         stage 1 is in the container's cgroups: it may begin
    stage 1 → usermap        parent writes uid_map/gid_map     → ok
    stage 1 → pid N          init's host pid; stage 1 exits; create records it and moves
                             linux.netDevices into the init's network namespace
    init    → hooks          mounts and /dev are done: parent applies the cgroup limits,
                             runs prestart and createRuntime hooks → ok
    init    → mountsources   (a user namespace's bind mounts) a child of the parent joins
                             the init's mount namespace and sends the bind sources,
                             opened as the host's root, with SCM_RIGHTS
                             → mountsources + fds (up to MAX_FDS a message), or error
    init    → ready          parent sets rlimits with prlimit   → ok
    init    → seccomp FD     parent takes the notify listener (pidfd_getfd) and hands
                             it to linux.seccomp.listenerPath  → ok
    init    → warn MSG       logged as a warning
    any     → step STAGE S   (--debug) stage 1 or the init begins step S: logged
    init    → created        parent persists "created"           → ok
    any     → error MSG      create fails with MSG and rolls back
    EOF before "created"     the init died: create fails and rolls back

The init's requests are refused before "pid": stage 1 holds the init on a pipe until
"pid" is on the channel, and create checks that order rather than trusting it.
"""

from __future__ import annotations

import marshal
import os
import resource
import select
import sys

from ociish import log
from ociish.errors import ConfigError, OciishError
from ociish.linux import libc as L
from ociish.linux import proc as P
from ociish.linux.cpython import signal
from ociish.process.channel import MAX_FDS, Channel, ChannelClosed
from ociish.process.exeseal import sealed_interpreter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Protocol

    from ociish.process.plantypes import IdMap, Plan, Rlimit

    class StageZero(Protocol):
        """What `create` does when the init asks (see the module docstring)."""

        rlimits: list[Rlimit]

        def write_usermap(self, bootstrap_pid: int) -> None: ...
        def on_pid(self, init: InitProcess) -> None: ...
        def at_hooks_point(self, init: InitProcess) -> None: ...
        def warn(self, message: str) -> None: ...
        def on_created(self, init: InitProcess) -> None: ...
        def pass_seccomp_listener(self, init: InitProcess, listener_fd: int) -> None: ...
        def bind_sources(self) -> list[tuple[str, str, IdMap | None]]: ...


# The cyclic GC stays off in the bootstrap: it lives until its execve, and collecting while
# its modules load is all the collector would do (~7% of its import work).
_BOOT = "import gc,sys;gc.disable();sys.path[:0]=[{path!r}];from ociish.process.init import bootstrap;bootstrap()"
KILL_WAIT = 10.0
_INIT_REQUESTS = frozenset({"hooks", "mountsources", "ready", "seccomp", "warn", "created"})


class InitProcess:
    """The container init as stage 0 sees it while `create` runs."""

    def __init__(self) -> None:
        self.pid = 0
        self.start_time: int | None = None
        self.pidfd = -1
        self.bootstrap_pid = 0

    def kill(self) -> None:
        """SIGKILL the bootstrap and the init (if they exist) and reap them."""
        if self.bootstrap_pid:
            _kill_and_reap(self.bootstrap_pid)
            self.bootstrap_pid = 0
        if self.pidfd >= 0:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass
            select.select([self.pidfd], [], [], KILL_WAIT)
            _reap(self.pid)
            os.close(self.pidfd)
            self.pidfd = -1

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # not our child (or already reaped): its real parent reaps it


def spawn(plan: Plan, *, inherit_fds: list[int], cgroup_join: Callable[[int], None]) -> tuple[Channel, InitProcess]:
    """Start stage 1 from the sealed interpreter with ``inherit_fds`` kept open for it.

    Stage 1 is moved into the container's cgroups while its interpreter starts: the
    first migration after a while waits for an RCU grace period (~12 ms here), which
    would otherwise come on top of that start.  Stage 1 does nothing for the container
    before "joined", so nothing it or its children do escapes the limits; only its own
    interpreter's memory is charged to the caller's cgroup, as `runc init`'s is.
    """
    chan, child_fd = Channel.pair()
    exe_fd = sealed_interpreter()
    plan_fd = _plan_memfd(plan)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # no -B: the CLI never imports the init's modules, so only this process can leave their
    # bytecode behind, and an editable install would otherwise compile them on every create
    argv = [sys.executable, "-I", "-S", "-c", _BOOT.format(path=package_root), str(child_fd), str(plan_fd)]
    L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)
    init = InitProcess()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            for fd in [child_fd, plan_fd, *inherit_fds]:
                os.set_inheritable(fd, True)
            os.execve(exe_fd, argv, {})
        except BaseException as e:  # noqa: BLE001
            try:
                os.write(child_fd, marshal.dumps(("error", f"cannot start the container init: {e}", 0)))
            finally:
                os._exit(127)
    init.bootstrap_pid = pid
    os.close(child_fd)
    os.close(plan_fd)
    os.close(exe_fd)
    try:
        cgroup_join(pid)
    except BaseException:
        init.kill()
        chan.close()
        raise
    try:
        chan.send("joined")
    except OSError:
        pass  # stage 1 is already gone: the conversation reads why
    return chan, init


def _plan_memfd(plan: Plan) -> int:
    fd = os.memfd_create("ociish-plan", os.MFD_CLOEXEC)
    os.write(fd, marshal.dumps(plan))  # type: ignore[arg-type]  # typeshed's marshal knows no TypedDict
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def send_bind_sources(chan: Channel, init: InitProcess, sources: list[tuple[str, str, IdMap | None]]) -> None:
    """Open each mount source (``(where, path, idmap)``) for the init and send it the fds.

    Inside a user namespace the init may not reach a source (a directory on the way only
    the host's root may search), so a child of ours, still the host's root, joins the
    init's mount namespace and opens them there (O_PATH), as runc does.  Opened in that
    namespace, the fds refer to its mounts: a bind from them keeps the flags the kernel
    locked when it copied the host's mounts, which a detached copy (open_tree) would not.
    An idmapped mount is that detached copy, with its mapping (rootfs/idmap.py): only the
    host's root may map it, with or without a user namespace.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        status = 1
        try:
            fds = []
            L.setns(init.pidfd, L.CLONE_NEWNS)
            for where, path, idmap in sources:
                try:
                    if idmap is None:
                        fds.append(os.open(path, os.O_PATH | os.O_CLOEXEC))
                    else:
                        from ociish.rootfs.idmap import idmapped_tree

                        fds.append(idmapped_tree(path, idmap, where))
                except OSError as e:
                    chan.send("error", f"config.json: {where}.source: {path!r}: {e.strerror}")
                    break
                except OciishError as e:
                    chan.send("error", e.message)
                    break
            else:
                for first in range(0, len(fds), MAX_FDS):
                    chan.send_fds(fds[first:first + MAX_FDS], "mountsources")
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OciishError("mounts: cannot open the bind mount sources in the container's mount namespace")


class Conversation:
    """Serves the init's requests with a StageZero until the init is created."""

    def __init__(self, chan: Channel, init: InitProcess, host: StageZero) -> None:
        self.chan = chan
        self.init = init
        self.host = host

    def run(self) -> None:
        """Serve messages until "created"; raise OciishError on any failure of the init."""
        while True:
            try:
                message = self.chan.recv()
            except (ChannelClosed, ConnectionResetError):
                raise OciishError(self._death_reason()) from None
            kind = message[0]
            if kind == "error":
                raise OciishError(message[1])
            if kind in _INIT_REQUESTS and not self.init.pid:
                # only the init sends these, and only after stage 1 reported its pid: a
                # container recorded without its pid could never be started or killed
                raise OciishError(f"container setup out of order: the init sent {kind!r} before its pid was known")
            if kind == "usermap":
                log.step("create", "linux.uidMappings, linux.gidMappings")
                self.host.write_usermap(self.init.bootstrap_pid)
                self.chan.send("ok")
            elif kind == "pid":
                self._got_pid(message[1])
            elif kind == "hooks":
                self.host.at_hooks_point(self.init)
                self.chan.send("ok")
            elif kind == "mountsources":
                send_bind_sources(self.chan, self.init, self.host.bind_sources())
            elif kind == "ready":
                self._set_rlimits()
                self.chan.send("ok")
            elif kind == "seccomp":
                fd = L.pidfd_getfd(self.init.pidfd, message[1])
                try:
                    self.host.pass_seccomp_listener(self.init, fd)
                finally:
                    os.close(fd)
                self.chan.send("ok")
            elif kind == "warn":
                self.host.warn(message[1])
            elif kind == "step":  # sent only with --debug
                log.step(message[1], message[2])
            elif kind == "created":
                self.host.on_created(self.init)
                self.chan.send("ok")
                return

    def _got_pid(self, pid: int) -> None:
        init = self.init
        init.pid = pid
        init.pidfd = os.pidfd_open(pid)
        init.start_time = P.start_time(pid)
        _, status = os.waitpid(init.bootstrap_pid, 0)
        init.bootstrap_pid = 0
        if os.waitstatus_to_exitcode(status) != 0:
            raise OciishError("container bootstrap failed")
        self.host.on_pid(init)

    def _set_rlimits(self) -> None:
        """From outside the container: the init may be in a user namespace (docs/design.md "Processes")."""
        for index, (number, soft, hard, kind) in enumerate(self.host.rlimits):
            log.step("create", f"process.rlimits[{index}] ({kind})")
            try:
                resource.prlimit(self.init.pid, number, (soft, hard))
            except (OSError, ValueError) as e:
                reason = e.strerror if isinstance(e, OSError) else str(e)
                current = resource.prlimit(self.init.pid, number)[1]
                hint = ""
                if isinstance(e, PermissionError) or (current != resource.RLIM_INFINITY and hard > current):
                    hint = f" (raising the hard limit above {current} needs CAP_SYS_RESOURCE)"
                raise ConfigError(f"config.json: process.rlimits[{index}]: cannot set {kind} to "
                                  f"soft={soft} hard={hard}: {reason}{hint}") from None

    def _death_reason(self) -> str:
        pid = self.init.bootstrap_pid or self.init.pid
        return f"container init (pid {pid}) exited during setup"
