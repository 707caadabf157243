"""Typed messages between `create` and the processes it spawns.

A SOCK_SEQPACKET socketpair keeps message boundaries; messages are marshal-encoded
tuples ``(kind, *args)``.  marshal is builtin (free to import) and both ends run the
same interpreter, so it is safe here; JSON is kept for formats other programs read.
"""

from __future__ import annotations

import marshal
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_MESSAGE = 1 << 16
MAX_FDS = 200  # per message: below the kernel's SCM_MAX_FD (253)


class ChannelClosed(Exception):
    """The peer exited (or closed its end) before answering."""


class Channel:
    """One end, as a bare fd: plain write(2)/read(2), not send/recv, because once the init's
    seccomp filter is loaded these are the calls every profile allows (and the init need
    not import socket).  The write that hands a notify listener over is why SCMP_ACT_NOTIFY
    on write is refused (ociish.security.seccomp.HANDOVER_SYSCALLS)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @staticmethod
    def pair() -> tuple["Channel", int]:
        """A channel for the parent and the raw fd the child inherits."""
        from ociish.linux.cpython import socket

        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return Channel(parent.detach()), child.detach()

    def send(self, kind: str, *args: Any) -> None:
        os.write(self.fd, marshal.dumps((kind, *args)))

    def recv(self) -> tuple[Any, ...]:
        data = os.read(self.fd, MAX_MESSAGE)
        if not data:
            raise ChannelClosed()
        return marshal.loads(data)

    def send_fds(self, fds: list[int], kind: str, *args: Any) -> None:
        """A message carrying ``fds`` (SCM_RIGHTS): at most MAX_FDS of them."""
        from ociish.linux.cpython import socket
        import struct

        sock = socket.socket(fileno=os.dup(self.fd))
        try:
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
            sock.sendmsg([marshal.dumps((kind, *args))], rights)
        finally:
            sock.close()

    def recv_fds(self) -> tuple[tuple[Any, ...], list[int]]:
        """A message and the fds that came with it (close-on-exec)."""
        from ociish.linux.cpython import socket
        import struct

        sock = socket.socket(fileno=os.dup(self.fd))
        try:
            data, ancillary, flags, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(MAX_FDS * 4),
                                                     socket.MSG_CMSG_CLOEXEC)
        finally:
            sock.close()
        fds: list[int] = []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4])
        if not data or flags & socket.MSG_CTRUNC:
            for fd in fds:
                os.close(fd)
            raise ChannelClosed()
        return marshal.loads(data), fds

    def expect(self, kind: str) -> tuple[Any, ...]:
        """Wait for ``kind``; the parent answers "abort" when it gives up on the container."""
        message = self.recv()
        if message[0] != kind:
            raise ChannelClosed()
        return message

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
