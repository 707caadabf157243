"""The differential run: the same bundles under several runtimes, what each shows compared.

Where the suite judges one runtime against the spec, this judges ociish against runc (and
crun, where it runs) on what a client or a container could tell apart: the exit status and
the shape of stderr of every lifecycle command, the state JSON's members, and the
container's own view as the probe reports it (ids, capabilities, environment, cwd, umask,
rlimits, hostname, mounts, /dev, sysctls, seccomp, cgroup membership, ...).  The cases
are hand-written (one or more per config.json field) and generated from a seed
(`generated_cases`), so each run of a seed is the same.  A difference is either listed
in `conformance.deliberate` with its reason or reported as unexplained.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from conformance.bundle import PROBE, Bundle, setting
from conformance.deliberate import explain
from conformance.harness import CheckContext, CheckFailed, Session
from conformance.probe_report import ProbeOutputError, ProbeReport
from conformance.runtime import Runtime

PROBE_ARGS = ("--sysctl", "kernel.hostname", "--sysctl", "net.ipv4.ip_forward", "--call", "getcwd",
              "--call", "uname", "--call", "getpriority")
# what differs by nature between two runs of one runtime: numbers the kernel hands out
VOLATILE = {"pid", "ppid", "namespaces", "clocks", "complete", "probe", "sched"}
STATUS_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Uid", "Gid",
                 "Groups")
CONFIG_VERSION = "1.0.2"  # what all three read: Debian's crun refuses a config.json newer than it knows
CRUN_WRAPPER = "#!/bin/sh\nexec unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun \"$@\"' crun \"$@\"\n"


@dataclass
class Case:
    """One bundle: ``change`` edits the base config (the probe runs as process.args)."""

    name: str
    change: Callable[[Bundle], None]
    probe_args: tuple[str, ...] = ()
    combined: bool = True  # drawn into generated cases (not one runc refuses: nothing else would be compared)
    host_state: tuple[str, ...] = ()  # observables that show the host's own state, which changes between runs

    def observe(self, ctx: CheckContext) -> dict[str, Any]:
        return observe(ctx, self)


@dataclass
class Difference:
    case: str
    observable: str
    values: dict[str, Any]
    reason: str | None = None


@dataclass
class Outcome:
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def unexplained(self) -> list[Difference]:
        return [d for d in self.differences if d.reason is None]

    @property
    def of_ociish(self) -> list[Difference]:
        """The differences between ociish and runc (crun's own are information only)."""
        return [d for d in self.differences if d.values.get("ociish") != d.values.get("runc")]


# -------------------------------------------------------------------- the cases


def _mkdir(container_path: str, then: Callable[[Bundle], None]) -> Callable[[Bundle], None]:
    def change(b: Bundle) -> None:
        b.in_rootfs(container_path).mkdir(parents=True, exist_ok=True)
        then(b)
    return change


def _mount(entry: dict[str, Any]) -> Callable[[Bundle], None]:
    def change(b: Bundle) -> None:
        b.in_rootfs(entry["destination"]).mkdir(parents=True, exist_ok=True)
        b.config.setdefault("mounts", []).append(entry)
    return change


SECCOMP_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}

HAND_WRITTEN = [
    Case("base", lambda b: None),
    Case("hostname", setting("hostname", "diff-host")),
    Case("domainname", setting("domainname", "diff.example")),
    Case("process.cwd", _mkdir("/work/sub", setting("process.cwd", "/work/sub"))),
    Case("process.env", setting("process.env", ["PATH=/bin", "A=1", "EMPTY=", "HOME=/root"])),
    Case("process.env.no-home", setting("process.env", ["PATH=/bin"])),
    Case("process.user", setting("process.user", {"uid": 1000, "gid": 1000, "additionalGids": [5, 6]})),
    Case("process.user.umask", setting("process.user", {"uid": 0, "gid": 0, "umask": 0o27})),
    Case("process.rlimits", setting("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
                                                     {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}])),
    Case("process.capabilities", setting("process.capabilities", {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"], "effective": ["CAP_CHOWN"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]})),
    Case("process.capabilities.ambient-unraisable", setting("process.capabilities.ambient", ["CAP_KILL"])),
    Case("process.capabilities.unknown", setting("process.capabilities", {
        k: ["CAP_KILL", "CAP_NOT_ONE"] for k in ("bounding", "effective", "permitted")})),
    Case("process.capabilities.effective-not-permitted", setting("process.capabilities", {
        "bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"]}),
         combined=False),
    Case("unknown-key", setting("linux.namespace", [])),
    Case("process.noNewPrivileges.false", setting("process.noNewPrivileges", False)),
    Case("process.oomScoreAdj", setting("process.oomScoreAdj", 123)),
    Case("root.readonly", setting("root.readonly", True)),
    Case("mounts.tmpfs", _mount({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                                 "options": ["nosuid", "size=1m"]}), ("--stat", "/scratch")),
    Case("mounts.bind-ro", _mount({"destination": "/hostetc", "type": "bind", "source": "/etc",
                                   "options": ["rbind", "ro"]})),
    Case("linux.maskedPaths", setting("linux.maskedPaths", ["/proc/kcore", "/proc/keys"])),
    Case("linux.maskedPaths.directory", _mkdir("/secret", setting("linux.maskedPaths", ["/secret"]))),
    Case("linux.readonlyPaths", setting("linux.readonlyPaths", ["/proc/sys", "/proc/bus"])),
    Case("linux.sysctl", setting("linux.sysctl", {"net.ipv4.ip_forward": "1"})),
    Case("linux.seccomp", setting("linux.seccomp", SECCOMP_MKDIR)),
    Case("linux.namespaces.no-net", lambda b: b.set_namespace("network", present=False),
         host_state=("container.netifs", "container.inet")),
    Case("linux.namespaces.cgroup", lambda b: b.set_namespace("cgroup")),
    Case("linux.resources.pids", setting("linux.resources", {"pids": {"limit": 50}})),
]


def generated_cases(seed: int, count: int) -> list[Case]:
    """Configs combining several hand-written changes, drawn from ``seed``."""
    rng = random.Random(seed)
    pool = [c for c in HAND_WRITTEN if c.name != "base" and c.combined]
    cases = []
    for index in range(count):
        picked = rng.sample(pool, 3)

        def change(b: Bundle, picked: list[Case] = picked) -> None:
            for case in picked:
                case.change(b)
        cases.append(Case(f"generated-{seed}-{index}:" + "+".join(c.name for c in picked), change,
                          host_state=tuple(key for c in picked for key in c.host_state)))
    return cases


# sections a drawn value could turn against the host running the comparison
SCHEMA_EXCLUDED = {
    "hooks": "runs host programs",
    "ociVersion": "Debian's crun refuses versions it does not know",
    "linux.sysctl": "a sysctl no namespace of the container isolates is the host's",
    "linux.rootfsPropagation": "shared propagation reaches the host's mounts",
    "linux.netDevices": "moves the host's network interfaces",
    "linux.cgroupsPath": "a cgroup outside the run's own, left behind",
    "linux.seccomp": "a filter that stops the probe reporting compares nothing",
    "linux": "replacing it all drops the namespaces",
}


def _safe(b: Bundle) -> None:
    """What a drawn section must not do here: run outside a mount namespace of its own,
    join the host's namespaces, or bind host paths."""
    spaces = [n for n in b.linux.get("namespaces") or [] if isinstance(n, dict) and n.get("type") != "mount"]
    b.linux["namespaces"] = [{k: v for k, v in n.items() if k != "path"} for n in spaces] + [{"type": "mount"}]
    mounts = b.config.get("mounts")
    if isinstance(mounts, list):
        b.config["mounts"] = [m for m in mounts if not isinstance(m, dict) or not (
            m.get("type") == "bind" or {"bind", "rbind"} & set(m.get("options") or []))]


def schema_cases(seed: int, count: int) -> list[Case]:
    """One section of the base config replaced by a value drawn from the config schema
    (conformance/schemagen.py): the sections in an order drawn from ``seed``, each case's
    value from its own example, the same cases for the same seed whatever the count."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed

    from conformance.schemagen import section_values, sections

    order = sections(SCHEMA_EXCLUDED)
    random.Random(seed).shuffle(order)
    examples: list[dict[str, Any]] = []

    @settings(max_examples=max(count, 64), database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @fixed_seed(seed)
    @given(section_values(order))
    def collect(values: dict[str, Any]) -> None:
        examples.append(values)

    collect()
    cases = []
    for index in range(min(count, len(examples))):
        section = order[index % len(order)]

        def change(b: Bundle, section: str = section, value: Any = examples[index][section]) -> None:
            setting(section, value)(b)
            _safe(b)
        cases.append(Case(f"schema-{seed}-{index}:{section}", change))
    return cases


# -------------------------------------------------------------------- observing


def _mount_view(line: str) -> str:
    """A mountinfo line without its ids, device numbers and peer groups."""
    fields = line.split()
    dash = fields.index("-")
    options = ",".join(o for o in fields[5].split(",") if o != "relatime")
    return f"{fields[4]} {options} {fields[dash + 1]} {fields[dash + 3] if len(fields) > dash + 3 else ''}"


def view(report: ProbeReport) -> dict[str, Any]:
    """What the container saw, as comparable values."""
    data = dict(report.data)
    shown = {key: value for key, value in data.items() if key not in VOLATILE | {"status", "mountinfo", "cgroup",
                                                                                    "fds", "netifs"}}
    shown["status"] = {name: data["status"].get(name) for name in STATUS_FIELDS}
    shown["mounts"] = sorted(_mount_view(line) for line in data.get("mountinfo", []))
    shown["cgroup.controllers"] = sorted(line.split(":")[1] for line in data.get("cgroup", []) if ":" in line)
    shown["fds"] = sorted(data.get("fds") or [])[:3] if isinstance(data.get("fds"), list) else data.get("fds")
    shown["stdio"] = [{k: v for k, v in entry.items() if k != "target"} if isinstance(entry, dict) else entry
                      for entry in data.get("stdio") or []]  # the files' paths are each runtime's sandbox
    shown["netifs"] = sorted(i.get("name", "") for i in data.get("netifs") or [] if isinstance(i, dict))
    return shown


def _stderr_shape(text: str) -> str:
    """How many lines, and whether they look like errors or warnings (the words differ)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return f"{len(lines)} line(s)"


def observe(ctx: CheckContext, case: Case) -> dict[str, Any]:
    """Run the case's bundle through create, state, start, wait, delete; every observable."""
    b = ctx.bundle()
    b.config["ociVersion"] = CONFIG_VERSION
    case.change(b)
    b.process["args"] = [PROBE, *PROBE_ARGS, *case.probe_args]
    b.write()
    c = ctx.container(b)
    seen: dict[str, Any] = {}
    created = c.create(check=False)
    seen["create.status"] = created.returncode
    # a refusal's words and how many problems it lists are each runtime's own; warnings count
    seen["create.stderr"] = _stderr_shape(created.stderr) if created.ok else "error"
    if created.ok:
        state = c.state() or {}
        seen["state.members"] = list(state)
        seen["state.status"] = state.get("status")
        started = c.start(check=False)
        seen["start.status"] = started.returncode
        c.wait_stopped(check=False)
        deleted = c.delete(check=False)
        seen["delete.status"] = deleted.returncode
        try:
            for key, value in view(ProbeReport.from_output(c.stdout())).items():
                seen[f"container.{key}"] = value
        except ProbeOutputError as e:
            seen["container"] = f"no report: {e}"
    for key in case.host_state:
        seen.pop(key, None)
    return seen


def _crun_wrapper(directory: Path) -> str | None:
    """crun under a private mount namespace without the cgroup2 mount (it refuses hybrid
    hosts), or None where crun is not installed."""
    if not shutil.which("crun"):
        return None
    wrapper = directory / "crun-without-unified"
    wrapper.write_text(CRUN_WRAPPER)
    wrapper.chmod(0o755)
    return str(wrapper)


class Observed(Protocol):
    """A case or a command scenario: a name, and what one runtime showed of it."""

    name: str

    def observe(self, ctx: CheckContext) -> dict[str, Any]: ...


def run(runtimes: dict[str, str], cases: Sequence[Observed], timeout: float,
        progress: Callable[[str], None] = lambda _: None) -> Outcome:
    """Every case under every runtime; differences against the first runtime's."""
    outcome = Outcome()
    baseline = next(iter(runtimes))
    with Session(runtimes[baseline], timeout) as session:
        for case in cases:
            seen = {}
            for name, binary in runtimes.items():
                ctx = CheckContext(session, f"diff-{name}", ())
                ctx.runtime = Runtime(binary, ctx.dir / "root", timeout)
                try:
                    seen[name] = case.observe(ctx)
                except CheckFailed as e:
                    seen[name] = {"error": str(e)}
                finally:
                    ctx.close()
            progress(case.name)
            for key in sorted({k for s in seen.values() for k in s}):
                values = {name: s.get(key) for name, s in seen.items()}
                outcome.compared += 1
                if any(v != values[baseline] for v in values.values()):
                    reason = explain(case.name, key, values) if values.get("ociish") != values[baseline] else \
                        "crun's own (ociish does as runc)"
                    outcome.differences.append(Difference(case.name, key, values, reason))
    return outcome


def summary(outcome: Outcome, runtimes: list[str]) -> str:
    ours = outcome.of_ociish
    lines = [f"differential run of {', '.join(runtimes)}: {outcome.compared} observables compared; "
             f"ociish differs from runc in {len(ours)}: {len(ours) - len(outcome.unexplained)} deliberate, "
             f"{len(outcome.unexplained)} unexplained; crun alone in {len(outcome.differences) - len(ours)}"]
    for d in outcome.differences:
        mark = "UNEXPLAINED" if d.reason is None else "deliberate" if d in ours else "crun"
        values = "; ".join(f"{n}={json.dumps(v)}" for n, v in _differing_parts(d.values).items())
        lines.append(f"{mark} {d.case} {d.observable}: {values}" + (f" ({d.reason})" if d.reason else ""))
    return "\n".join(lines)


def _differing_parts(values: dict[str, Any]) -> dict[str, Any]:
    """Of dict values, only the members that differ somewhere; lists as sets of items."""
    if all(isinstance(v, dict) for v in values.values()):
        keys = {k for v in values.values() for k in v}
        keys = {k for k in keys if len({json.dumps(v.get(k), sort_keys=True) for v in values.values()}) > 1}
        return {name: {k: v.get(k) for k in sorted(keys)} for name, v in values.items()}
    if all(isinstance(v, list) for v in values.values()):
        items = [{json.dumps(i, sort_keys=True) for i in v} for v in values.values()]
        common = set.intersection(*items)
        return {name: sorted(i for i in s if i not in common) for name, s in zip(values, items)}
    return values


def default_runtimes(ociish: str, directory: Path, with_crun: bool) -> dict[str, str]:
    """runc first (the baseline), then ociish, then crun where it runs here."""
    runtimes = {"runc": shutil.which("runc") or "/usr/sbin/runc", "ociish": ociish}
    crun = _crun_wrapper(directory) if with_crun else None
    if crun and subprocess.run([crun, "--version"], capture_output=True).returncode == 0:
        runtimes["crun"] = crun
    return runtimes
