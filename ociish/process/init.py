"""Stage 1 (bootstrap) and stage 2 (container init), run by a sealed copy of the interpreter.

`create` starts ``python -I -S -c "...; bootstrap()" SYNC_FD PLAN_FD`` from a sealed
memfd copy of its interpreter, so no container process can ever reach the host's
interpreter binary through /proc/<pid>/exe (CVE-2019-5736 class).

Stage 1 joins or creates the namespaces (the user namespace first, mapped by `create`),
then forks: the child (stage 2) is PID 1 of a new pid namespace.  Stage 2 builds the
rootfs, reports "created", waits on exec.fifo for `start`, and execs process.args.

Everything this module needs is imported before pivot_root; afterwards imports are
switched off (sys.path emptied, an audit hook refuses them), because a lazy import after
the pivot would run code from the container image with the init's privileges.  What
only some containers use (the console, hooks and the JSON they get) is imported, right
after the plan is read, only for those: every create pays this interpreter's start-up.
"""

from __future__ import annotations

import errno
import marshal
import os
import sys

from ociish import safepath
from ociish.errors import OciishError
from ociish.linux import libc as L
from ociish.linux import syscalls as S
from ociish.linux.cpython import signal
from ociish.process import credentials
from ociish.process.channel import Channel, ChannelClosed
from ociish.rootfs import setup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, NoReturn

    from ociish.process.plantypes import BasePlan, ExecPlan, InitPlan, Plan, SeccompProgram


class Run:
    """The init's own state, beside the plan it only reads: the step it is at (named when
    it fails and, with --debug, reported to stage 0 for the --log file as it begins) and
    what it learns while setting up."""

    __slots__ = ("stage", "chan", "step", "host_pid", "procfs", "env", "executable", "seccomp_loaded")

    def __init__(self, stage: str, chan: Channel | None, plan: BasePlan) -> None:
        self.stage = stage
        self.chan = chan if plan["debug"] else None  # None: steps are only remembered
        self.step = "start"
        self.host_pid = 0
        self.procfs = -1
        self.env = list(plan["process"]["env"])
        self.executable = ""
        self.seccomp_loaded = False

    def enter(self, step: str) -> None:
        self.step = step
        if self.chan is not None:
            self.chan.send("step", self.stage, step)

    def quiet(self) -> None:
        """The channel is closing: from here on steps are only remembered."""
        self.chan = None

# imported by _import_what_the_plan_needs, for the containers that use them
console: ModuleType = None  # type: ignore[assignment]
hooks: ModuleType = None  # type: ignore[assignment]
json: ModuleType = None  # type: ignore[assignment]


def bootstrap() -> NoReturn:
    """Stage 1 entry point."""
    chan = Channel(int(sys.argv[1]))
    run = None
    try:
        with os.fdopen(int(sys.argv[2]), "rb") as f:
            plan: Plan = marshal.load(f)
        run = Run("bootstrap", chan, plan)
        _import_what_the_plan_needs(plan)
        chan.expect("joined")  # in the container's cgroups: from here on everything counts
        _bootstrap(plan, chan, run)
    except BaseException as e:  # noqa: BLE001 - every failure must reach `create` as a message
        _report(chan, e, run.step if run else "start")
        os._exit(1)
    os._exit(0)


def _import_what_the_plan_needs(plan: Plan) -> None:
    global console, hooks, json
    if plan["process"]["terminal"]:
        from ociish import console
    if plan["mode"] == "exec":
        return
    if any(plan["hooks"].values()):
        import json

        from ociish import hooks
    if plan["mount_sources"]:
        from ociish.linux.cpython import socket  # noqa: F401 - for Channel.recv_fds, before any namespace change
        import struct  # noqa: F401


def _bootstrap(plan: Plan, chan: Channel, run: Run) -> None:
    L.set_process_name("ociish-init")
    L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != plan["parent_pid"]:
        raise ChannelClosed()  # create died before we could ask to die with it
    if plan["oom_score_adj"] is not None:
        run.enter("process.oomScoreAdj")
        with open("/proc/self/oom_score_adj", "w") as f:  # must precede non-dumpable
            f.write(str(plan["oom_score_adj"]))
    L.prctl(L.PR_SET_DUMPABLE, 0)
    _join_namespaces(plan, run)
    if plan["new_userns"]:
        run.enter("linux.namespaces (user)")
        L.unshare(L.CLONE_NEWUSER)
        # an unprivileged create can only write our maps while we are dumpable (the
        # /proc/PID files of a non-dumpable process belong to root); briefly, as runc does
        L.prctl(L.PR_SET_DUMPABLE, 1)
        chan.send("usermap")
        chan.expect("ok")
        L.prctl(L.PR_SET_DUMPABLE, 0)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    if plan["unshare_flags"]:
        run.enter("linux.namespaces")
        L.unshare(plan["unshare_flags"])
    if plan["time_offsets"]:
        run.enter("linux.timeOffsets")
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(plan["time_offsets"])
    run.enter("fork init")
    # the child shares our channel: it may only speak once "pid" is on it, or its first
    # request could reach create before create knows who is asking
    gate_r, gate_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(gate_w)
        os.read(gate_r, 1)
        os.close(gate_r)
        if plan["mode"] == "exec":
            _exec_child(plan, chan)
        _init(plan, chan)
    os.close(gate_r)
    chan.send("pid", pid)
    os.write(gate_w, b"1")
    os.close(gate_w)


def _join_namespaces(plan: BasePlan, run: Run) -> None:
    """setns into configured paths: others, then the user namespace, then what needed it.

    Every file is opened first: once the mount namespace is joined, /proc/PID paths
    would resolve in the container's /proc."""
    opened = []
    try:
        for kind, path, flag in plan["ns_paths"]:
            run.step = f"linux.namespaces ({kind} {path})"
            opened.append((kind, path, flag, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
        deferred = []
        for kind, path, flag, fd in opened:
            if kind != "user":
                run.enter(f"linux.namespaces ({kind} {path})")
                try:
                    L.setns(fd, flag)
                except PermissionError:
                    deferred.append((kind, path, flag, fd))
        for kind, path, flag, fd in opened:
            if kind == "user":
                run.enter(f"linux.namespaces (user {path})")
                L.setns(fd, flag)
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
        for kind, path, flag, fd in deferred:
            run.enter(f"linux.namespaces ({kind} {path})")
            L.setns(fd, flag)
    finally:
        for *_, fd in opened:
            os.close(fd)


def _init(plan: InitPlan, chan: Channel) -> NoReturn:
    """Stage 2: the container's init process."""
    run = Run("init", chan, plan)
    try:
        _setup(plan, chan, run)
    except BaseException as e:  # noqa: BLE001
        _report(chan, e, run.step)
        os._exit(1)
    _wait_and_exec(plan, run)


def _setup(plan: InitPlan, chan: Channel, run: Run) -> None:
    _build_container(plan, chan, run)
    _prepare_process(plan, chan, run)
    run.enter("created")
    run.quiet()
    chan.send("created")
    try:
        chan.expect("ok")
    finally:
        chan.close()


def _build_container(plan: InitPlan, chan: Channel, run: Run) -> None:
    """Everything config.json says about the container: namespaces' contents, the rootfs."""
    fds = plan["fds"]
    os.setsid()
    if plan["new_keyring"]:
        run.enter("session keyring")
        try:
            L.join_session_keyring(f"_ses.{plan['id']}")
        except OSError as e:
            if e.errno != errno.ENOSYS:
                raise
    if plan["loopback_up"]:
        run.enter("linux.namespaces (network): bringing up lo")
        L.interface_up("lo")
    proc = plan["process"]
    procfs = run.procfs = L.private_procfs()  # of the new pid namespace: used for sysctl and the fifo reopen
    # hooks get the pid "as seen by the host" (runtime.md State): until pivot_root, /proc
    # is still the host's procfs, where "self" names us by our host pid
    run.host_pid = int(os.readlink("/proc/self"))
    run.enter("root.path")
    if plan["mount_ns"]:
        root_fd = setup.prepare_root(plan["rootfs"])
        if plan["mount_sources"]:
            run.enter("mounts (bind sources)")
        sources = _mount_sources_from_host(plan, chan) if plan["mount_sources"] else {}
        for index, m in enumerate(plan["mounts"]):
            run.enter(f"mounts[{index}] ({m['destination']})")
            setup.do_mount(root_fd, m, f"mounts[{index}]", sources.pop(index, -1))
            if m["destination"] == "/":  # e.g. an overlay over the rootfs: work on top of it
                os.close(root_fd)
                root_fd = os.open(plan["rootfs"], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        run.enter("linux.devices")
        setup.create_devices(root_fd, plan["devices"], plan["bind_devices"])
        setup.create_dev_symlinks(root_fd, plan["dev_symlinks"])
        run.enter("process.cwd")
        os.close(safepath.mkdir_all(root_fd, proc["cwd"]))  # created if missing, as runc does
        peer = -1
        if proc["terminal"]:
            run.enter("process.terminal")
            master, peer = console.open_pty(root_fd, proc["console_size"])
            console.send_master(fds["console"], master)
            os.close(master)
            console.mount_console(root_fd, peer)
        if plan["sysctl"]:
            run.enter("linux.sysctl")
            setup.write_sysctls(procfs, plan["sysctl"])
        if plan["readonly_paths"]:
            run.enter("linux.readonlyPaths")
            setup.readonly_paths(root_fd, plan["readonly_paths"])
        if plan["masked_paths"]:
            run.enter("linux.maskedPaths")
            setup.mask_paths(root_fd, plan["masked_paths"])
        _hooks_point(plan, chan, run)
        if plan["dev_readonly"]:
            run.enter("mounts (/dev read-only)")
            setup.remount_readonly(root_fd, "/dev")
        run.enter("pivot_root")
        if plan["no_pivot"]:
            setup.move_root(plan["rootfs"], procfs)
        else:
            setup.pivot(root_fd)
        os.close(root_fd)
        if plan["rootfs_propagation"]:
            L.mount(None, "/", None, plan["rootfs_propagation"])
        if plan["readonly"]:
            run.enter("root.readonly")
            setup.remount_root_readonly()
    else:
        peer = -1
        _hooks_point(plan, chan, run)
        os.chroot(plan["rootfs"])
        os.chdir("/")
    _lock_imports()
    if peer >= 0:
        console.make_controlling(peer)
    if plan["hostname"] is not None:
        run.enter("hostname")
        L.sethostname(plan["hostname"])
    if plan["domainname"] is not None:
        run.enter("domainname")
        L.setdomainname(plan["domainname"])
    if plan["personality"] is not None:
        run.enter("linux.personality")
        L.personality(plan["personality"])


def _hooks_point(plan: InitPlan, chan: Channel, run: Run) -> None:
    """Stage 0 applies the cgroup limits and runs its hooks; then createContainer's."""
    run.enter("hooks")
    chan.send("hooks")
    chan.expect("ok")
    _run_hooks(plan, run, "createContainer", "creating")


def _mount_sources_from_host(plan: InitPlan, chan: Channel) -> dict[int, int]:
    """mounts index → fd of its source, opened by create as the host's root
    (parent.send_bind_sources): an O_PATH fd of a bind source we may not be able to
    reach in a user namespace, or the detached tree of an idmapped mount."""
    indices = plan["mount_sources"]
    chan.send("mountsources")
    fds: list[int] = []
    while len(fds) < len(indices):
        message, received = chan.recv_fds()
        fds += received
        if message[0] != "mountsources":
            for fd in fds:
                os.close(fd)
            raise OciishError(message[1]) if message[0] == "error" else ChannelClosed()
    return dict(zip(indices, fds))


def _prepare_process(plan: BasePlan, chan: Channel, run: Run) -> None:
    """Everything `process` says, up to (not including) the execve; shared by the init and
    by processes started with `exec`."""
    proc = plan["process"]
    if plan["scheduler"] is not None:
        run.enter("process.scheduler")
        L.sched_setattr(*plan["scheduler"])
    if plan["memory_policy"] is not None:
        run.enter("linux.memoryPolicy")
        L.set_mempolicy(*plan["memory_policy"])
    if plan["io_priority"] is not None:
        run.enter("process.ioPriority")
        L.ioprio_set(*plan["io_priority"])
    if proc["no_new_privileges"]:
        S.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
    run.enter("process.rlimits")
    chan.send("ready")
    chan.expect("ok")
    run.enter("process.user")
    if not _env_dict(run.env).get("HOME"):  # unset or empty, as runc
        run.env.append("HOME=" + credentials.home_directory(proc["uid"]))
    if proc["uid"] != 0:
        credentials.chown_stdio(proc["uid"])
    # The runtime's own steps (ids, cwd check, args[0] lookup under the final capability
    # sets, plus CAP_SYS_ADMIN where the filter needs it) come before any filter, which
    # cannot break them then; without no_new_privs the filter needs CAP_SYS_ADMIN, kept for
    # the load and dropped right after it.
    credentials.switch_user(proc, plan["setgroups_allowed"])
    seccomp = plan["seccomp"]
    filter_needs_privilege = bool(seccomp) and not proc["no_new_privileges"]
    run.enter("process.capabilities")
    final_sets, until_filter = credentials.capability_sets(proc, keep_sys_admin=filter_needs_privilege)
    S.capset(*until_filter)
    if proc["umask"] is not None:
        os.umask(proc["umask"])
    run.enter("process.args")
    run.executable = credentials.find_executable(proc["args"][0], run.env)
    if seccomp and filter_needs_privilege:
        _load_seccomp(seccomp, chan, run)
        run.enter("process.capabilities")
        S.capset(*final_sets)
    for warning in credentials.raise_ambient(proc):
        chan.send("warn", warning)
    if seccomp and proc["no_new_privileges"] and seccomp["listener"]:
        _load_seccomp(seccomp, chan, run)  # stage 0 must still be there to pass the listener on


def _load_seccomp(seccomp: SeccompProgram, chan: Channel | None, run: Run) -> None:
    """Install the filter stage 0 compiled.  A notify listener fd is fetched by stage 0
    itself (pidfd_getfd), so the profile need not allow anything but read and write."""
    run.enter("linux.seccomp")
    listener = S.seccomp_load(seccomp["bpf"], seccomp["flags"])
    run.seccomp_loaded = True
    if seccomp["listener"] and chan is not None:
        run.enter("linux.seccomp.listenerPath")
        chan.send("seccomp", listener)
        chan.expect("ok")
        os.close(listener)


def _run_hooks(plan: InitPlan, run: Run, kind: str, status: str) -> None:
    if plan["hooks"].get(kind):
        run.enter(f"hooks.{kind}")
        state = dict(plan["state"], status=status, pid=run.host_pid)
        hooks.run_hooks(kind, plan["hooks"][kind], json.dumps(state).encode(), plan["bundle"] if status == "creating" else "/",
                        plan["hook_env"])


def _wait_and_exec(plan: InitPlan, run: Run) -> NoReturn:
    """Block until `start` reads exec.fifo, then become process.args.

    The fifo stays open (close-on-exec) until the execve: `start` reads until EOF, so it
    returns once the process really runs, and reads the reason here if it never does
    (a failing startContainer hook, an execve error).
    """
    proc = plan["process"]
    fifo = -1
    try:
        _exit_on_termination_signals()
        fifo = os.open(f"self/fd/{plan['fds']['fifo']}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=run.procfs)
        os.write(fifo, b"0")
        os.close(plan["fds"]["fifo"])
        if plan["lsm_exec"]:
            _write_exec_label(run.procfs, *plan["lsm_exec"])
        os.close(run.procfs)
        if plan["hooks"].get("startContainer"):
            _load_late_seccomp(plan, run)  # the hooks are the image's code: under the filter, as runc runs them
        _run_hooks(plan, run, "startContainer", "created")
        _execve(plan, run)
    except BaseException as e:  # noqa: BLE001 - tell `start` (or the container's stderr) why
        message = str(e) if isinstance(e, OciishError) else f"exec {proc['args'][0]}: {_describe(e)}"
        try:
            os.write(fifo if fifo >= 0 else 2, message.encode())
        except OSError:
            pass
    os._exit(127)


def _execve(plan: BasePlan, run: Run) -> NoReturn:
    """Become process.args: default signal handling, only stdio and the preserved fds
    left open, the late seccomp filter, then execve."""
    proc = plan["process"]
    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    L.close_range_cloexec(3 + plan["preserve_fds"])
    env = _env_dict(run.env)
    _load_late_seccomp(plan, run)  # the last step: only execve (and startContainer hooks) run under the filter
    os.execve(run.executable, proc["args"], env)


def _load_late_seccomp(plan: BasePlan, run: Run) -> None:
    """With no_new_privs (and no listener to pass on) the filter comes as late as it can, once."""
    seccomp = plan["seccomp"]
    if seccomp and plan["process"]["no_new_privileges"] and not seccomp["listener"] and not run.seccomp_loaded:
        _load_seccomp(seccomp, None, run)


def _exec_child(plan: ExecPlan, chan: Channel) -> NoReturn:
    """A process started by `exec`: already in every namespace of the container (stage 1
    joined them), it sets up its terminal and credentials and execs.  `exec` learns that
    the execve happened when the channel closes (close-on-exec), or gets the error."""
    run = Run("exec", chan, plan)
    try:
        proc = plan["process"]
        peer = -1
        os.setsid()  # a session (and process group) of its own, with or without a terminal, as the init's
        if proc["terminal"]:
            run.enter("process.terminal")
            root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                master, peer = console.open_pty(root, proc["console_size"])
            finally:
                os.close(root)
            console.send_master(plan["fds"]["console"], master)
            os.close(master)
        _lock_imports()
        if peer >= 0:
            console.make_controlling(peer)
        _prepare_process(plan, chan, run)
        if plan["lsm_exec"]:
            procfs = L.private_procfs()
            try:
                _write_exec_label(procfs, *plan["lsm_exec"])
            finally:
                os.close(procfs)
        if plan["cpu_affinity"]:
            os.sched_setaffinity(0, plan["cpu_affinity"])
        run.enter("created")
        run.quiet()
        chan.send("created")
        chan.expect("ok")
        _execve(plan, run)
    except BaseException as e:  # noqa: BLE001
        _report(chan, e, run.step)
    os._exit(127)


def _write_exec_label(procfs: int, attr: str, value: str) -> None:
    """Label the next execve (AppArmor profile or SELinux context) through the private
    procfs, checked to really be procfs (CVE-2019-16884 class)."""
    fd = L.openat2(procfs, f"thread-self/attr/{attr}", os.O_WRONLY,
                   L.RESOLVE_BENEATH | L.RESOLVE_NO_XDEV)
    try:
        if L.fstatfs_type(fd) != L.PROC_SUPER_MAGIC:
            raise OSError(errno.EXDEV, "not a procfs file", attr)
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _exit_on_termination_signals() -> None:
    """While waiting for `start`, the init is PID 1: without handlers it would ignore
    `kill ID TERM`.  Exit the way the default action would."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
                signal.SIGALRM):
        signal.signal(sig, lambda signum, _frame: os._exit(128 + signum))


def _env_dict(env: list[str]) -> dict[str, str]:
    return {name: value for name, _, value in (item.partition("=") for item in env)}


def _lock_imports() -> None:
    """After pivot_root the module search path would be the container's: forbid imports."""
    sys.path[:] = []
    sys.path_hooks[:] = []
    sys.path_importer_cache.clear()
    sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__name__", "") in ("BuiltinImporter", "FrozenImporter")]

    def refuse(event: str, _args: tuple[Any, ...]) -> None:
        if event == "import":
            raise RuntimeError("import after pivot_root")

    sys.addaudithook(refuse)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError):
        where = f" ({e.filename})" if e.filename else ""
        return f"{e.strerror or e}{where}"
    if isinstance(e, ChannelClosed):
        return "create exited"
    return str(e) or type(e).__name__


def _report(chan: Channel, e: BaseException, step: str) -> None:
    """Send the failure to `create` as one line naming the step and the config field."""
    if isinstance(e, OciishError):
        message = str(e)
    elif isinstance(e, ChannelClosed):
        return
    elif isinstance(e, OSError):
        message = f"{step}: {_describe(e)}"
    else:
        message = f"{step}: internal error: {type(e).__name__}: {_describe(e)}"
    try:
        chan.send("error", message, getattr(e, "errno", None) or 0)
    except OSError:
        pass
