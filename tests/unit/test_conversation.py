"""The create side of the init conversation: the order of messages is checked, not trusted."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

from ociish.errors import OciishError
from ociish.process.channel import Channel
from ociish.process.parent import Conversation, InitProcess


class RecordingHost:
    """A StageZero that notes which of its steps ran."""

    rlimits: list[tuple[int, int, int, str]] = []

    def __init__(self) -> None:
        self.calls: list[str] = []

    def write_usermap(self, bootstrap_pid: int) -> None:
        self.calls.append("usermap")

    def on_pid(self, init: InitProcess) -> None:
        self.calls.append(f"pid {init.pid}")

    def at_hooks_point(self, init: InitProcess) -> None:
        self.calls.append("hooks")

    def warn(self, message: str) -> None:
        self.calls.append("warn")

    def on_created(self, init: InitProcess) -> None:
        self.calls.append("created")

    def pass_seccomp_listener(self, init: InitProcess, listener_fd: int) -> None:
        self.calls.append("seccomp")


def conversation(*messages: tuple[Any, ...]) -> tuple[Conversation, RecordingHost, Channel]:
    """A Conversation whose init side (returned, still open) already sent ``messages``."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    peer = Channel(theirs.detach())
    for message in messages:
        peer.send(*message)
    host = RecordingHost()
    return Conversation(Channel(ours.detach()), InitProcess(), host), host, peer


def exited_child() -> int:
    """A child of this process that exits 0 at once: what stage 1 is once it reported."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return pid


@pytest.mark.parametrize("first", ["hooks", "ready", "warn", "created"])
def test_an_init_request_before_the_pid_fails_the_create(first: str) -> None:
    chat, host, peer = conversation((first, "text") if first == "warn" else (first,))
    with pytest.raises(OciishError, match=f"'{first}' before its pid"):
        chat.run()
    assert host.calls == []
    peer.close()


def test_pid_then_created_records_the_pid_first() -> None:
    chat, host, peer = conversation(("pid", os.getpid()), ("warn", "careful"), ("created",))
    chat.init.bootstrap_pid = exited_child()
    chat.run()
    assert host.calls == [f"pid {os.getpid()}", "warn", "created"]
    assert peer.recv() == ("ok",)
    assert chat.init.bootstrap_pid == 0 and chat.init.start_time is not None
    chat.init.close()
    peer.close()


def test_fds_travel_with_a_message(tmp_path) -> None:
    """Channel.send_fds/recv_fds: the message and its fds arrive together, close-on-exec."""
    parent, child_fd = Channel.pair()
    child = Channel(child_fd)
    files = [tmp_path / f"f{n}" for n in range(3)]
    opened = []
    try:
        for path in files:
            path.write_text(path.name)
            opened.append(os.open(path, os.O_RDONLY))
        parent.send_fds(opened, "mountsources", 7)
        message, fds = child.recv_fds()
        assert message == ("mountsources", 7) and len(fds) == 3
        for fd, path in zip(fds, files):
            assert os.read(fd, 10).decode() == path.name and not os.get_inheritable(fd)
            os.close(fd)
        parent.send("error", "no fds")
        assert child.recv_fds() == (("error", "no fds"), [])
    finally:
        for fd in opened:
            os.close(fd)
        parent.close()
        child.close()
