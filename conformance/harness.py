"""What a check works with: a session, its context, containers and probes."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from conformance import host
from conformance.assets import build_probe, build_rootfs
from conformance.bundle import PROBE, Bundle
from conformance.model import Status
from conformance.probe_report import ProbeOutputError, ProbeReport
from conformance.runtime import DEFAULT_TIMEOUT, CommandResult, Runtime

ID_PREFIX = "ocf"
T = TypeVar("T")
POLL = 0.02


class CheckFailed(Exception):
    """A hard failure: the check cannot go on."""


class CheckSkipped(Exception):
    """The check cannot run on this host (reason in the message)."""


class Session:
    """Shared state of one suite run: runtime path, probe, rootfs template."""

    def __init__(self, runtime: str, timeout: float = DEFAULT_TIMEOUT):
        self.runtime_path = runtime
        self.timeout = timeout
        self.workdir = Path(tempfile.mkdtemp(prefix="ociish-conformance-"))
        os.chmod(self.workdir, 0o711)  # user-namespaced containers must traverse it
        self.tag = uuid.uuid4().hex[:6]
        self._counter = itertools.count()
        self._lock = threading.Lock()
        try:
            self.probe = build_probe()
            self.template = build_rootfs(self.workdir / "rootfs-template", self.probe)
        except BaseException:
            self.close()
            raise
        self.host_ns = host.namespaces()

    def next_index(self) -> int:
        with self._lock:
            return next(self._counter)

    def close(self) -> None:
        """Remove every leftover of this session, including stray cgroups."""
        host.remove_cgroups(host.find_cgroups(f"{ID_PREFIX}{self.tag}"))
        host.umount_under(self.workdir)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CheckContext:
    """Per-check sandbox: own --root, bundles, ids, soft expectations, cleanup."""

    def __init__(self, session: Session, check_name: str, covers: tuple[str, ...]):
        self.session = session
        self.check_name = check_name
        self.covers = covers
        index = session.next_index()
        self.dir = session.workdir / f"c{index:03d}"
        self.dir.mkdir()
        os.chmod(self.dir, 0o711)
        self.runtime = Runtime(session.runtime_path, self.dir / "root", session.timeout)
        self.id_stem = f"{ID_PREFIX}{session.tag}-{index:03d}"
        self._ids = itertools.count()
        self.created: list[str] = []
        self.failures: dict[str | None, list[str]] = {}
        self.skipped: dict[str, str] = {}
        self._cleanups: list[Callable[[], object]] = []

    # -- verdicts ---------------------------------------------------------
    def expect(self, condition: object, message: str, req: str | None = None) -> bool:
        """Soft assertion; a failure marks req (or every covered requirement)."""
        if not condition:
            if req is not None and req not in self.covers:
                raise ValueError(f"{self.check_name}: {req} is not in covers")
            self.failures.setdefault(req, []).append(message)
        return bool(condition)

    def require(self, condition: object, message: str) -> None:
        """Hard assertion: stop the check, failing everything it covers."""
        if not condition:
            raise CheckFailed(message)

    def need(self, value: T | None, message: str) -> T:
        """value, which must be present (else a hard failure like require)."""
        if value is None:
            raise CheckFailed(message)
        return value

    @staticmethod
    def skip(reason: str) -> NoReturn:
        raise CheckSkipped(reason)

    def skip_requirement(self, req: str, reason: str) -> None:
        """This check cannot judge req (another check may); others go on."""
        self.skipped[req] = reason

    def verdicts(self) -> dict[str, tuple[Status, str]]:
        """Per covered requirement: pass, or fail with the collected reasons."""
        common = self.failures.get(None, [])
        result = {}
        for req in self.covers:
            msgs = common + self.failures.get(req, [])
            if msgs:
                result[req] = (Status.FAIL, "; ".join(msgs))
            elif req in self.skipped:
                result[req] = (Status.SKIP, self.skipped[req])
            else:
                result[req] = (Status.PASS, "")
        return result

    # -- resources ----------------------------------------------------------
    def new_id(self) -> str:
        cid = f"{self.id_stem}-{next(self._ids)}"
        self.created.append(cid)
        return cid

    def bundle(self, name: str = "bundle") -> Bundle:
        return Bundle(self.dir / name, self.session.template)

    def scratch(self, name: str) -> Path:
        """A fresh directory in the check's sandbox."""
        path = self.dir / name
        path.mkdir(parents=True)
        return path

    def defer(self, fn: Callable[[], object]) -> None:
        """Run fn at cleanup (last registered runs first)."""
        self._cleanups.append(fn)

    def container(self, bundle: Bundle, cid: str | None = None) -> Container:
        return Container(self, bundle, cid or self.new_id())

    def close(self) -> None:
        """Force-delete containers, run deferred cleanups, remove leftovers."""
        for cid in self.created:
            self.runtime.delete(cid, force=True, timeout=10)
        for fn in reversed(self._cleanups):
            with contextlib.suppress(Exception):  # cleanup is best effort
                fn()
        host.remove_cgroups(host.find_cgroups(f"{self.id_stem}-"))
        host.umount_under(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- common flows -------------------------------------------------------
    def observe(self, bundle: Bundle, *probe_args: str, terminal: bool = False,
                write: bool = True) -> ProbeReport:
        """Run the probe (with args) in a container from bundle; its report.

        Goes through create, start, waiting for `stopped`, and delete, failing
        the check if any step does.
        """
        if write:
            bundle.process["args"] = [PROBE, *probe_args]
            bundle.process["terminal"] = terminal
            bundle.write()
        c = self.container(bundle)
        if terminal:
            with ConsoleSocket(self.dir / f"{c.id}.sock") as console:
                c.create("--console-socket", str(console.path))
                pty = console.receive(self.session.timeout)
                try:
                    c.start()
                    text = read_until_closed(pty, self.session.timeout)
                finally:
                    os.close(pty)
        else:
            c.create()
            c.start()
            c.wait_stopped()
            text = c.stdout()
        c.wait_stopped()
        c.delete()
        try:
            return ProbeReport.from_output(text)
        except ProbeOutputError as exc:
            raise CheckFailed(f"{exc}; stderr: {c.stderr()[-300:]}") from exc

    def run_fails(self, bundle: Bundle, *, write: bool = True,
                  cwd: Path | None = None) -> tuple[bool, str]:
        """Create and start a container expected to be rejected.

        Returns (rejected, detail): rejected is true when create or start
        failed and the container's program never ran (the probe printed
        nothing).  cwd is where the runtime runs (relative paths in a config
        that is not validated resolve from there).
        """
        if write:
            bundle.write()
        c = self.container(bundle)
        res = c.create(check=False, cwd=cwd)
        if res.ok:
            res = c.start(check=False)
            if res.ok:
                c.wait_stopped(check=False)
        ran = "ociish-conformance" in c.stdout()
        if res.ok:
            return False, "the runtime accepted the configuration"
        if ran:
            return False, f"the program ran although {res.describe()}"
        return True, res.describe()


class Container:
    """One container id driven through the runtime's lifecycle operations."""

    def __init__(self, ctx: CheckContext, bundle: Bundle, cid: str):
        self.ctx = ctx
        self.bundle = bundle
        self.id = cid
        self.rt = ctx.runtime
        self.out_path = ctx.dir / f"{cid}.out"
        self.err_path = ctx.dir / f"{cid}.err"

    def _check(self, res: CommandResult, check: bool) -> CommandResult:
        if check and not res.ok:
            raise CheckFailed(res.describe())
        return res

    def create(self, *extra: str, check: bool = True, **kw: Any) -> CommandResult:
        """create; the container's stdout/stderr go to files we can read."""
        with open(self.out_path, "ab") as out, open(self.err_path, "ab") as err:
            res = self.rt.create(self.id, self.bundle.path, *extra, stdout=out,
                                 stderr=err, **kw)
        res.stderr = self.stderr()
        return self._check(res, check)

    def start(self, check: bool = True) -> CommandResult:
        return self._check(self.rt.start(self.id), check)

    def kill(self, sig: str = "KILL", check: bool = True) -> CommandResult:
        return self._check(self.rt.kill(self.id, sig), check)

    def delete(self, force: bool = False, check: bool = True) -> CommandResult:
        return self._check(self.rt.delete(self.id, force=force), check)

    def state(self) -> dict[str, Any] | None:
        return self.rt.state(self.id)[1]

    def status(self) -> str | None:
        st = self.state()
        return st.get("status") if st else None

    def pid(self) -> int:
        st = self.state()
        if not st or not isinstance(st.get("pid"), int) or st["pid"] <= 0:
            raise CheckFailed(f"state has no container pid: {st}")
        return int(st["pid"])

    def wait_status(self, wanted: str, timeout: float | None = None,
                    check: bool = True) -> bool:
        """Poll state until status is wanted (or the container is gone)."""
        deadline = time.monotonic() + (timeout or self.ctx.session.timeout)
        status = None
        while time.monotonic() < deadline:
            status = self.status()
            if status == wanted or status is None:
                break
            time.sleep(POLL)
        if check and status != wanted:
            raise CheckFailed(f"container status is {status!r}, wanted {wanted!r}")
        return status == wanted

    def wait_stopped(self, timeout: float | None = None, check: bool = True) -> bool:
        return self.wait_status("stopped", timeout, check)

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace") if self.err_path.exists() else ""

    def report(self) -> ProbeReport:
        try:
            return ProbeReport.from_output(self.stdout())
        except ProbeOutputError as exc:
            raise CheckFailed(str(exc)) from exc

    def exec(self, process: dict[str, Any], check: bool = True) -> CommandResult:
        """Run an extra process in the container (runc's `exec --process`)."""
        spec = self.ctx.dir / f"{self.id}-exec.json"
        spec.write_text(json.dumps(process))
        with open(self.out_path, "ab") as out:
            res = self.rt.invoke("exec", "--process", str(spec), self.id, stdout=out)
        return self._check(res, check)


class ConsoleSocket:
    """A unix socket listening for the pty master sent by --console-socket."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)

    def receive(self, timeout: float) -> int:
        """Accept one connection and return the file descriptor sent on it."""
        self.sock.settimeout(timeout)
        try:
            conn, _ = self.sock.accept()
        except TimeoutError as exc:
            raise CheckFailed("runtime never connected to the console socket") from exc
        with conn:
            conn.settimeout(timeout)
            _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        if not fds:
            raise CheckFailed("no file descriptor received on the console socket")
        for extra in fds[1:]:
            os.close(extra)
        return fds[0]

    def __enter__(self) -> ConsoleSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def read_until_closed(fd: int, timeout: float) -> str:
    """Read a pty master until the other side is closed (EIO) or timeout."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], POLL * 5)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")

