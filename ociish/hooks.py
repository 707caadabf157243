"""Run OCI hooks: the state JSON on stdin, exact argv and env, a timeout, output captured.

A hook without ``env`` inherits the runtime's environment (an empty ``env`` list gives an
empty one), as runc and crun do.

Built on fork/execve rather than subprocess so that the container init, which runs the
createContainer and startContainer hooks, needs no extra imports.
"""

from __future__ import annotations

import os
import select
import time

from ociish.errors import OciishError
from ociish.linux import libc as L
from ociish.linux.cpython import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

OUTPUT_LIMIT = 4096


class HookError(OciishError):
    pass


def run_hooks(kind: str, hooks: list[dict[str, Any]], state: bytes | Callable[[], bytes], cwd: str | None = None,
              runtime_env: Mapping[str, str] | None = None, warn: Callable[[str], None] | None = None) -> None:
    """Run the hooks of ``kind`` in order.  ``state`` is the state JSON they read, or what
    gives it as each hook starts (poststart's changes when the process exits meanwhile).
    The first failure raises HookError, unless ``warn`` takes it and the rest still run
    (poststop's failures are warnings: config.md)."""
    for index, hook in enumerate(hooks):
        try:
            run_hook(f"hooks.{kind}[{index}]", hook, state if isinstance(state, bytes) else state(), cwd, runtime_env)
        except HookError as e:
            if warn is None:
                raise
            warn(e.message)


def run_hook(where: str, hook: dict[str, Any], state_json: bytes, cwd: str | None,
             runtime_env: Mapping[str, str] | None = None) -> None:
    """Run one hook to completion; HookError naming ``where`` when it fails or times out.

    ``runtime_env`` is what a hook without ``env`` inherits: this process's environment
    unless given (the container init passes on that of `create`)."""
    path = hook["path"]
    argv = hook.get("args") or [path]
    if hook.get("env") is None:
        env = dict(os.environ if runtime_env is None else runtime_env)
    else:
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in hook["env"])
    timeout = hook.get("timeout")
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(stdin_r, 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            if cwd:
                os.chdir(cwd)
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            L.close_range_cloexec(3)
            os.execve(path, argv, env)
        except OSError as e:
            os.write(2, f"cannot run {path}: {e.strerror}\n".encode())
        os._exit(127)
    os.close(stdin_r)
    os.close(out_w)
    try:
        try:
            os.write(stdin_w, state_json)
        except BrokenPipeError:
            pass  # a hook need not read its stdin; judge it by its exit status
        os.close(stdin_w)
        stdin_w = -1
        output, timed_out = _collect(pid, out_r, timeout)
    finally:
        if stdin_w >= 0:
            os.close(stdin_w)
        os.close(out_r)
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace").strip()
    detail = f": {text}" if text else ""
    if timed_out:
        raise HookError(f"{where}: {path} ran past its timeout of {timeout}s{detail}")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        how = f"exit status {code}" if code > 0 else f"signal {-code}"
        raise HookError(f"{where}: {path} failed with {how}{detail}")


def _collect(pid: int, out_fd: int, timeout: float | None) -> tuple[bytes, bool]:
    """Read the hook's output until it closes; SIGKILL it when the timeout passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([out_fd], [], [], wait)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            return b"".join(chunks), True
        data = os.read(out_fd, 65536)
        if not data:
            return b"".join(chunks), False
        if size < OUTPUT_LIMIT:
            chunks.append(data[: OUTPUT_LIMIT - size])
            size += len(chunks[-1])
