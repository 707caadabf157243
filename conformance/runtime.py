"""Invoke a runtime binary that speaks runc's command line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

DEFAULT_TIMEOUT = 15.0


@dataclass
class CommandResult:
    """Exit status and output of one runtime invocation."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """One line for failure messages: command, status and stderr tail."""
        what = "timed out" if self.timed_out else f"rc={self.returncode}"
        err = " ".join(self.stderr.split())[-300:]
        op = self.argv[3] if len(self.argv) > 3 else "(no command)"
        return f"{op} {what}" + (f": {err}" if err else "")


class Runtime:
    """A runtime binary plus the private state directory (--root) it uses."""

    def __init__(self, binary: str, root: Path, timeout: float = DEFAULT_TIMEOUT):
        self.binary = binary
        self.root = root
        self.timeout = timeout

    def invoke(self, *args: str, stdout: BinaryIO | None = None,
               stderr: BinaryIO | None = None, cwd: Path | None = None,
               oom_score_adj: int | None = None,
               timeout: float | None = None) -> CommandResult:
        """Run `binary --root ROOT ARGS...` and wait for it, with a timeout.

        Output goes to files, never pipes: a container started by the call may
        inherit them and keep them open long after the runtime has exited.
        The runtime runs in its own process group so that a hung runtime can
        be killed whole.  With oom_score_adj the runtime is started with that
        value (to observe what it passes on to the container).
        """
        argv = [self.binary, "--root", str(self.root), *args]
        cmd = argv
        if oom_score_adj is not None:
            cmd = ["/bin/sh", "-c",
                   f'echo {oom_score_adj} > /proc/self/oom_score_adj && exec "$@"',
                   "sh", *argv]
        with _output(stdout) as out, _output(stderr) as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, cwd=cwd, start_new_session=True)
            timed_out = False
            try:
                proc.wait(timeout=timeout or self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                proc.wait()
            return CommandResult(argv, proc.returncode, _read(out, stdout),
                                 _read(err, stderr), timed_out)

    def create(self, cid: str, bundle: Path, *extra: str, **kw: Any) -> CommandResult:
        return self.invoke("create", "--bundle", str(bundle), *extra, cid, **kw)

    def start(self, cid: str, **kw: Any) -> CommandResult:
        return self.invoke("start", cid, **kw)

    def kill(self, cid: str, sig: str = "KILL", **kw: Any) -> CommandResult:
        return self.invoke("kill", cid, sig, **kw)

    def delete(self, cid: str, force: bool = False, **kw: Any) -> CommandResult:
        return self.invoke("delete", *(["--force"] if force else []), cid, **kw)

    def state(self, cid: str, **kw: Any) -> tuple[CommandResult, dict[str, Any] | None]:
        """Query state; the parsed JSON object or None if it is not one."""
        res = self.invoke("state", cid, **kw)
        if not res.ok:
            return res, None
        try:
            data = json.loads(res.stdout)
        except ValueError:
            return res, None
        return res, data if isinstance(data, dict) else None


def version(binary: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """First line of `binary --version`, or "" if it has none."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=timeout, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.splitlines()[0] if out else ""


class _output:
    """Context manager: the caller's file, or an anonymous temporary file."""

    def __init__(self, given: BinaryIO | None):
        self.given = given
        self.own: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if self.given is not None:
            return self.given
        self.own = tempfile.TemporaryFile()
        return self.own

    def __exit__(self, *exc: object) -> None:
        if self.own is not None:
            self.own.close()


def _read(f: BinaryIO, given: BinaryIO | None) -> str:
    """Text written to an anonymous output file ("" for caller-owned files)."""
    if given is not None:
        return ""
    f.seek(0)
    return f.read().decode(errors="replace")


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
