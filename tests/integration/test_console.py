"""terminal: true with --console-socket: the pty master reaches the client over SCM_RIGHTS;
in the foreground, `run` relays the container's pty to its own terminal."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import socket
import subprocess
from pathlib import Path
from typing import Iterator

from conftest import Bundle, Runtime, unique_id


@contextlib.contextmanager
def typed_on_a_terminal(text: str) -> Iterator[int]:
    """A terminal (the slave of a fresh pty) with ``text`` already typed on it: the stdin
    of a foreground `run`, as a user's terminal would be."""
    master, slave = pty.openpty()
    try:
        os.write(master, text.encode())
        yield slave
    finally:
        os.close(slave)
        os.close(master)


def read_until_closed(fd: int, timeout: float = 10.0) -> bytes:
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return data
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the container closed its end of the pty
            return data
        if not chunk:
            return data
        data += chunk


def test_console_socket_delivers_a_working_pty(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["consoleSize"] = {"height": 30, "width": 100}
    bundle.shell("tty; stty size; test -t 0 && echo stdin-is-a-tty; ls -l /dev/console; read line; echo got:$line")
    sock_path = tmp_path / "console.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    cid = unique_id()
    try:
        runtime("create", "--bundle", str(bundle.path), "--console-socket", str(sock_path), cid, check=True)
        conn, _ = server.accept()
        payload, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        conn.close()
    finally:
        server.close()
    assert payload and len(fds) == 1
    master = fds[0]
    try:
        runtime("start", cid, check=True)
        os.write(master, b"hello\n")
        output = read_until_closed(master).decode(errors="replace").replace("\r", "")
    finally:
        os.close(master)
    assert "/dev/pts/0" in output
    assert "30 100" in output
    assert "stdin-is-a-tty" in output
    assert "got:hello" in output


def test_terminal_requires_a_console_socket(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["terminal"] = True
    bundle.write()
    result = runtime("create", "--bundle", str(bundle.path), unique_id())
    assert result.returncode == 1 and "--console-socket" in result.stderr
    assert runtime.ids() == []


def test_console_socket_without_terminal_is_refused(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    result = runtime("create", "--bundle", str(bundle.path), "--console-socket", str(tmp_path / "x.sock"), unique_id())
    assert result.returncode == 1 and "process.terminal" in result.stderr
    assert runtime.ids() == []


def test_foreground_run_relays_a_terminal(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """`run` without --detach of a terminal container: ociish takes the pty master itself."""
    bundle.config["process"]["terminal"] = True
    bundle.shell("tty; read line; echo got:$line; exit 3")
    with typed_on_a_terminal("hello\n") as terminal:
        result = runtime("run", "--bundle", str(bundle.path), unique_id(), stdin=terminal)
    assert result.returncode == 3
    assert "/dev/pts/0" in result.stdout and "got:hello" in result.stdout
    assert runtime.ids() == []


def test_foreground_run_of_a_terminal_without_one_fails_at_once(runtime: Runtime, bundle: Bundle, host) -> None:
    """No terminal on stdin and none controlling (a new session): an interactive shell
    would wait on its pty forever; run refuses before it creates anything, as runc does."""
    bundle.config["process"]["terminal"] = True
    bundle.args("sh")
    cid = unique_id()
    result = runtime("run", "--bundle", str(bundle.path), cid, stdin=subprocess.DEVNULL, start_new_session=True,
                     timeout=20)
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 1 and "process.terminal" in lines[0], result.stderr
    assert runtime.ids() == []
    host.assert_clean([cid], [runtime.root])


def test_foreground_exec_tty_without_a_terminal_fails_at_once(runtime: Runtime, bundle: Bundle) -> None:
    """The same for `exec --tty`: runc fails opening /dev/tty (exec's own error, 255);
    nothing runs in the container."""
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    result = runtime("exec", "--tty", cid, "touch", "/ran", stdin=subprocess.DEVNULL, start_new_session=True,
                     timeout=20)
    lines = result.stderr.splitlines()
    assert result.returncode == 255 and len(lines) == 1 and "--tty" in lines[0], result.stderr
    assert not (bundle.rootfs / "ran").exists()
    runtime("delete", "--force", cid, check=True)


def test_the_pty_keeps_the_devpts_group_for_a_non_root_user(runtime: Runtime, bundle: Bundle) -> None:
    """As runc: the user gets the pty's ownership, the group stays devpts' gid=5 (tty),
    not the process's gid; for the init and for `exec -t`."""
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.shell('stat -c "owner=%u:%g" "$(tty)"; read line')
    with typed_on_a_terminal("\n") as terminal:
        result = runtime("run", "--bundle", str(bundle.path), unique_id(), stdin=terminal)
    assert result.returncode == 0, result.stderr
    assert "owner=1000:5" in result.stdout

    bundle.config["process"]["terminal"] = False
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    with typed_on_a_terminal("\n") as f:  # exec -t needs a terminal to relay, as run does
        result = runtime("exec", "-t", "--user", "1000:1000", cid, "sh", "-c", 'stat -c "owner=%u:%g" "$(tty)"; read line',
                         stdin=f)
    assert result.returncode == 0, result.stderr
    assert "owner=1000:5" in result.stdout
    runtime("delete", "--force", cid, check=True)
