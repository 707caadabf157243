"""Fixtures for driving ociish through real clients: podman (+ conmon) and containerd (+ ctr).

Every test runs once with ociish and once with runc, the control: a scenario that fails
only for ociish is ociish's bug, one that fails for both is the harness's.  The clients get
private state (podman's storage, run and tmp dirs; containerd's root, state, socket and
runc root) under a directory of their own, and the image is the example busybox rootfs,
imported into podman and exported from it as an OCI archive for containerd.

The client configuration that docs/clients.md shows users (containers.conf's runtime
entry, containerd's config.toml runtime handler) is read from that file and used here,
so the documented snippets are the tested ones.

Clean-up is checked, not hoped for: after each test nothing of its containers may be left
in the runtime's state root or the cgroup tree, and after each module no mount or process
may remain under the client's directory.  Leftovers are removed and then reported as a
failure.  The clients live per module, not per session, so that they are gone before the
other test directories run (and before their own leak checks look).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
CGROUP_ROOT = Path("/sys/fs/cgroup")
CLIENT_TIMEOUT = 60.0  # seconds for any one client call; a hang fails the test instead of the run
DOCS = REPO / "docs" / "clients.md"
DOCUMENTED_OCIISH_PATH = "/usr/local/bin/ociish"  # the path the docs snippets use; replaced here
OCIISH = Path(sys.executable).with_name("ociish")
RUNC = shutil.which("runc", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")
IMAGE = "localhost/busybox:e2e"
T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives ociish through real podman/containerd (root, minutes)")


@dataclass(frozen=True)
class Runtime:
    """An OCI runtime binary and where it keeps state when a client passes no --root."""

    name: str
    path: str
    default_root: Path


def on_each_runtime(*ociish_marks: pytest.MarkDecorator) -> pytest.MarkDecorator:
    """Parametrize a test over ociish and runc; ``ociish_marks`` apply to the ociish case only."""
    return pytest.mark.parametrize("runtime", [pytest.param("ociish", marks=ociish_marks, id="ociish"),
                                               pytest.param("runc", id="runc")], indirect=True)


@pytest.fixture
def runtime(request: pytest.FixtureRequest) -> Runtime:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests run real containers and need root")
    if request.param == "ociish":
        if not OCIISH.exists():
            pytest.skip(f"ociish is not installed next to {sys.executable}")
        return Runtime("ociish", str(OCIISH), Path("/run/ociish"))
    if RUNC is None:
        pytest.skip("runc is not installed (apt-get install runc)")
    return Runtime("runc", RUNC, Path("/run/runc"))


def require(*programs: str) -> None:
    """Skip, naming the package, when a client program is not installed."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install podman containerd)")


def run_command(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = CLIENT_TIMEOUT,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a client to completion, output through temp files.

    Not pipes: a process the client leaves behind (conmon, a shim, a container) may hold
    them open, and reading a pipe would then wait for it instead of for the client.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as stdin:
        if input is not None:
            stdin.write(input.encode())
            stdin.seek(0)
        result = subprocess.run(argv, stdin=stdin if input is not None else subprocess.DEVNULL, stdout=out,
                                stderr=err, env=env, timeout=timeout, check=False)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, result.returncode, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """stdout of a call that must succeed; the failure shows the call and its stderr."""
    assert result.returncode == 0, f"{' '.join(result.args)} -> {result.returncode}\n{result.stderr}{result.stdout}"
    return result.stdout


def documented_snippet(name: str) -> str:
    """The fenced block after ``<!-- e2e: NAME -->`` in docs/clients.md, with the real ociish path."""
    match = re.search(rf"<!-- e2e: {re.escape(name)} -->\s*```[a-z]*\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert match, f"docs/clients.md has no block marked <!-- e2e: {name} -->"
    return match.group(1).replace(DOCUMENTED_OCIISH_PATH, str(OCIISH))


class Terminal:
    """A client on a pseudo-terminal of its own (its controlling tty), driven like a user.

    The window size is set before the client starts, so a container that gets a console
    must report it (the client resizes the container's pty to match).
    """

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 30, cols: int = 100) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.transcript = ""
        self._unread = ""
        try:
            # setsid(1) makes the pty the controlling terminal of a new session (--ctty) and
            # execs the client in place: the client is the session and process group leader.
            self.process = subprocess.Popen(["setsid", "--ctty", "--wait", *argv], stdin=slave, stdout=slave,
                                            stderr=slave, env=env)
        finally:
            os.close(slave)

    def expect(self, text: str, timeout: float = 30.0) -> str:
        """Read until ``text`` appears; return what came before it and consume it."""
        deadline = time.monotonic() + timeout
        while text not in self._unread:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                raise AssertionError(f"{text!r} never appeared on the terminal; it showed:\n{self.transcript}")
        before, _, self._unread = self._unread.partition(text)
        return before

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = CLIENT_TIMEOUT) -> int:
        """The client's exit status, once it has exited (its output drained meanwhile)."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the client did not exit; the terminal showed:\n{self.transcript}")
            self._read(0.1)
        return self.process.returncode

    def check_shell(self, *, exit_code: int, tty: str = "/dev/pts/") -> None:
        """Drive the shell the client opened: the container's pty gets the client's window
        size (a client may resize it only after the process started: asked until it has),
        is a pty, and the shell's exit status is the client's; the client is closed after."""
        try:
            self.expect("# ")
            sizes = []
            for _ in range(50):
                self.send("stty size\n")
                sizes.append(self.expect("# "))
                if "30 100" in sizes[-1]:
                    break
                time.sleep(0.1)
            assert "30 100" in sizes[-1], f"the pty never got the client's window size: {sizes}"
            self.send("tty; echo $((6*7))x\n")
            assert tty in self.expect("42x")
            self.send(f"exit {exit_code}\n")
            assert self.wait() == exit_code
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        os.close(self.master)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 4096).decode(errors="replace").replace("\r", "")
        except OSError:  # EIO: every process on the slave side is gone
            return False
        self.transcript += chunk
        self._unread += chunk
        return bool(chunk)


def mounts_under(directory: Path) -> list[str]:
    prefix = str(directory) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(prefix)]


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (a client's directory: conmon, shims, daemons)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def remove_client_dir(directory: Path) -> list[str]:
    """Kill what still runs from ``directory``, unmount what is mounted there, delete it.

    Returns a description of everything that had to be cleaned, for the caller to report.
    """
    leftovers = []
    for pid in processes_mentioning(str(directory)):
        leftovers.append(f"process {pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()[:200]!r}")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for point in sorted(mounts_under(directory), reverse=True):
        leftovers.append(f"mount {point}")
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(directory, ignore_errors=True)
    return leftovers


def cgroups_at(path: str) -> list[Path]:
    """The cgroup ``path`` (a cgroupsPath) in every hierarchy that has it.

    Looked up directly, not searched for: other users' cgroups come and go meanwhile.
    """
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # pure cgroup v2: one hierarchy
        hierarchies = [CGROUP_ROOT]
    else:  # v1 or hybrid: one per controller, plus the unified one on hybrid hosts
        hierarchies = [h for h in CGROUP_ROOT.iterdir() if h.is_dir() and not h.is_symlink()]
    return [h / path.lstrip("/") for h in hierarchies if (h / path.lstrip("/")).is_dir()]


def stale_state(runtime: Runtime, root: Path, ids: Iterable[str]) -> list[str]:
    """What ``root`` still holds of the containers ``ids`` (state directories, lock files).

    Each is removed now, a state directory by its runtime's `delete --force`.
    """
    stale = []
    for cid in sorted(ids):
        if (root / cid).is_dir():
            stale.append(cid)
            run_command([runtime.path, "--root", str(root), "delete", "--force", cid])
        for other in root.glob(f"{cid}.*"):
            stale.append(other.name)
            other.unlink()
    return stale


# --------------------------------------------------------------------------- podman


class Podman:
    """podman with private storage, run and tmp dirs, and the documented containers.conf.

    Storage goes in a storage.conf of its own, the engine settings as global flags (conmon's
    clean-up command inherits them).  containers.conf holds the docs snippet that registers
    ociish, after this sandbox's own needs: no network (no bridge or firewall rules left on
    the host) and ulimits within the sandbox's hard limits (it has no CAP_SYS_RESOURCE).
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        conf = home / "containers.conf"
        conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\nnetns = "none"\n\n'
                        + documented_snippet("podman-containers-conf"))
        self.env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(home),
                    "CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(home / "storage.conf")}
        (home / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{home}/storage"\nrunroot = "{home}/run"\n')
        self.flags = ["--tmpdir", str(home / "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    def __call__(self, *args: str, runtime: Runtime | None = None, timeout: float = CLIENT_TIMEOUT,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_command(self.argv(args, runtime), env=self.env, timeout=timeout, input=input)

    def argv(self, args: tuple[str, ...], runtime: Runtime | None) -> list[str]:
        return ["podman", *self.flags, *(["--runtime", runtime.path] if runtime else []), *args]

    def created_ids(self) -> set[str]:
        """Every container this podman ever created, from its private event log.

        Only these are the tests' own: other podman users of the host (with the same
        runtime, hence the same state root) are never touched.
        """
        events = self.home / "tmp" / "events" / "events.log"
        if not events.exists():
            return set()
        return {event["ID"] for event in map(json.loads, events.read_text().splitlines())
                if event.get("Type") == "container" and event.get("Status") == "create"}

    def remove_all(self) -> list[str]:
        """Force-remove every container; their ids."""
        ids = ok(self("ps", "--all", "--quiet", "--no-trunc")).split()
        if ids:
            ok(self("rm", "--force", "--time", "0", *ids))
        return ids


@pytest.fixture(scope="module")
def podman_setup(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    require("podman", "conmon")
    home = tmp_path_factory.mktemp("podman")
    podman = Podman(home)
    archive = home / "rootfs.tar"
    subprocess.run(["tar", "-C", str(busybox_rootfs), "-cf", str(archive), "."], check=True)
    ok(podman("import", str(archive), IMAGE))
    yield podman
    leftovers = podman.remove_all()
    podman("rmi", "--all", "--force")
    leftovers += remove_client_dir(home)
    assert not leftovers, f"left behind by the podman tests: {leftovers}"


@dataclass
class PodmanClient:
    """podman bound to the runtime under test: ``client(*args)`` is `podman --runtime R *args`."""

    podman: Podman
    runtime: Runtime

    def __call__(self, *args: str, timeout: float = CLIENT_TIMEOUT, input: str | None = None
                 ) -> subprocess.CompletedProcess[str]:
        return self.podman(*args, runtime=self.runtime, timeout=timeout, input=input)

    def terminal(self, *args: str) -> Terminal:
        return Terminal(self.podman.argv(args, self.runtime), self.podman.env)

    def start(self, script: str) -> str:
        """A detached container running ``sh -c script``; its full id."""
        name = f"e2e-{uuid.uuid4().hex[:10]}"
        return ok(self("run", "-d", "--name", name, IMAGE, "sh", "-c", script)).strip()


@pytest.fixture
def podman(podman_setup: Podman, runtime: Runtime) -> Iterator[PodmanClient]:
    """podman for one test; afterwards its containers are removed, and nothing of them may
    remain in the runtime's state root or the cgroup tree."""
    before = podman_setup.created_ids()
    yield PodmanClient(podman_setup, runtime)
    podman_setup.remove_all()
    created = podman_setup.created_ids() - before
    stale = stale_state(runtime, runtime.default_root, created)
    cgroups = [d for cid in created for d in cgroups_at(f"libpod_parent/libpod-{cid}")]  # podman's cgroupfs paths
    assert not stale, f"{runtime.name} kept state for removed containers: {stale}"
    assert not cgroups, f"cgroups left behind: {cgroups}"


# --------------------------------------------------------------------------- containerd

NAMESPACE = "ociish-e2e"  # containerd namespace; also the parent cgroup of every task
# containerd 1.6 puts shim sockets here whatever its --state; made if missing, removed if we made it.
SHIM_SOCKET_DIRS = (Path("/run/containerd"), Path("/run/containerd/s"))


class Containerd:
    """A containerd daemon for one test module: own root, state, sockets, config.

    Its config.toml ends with the documented CRI runtime handler for ociish, so a daemon
    that starts with the CRI plugin loaded proves the snippet valid.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.socket = home / "containerd.sock"
        self.config = home / "config.toml"
        self.config.write_text(
            "version = 2\n"
            f'root = "{home}/root"\nstate = "{home}/state"\n'
            f'[grpc]\n  address = "{self.socket}"\n[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
            # the opt plugin would otherwise create /opt/containerd on the host
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{home}/opt"\n\n'
            + documented_snippet("containerd-config-toml"))
        self.log = home / "containerd.log"
        self.env = dict(os.environ)
        self.made_dirs = [d for d in SHIM_SOCKET_DIRS if not d.exists()]
        with open(self.log, "wb") as log:
            self.daemon = subprocess.Popen(["containerd", "--config", str(self.config)], stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=log, env=self.env, start_new_session=True)
        deadline = time.monotonic() + 30
        while self.ctr("version", timeout=5).returncode != 0:
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"containerd did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def ctr(self, *args: str, timeout: float = CLIENT_TIMEOUT, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        return run_command(self.ctr_argv(args), env=self.env, timeout=timeout, input=input)

    def ctr_argv(self, args: tuple[str, ...]) -> list[str]:
        return ["ctr", "--address", str(self.socket), "--namespace", NAMESPACE, *args]

    def remove_all(self) -> list[str]:
        """Kill and delete every task and container of the namespace; their ids."""
        containers = ok(self.ctr("containers", "list", "--quiet")).split()
        for cid in containers:
            self.ctr("task", "delete", "--force", cid)
            self.ctr("containers", "delete", cid)
        return containers

    def stop(self) -> None:
        self.daemon.terminate()
        try:
            self.daemon.wait(15)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait(5)
        try:  # each shim exits on its own once its task is deleted, removing its socket
            wait_for(lambda: not processes_mentioning(str(self.home)), "the shims to exit", timeout=10)
        except AssertionError:
            pass  # remove_client_dir kills and reports them
        for directory in reversed(self.made_dirs):
            try:
                directory.rmdir()
            except OSError:
                pass  # another containerd's shim is using it now: it is theirs as well


@pytest.fixture(scope="module")
def oci_archive(podman_setup: Podman) -> Path:
    """The test image as an OCI archive, the form `ctr images import` takes."""
    archive = podman_setup.home / "busybox-oci.tar"
    ok(podman_setup("save", "--format", "oci-archive", "--output", str(archive), IMAGE))
    return archive


@pytest.fixture(scope="module")
def containerd_daemon(oci_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    require("containerd", "ctr", "containerd-shim-runc-v2")
    home = tmp_path_factory.mktemp("containerd")
    daemon = Containerd(home)
    try:
        ok(daemon.ctr("images", "import", str(oci_archive)))
        yield daemon
    finally:
        leftovers = daemon.remove_all()
        daemon.ctr("images", "remove", IMAGE)
        daemon.stop()
        for parent in cgroups_at(NAMESPACE):
            try:
                parent.rmdir()  # the parent the runtimes made for the namespace's tasks
            except OSError as e:
                inside = [p.name for p in parent.iterdir() if p.is_dir()], (parent / "cgroup.procs").read_text().split()
                leftovers.append(f"cgroup {parent}: {e.strerror}; children and pids: {inside}")
        leftovers += remove_client_dir(home)
    assert not leftovers, f"left behind by the containerd tests: {leftovers}"


@dataclass
class CtrClient:
    """ctr bound to the runtime under test, as `ctr run --runc-binary R --runc-root ROOT`."""

    containerd: Containerd
    runtime: Runtime
    runc_root: Path
    ids: list[str] = field(default_factory=list)  # every container id handed out, for the clean-up check

    def __call__(self, *args: str, timeout: float = CLIENT_TIMEOUT, input: str | None = None
                 ) -> subprocess.CompletedProcess[str]:
        return self.containerd.ctr(*args, timeout=timeout, input=input)

    def run_args(self, *options: str) -> list[str]:
        """`run` with the runtime selected; the image, id and command follow."""
        return ["run", "--runc-binary", self.runtime.path, "--runc-root", str(self.runc_root),
                "--fifo-dir", str(self.fifo_dir), *options]

    def exec_args(self, *options: str) -> list[str]:
        """`task exec` with a fresh exec id; the container id and command follow."""
        return ["task", "exec", "--fifo-dir", str(self.fifo_dir), "--exec-id", f"x-{uuid.uuid4().hex[:8]}", *options]

    @property
    def fifo_dir(self) -> Path:
        """ctr's stdio fifos: in the daemon's directory, not /run/containerd/fifo."""
        return self.containerd.home / "fifo"

    def terminal(self, *args: str) -> Terminal:
        return Terminal(self.containerd.ctr_argv(args), self.containerd.env)

    def new_id(self) -> str:
        """A fresh container id, remembered for the clean-up check."""
        self.ids.append(f"e2e-{uuid.uuid4().hex[:10]}")
        return self.ids[-1]

    def start(self, script: str) -> str:
        """A detached task running ``sh -c script``; its container id."""
        cid = self.new_id()
        ok(self(*self.run_args("--detach"), IMAGE, cid, "sh", "-c", script))
        return cid

    @property
    def state_root(self) -> Path:
        """Where the shim tells the runtime to keep state: --runc-root plus the namespace."""
        return self.runc_root / NAMESPACE


@pytest.fixture
def ctr(containerd_daemon: Containerd, runtime: Runtime) -> Iterator[CtrClient]:
    """ctr for one test; afterwards its tasks and containers are removed, and nothing of them
    may remain in the runtime's state root or the cgroup tree."""
    client = CtrClient(containerd_daemon, runtime, containerd_daemon.home / f"runc-root-{runtime.name}")
    yield client
    containerd_daemon.remove_all()
    stale = stale_state(runtime, client.state_root, client.ids)
    cgroups = [d for cid in client.ids for d in cgroups_at(f"{NAMESPACE}/{cid}")]  # ctr's default cgroupsPath
    assert not stale, f"{runtime.name} kept state for deleted containers: {stale}"
    assert not cgroups, f"cgroups left behind: {cgroups}"


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 20.0) -> T:
    """Poll ``predicate`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
