"""Typed messages between `create` and the processes it spawns.

A SOCK_SEQPACKET socketpair keeps message boundaries; messages are marshal-encoded
tuples ``(kind, *args)``.  marshal is builtin (free to import) and both ends run the
same interpreter, so it is safe here; JSON is kept for formats other programs read.
"""

from __future__ import annotations

import marshal
import os
import socket
from typing import Any

MAX_MESSAGE = 1 << 16


class ChannelClosed(Exception):
    """The peer exited (or closed its end) before answering."""


class Channel:
    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=fd)

    @staticmethod
    def pair() -> tuple["Channel", int]:
        """A channel for the parent and the raw fd the child inherits."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return Channel(parent.detach()), child.detach()

    def send(self, kind: str, *args: Any) -> None:
        # plain write(2)/read(2), not send/recv: once the init's seccomp filter is loaded,
        # these are the calls every profile allows
        os.write(self.sock.fileno(), marshal.dumps((kind, *args)))

    def recv(self) -> tuple[Any, ...]:
        data = os.read(self.sock.fileno(), MAX_MESSAGE)
        if not data:
            raise ChannelClosed()
        return marshal.loads(data)

    def expect(self, kind: str) -> tuple[Any, ...]:
        """Wait for ``kind``; the parent answers "abort" when it gives up on the container."""
        message = self.recv()
        if message[0] != kind:
            raise ChannelClosed()
        return message

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
