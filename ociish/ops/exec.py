"""`exec`: start another process in a running container.

It goes through the same sealed bootstrap as `create` (so no container process can
reach the host interpreter), which joins every namespace of the container through its
init's /proc/PID/ns files and the container's cgroup, then applies the process's own
settings.  Detached, `exec` returns once the execve has happened (the pid file written);
in the foreground it stays the process's parent (a subreaper), forwards signals, relays
a terminal, and exits with the process's status.
"""

from __future__ import annotations

import os

from ociish import hostfile, log
from ociish.errors import ConfigError, OciishError, WrongState
from ociish.ops.container import Container
from ociish.cpulist import parse_cpu_list
from ociish.process import plan as planner
from ociish.process.channel import ChannelClosed
from ociish.process.parent import Conversation, InitProcess, spawn
from ociish.state.store import StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociish.process.plantypes import IdMap, Rlimit


def process_from_args(config: dict[str, Any], args: list[str], *, cwd: str | None, env: list[str], user: str | None,
                      additional_gids: list[int], caps: list[str], no_new_privs: bool, tty: bool,
                      apparmor: str | None, process_label: str | None) -> dict[str, Any]:
    """runc's `exec ID CMD...` form: the container's own process, with these overrides.

    --cap adds to the bounding, effective and permitted sets only, never to the
    inheritable or ambient ones (CVE-2022-29162)."""
    import copy

    proc = copy.deepcopy(config.get("process") or {})
    proc.pop("consoleSize", None)
    proc["args"] = args
    proc["terminal"] = tty
    if cwd:
        proc["cwd"] = cwd
    proc["env"] = list(proc.get("env") or []) + env
    if user:
        uid, _, gid = user.partition(":")
        try:
            proc["user"] = {**(proc.get("user") or {}), "uid": int(uid), **({"gid": int(gid)} if gid else {})}
        except ValueError:
            raise OciishError(f"exec: --user {user!r}: expected UID[:GID] as numbers") from None
    if additional_gids:
        proc.setdefault("user", {})["additionalGids"] = additional_gids
    if caps:
        sets = proc.setdefault("capabilities", {})
        for name in ("bounding", "effective", "permitted"):
            sets[name] = list(dict.fromkeys([*(sets.get(name) or []), *caps]))
    if no_new_privs:
        proc["noNewPrivileges"] = True
    if apparmor:
        proc["apparmorProfile"] = apparmor
    if process_label:
        proc["selinuxLabel"] = process_label
    return proc


def load_process_file(path: str) -> dict[str, Any]:
    """A `--process` JSON file (what podman and containerd write), validated."""
    from ociish import jsonio
    from ociish.spec.validate import schema_errors

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise OciishError(f"exec: --process {path}: {e.strerror}") from None
    try:
        proc = jsonio.loads(raw)
    except ValueError as e:
        raise ConfigError(f"process.json: not valid JSON: {e}") from None
    problems = schema_errors(proc, "process", label="process.json")
    if problems:
        raise ConfigError("\n".join(problems))
    return proc


class _Exec:
    """Stage 0 of one exec: answers the bootstrap's requests (a StageZero)."""

    def __init__(self, container: Container, config: dict[str, Any], rlimits: list[Rlimit]) -> None:
        self.container = container
        self.config = config
        self.rlimits = rlimits

    def write_usermap(self, bootstrap_pid: int) -> None:
        raise OciishError("exec: unexpected user namespace request")

    def on_pid(self, init: InitProcess) -> None:
        pass

    def at_hooks_point(self, init: InitProcess) -> None:
        raise OciishError("exec: unexpected hooks request")

    def bind_sources(self) -> list[tuple[str, str, IdMap | None]]:
        raise OciishError("exec: unexpected mount sources request")

    def warn(self, message: str) -> None:
        log.warning(message)

    def on_created(self, init: InitProcess) -> None:
        pass

    def pass_seccomp_listener(self, init: InitProcess, listener_fd: int) -> None:
        from ociish.ops.create import send_seccomp_listener

        send_seccomp_listener(self.config, self.container.spec_state(), init.pid, listener_fd)


def exec_process(store: StateStore, container_id: str, proc: dict[str, Any], *, detach: bool,
                 pid_file: str | None = None, console_socket: str | None = None, preserve_fds: int = 0,
                 ignore_paused: bool = False, cgroups: list[str] | None = None) -> int:
    """Start ``proc`` in the container (in the sub-cgroups ``cgroups`` names, runc's
    ``--cgroup`` options); its exit status (0 when detached)."""
    from ociish.ops.create import _sweep_inherited_fds

    _sweep_inherited_fds(preserve_fds)
    if pid_file:
        hostfile.refuse_symlink(pid_file, "--pid-file")  # before the process starts; written once it runs
    container = Container.load(store, container_id)
    status = container.status()
    if status == "paused" and not ignore_paused:
        raise WrongState(f"cannot exec in container {container_id!r}: it is paused (resume it, or --ignore-paused)")
    if status not in ("created", "running", "paused"):
        raise WrongState(f"cannot exec in container {container_id!r}: it is {status}")
    config = store.load_config(container_id)
    sub_cgroups = _sub_cgroups(container, cgroups) if cgroups else None
    relay = bool(proc.get("terminal")) and not detach and console_socket is None
    if proc.get("terminal") and detach and console_socket is None:
        raise OciishError("exec: a detached terminal process needs --console-socket")
    if relay:
        from ociish import ptyproxy

        ptyproxy.require_terminal("exec: the process has a terminal (--tty, or process.terminal)",
                                  "use --detach with --console-socket, or no --tty")
        with ptyproxy.console_socket() as (path, server):
            pid = _start(container, config, proc, path, preserve_fds, pid_file, sub_cgroups)
            master = ptyproxy.receive_master(server)
        try:
            return _wait(pid, relay_from=master)
        finally:
            os.close(master)
    pid = _start(container, config, proc, console_socket, preserve_fds, pid_file, sub_cgroups)
    return 0 if detach else _wait(pid, relay_from=-1)


def _sub_cgroups(container: Container, options: list[str]) -> dict[str, str]:
    """Checked before anything starts: the sub-cgroups must exist inside the container's."""
    from ociish.cgroups import subcgroup

    request = subcgroup.parse(options)
    cgroup = container.cgroup()
    if cgroup is None:
        raise OciishError(f"exec: --cgroup: container {container.id!r} has no cgroup of its own "
                          "(a rootless container on cgroup v1)")
    return subcgroup.targets(request, cgroup.mode, cgroup.dirs)


def _start(container: Container, config: dict[str, Any], proc: dict[str, Any], console_socket: str | None,
           preserve_fds: int, pid_file: str | None, sub_cgroups: dict[str, str] | None) -> int:
    from ociish.ops.create import _above, _connect, write_pid_file

    floor = 3 + preserve_fds
    fds: dict[str, int] = {}
    if console_socket:
        fds["console"] = _above(_connect(console_socket, "--console-socket"), floor)
    try:
        plan = planner.build_exec_plan(config, proc, container_id=container.id, init_pid=container.pid,
                                       options={"console": console_socket is not None, "preserve_fds": preserve_fds,
                                                "fds": fds})
        for warning in plan["warnings"]:
            log.warning(warning)
        cgroup = container.cgroup()
        initial = parse_cpu_list((proc.get("execCPUAffinity") or {}).get("initial") or "",
                                         "process.execCPUAffinity.initial")

        def enter_cgroup(pid: int) -> None:
            if initial:
                os.sched_setaffinity(0, initial)  # before the move, as execCPUAffinity.initial asks
            if cgroup is not None:
                cgroup.join(pid, sub_cgroups)
            if container.record.get("intel_rdt"):  # the container's resctrl groups, as runc's exec
                from ociish.resctrl import IntelRdt

                IntelRdt.from_record(container.record["intel_rdt"]).join(pid)

        chan, child = spawn(plan, inherit_fds=[*fds.values(), *range(3, floor)], cgroup_join=enter_cgroup)
    finally:
        for fd in fds.values():
            os.close(fd)
    try:
        Conversation(chan, child, _Exec(container, config, planner.rlimits(proc))).run()
        _wait_for_execve(chan)
        if pid_file:
            write_pid_file(pid_file, child.pid)  # a process nobody can find is not left running
    except BaseException:
        child.kill()
        raise
    finally:
        chan.close()
    child.close()
    return child.pid


def _wait_for_execve(chan: Any) -> None:
    """The channel closes when the execve succeeds (close-on-exec); an error arrives instead."""
    try:
        message = chan.recv()
    except (ChannelClosed, ConnectionResetError):
        return
    if message[0] == "error":
        raise OciishError(message[1])


def _wait(pid: int, relay_from: int) -> int:
    """Foreground: forward signals, relay the terminal, exit with the process's status."""
    from ociish.ops.run import SignalsForwarded, relay_and_wait

    with SignalsForwarded(pid) as forwarding:
        return relay_and_wait(pid, relay_from, forwarding)
