"""The differential run's command scenarios: each drives one runtime's commands (exec, kill,
list, state, spec, pause/resume, update, ps, events, delete) on containers of the same
bundle and records what a client could tell apart: exit statuses, the number of stderr
lines, stdout with ids and numbers the kernel hands out replaced, JSON members, and the
cgroup files an update writes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.harness import CheckContext, CheckFailed, Container
from conformance.runtime import CommandResult

# signals the long-running container ignores, so a kill of one leaves it running
IGNORED = "HUP INT USR1 USR2 TERM"
SLEEPER = ["sh", "-c", f"trap '' {IGNORED}; sleep 1000 & exec sleep 1001"]


class Driver:
    """One runtime's side of a scenario: containers in its own sandbox, and what was seen."""

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.seen: dict[str, Any] = {}
        self.ids: list[str] = []

    def container(self, status: str = "running", args: list[str] | None = None,
                  resources: dict[str, Any] | None = None) -> Container:
        """A container of the sleeping bundle, brought to ``status``."""
        b = self.ctx.bundle(f"bundle{len(self.ids)}")
        b.config["ociVersion"] = "1.0.2"
        b.process["args"] = args or SLEEPER
        if resources:
            b.linux["resources"] = resources
        b.write()
        c = self.ctx.container(b)
        self.ids.append(c.id)
        c.create()
        if status in ("running", "paused", "stopped"):
            c.start()
            c.wait_status("running")
        if status == "paused":
            self.rt("pause", c.id)
            c.wait_status("paused")
        if status == "stopped":
            self.rt("kill", c.id, "KILL")
            c.wait_stopped()
        return c

    def rt(self, *args: str, cwd: Path | None = None) -> CommandResult:
        return self.ctx.runtime.invoke(*args, cwd=cwd)

    def normal(self, text: str) -> str:
        """stdout with this driver's container ids named by their order."""
        for index, cid in enumerate(self.ids):
            text = text.replace(cid, f"ID{index}")
        return text

    def call(self, key: str, *args: str, out: Callable[[str], Any] | None = None,
             cwd: Path | None = None) -> CommandResult:
        """Run a command; record its status, its stderr's line count and (with ``out``)
        a view of its stdout."""
        res = self.rt(*args, cwd=cwd)
        self.seen[f"{key}.status"] = "timeout" if res.timed_out else res.returncode
        self.seen[f"{key}.stderr"] = f"{len([x for x in res.stderr.splitlines() if x.strip()])} line(s)"
        if out is not None:
            try:
                self.seen[f"{key}.stdout"] = out(self.normal(res.stdout))
            except (ValueError, LookupError, TypeError) as e:
                self.seen[f"{key}.stdout"] = f"unreadable: {type(e).__name__}"
        return res

    def status_of(self, key: str, cid: str) -> None:
        _, state = self.ctx.runtime.state(cid)
        self.seen[f"{key}.state"] = state.get("status") if state else None


def text(value: str) -> str:
    return value


def lines(value: str) -> list[str]:
    return sorted(value.splitlines())


def shape(value: Any) -> Any:
    """A JSON value's structure: members and types, list items by their first."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def json_shape(value: str) -> Any:
    return shape(json.loads(value))


# -------------------------------------------------------------------- scenarios


def exec_(d: Driver) -> None:
    c = d.container()
    d.call("exit", "exec", c.id, "sh", "-c", "exit 7")
    d.call("env", "exec", c.id, "env", out=lines)
    d.call("cwd", "exec", c.id, "pwd", out=text)
    d.call("id", "exec", c.id, "id", out=text)
    d.call("--cwd", "exec", "--cwd", "/tmp", c.id, "pwd", out=text)
    d.call("--env", "exec", "--env", "A=1", "--env", "PATH=/bin:/usr/bin", "--env", "TERM=dumb", c.id, "env",
           out=lines)
    d.call("-e", "exec", "-e", "A=1", c.id, "env", out=lines)  # runc refuses -e and --env mixed
    d.call("--user", "exec", "--user", "1000:1000", c.id, "id", out=text)
    d.call("--user.uid", "exec", "--user", "1000", c.id, "id", out=text)
    d.call("--user.name", "exec", "--user", "nobody", c.id, "id", out=text)
    d.call("--additional-gids", "exec", "--user", "1000:1000", "--additional-gids", "5", c.id, "id", out=text)
    d.call("no-tty", "exec", c.id, "tty", out=text)
    d.call("--tty", "exec", "--tty", c.id, "tty")
    process = d.ctx.dir / "process.json"
    for name, env in (("--process", ["X=2", "PATH=/bin:/usr/bin"]), ("--process.no-path", ["X=2"])):
        process.write_text(json.dumps({"args": ["sh", "-c", "id; pwd; echo $X"], "cwd": "/tmp", "env": env,
                                       "user": {"uid": 2, "gid": 3}}))
        d.call(name, "exec", "--process", str(process), c.id, out=text)
    pid_file = d.ctx.dir / "exec.pid"
    d.call("--detach", "exec", "--detach", "--pid-file", str(pid_file), c.id, "true", out=text)
    d.seen["--detach.pid-file"] = bool(re.fullmatch(r"\d+", pid_file.read_text())) if pid_file.exists() else None
    d.call("missing-command", "exec", c.id, "no-such-command")
    d.call("bad-cwd", "exec", "--cwd", "/nonexistent", c.id, "true")
    d.call("missing-container", "exec", "no-such-container", "true")
    created = d.container("created")
    d.call("created", "exec", created.id, "true")
    paused = d.container("paused")
    d.call("paused", "exec", paused.id, "true")
    stopped = d.container("stopped")
    d.call("stopped", "exec", stopped.id, "true")


def kill(d: Driver) -> None:
    c = d.container()
    for sig in ("", "TERM", "SIGUSR1", "usr2", "1", "2", "0", "NOPE", "99", "-1"):
        d.call(f"{sig or 'default'}", "kill", c.id, *([sig] if sig else []))
        d.status_of(f"{sig or 'default'}", c.id)
    d.call("--all", "kill", "--all", c.id, "KILL")
    c.wait_stopped(check=False)
    d.status_of("--all", c.id)
    d.call("stopped", "kill", c.id, "KILL")
    d.call("stopped.0", "kill", c.id, "0")
    d.call("stopped.--all", "kill", "--all", c.id, "KILL")
    created = d.container("created")
    d.call("created", "kill", created.id, "KILL")
    created.wait_stopped(check=False)
    d.status_of("created", created.id)
    d.call("missing", "kill", "no-such-container", "KILL")


def list_(d: Driver) -> None:
    d.call("empty", "list", out=text)
    d.call("empty.json", "list", "--format", "json", out=text)
    d.call("empty.-q", "list", "-q", out=text)
    d.container("created")
    d.container("running")
    d.call("-q", "list", "-q", out=lines)
    d.call("--quiet", "list", "--quiet", out=lines)

    def members(value: str) -> Any:
        return [(list(entry), entry["id"], entry["status"]) for entry in json.loads(value)]
    d.call("json", "list", "--format", "json", out=members)
    d.call("-f", "list", "-f", "json", out=members)
    d.call("table", "list", "--format", "table", out=lambda v: [line.split()[0] for line in v.splitlines()])
    d.call("header", "list", out=lambda v: v.splitlines()[0].split())
    d.call("bad-format", "list", "--format", "yaml")


def state(d: Driver) -> None:
    for status in ("created", "running", "paused", "stopped"):
        c = d.container(status)
        res = d.call(status, "state", c.id)
        got = json.loads(res.stdout)
        d.seen[f"{status}.members"] = list(got)
        d.seen[f"{status}.status"] = got.get("status")
        d.seen[f"{status}.pid"] = "0" if got.get("pid") == 0 else "pid" if got.get("pid") else None
        d.seen[f"{status}.bundle"] = got.get("bundle") == str(c.bundle.path)
    d.call("missing", "state", "no-such-container")
    d.call("no-id", "state")


def spec(d: Driver) -> None:
    for flags in ((), ("--rootless",)):
        name = "spec" + "".join(flags)
        directory = d.ctx.scratch(name)
        d.call(name, "spec", *flags, cwd=directory)
        written = json.loads((directory / "config.json").read_text())
        for volatile in ("ociVersion", "hostname"):
            written.pop(volatile)
        masked = written.get("linux", {}).get("maskedPaths", [])
        if "/sys/devices/virtual/powercap" in masked:
            masked.remove("/sys/devices/virtual/powercap")  # runc 1.2's, deliberate
        d.seen[f"{name}.config"] = written
        d.call(f"{name}.again", "spec", *flags, cwd=directory)
    elsewhere = d.ctx.scratch("elsewhere")
    d.call("--bundle", "spec", "--bundle", str(elsewhere))
    d.seen["--bundle.written"] = (elsewhere / "config.json").exists()


def pause(d: Driver) -> None:
    c = d.container()
    for step in ("pause", "pause", "resume", "resume"):
        key = f"{step}.{'again' if f'{step}.status' in d.seen else 'first'}"
        d.call(key, step, c.id)
        d.status_of(key, c.id)
    created = d.container("created")
    d.call("created.pause", "pause", created.id)
    d.call("created.resume", "resume", created.id)
    stopped = d.container("stopped")
    d.call("stopped.pause", "pause", stopped.id)
    d.call("stopped.resume", "resume", stopped.id)
    d.call("missing", "pause", "no-such-container")


CGROUP_FILES = {"memory": ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes"),
                "pids": ("pids.max",),
                "cpu": ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"),
                "cpuset": ("cpuset.cpus",)}


def cgroup_values(pid: int) -> dict[str, str | None]:
    """The container's limits, read on the host (cgroup v1 files; v2's where unified)."""
    values: dict[str, str | None] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            for name in CGROUP_FILES.get(controller, ()):
                file = Path("/sys/fs/cgroup", controller, path.lstrip("/"), name)
                values[name] = file.read_text().strip() if file.exists() else None
    return values


def update(d: Driver) -> None:
    c = d.container(resources={"memory": {"limit": 128 << 20, "swap": 256 << 20}, "pids": {"limit": 100}})
    pid = c.pid()
    steps = [("--memory", "64m"), ("--memory-swap", "96m"), ("--memory", "-1"), ("--memory-reservation", "32m"),
             ("--pids-limit", "20"), ("--cpu-quota", "50000"), ("--cpu-period", "200000"), ("--cpu-share", "512"),
             ("--cpuset-cpus", "0"), ("--memory", "bogus"), ("--pids-limit", "x")]
    for flag, value in steps:
        key = f"{flag}={value}"
        d.call(key, "update", flag, value, c.id)
        d.seen[f"{key}.cgroup"] = cgroup_values(pid)
    resources = d.ctx.dir / "resources.json"
    resources.write_text(json.dumps({"memory": {"limit": 100 << 20, "swap": 200 << 20}, "pids": {"limit": 30},
                                     "cpu": {"quota": 10000, "period": 100000}}))
    d.call("--resources", "update", "--resources", str(resources), c.id)
    d.seen["--resources.cgroup"] = cgroup_values(pid)
    resources.write_text("{not json")
    d.call("--resources.bad", "update", "--resources", str(resources), c.id)
    d.call("no-flag", "update", c.id)
    stopped = d.container("stopped")
    d.call("stopped", "update", "--memory", "64m", stopped.id)
    d.call("missing", "update", "--memory", "64m", "no-such-container")


def ps(d: Driver) -> None:
    c = d.container()
    d.call("default", "ps", c.id, out=lambda v: (v.splitlines()[0].split(), len(v.splitlines())))
    d.call("-ef", "ps", c.id, "-ef", out=lambda v: (v.splitlines()[0].split(), len(v.splitlines())))
    d.call("json", "ps", "--format", "json", c.id, out=lambda v: (shape(json.loads(v)), len(json.loads(v))))
    d.call("table", "ps", "--format", "table", c.id, out=lambda v: len(v.splitlines()))
    d.call("bad-format", "ps", "--format", "yaml", c.id)
    created = d.container("created")
    d.call("created.json", "ps", "--format", "json", created.id, out=lambda v: len(json.loads(v)))
    stopped = d.container("stopped")
    d.call("stopped", "ps", stopped.id)
    d.call("missing", "ps", "no-such-container")


def events(d: Driver) -> None:
    c = d.container()
    d.call("--stats", "events", "--stats", c.id, out=json_shape)
    d.call("--stats.type", "events", "--stats", c.id, out=lambda v: (json.loads(v)["type"], json.loads(v)["id"]))
    stopped = d.container("stopped")
    d.call("stopped", "events", "--stats", stopped.id)
    d.call("missing", "events", "--stats", "no-such-container")


def delete(d: Driver) -> None:
    for status in ("created", "running", "paused", "stopped"):
        for force in ((), ("--force",)):
            c = d.container(status)
            key = f"{status}{''.join(force)}"
            d.call(key, "delete", *force, c.id)
            d.status_of(key, c.id)
            d.rt("delete", "--force", c.id)
    d.call("missing", "delete", "no-such-container")
    d.call("missing--force", "delete", "--force", "no-such-container")


@dataclass
class Scenario:
    name: str
    drive: Callable[[Driver], None]

    def observe(self, ctx: CheckContext) -> dict[str, Any]:
        d = Driver(ctx)
        try:
            self.drive(d)
        except (CheckFailed, ValueError, OSError) as e:  # what was seen up to here still counts
            d.seen["error"] = str(e)
        finally:
            for cid in d.ids:
                ctx.runtime.delete(cid, force=True)
        return d.seen


SCENARIOS = [Scenario(f"command.{f.__name__.rstrip('_')}", f)
             for f in (exec_, kill, list_, state, spec, pause, update, ps, events, delete)]
