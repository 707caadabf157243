"""ociish against runc and crun, side by side: the benchmark of issues 7 and 16.

Run it as root from the repository, with the ``bench`` extra (matplotlib) installed:

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/bench.py

It takes a few minutes, prints the report and writes it to ``docs/benchmarks.md`` (or
``--out``), with the chart of the ratios beside it (same name, ``.png``).  ``--quick``
is a smoke run of a few seconds that only prints, unless ``--out`` is given.

Method, and why:

- Every runtime runs the same bundles, and every row is measured on three configs, all
  on the example busybox rootfs (built once into a temp dir by
  ``bundles/busybox/build-rootfs.sh``, shared read-only): the example ``config.json``;
  ``runc spec``'s default as it writes it; and the config podman writes for
  ``podman run`` (``reference/samples/config-podman.json`` as captured, its host paths
  replaced by files of the bundle, no fixed cgroupsPath, a new network namespace instead
  of podman's).  In each, ``process.args`` becomes ``/bin/true`` or ``sleep`` and
  ``terminal`` false; nothing else changes.  The example config asks for nothing that
  warns; ``runc spec``'s asks for ambient capabilities that ociish cannot grant without
  them in the inheritable set, so every create prints a warning; podman's has a seccomp
  profile, resource limits and five bind mounts.
- crun is the third runtime where it is installed.  Debian's crun refuses the hybrid
  cgroup layout of this kind of machine ("cgroups in hybrid mode not supported"), so it
  runs as ``unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec crun ...'`` (a wrapper
  script in the temp dir): its numbers include that unshare and sh, about 2-3 ms.
- Each runtime keeps its state in a private ``--root`` under the temp dir, so nothing of
  the host's containers is touched and every leftover can be force-deleted at the end.
- Every measured row alternates the runtimes within each iteration, flipping which goes
  first, so a drift of the machine (frequency, a neighbour's load) lands on both columns
  alike; one warm-up iteration per row is discarded.
- A sample is the wall time (``time.perf_counter_ns``) from spawning the command to
  reaping it, with stdout to /dev/null and stderr to a temp file, never a pipe: a
  created container keeps the runtime's stdio as its own, so a pipe would not reach EOF
  until the container ends.
- ociish runs as the README installs it (``pip install -e .``), with nothing compiled by
  hand: its launcher writes the bytecode cache on its first call (a warm-up), whatever
  PYTHONDONTWRITEBYTECODE says.
- This process is a child subreaper while the runtimes are measured, as conmon and the
  containerd shim are: a container's init is reparented to it when ``create`` exits, so
  "wait until stopped" is an exact ``waitpid`` instead of polling ``state``.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import importlib.util
import itertools
import json
import os
import platform
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD_ROOTFS = REPO / "bundles" / "busybox" / "build-rootfs.sh"
EXAMPLE_CONFIG = REPO / "bundles" / "busybox" / "config.json"
PODMAN_CONFIG = REPO / "benchmarks" / "config-podman.json"
CALL_TIMEOUT = 120.0  # seconds for one command; a hang fails the run instead of stalling it
PR_SET_CHILD_SUBREAPER = 36
PODMAN_IMAGE = "localhost/ociish-bench:latest"
# This sandbox has no CAP_SYS_RESOURCE: podman's default ulimits would exceed the hard limits.
PODMAN_CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"

[engine]
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "ociish"]

[engine.runtimes]
ociish = ["{ociish}"]
"""

CRUN_WRAPPER = """\
#!/bin/sh
# Debian's crun refuses hybrid cgroups: without the cgroup2 mount beside the v1 ones it runs.
exec unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec crun "$@"' crun "$@"
"""

# Targets of issue 16 (and issue 7's parallel scaling).
RUN_RATIO_TARGET = 1.6
EXEC_RATIO_TARGET = 2.0
SEQUENTIAL_RATIO_TARGET = 1.6
QUICK_COMMAND_TARGET_MS = 8.0  # state, kill, delete, start
PODMAN_RATIO_TARGET = 1.15
PARALLEL_EFFICIENCY_TARGET = 0.8  # speedup over one-at-a-time, per core in use
BUNDLES = ("example", "runc spec", "podman")


class BenchError(Exception):
    """A command under measurement failed: the numbers would be meaningless."""


@dataclass(frozen=True)
class Settings:
    """How much of each row to measure."""

    iterations: int  # samples per runtime for the per-call rows
    podman_iterations: int
    sequential: int  # containers in the sequential row
    parallel: tuple[int, ...]  # containers per parallel row; the first also runs one at a time, the baseline
    repeats: int  # samples per runtime for the total-time rows


FULL = Settings(iterations=20, podman_iterations=20, sequential=100, parallel=(20, 50), repeats=3)
QUICK = Settings(iterations=5, podman_iterations=3, sequential=10, parallel=(4, 8), repeats=1)


@dataclass(frozen=True)
class Runtime:
    """An OCI runtime binary with a private state root; ``argv`` is what a client would run."""

    name: str
    binary: Path
    root: Path

    def argv(self, *args: str | Path) -> list[str]:
        return [str(self.binary), "--root", str(self.root), *map(str, args)]

    @property
    def version_argv(self) -> list[str]:
        return [str(self.binary), "--version"]

    def call(self, *args: str | Path) -> float:
        """Run one runtime command to success; its wall time in seconds."""
        return timed(self.argv(*args))


@dataclass
class Row:
    """One line of the report: samples per runtime (or per interpreter), in ``unit``."""

    title: str
    unit: str
    samples: dict[str, list[float]]
    note: str = ""
    ratio_target: float | None = None  # the issues' bound on ociish/runc for this row
    skipped: str = ""  # why the row could not be measured
    bundle: str = ""  # which of BUNDLES; "" for rows outside them (podman's own config, baselines)

    def median(self, subject: str) -> float:
        return statistics.median(self.samples[subject])

    def ratio(self, other: str = "runc") -> float:
        return self.median("ociish") / self.median(other)

    @property
    def key(self) -> str:
        return f"{self.title} [{self.bundle}]" if self.bundle else self.title

    def meets_target(self) -> bool | None:
        """Whether the ratio is within its target; None when the row has none or was not measured."""
        if self.ratio_target is None or self.skipped:
            return None
        return self.ratio() <= self.ratio_target


@dataclass
class Bench:
    """Everything the row functions share: the runtimes under test and the bundles."""

    runtimes: tuple[Runtime, ...]  # (ociish, runc[, crun])
    settings: Settings
    workdir: Path
    rootfs: Path
    bundles: dict[str, dict[str, tuple[Path, Path]]]  # name -> runtime -> (running /bin/true, running sleep)
    interpreter: Path  # the one that runs the ociish console script
    _ids: Iterator[int] = field(default_factory=itertools.count)

    @property
    def id_prefix(self) -> str:
        """Every container id of this run starts with it (and so does its cgroup's name)."""
        return f"bench-{os.getpid()}-"

    def new_id(self) -> str:
        return f"{self.id_prefix}{next(self._ids)}"

    def pid_file(self, container_id: str) -> Path:
        return self.workdir / f"{container_id}.pid"


# --------------------------------------------------------------------------- measuring


def timed(argv: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    """Wall time in seconds of running ``argv`` to completion; a failure raises BenchError.

    The exit is waited for on a pidfd, not with ``subprocess.run(timeout=...)``: that polls
    with sleeps doubling from 0.5 ms to 50 ms, which rounds every sample up to the next
    step (15.5, 31.5, 63.5 ms, ...) and hides differences of tens of milliseconds.
    """
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter_ns()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
        exited = select.poll()
        pidfd = os.pidfd_open(process.pid)  # the child stays a zombie, hence this pid, until wait() below
        try:
            exited.register(pidfd, select.POLLIN)
            if not exited.poll(CALL_TIMEOUT * 1000):
                process.kill()
                process.wait()
                raise BenchError(f"{' '.join(argv)}: no exit after {CALL_TIMEOUT:.0f} s")
        finally:
            os.close(pidfd)
        returncode = process.wait()
        elapsed = time.perf_counter_ns() - start
        if returncode != 0:
            err.seek(0)
            message = err.read().decode(errors="replace").strip()[-2000:]
            raise BenchError(f"{' '.join(argv)} exited {returncode}: {message}")
    return elapsed / 1e9


def alternate(subjects: Mapping[str, Callable[[], Mapping[str, float]]], iterations: int,
              warmup: int = 1) -> dict[str, dict[str, list[float]]]:
    """Call each subject once per iteration, rotating which goes first; metric -> subject -> samples.

    A subject returns several metrics when they come from one sequence of calls (the steps
    of one lifecycle), so they are measured on containers in the state a client sees them.
    The first ``warmup`` iterations fill the page cache and the bytecode caches and are
    dropped.
    """
    names = list(subjects)
    samples: dict[str, dict[str, list[float]]] = {}
    for i in range(warmup + iterations):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            metrics = subjects[name]()
            if i >= warmup:
                for metric, value in metrics.items():
                    samples.setdefault(metric, {}).setdefault(name, []).append(value)
    return {metric: {name: by_name[name] for name in names if name in by_name} for metric, by_name in samples.items()}


def per_runtime(bench: Bench, sample: Callable[[Runtime], Mapping[str, float]], iterations: int,
                warmup: int = 1) -> dict[str, dict[str, list[float]]]:
    """``alternate`` over the runtimes."""
    return alternate({rt.name: partial(sample, rt) for rt in bench.runtimes}, iterations, warmup)


def wait_stopped(pid: int) -> None:
    """Reap the container's init: it is our child, as this process is a subreaper (see ``subreaper``)."""
    os.waitpid(pid, 0)


def read_pid(path: Path) -> int:
    """The container's init pid from ``--pid-file``; anything but a positive pid is the runtime's bug.

    Checked because waiting for pid 0 (or -1) would reap an unrelated child of this process.
    """
    text = path.read_text().strip()
    if not text.isdigit() or int(text) <= 0:
        raise BenchError(f"create exited 0 but wrote {text!r} to its --pid-file {path}")
    return int(text)


def vm_rss_mib(pid: int) -> float:
    """Resident set of a process, from /proc/PID/status (VmRSS, kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"/proc/{pid}/status has no VmRSS (a kernel thread or an exited process?)")


def detached_lifecycle(bench: Bench, rt: Runtime, bundle: Path, kill_signal: str | None) -> None:
    """create → start → (kill) → wait until stopped → delete: what a client such as conmon runs."""
    container_id = bench.new_id()
    pid_file = bench.pid_file(container_id)
    rt.call("create", "--bundle", bundle, "--pid-file", pid_file, container_id)
    pid = read_pid(pid_file)
    rt.call("start", container_id)
    if kill_signal:
        rt.call("kill", container_id, kill_signal)
    wait_stopped(pid)
    rt.call("delete", container_id)
    pid_file.unlink()


@contextmanager
def running_container(bench: Bench, rt: Runtime, bundle: Path) -> Iterator[str]:
    """A started ``sleep`` container of ``bundle`` for the duration; force-deleted (and reaped) afterwards."""
    container_id = bench.new_id()
    pid_file = bench.pid_file(container_id)
    rt.call("create", "--bundle", bundle, "--pid-file", pid_file, container_id)
    pid = read_pid(pid_file)
    try:
        rt.call("start", container_id)
        yield container_id
    finally:
        rt.call("delete", "--force", container_id)
        wait_stopped(pid)
        pid_file.unlink()


# --------------------------------------------------------------------------- the rows


def measure_run(bench: Bench, bundle: str) -> list[Row]:
    """`run` of /bin/true in the foreground: the single call most users time."""
    def sample(rt: Runtime) -> dict[str, float]:
        return {"run": 1e3 * rt.call("run", "--bundle", bench.bundles[bundle][rt.name][0], bench.new_id())}

    samples = per_runtime(bench, sample, bench.settings.iterations)
    return [Row("`run` /bin/true", "ms", samples["run"], "create + start + wait + delete in one process",
                ratio_target=RUN_RATIO_TARGET, bundle=bundle)]


def measure_lifecycle_steps(bench: Bench, bundle: str) -> list[Row]:
    """create / start / state / kill / delete, each timed on its own, and the waiting process's RSS.

    On the example bundle the bare interpreter's start-up is timed in the same
    iterations, interleaved with the runtimes: what no Python command can go below.
    """
    def lifecycle(rt: Runtime) -> dict[str, float]:
        container_id = bench.new_id()
        pid_file = bench.pid_file(container_id)
        sleep_bundle = bench.bundles[bundle][rt.name][1]
        steps = {"create": rt.call("create", "--bundle", sleep_bundle, "--pid-file", pid_file, container_id)}
        pid = read_pid(pid_file)
        rss = vm_rss_mib(pid)
        steps["start"] = rt.call("start", container_id)
        steps["state"] = rt.call("state", container_id)
        steps["kill"] = rt.call("kill", container_id, "KILL")
        wait_stopped(pid)
        steps["delete"] = rt.call("delete", container_id)
        pid_file.unlink()
        return {**{step: 1e3 * seconds for step, seconds in steps.items()}, "rss": rss}

    python = str(bench.interpreter)
    subjects: dict[str, Callable[[], Mapping[str, float]]] = {rt.name: partial(lifecycle, rt) for rt in bench.runtimes}
    if bundle == BUNDLES[0]:
        subjects["python -S -c pass"] = lambda: {"python": 1e3 * timed([python, "-S", "-c", "pass"])}
        subjects["python -c pass"] = lambda: {"python": 1e3 * timed([python, "-c", "pass"])}
    samples = alternate(subjects, bench.settings.iterations)
    rows = [
        Row("`create` (sleep)", "ms", samples["create"], "until the init waits for start", bundle=bundle),
        Row("`start`", "ms", samples["start"], "ociish returns after the execve, runc after the fifo read",
            bundle=bundle),
        Row("`state` (running)", "ms", samples["state"], bundle=bundle),
        Row("`kill` KILL", "ms", samples["kill"], bundle=bundle),
        Row("`delete` (stopped)", "ms", samples["delete"], bundle=bundle),
        Row("RSS of the created container's waiting process", "MiB", samples["rss"],
            "VmRSS of the init pid after create (runc: `runc init`)", ratio_target=1.0, bundle=bundle),
    ]
    rows += [Row(f"`{name}`", "ms", {name: values}) for name, values in samples.get("python", {}).items()]
    return rows


def measure_full_lifecycle(bench: Bench, bundle: str) -> list[Row]:
    """The 4-process lifecycle a client runs: create → start → kill → (wait) → delete."""
    def sample(rt: Runtime) -> dict[str, float]:
        start = time.perf_counter_ns()
        detached_lifecycle(bench, rt, bench.bundles[bundle][rt.name][1], "KILL")
        return {"lifecycle": (time.perf_counter_ns() - start) / 1e6}

    samples = per_runtime(bench, sample, bench.settings.iterations)
    return [Row("lifecycle create→start→kill→delete", "ms", samples["lifecycle"],
                "4 runtime processes, waiting for stopped before delete", bundle=bundle)]


def measure_exec(bench: Bench, bundle: str) -> list[Row]:
    """`exec` of /bin/true into a running container, waiting for it to exit."""
    with ExitStack() as stack:
        target = {rt.name: stack.enter_context(running_container(bench, rt, bench.bundles[bundle][rt.name][1]))
                  for rt in bench.runtimes}
        samples = per_runtime(bench, lambda rt: {"exec": 1e3 * rt.call("exec", target[rt.name], "/bin/true")},
                              bench.settings.iterations)
    return [Row("`exec` /bin/true", "ms", samples["exec"], "into a running `sleep` container",
                ratio_target=EXEC_RATIO_TARGET, bundle=bundle)]


def measure_sequential(bench: Bench, bundle: str) -> list[Row]:
    """Many `run`s one after another: the throughput of a client that starts containers in turn."""
    count = bench.settings.sequential

    def sample(rt: Runtime) -> dict[str, float]:
        start = time.perf_counter_ns()
        for _ in range(count):
            rt.call("run", "--bundle", bench.bundles[bundle][rt.name][0], bench.new_id())
        return {"total": (time.perf_counter_ns() - start) / 1e9}

    samples = per_runtime(bench, sample, bench.settings.repeats, warmup=0)
    return [Row(f"{count} × `run` /bin/true, sequentially", "s", samples["total"], "total wall time",
                ratio_target=SEQUENTIAL_RATIO_TARGET, bundle=bundle)]


def measure_concurrent(bench: Bench, bundle: str, count: int, workers: int) -> list[Row]:
    """``count`` create+start+delete lifecycles of /bin/true, ``workers`` at a time; total wall time.

    With one worker this is the baseline that the parallel rows are compared with to see
    whether they scale with the cores (no lock held across unrelated containers).
    """
    def sample(rt: Runtime) -> dict[str, float]:
        start = time.perf_counter_ns()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda _: detached_lifecycle(bench, rt, bench.bundles[bundle][rt.name][0], None), range(count)))
        return {"total": (time.perf_counter_ns() - start) / 1e9}

    samples = per_runtime(bench, sample, bench.settings.repeats, warmup=0)
    how = "one at a time" if workers == 1 else "in parallel"
    return [Row(f"{count} containers {how}", "s", samples["total"], "create + start + wait + delete each; total",
                bundle=bundle)]


def measure_podman(bench: Bench) -> list[Row]:
    """`podman run --rm` of /bin/true end to end, podman (and conmon) calling each runtime.

    Skipped, with the reason printed and reported, only when podman cannot be set up here;
    a runtime failing under podman fails the benchmark like any other failing call.
    """
    title = "`podman run --rm` /bin/true"
    podman = Podman.under(bench.workdir / "podman", bench.runtimes[0].binary)
    try:
        reason = podman.setup(bench.rootfs)
        if reason:
            print(f"skipping {title}: {reason}", file=sys.stderr)
            return [Row(title, "ms", {}, skipped=reason)]

        def sample(rt: Runtime) -> dict[str, float]:
            return {"podman": 1e3 * podman.timed("--runtime", str(rt.binary), "run", "--rm", PODMAN_IMAGE, "/bin/true")}

        samples = per_runtime(bench, sample, bench.settings.podman_iterations)
    finally:
        podman.remove(bench.runtimes)
    return [Row(title, "ms", samples["podman"],
                "runtimes in their default roots: podman's clean-up process passes no --runtime-flag",
                ratio_target=PODMAN_RATIO_TARGET)]


# --------------------------------------------------------------------------- podman


@dataclass
class Podman:
    """podman with private storage, run and tmp dirs and a containers.conf that knows ociish."""

    home: Path
    env: dict[str, str]
    flags: list[str]
    cgroups_before: set[Path]  # podman's own cgroups that existed before, not ours to remove

    @classmethod
    def under(cls, home: Path, ociish: Path) -> Podman:
        home.mkdir()
        (home / "containers.conf").write_text(PODMAN_CONTAINERS_CONF.format(ociish=ociish))
        (home / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{home}/storage"\nrunroot = "{home}/run"\n')
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(home),
               "CONTAINERS_CONF": str(home / "containers.conf"),
               "CONTAINERS_STORAGE_CONF": str(home / "storage.conf")}
        # As global flags, so that conmon's clean-up command (podman again) inherits them.
        flags = ["--tmpdir", str(home / "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        return cls(home, env, flags, podman_cgroups())

    def setup(self, rootfs: Path) -> str:
        """Import ``rootfs`` as the benchmark image; why podman cannot be used, or "" when it can."""
        for program in ("podman", "conmon"):
            if shutil.which(program) is None:
                return f"{program} is not installed (apt-get install -y podman)"
        archive = self.home / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        try:
            self.timed("import", str(archive), PODMAN_IMAGE)
        except BenchError as e:
            return f"podman cannot import the busybox rootfs: {e}"
        return ""

    def timed(self, *args: str) -> float:
        return timed(["podman", *self.flags, *args], env=self.env)

    def remove(self, runtimes: Sequence[Runtime]) -> None:
        """Remove the containers and the image, what the runtimes keep of them, and the storage."""
        created = self.created_ids()
        if shutil.which("podman"):
            for args in (("rm", "--all", "--force", "--time", "0"), ("rmi", "--all", "--force")):
                with suppress(BenchError):
                    self.timed(*args)
        for rt in runtimes:  # in their default roots, where podman had them kept
            for container_id in created:
                subprocess.run([str(rt.binary), "delete", "--force", container_id], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        # New cgroups, except other podman users' containers' (libpod-ID) made meanwhile.
        ours = [d for d in podman_cgroups() - self.cgroups_before
                if not d.name.startswith("libpod-") or d.name.removeprefix("libpod-") in created]
        for directory in sorted(ours, key=lambda d: len(d.parts), reverse=True):
            with suppress(OSError):  # in use by another podman by now
                directory.rmdir()
        unmount_under(self.home)
        shutil.rmtree(self.home, ignore_errors=True)

    def created_ids(self) -> set[str]:
        """The containers this podman created, from its private event log."""
        log = self.home / "tmp" / "events" / "events.log"
        if not log.exists():
            return set()
        events = (json.loads(line) for line in log.read_text().splitlines() if line.strip())
        return {e["ID"] for e in events if e.get("Type") == "container" and e.get("Status") == "create"}


def podman_cgroups() -> set[Path]:
    """The cgroups of podman's cgroupfs manager (libpod_parent, conmon's below it) in every hierarchy."""
    root = Path("/sys/fs/cgroup")
    parents = [root / "libpod_parent", *(hierarchy / "libpod_parent" for hierarchy in root.iterdir())]
    return {Path(top) for parent in parents if parent.is_dir() for top, _, _ in os.walk(parent)}


def unmount_under(directory: Path) -> None:
    """Lazily unmount whatever podman's storage left mounted under ``directory`` (deepest first)."""
    prefix = f"{directory}/"
    with open("/proc/self/mountinfo") as f:
        points = [point for point in (line.split()[4] for line in f) if point.startswith(prefix)]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


# --------------------------------------------------------------------------- set-up and clean-up


@contextmanager
def subreaper() -> Iterator[None]:
    """Make this process a child subreaper (see the module docstring); reap the orphans after."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        with suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass


def base_config(bundle: str, runc: Path, workdir: Path) -> dict:
    """The config.json of one of BUNDLES, before its args and root are set."""
    if bundle == "example":
        return json.loads(EXAMPLE_CONFIG.read_text())
    if bundle == "runc spec":
        spec_dir = workdir / "runc-spec"
        spec_dir.mkdir()
        subprocess.run([str(runc), "spec", "--bundle", str(spec_dir)], check=True)
        return json.loads((spec_dir / "config.json").read_text())
    config = json.loads(PODMAN_CONFIG.read_text())
    del config["linux"]["cgroupsPath"]  # one container's: each runtime names the cgroup after the id instead
    config["linux"]["namespaces"] = [{"type": ns["type"]} for ns in config["linux"]["namespaces"]]
    return config


def make_bundle(directory: Path, rootfs: Path, config: dict, args: list[str], rt: Runtime) -> Path:
    """A bundle of ``config`` on the shared ``rootfs``, running ``args``, for ``rt``.

    podman's bind mounts of its per-container files (resolv.conf, hosts, /dev/shm, ...)
    come from files of the bundle instead, with their mount points made in the rootfs.
    crun 1.8 refuses an ociVersion it does not know ("unknown version specified"): it gets
    the example's 1.3.0 as 1.0.2, the version `runc spec` writes.
    """
    directory.mkdir()
    config = json.loads(json.dumps(config))
    if rt.name == "crun" and not config["ociVersion"].startswith("1.0"):
        config["ociVersion"] = "1.0.2"
    config["root"] = {"path": str(rootfs), "readonly": config.get("root", {}).get("readonly", False)}
    config["process"].update(args=args, terminal=False)
    for mount in config.get("mounts", []):
        if mount.get("type") == "bind":
            name = mount["destination"].strip("/").replace("/", "-")
            source, target = directory / name, rootfs / mount["destination"].lstrip("/")
            if mount["destination"].startswith("/dev/"):
                source.mkdir()
            else:
                source.write_text("")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            mount["source"] = str(source)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return directory


def crun_runtime(workdir: Path) -> Runtime | None:
    """crun behind its wrapper (see CRUN_WRAPPER), or None when it is not installed or does not run here."""
    if shutil.which("crun") is None or shutil.which("unshare") is None:
        return None
    wrapper = workdir / "crun"
    wrapper.write_text(CRUN_WRAPPER)
    wrapper.chmod(0o755)
    return Runtime("crun", wrapper, workdir / "crun-root")


def remove_containers(rt: Runtime) -> None:
    """Force-delete every container left in the runtime's private root, then the root."""
    if rt.root.is_dir():
        listing = subprocess.run(rt.argv("list", "--quiet"), stdin=subprocess.DEVNULL, capture_output=True,
                                 text=True, check=False)
        for container_id in listing.stdout.split():
            subprocess.run(rt.argv("delete", "--force", container_id), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(rt.root, ignore_errors=True)


def remove_strays(id_prefix: str) -> None:
    """Kill the processes and remove the cgroups of this run's containers that delete --force left.

    A runtime that lost track of a container (its state says pid 0) cannot kill it; its
    init would wait for ``start`` forever.  The cgroup name, the container id, finds it.
    """
    cgroup_root = Path("/sys/fs/cgroup")
    strays = [d for d, _, _ in os.walk(cgroup_root) if Path(d).name.startswith(id_prefix)]
    pids: set[int] = set()
    for directory in strays:
        with suppress(FileNotFoundError):
            pids.update(int(pid) for pid in (Path(directory) / "cgroup.procs").read_text().split())
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with suppress(ChildProcessError):  # ours, as the subreaper, unless their runtime still runs
            os.waitpid(pid, 0)
    deadline = time.monotonic() + 10
    for directory in sorted(strays, key=lambda d: d.count("/"), reverse=True):
        while True:
            try:
                os.rmdir(directory)
                break
            except OSError:  # EBUSY until the killed processes are gone
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
    if strays:
        print(f"removed {len(strays)} cgroups and killed {sorted(pids)} that delete --force left behind",
              file=sys.stderr)


def shebang_interpreter(script: Path) -> Path:
    """The interpreter a console script runs under (its ``#!`` line)."""
    first = script.read_text().splitlines()[0]
    if not first.startswith("#!"):
        raise BenchError(f"{script} has no #! line: cannot tell which interpreter runs it")
    return Path(first[2:].split()[0])


def cpu_seconds() -> tuple[float, float]:
    """(busy CPU time of the whole machine, that of this process and every child it reaped), in seconds."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    busy = (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


def others_cpu(start: tuple[float, float], took: float) -> str:
    """CPU time the machine spent on other work during the run: it skews every row.

    The load average cannot tell, since the parallel rows themselves load the machine.
    conmon and podman's clean-up process are not reaped here and count as others.
    """
    busy, ours = cpu_seconds()
    other = max(0.0, busy - start[0] - (ours - start[1]))
    return f"{other:.0f} CPU-seconds, {other / (took * (os.cpu_count() or 1)):.0%} of the machine during the run"


def machine(bench: Bench) -> dict[str, str]:
    """What the numbers were measured on, for the report."""
    def output(argv: list[str]) -> str:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else "?"

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().split()
    commit = output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "ociish"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False).stdout.strip()
    ociish, runc = bench.runtimes[:2]
    crun = shutil.which("crun")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{int(meminfo[meminfo.index('MemTotal:') + 1]) / 2**20:.0f} GiB",
        "load average at start": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        "kernel": platform.release(),
        "python": f"{output([str(bench.interpreter), '--version'])} ({bench.interpreter})",
        "ociish": f"{output([str(ociish.binary), '--version'])}, commit {commit}"
                  + (" + uncommitted changes in ociish/" if dirty else ""),
        "runc": f"{output([str(runc.binary), '--version'])} ({runc.binary})",
        "crun": (f"{output([crun, '--version'])} ({crun}), run through `unshare -m` without the cgroup2 mount"
                 if len(bench.runtimes) > 2 and crun else "not measured"),
        "podman": output(["podman", "--version"]) if shutil.which("podman") else "not installed",
    }


# --------------------------------------------------------------------------- the report


def fmt(value: float, unit: str) -> str:
    return f"{value:.2f}" if unit == "s" else f"{value:.1f}"


def spread(values: list[float], unit: str) -> str:
    """p10–p90 of the samples; min–max when there are too few for deciles to mean anything."""
    if len(values) < 2:
        return "–"
    if len(values) < 10:
        low, high = min(values), max(values)
    else:
        deciles = statistics.quantiles(values, n=10, method="inclusive")
        low, high = deciles[0], deciles[-1]
    return f"{fmt(low, unit)}–{fmt(high, unit)}"


def cell(row: Row, name: str) -> str:
    if name not in row.samples:
        return "–"
    return f"{fmt(row.median(name), row.unit)} ({spread(row.samples[name], row.unit)})"


def comparison_table(rows: list[Row], names: Sequence[str]) -> str:
    others = [name for name in names if name != "ociish"]
    lines = ["| row | bundle | unit | n | " + " | ".join(f"{name} median (p10–p90)" for name in names) + " | "
             + " | ".join(f"ociish/{name}" for name in others) + " | note |",
             "|---" * (5 + len(names) + len(others)) + "|"]
    for row in rows:
        if row.skipped:
            lines.append(f"| {row.title} | {row.bundle or '–'} | {row.unit} | 0 | " + "– | " * len(names)
                         + "not measured | " * len(others) + f"{row.skipped} |")
            continue
        ratios = [f"**{row.ratio(name):.2f}×**" if name in row.samples else "–" for name in others]
        bundle = row.bundle or "podman's own"
        lines.append(f"| {row.title} | {bundle} | {row.unit} | {len(row.samples['ociish'])} | "
                     + " | ".join(cell(row, name) for name in names) + " | " + " | ".join(ratios)
                     + f" | {row.note} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    met: bool | None  # None: not measured


def ratio_target(rows: dict[str, Row], title: str, bound: float, what: str) -> Target:
    """ociish/runc ≤ ``bound`` on every bundle."""
    measured = [rows[f"{title} [{bundle}]"] for bundle in BUNDLES]
    return Target(f"{what} ≤ {bound}× runc, every bundle",
                  "; ".join(f"{row.bundle}: {row.ratio():.2f}×" for row in measured),
                  all(row.ratio() <= bound for row in measured))


def targets(rows: dict[str, Row], bench: Bench) -> list[Target]:
    """Issue 16's targets (and issue 7's parallel scaling), each with the values it is judged on."""
    podman = rows["`podman run --rm` /bin/true"]
    quick = [rows[f"{title} [{bundle}]"] for title in ("`state` (running)", "`kill` KILL", "`delete` (stopped)",
                                                        "`start`") for bundle in BUNDLES]
    slowest = max(quick, key=lambda row: row.median("ociish"))
    rss = [rows[f"RSS of the created container's waiting process [{bundle}]"] for bundle in BUNDLES]
    sequential = f"{bench.settings.sequential} × `run` /bin/true, sequentially"
    return [
        ratio_target(rows, "`run` /bin/true", RUN_RATIO_TARGET, "`run` of /bin/true"),
        ratio_target(rows, "`exec` /bin/true", EXEC_RATIO_TARGET, "`exec` of /bin/true"),
        Target(f"`state`, `kill`, `delete`, `start` ≤ {QUICK_COMMAND_TARGET_MS:.0f} ms",
               f"slowest: {slowest.key} {slowest.median('ociish'):.1f} ms; fastest: "
               + "{:.1f} ms".format(min(row.median("ociish") for row in quick)),
               slowest.median("ociish") <= QUICK_COMMAND_TARGET_MS),
        Target(f"`podman run --rm` ≤ {PODMAN_RATIO_TARGET}× with runc",
               f"not measured: {podman.skipped}" if podman.skipped else f"{podman.ratio():.2f}×",
               podman.meets_target()),
        Target("the created container's waiting process ≤ runc's RSS",
               "; ".join(f"{row.bundle}: {row.median('ociish'):.1f} vs {row.median('runc'):.1f} MiB" for row in rss),
               all(row.meets_target() for row in rss)),
        ratio_target(rows, sequential, SEQUENTIAL_RATIO_TARGET, sequential),
        scaling_target(rows, bench),
    ]


def scaling_target(rows: dict[str, Row], bench: Bench) -> Target:
    """Parallel speedup over one-at-a-time (example bundle), as a share of the cores the containers could use."""
    base_count = bench.settings.parallel[0]
    serial = rows[f"{base_count} containers one at a time [{BUNDLES[0]}]"]
    cores = os.cpu_count() or 1
    parts, efficiencies = [], []
    for count in bench.settings.parallel:
        parallel = rows[f"{count} containers in parallel [{BUNDLES[0]}]"]
        speedups = {name: serial.median(name) / base_count * count / parallel.median(name) for name in ("ociish", "runc")}
        efficiencies.append(speedups["ociish"] / min(cores, count))
        parts.append(f"{count}: {speedups['ociish']:.2f}× (runc {speedups['runc']:.2f}×)")
    return Target(f"parallel creates scale with cores: speedup over one at a time ≥ "
                  f"{PARALLEL_EFFICIENCY_TARGET:.0%} of {cores} cores (example bundle)",
                  "; ".join(parts), min(efficiencies) >= PARALLEL_EFFICIENCY_TARGET)


def report(rows: list[Row], bench: Bench, info: dict[str, str], command: str, chart: Path | None,
           took: float) -> str:
    """The markdown page: method, machine, the side-by-side table, the baseline and the targets."""
    by_key = {row.key: row for row in rows}
    compared = [row for row in rows if row.skipped or "runc" in row.samples]
    baselines = [row for row in rows if not row.skipped and "runc" not in row.samples]
    names = [rt.name for rt in bench.runtimes]
    state = by_key[f"`state` (running) [{BUNDLES[0]}]"].median("ociish")
    mark = {True: "met", False: "**not met**", None: "not measured"}
    out = [
        f"# Benchmarks: ociish against {' and '.join(names[1:])}",
        "",
        f"Generated by `{command}` (issues 7 and 16) in {took / 60:.1f} min; do not edit by hand.",
        "Rows alternate the runtimes within every iteration, rotating the order, each runtime with a private",
        "`--root`, on the same bundles: every row on three configs over the example busybox rootfs —",
        "**example** (bundles/busybox/config.json), **runc spec** (`runc spec`'s default as written) and",
        "**podman** (the config podman writes for `podman run`, its host files replaced by the bundle's);",
        "`process.args` and `terminal` false are all that is changed.  crun runs through",
        "`unshare -m sh -c 'umount /sys/fs/cgroup/unified; exec crun ...'` (Debian's crun refuses this machine's",
        "hybrid cgroups), which adds that unshare and sh to its numbers.",
        "Times are wall times of the runtime command as a client runs it; spread is p10–p90",
        "(min–max below 10 samples); ratios are of the medians (below 1 means ociish is faster or smaller).",
        "",
        "## Machine",
        "",
        *[f"- **{key}**: {value}" for key, value in info.items()],
        "",
        "## Results",
        "",
        comparison_table(compared, names),
        "",
        "Interpreter baseline, timed in the same iterations as `state` on the example bundle:",
        "",
        "| command | median ms | spread ms | `state` (ociish) above it |",
        "|---|---|---|---|",
        *[f"| {row.title} | {fmt(row.median(name), 'ms')} | {spread(row.samples[name], 'ms')} | "
          f"{state - row.median(name):+.1f} ms |" for row in baselines for name in row.samples],
        "",
        "## Targets of issue 16",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *[f"| {t.what} | {t.measured} | {mark[t.met]} |" for t in targets(by_key, bench)],
        "",
        "Where the time goes, what bounds the targets not met, and the levers used: [performance.md](performance.md).",
        "",
    ]
    if chart is not None:
        out += [f"![ociish/runc per row]({chart.name})", ""]
    return "\n".join(out)


def draw_chart(rows: list[Row], path: Path, info: dict[str, str]) -> None:
    """Horizontal bars of ociish/runc per row, on a log scale so 0.5× and 2× look alike."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [row for row in rows if not row.skipped and "runc" in row.samples][::-1]
    ratios = [row.ratio() for row in shown]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(shown) + 1.5))
    ax.barh([row.key.replace("`", "") for row in shown], ratios,
            color=["tab:green" if r <= 1.0 else "tab:red" for r in ratios])
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1)
    for y, (row, r) in enumerate(zip(shown, ratios)):
        ax.annotate(f"{r:.2f}×", (r, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
        if row.ratio_target is not None:
            ax.plot([row.ratio_target], [y], marker="|", markersize=16, markeredgewidth=2, color="black")
    low, high = min(0.5, min(ratios) / 1.5), max(2.0, max(ratios) * 1.6)
    ax.set_xlim(low, high)
    ax.set_xticks([t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if low <= t <= high])
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:g}×")
    ax.xaxis.set_minor_formatter(lambda x, _: "")
    ax.set_xlabel("ociish / runc, medians (log scale; left of 1 = ociish faster or smaller; | = the target)")
    ax.set_title(f"ociish vs runc — {info['date']}, {info['cores']} cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def measure_all(bench: Bench) -> list[Row]:
    """Every row, in report order, printing each as it lands (the full run takes minutes)."""
    row_functions: list[Callable[[Bench, str], list[Row]]] = [
        measure_run,
        measure_lifecycle_steps,
        measure_full_lifecycle,
        measure_exec,
        measure_sequential,
        partial(measure_concurrent, count=bench.settings.parallel[0], workers=1),
        *(partial(measure_concurrent, count=n, workers=n) for n in bench.settings.parallel),
    ]
    rows: list[Row] = []
    with subreaper():
        try:
            for function in row_functions:
                for bundle in BUNDLES:
                    rows += progress(function(bench, bundle))
        finally:
            for rt in bench.runtimes:
                remove_containers(rt)
            remove_strays(bench.id_prefix)
    rows += progress(measure_podman(bench))  # not as a subreaper: conmon is reparented to init, as usual
    return rows


def progress(rows: list[Row]) -> list[Row]:
    for row in rows:
        medians = ", ".join(f"{name} {fmt(statistics.median(v), row.unit)}" for name, v in row.samples.items())
        print(f"{row.key}: {medians or row.skipped} {row.unit}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations and containers: a smoke run")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the markdown report here and the chart next to it (.png); "
                             "default docs/benchmarks.md, none with --quick")
    parser.add_argument("--ociish", type=Path, default=Path(sys.executable).with_name("ociish"))
    parser.add_argument("--runc", type=Path, default=Path(shutil.which("runc", path="/usr/sbin:/usr/bin") or "runc"))
    parser.add_argument("--no-crun", action="store_true", help="leave crun out even where it is installed")
    parser.add_argument("--iterations", type=int, default=None,
                        help="samples per runtime of the per-call rows (and podman's), instead of the setting's")
    parser.add_argument("--repeats", type=int, default=None,
                        help="samples per runtime of the total-time rows, instead of the setting's")
    args = parser.parse_args(argv)
    out: Path | None = args.out or (None if args.quick else REPO / "docs" / "benchmarks.md")
    if os.geteuid() != 0:
        parser.error("run as root: the benchmark runs real containers")
    for binary in (args.ociish, args.runc):
        if not os.access(binary, os.X_OK):
            parser.error(f"{binary} is not an executable")
    if out is not None and not out.parent.is_dir():  # these two checked before minutes of measuring
        parser.error(f"{out.parent} is not a directory")
    if out is not None and importlib.util.find_spec("matplotlib") is None:
        parser.error("the chart needs matplotlib: .venv/bin/pip install -e '.[bench]'")

    began, cpu_at_start = time.monotonic(), cpu_seconds()
    workdir = Path(tempfile.mkdtemp(prefix="ociish-bench-"))
    try:
        rootfs = workdir / "rootfs"
        subprocess.run(["sh", str(BUILD_ROOTFS), str(rootfs)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        settings = QUICK if args.quick else FULL
        if args.iterations:  # a loaded machine: fewer samples rather than a run of an hour
            settings = replace(settings, iterations=args.iterations, podman_iterations=args.iterations)
        if args.repeats:
            settings = replace(settings, repeats=args.repeats)
        crun = None if args.no_crun else crun_runtime(workdir)
        runtimes = (Runtime("ociish", args.ociish.resolve(), workdir / "ociish-root"),
                    Runtime("runc", args.runc.resolve(), workdir / "runc-root"), *([crun] if crun else []))
        bundles: dict[str, dict[str, tuple[Path, Path]]] = {}
        for n, name in enumerate(BUNDLES):
            config = base_config(name, args.runc, workdir)
            bundles[name] = {rt.name: (make_bundle(workdir / f"{rt.name}-true-{n}", rootfs, config, ["/bin/true"], rt),
                                       make_bundle(workdir / f"{rt.name}-sleep-{n}", rootfs, config,
                                                   ["sleep", "1000000"], rt))
                             for rt in runtimes}
        bench = Bench(
            runtimes=runtimes,
            settings=settings, workdir=workdir, rootfs=rootfs, bundles=bundles,
            interpreter=shebang_interpreter(args.ociish))
        info = machine(bench)
        rows = measure_all(bench)
        info["CPU used by other processes"] = others_cpu(cpu_at_start, time.monotonic() - began)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    took = time.monotonic() - began
    command = " ".join([".venv/bin/python benchmarks/bench.py", *(argv if argv is not None else sys.argv[1:])])
    chart = out.with_suffix(".png") if out is not None else None
    page = report(rows, bench, info, command, chart, took)
    print(page)
    if out is not None and chart is not None:
        draw_chart(rows, chart, info)
        out.write_text(page)
        print(f"wrote {out} and {chart} in {took:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
