"""What ociish may leave on the host, found and attributed; and the session's leak check.

Nothing a test runs may outlive it: no container state (in any --root a test passed to a
create or run), no cgroup, no mount, no process, no zombie.  `HostProbe` finds those left
by a test (its directory, its state roots, its container ids); `session_leak_check`
looks once more after the whole session.

Other test sessions may run on the same host at the same time (developers share
machines), so nothing here looks at the host as a whole: a leftover counts when it can be
tied to this session — a path under its temp directory (a state root, a bundle, a
process's command line or open file), or a container cgroup under ``/ociish`` that did
not exist when the session started, whose id was on the command line of a process this
session started, and that no other live state root knows.

tests/integration is not a package, so pytest imports this file as the module
``conftest`` in the place of tests/conftest.py, which the test modules here import their
helpers from (``from conftest import Runtime, ...``).  ``pytest_configure`` puts
tests/conftest.py back under that name as soon as this file is registered.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pytest

SHARED_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_PARENT = "ociish"  # linux.cgroupsPath unset: /ociish/<id> in every hierarchy
SETTLE_TIMEOUT = 10.0  # a killed process or a cgroup being removed takes a moment to go


def pytest_configure(config: pytest.Config) -> None:
    sys.addaudithook(_note_command_line)
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == SHARED_CONFTEST:
            sys.modules["conftest"] = plugin
            return


# ------------------------------------------------------------------ what the host holds


def container_cgroups(ids: Iterable[str] | None = None) -> set[str]:
    """Container cgroups under /ociish in every hierarchy (only those of ``ids`` if given)."""
    wanted = None if ids is None else set(ids)
    found = set()
    for hierarchy in CGROUP_ROOT.iterdir():
        if not hierarchy.is_dir() or hierarchy.is_symlink():
            continue
        parent = hierarchy / DEFAULT_PARENT
        try:
            names = os.listdir(parent)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if (wanted is None or name in wanted) and os.path.isdir(parent / name):
                found.add(str(parent / name))
    return found


def _under(path: str, dirs: Iterable[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def mount_points(under: Iterable[str] | None = None) -> list[str]:
    """Mount points in this process's mount namespace (the host's), optionally only those
    under some directories; a point mounted twice appears twice."""
    dirs = None if under is None else [str(d) for d in under]
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")  # \\040 and friends
            if dirs is None or _under(point, dirs):
                points.append(point)
    return sorted(points)


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    comm: str
    cmdline: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.comm}, state {self.state}, parent {self.ppid}): {self.cmdline[:200]}"


def _proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    return Proc(pid, int(fields[1]), fields[0], comm, cmdline.replace(b"\0", b" ").decode(errors="replace").strip())


def _in_cgroups(pid: int, ids: set[str]) -> bool:
    """Whether the process is in /ociish/<id> (or below it) of any hierarchy."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        parts = line.split(":", 2)[-1].strip("/").split("/")
        if len(parts) >= 2 and parts[0] == DEFAULT_PARENT and parts[1] in ids:
            return True
    return False


def _holds_file_under(pid: int, dirs: list[str]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if _under(os.readlink(f"/proc/{pid}/fd/{fd}"), dirs):
                return True
        except OSError:
            continue
    return False


def ociish_processes(under: Iterable[str], ids: Iterable[str] = ()) -> list[Proc]:
    """Processes tied to these directories or container ids, and zombie children of ours.

    Tied: its command line names a path under them (a runtime process: --root, the
    bundle; a child it forked and has not exec'd yet), it holds a file under them open
    (a created init holds exec.fifo), or it is in one of the containers' cgroups.
    """
    dirs = [str(d) for d in under]
    wanted = set(ids)
    me = os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        proc = _proc(int(entry.name))
        if proc is None:
            continue
        if proc.state == "Z":
            if proc.ppid == me:
                found.append(proc)  # a child of the test process nobody waited for
            continue
        if (any(f"{d}/" in proc.cmdline or f"{d} " in f"{proc.cmdline} " for d in dirs)
                or (wanted and _in_cgroups(proc.pid, wanted))
                or (proc.comm == "ociish-init" and _holds_file_under(proc.pid, dirs))):
            found.append(proc)
    return found


def state_entries(roots: Iterable[Path]) -> list[str]:
    """Everything in these state roots: container directories, lock files, temp files."""
    entries = []
    for root in roots:
        try:
            entries += [str(Path(root) / name) for name in sorted(os.listdir(root))]
        except FileNotFoundError:
            continue
    return entries


@dataclass
class Leftovers:
    state: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.state or self.cgroups or self.processes or self.mounts)

    def __str__(self) -> str:
        return "\n".join(f"  {kind}: {item}" for kind in ("state", "cgroups", "processes", "mounts")
                         for item in getattr(self, kind))


def settle(find: Callable[[], Leftovers], timeout: float = SETTLE_TIMEOUT) -> Leftovers:
    """Leftovers that are still there after ``timeout`` (processes being killed, cgroups
    being removed and zombies being reaped take a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


class HostProbe:
    """The leftovers of one test: under its directory (bundles, state roots) and of the
    container ids it names."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.mounts_before = mount_points(under=[directory])

    def leftovers(self, ids: Iterable[str] = (), roots: Iterable[Path] = ()) -> Leftovers:
        ids = set(ids)
        dirs = [str(self.directory)]
        return Leftovers(
            state=state_entries(roots),
            cgroups=sorted(container_cgroups(ids)) if ids else [],
            processes=[str(p) for p in ociish_processes(dirs, ids)],
            mounts=sorted(set(mount_points(under=dirs)) - set(self.mounts_before)),
        )

    def assert_clean(self, ids: Iterable[str] = (), roots: Iterable[Path] = (), *, what: str = "",
                     timeout: float = SETTLE_TIMEOUT) -> None:
        ids = list(ids)
        found = settle(lambda: self.leftovers(ids, roots), timeout)
        assert not found, f"left behind{' ' + what if what else ''}:\n{found}"


@pytest.fixture
def host(tmp_path: Path) -> HostProbe:
    return HostProbe(tmp_path)


# ------------------------------------------------------------------ the session's check

_CGROUPS_AT_START = container_cgroups()
_COMMAND_LINE_WORDS: set[str] = set()  # every argument of every process this session started
_STATE_ROOTS: set[str] = set()  # every --root an ociish create or run had (others hold made-up records)


def _note_command_line(event: str, args: tuple) -> None:
    if event == "subprocess.Popen" and isinstance(args[1], (list, tuple)):
        argv = [os.fspath(a) for a in args[1] if isinstance(a, (str, os.PathLike))]
        _COMMAND_LINE_WORDS.update(a for a in argv if isinstance(a, str))
        ociish = "ociish" in argv or os.path.basename(argv[0]) == "ociish" or any("from ociish" in a for a in argv)
        for index, (flag, value) in enumerate(zip(argv, argv[1:])):
            if ociish and flag == "--root" and {"create", "run"} & set(argv[index + 2:]):
                _STATE_ROOTS.add(os.path.abspath(value))


# Where other state roots live: the default one, other test sessions' and benchmarks'.
_FOREIGN_RECORDS = ("/run/*/{id}/state.json", "/run/*/*/{id}/state.json",
                    *("/tmp/" + "*/" * depth + "{id}/state.json" for depth in range(1, 5)))


def _known_elsewhere(cgroup: str, basetemp: str) -> bool:
    """Whether a state root that is not this session's holds a record of the container."""
    cid = glob.escape(os.path.basename(cgroup))
    return any(not _under(path, [basetemp]) for pattern in _FOREIGN_RECORDS
               for path in glob.glob(pattern.format(id=cid)))


def session_leftovers(basetemp: str) -> Leftovers:
    roots = [Path(r) for r in sorted(_STATE_ROOTS) if _under(r, [basetemp])]
    cgroups = sorted(c for c in container_cgroups() - _CGROUPS_AT_START
                     if os.path.basename(c) in _COMMAND_LINE_WORDS and not _known_elsewhere(c, basetemp))
    ids = {os.path.basename(c) for c in cgroups}
    return Leftovers(
        state=state_entries(roots),
        cgroups=cgroups,
        processes=[str(p) for p in ociish_processes([basetemp], ids)],
        mounts=mount_points(under=[basetemp]),
    )


@pytest.fixture(scope="session", autouse=True)
def session_leak_check(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the last test: nothing of any test's containers may be left on the host."""
    yield
    basetemp = str(tmp_path_factory.getbasetemp())
    found = settle(lambda: session_leftovers(basetemp))
    if found:
        pytest.fail(f"session leak check: the tests left these behind (paths name the test):\n{found}",
                    pytrace=False)
