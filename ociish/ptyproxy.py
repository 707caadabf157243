"""Foreground `run` of a container with a terminal: ociish receives the pty master on an
internal console socket and relays between it and its own stdin/stdout.

The user's terminal is put in raw mode (the container's pty does the line editing) and
its size is copied to the pty now and on every SIGWINCH.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import sys
import tempfile
import termios
import tty
from typing import Iterator


@contextlib.contextmanager
def console_socket() -> Iterator[tuple[str, socket.socket]]:
    """A listening unix socket in a private temp dir, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ociish-console-") as directory:
        path = os.path.join(directory, "console.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(path)
            server.listen(1)
            yield path, server
        finally:
            server.close()


def require_terminal(what: str, instead: str) -> None:
    """Refuse to relay a container's pty when there is no terminal to relay it to: stdin
    is none and the process has no controlling terminal (runc asks the same of /dev/tty).
    ``what`` names the setting that asks for one, ``instead`` the way out."""
    if os.isatty(0):
        return
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC))
    except OSError:
        from ociish.errors import OciishError

        raise OciishError(f"{what}, but there is no terminal to relay (stdin is not one and there is no "
                          f"controlling terminal): run it from a terminal, {instead}") from None


def receive_master(server: socket.socket) -> int:
    conn, _ = server.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    if not fds:
        raise OSError(errno.EPROTO, "no pty master received on the console socket")
    return fds[0]


def _copy_size(master: int) -> None:
    try:
        size = fcntl.ioctl(sys.stdin.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def relay(master: int) -> None:
    """Copy stdin → pty and pty → stdout until the container side of the pty closes."""
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    saved = None
    if os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin, termios.TCSANOW)  # not TCSAFLUSH: what was typed ahead reaches the container
        _copy_size(master)
        signal.signal(signal.SIGWINCH, lambda *_: _copy_size(master))
    inputs = [master, stdin]
    try:
        while True:
            ready, _, _ = select.select(inputs, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every process holding the pty's other end is gone
                    return
                if not data:
                    return
                os.write(stdout, data)
            if stdin in ready:
                data = os.read(stdin, 65536)
                if data:
                    os.write(master, data)
                else:
                    inputs.remove(stdin)  # our stdin ended; the container keeps its pty
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
            signal.signal(signal.SIGWINCH, signal.SIG_DFL)
