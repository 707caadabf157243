"""`events`: resource usage and OOM notifications of a live container, as runc prints them.

`--stats` prints one `{"type":"stats","id":...,"data":{...}}` line (data: see
cgroups/stats.py).  Without it the command streams: a stats line every `--interval`
(default 5s) and a `{"type":"oom","id":...}` line whenever the kernel's OOM killer has
killed a process of the container, until the container's init exits.

OOM kills are counted by the kernel (`oom_kill` in v1 memory.oom_control or v2
memory.events); an eventfd registered through v1 cgroup.event_control, or a poll on
v2 memory.events, wakes the loop as soon as the counter may have moved, and the counter
is read again at every stats tick and once more after the init exited, so the kill that
ended the container is still reported.
"""

from __future__ import annotations

import math
import os
import re
import select
import time
from typing import Any, TextIO

import orjson

from ociish.cgroups import fs
from ociish.cgroups.stats import container_stats
from ociish.errors import OciishError, WrongState
from ociish.ops.container import live_container, open_pidfd
from ociish.state.store import StateStore

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_interval(text: str) -> float:
    """A Go duration (`5s`, `500ms`, `1m30s`), as runc's --interval takes it, in seconds."""
    parts = list(_DURATION_PART.finditer(text))
    if not parts or "".join(m[0] for m in parts) != text:
        raise OciishError(f"events: invalid --interval {text!r} (a duration such as 5s, 500ms or 1m)")
    seconds = sum(float(m[1]) * _UNIT_SECONDS[m[2]] for m in parts)
    if seconds <= 0:
        raise OciishError(f"events: --interval must be greater than 0, got {text!r}")
    return seconds


def _emit(out: TextIO, event: dict[str, Any]) -> None:
    out.write(orjson.dumps(event).decode() + "\n")
    out.flush()  # a client reads the stream line by line as it comes


class OomWatch:
    """Tells when the container's OOM-kill counter has grown, and offers an fd to poll for it.

    v1 signals the eventfd when the cgroup runs out of memory, a moment *before* the
    killer picks its victim and counts the kill; so after each wake-up the counter is
    re-read every RECHECK seconds for up to SETTLE seconds (`recheck_at`).
    """

    SETTLE = 1.0
    RECHECK = 0.01

    def __init__(self, cgroup: Any) -> None:
        self.cgroup = cgroup
        self.kills = cgroup.oom_kills()
        self.settling_until: float | None = None
        self.fd: int | None = None
        self.poll_mask = select.POLLIN
        source = cgroup.oom_source()
        if source is None:
            return
        kind, directory = source
        try:
            if kind == "v1":
                self.fd = _v1_oom_eventfd(directory)
            else:
                # kernfs wakes pollers of memory.events with POLLPRI when it changes.
                self.fd = os.open(os.path.join(directory, "memory.events"), os.O_RDONLY | os.O_CLOEXEC)
                self.poll_mask = select.POLLPRI
                os.read(self.fd, 4096)
        except OSError:
            self.close()  # no notification (no memory controller): the counter is still read each tick

    def woken(self) -> None:
        """The fd fired: re-arm it and watch the counter closely for a while."""
        fd = self.fd
        if fd is None:
            return
        try:
            if self.poll_mask == select.POLLIN:  # the v1 eventfd
                os.eventfd_read(fd)
            else:
                os.lseek(fd, 0, os.SEEK_SET)
                os.read(fd, 4096)
        except OSError:
            pass
        self.settling_until = time.monotonic() + self.SETTLE

    def recheck_at(self) -> float | None:
        """When to read the counter again even if nothing wakes the loop."""
        if self.settling_until is None:
            return None
        return min(time.monotonic() + self.RECHECK, self.settling_until)

    def fired(self) -> bool:
        """Whether the kernel OOM-killed anything since the last call."""
        kills = self.cgroup.oom_kills()
        if kills > self.kills:
            self.kills, self.settling_until = kills, None
            return True
        if self.settling_until is not None and time.monotonic() >= self.settling_until:
            self.settling_until = None
        return False

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _v1_oom_eventfd(memory_dir: str) -> int:
    """An eventfd the v1 memory controller signals on every OOM of the cgroup."""
    efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    try:
        control = os.open(os.path.join(memory_dir, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            fs.write_text(os.path.join(memory_dir, "cgroup.event_control"), f"{efd} {control}")
        finally:
            os.close(control)  # the kernel needs it only while registering
    except OSError:
        os.close(efd)
        raise
    return efd


def stats_event(container_id: str, cgroup: Any) -> dict[str, Any]:
    return {"type": "stats", "id": container_id, "data": container_stats(cgroup.dirs)}


def events(store: StateStore, container_id: str, *, stats_only: bool, interval: str, out: TextIO) -> int:
    """Run `ociish events`; returns the exit status."""
    seconds = parse_interval(interval)
    container, cgroup = live_container(store, container_id, "read events of")
    if stats_only:
        _emit(out, stats_event(container_id, cgroup))
        return 0
    pidfd = open_pidfd(container.pid)
    if pidfd is None:  # gone, or the pid now names another process's thread
        raise WrongState(f"cannot read events of container {container_id!r}: it is stopped, not running")
    watch = OomWatch(cgroup)
    try:
        if not container.init_alive():  # the pid was reused between status() and pidfd_open
            raise WrongState(f"cannot read events of container {container_id!r}: it is stopped, not running")
        _stream(container_id, cgroup, seconds, pidfd, watch, out)
    finally:
        watch.close()
        os.close(pidfd)
    return 0


def _stream(container_id: str, cgroup: Any, interval: float, pidfd: int, watch: OomWatch, out: TextIO) -> None:
    """Stats every `interval`, OOM events as they happen, until the init exits (pidfd readable)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    if watch.fd is not None:
        poller.register(watch.fd, watch.poll_mask)
    next_stats = time.monotonic() + interval
    while True:
        wake_at = min(next_stats, watch.recheck_at() or next_stats)
        ready = dict(poller.poll(math.ceil(max(0.0, wake_at - time.monotonic()) * 1000)))
        if watch.fd is not None and watch.fd in ready:
            watch.woken()
        if watch.fired():
            _emit(out, {"type": "oom", "id": container_id})
        if pidfd in ready:
            return
        if time.monotonic() >= next_stats:
            _emit(out, stats_event(container_id, cgroup))
            next_stats += interval
