"""The container's terminal: a pty from the container's own devpts, master sent out.

Runs in the container init before pivot_root.  ptmx is opened inside the rootfs without
following symlinks and checked to be on devpts; the peer comes from TIOCGPTPEER (no path
lookup) and is bind-mounted onto /dev/console by fd (CVE-2025-52565 class).
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios

from ociish import safepath
from ociish.errors import OciishError
from ociish.linux import libc as L

TIOCGPTPEER = 0x5441
TIOCSPTLCK = 0x40045431


class ConsoleError(OciishError):
    pass


def open_pty(root_fd: int, size: tuple[int, int] | None) -> tuple[int, int]:
    """(master, peer) of a new pty in the container's devpts."""
    try:
        master = L.openat2(root_fd, "dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY,
                           L.RESOLVE_IN_ROOT | L.RESOLVE_NO_SYMLINKS | L.RESOLVE_NO_MAGICLINKS)
    except OSError as e:
        raise ConsoleError(f"process.terminal: cannot open /dev/pts/ptmx in the container ({e.strerror}); "
                           "mount devpts with newinstance,ptmxmode=0666 on /dev/pts") from None
    if L.fstatfs_type(master) != L.DEVPTS_SUPER_MAGIC:
        os.close(master)
        raise ConsoleError("process.terminal: /dev/pts/ptmx in the container is not on devpts")
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    peer = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    if size:
        fcntl.ioctl(peer, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    return master, peer


def send_master(console_sock_fd: int, master: int) -> None:
    """Hand the master to the client over --console-socket (one SCM_RIGHTS message)."""
    sock = socket.socket(fileno=console_sock_fd)
    try:
        socket.send_fds(sock, [b"/dev/ptmx"], [master])
    finally:
        sock.close()


def mount_console(root_fd: int, peer: int) -> None:
    target = safepath.ensure_file(root_fd, "/dev/console", 0o620)
    try:
        L.mount(safepath.fd_path(peer), safepath.fd_path(target), None, L.MS_BIND)
    finally:
        os.close(target)


def make_controlling(peer: int) -> None:
    """The pty becomes the session's controlling terminal and the process's stdio."""
    fcntl.ioctl(peer, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(peer, fd)
    os.close(peer)
