"""`ociish events`: the interval, the OOM watch and the stream loop, against fake cgroups
and a real short-lived process standing in for the container's init."""

from __future__ import annotations

import io
import os
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from ociish.errors import OciishError
from ociish.ops import events as ev


@pytest.mark.parametrize("text, seconds", [
    ("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5h", 5400.0), ("250us", 0.00025), ("2µs", 0.000002),
    (".5s", 0.5),
])
def test_parse_interval_reads_go_durations(text, seconds):
    assert ev.parse_interval(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "", "s", "5 s", "-1s", "5sec", "0s", "0"])
def test_parse_interval_refuses_the_rest(text):
    with pytest.raises(OciishError, match=r"^events: (invalid --interval|--interval must be greater than 0)"):
        ev.parse_interval(text)


class FakeCgroup:
    """Counts OOM kills from a file the test edits; no memory accounting to watch."""

    def __init__(self, tmp_path: Path, source: tuple[str, str] | None = None) -> None:
        self.counter = tmp_path / "kills"
        self.counter.write_text("0")
        self.source = source
        stats_dir = tmp_path / "unified"
        stats_dir.mkdir(exist_ok=True)
        (stats_dir / "pids.current").write_text("1\n")
        self.dirs = {"": str(stats_dir)}

    def oom_kills(self) -> int:
        return int(self.counter.read_text())

    def oom_source(self) -> tuple[str, str] | None:
        return self.source


def test_oom_watch_reports_each_growth_once(tmp_path):
    cgroup = FakeCgroup(tmp_path)
    cgroup.counter.write_text("2")  # kills before the watch started are not news
    watch = ev.OomWatch(cgroup)
    assert watch.fd is None and not watch.fired()
    cgroup.counter.write_text("3")
    assert watch.fired() and not watch.fired()


def test_oom_watch_rechecks_for_a_while_after_a_wake_up(tmp_path):
    watch = ev.OomWatch(FakeCgroup(tmp_path))
    assert watch.recheck_at() is None
    watch.settling_until = time.monotonic() + 0.05  # what woken() sets, without an fd to drain
    assert watch.recheck_at() is not None and not watch.fired()
    time.sleep(0.06)
    assert not watch.fired() and watch.recheck_at() is None


def test_oom_watch_on_v2_polls_memory_events(tmp_path):
    unified = tmp_path / "cg"
    unified.mkdir()
    (unified / "memory.events").write_text("oom 0\noom_kill 0\n")
    watch = ev.OomWatch(FakeCgroup(tmp_path, ("v2", str(unified))))
    try:
        assert watch.fd is not None and watch.poll_mask == ev.select.POLLPRI
        watch.woken()
        assert watch.recheck_at() is not None
    finally:
        watch.close()
    assert watch.fd is None


def test_oom_watch_without_a_registrable_v1_control_falls_back_to_ticks(tmp_path):
    watch = ev.OomWatch(FakeCgroup(tmp_path, ("v1", str(tmp_path / "no-such-memory-cgroup"))))
    assert watch.fd is None


def test_stream_emits_stats_and_oom_until_the_init_exits(tmp_path):
    cgroup = FakeCgroup(tmp_path)
    init = subprocess.Popen(["sleep", "0.35"])
    pidfd = os.pidfd_open(init.pid)
    out = io.StringIO()
    watch = ev.OomWatch(cgroup)
    try:
        cgroup.counter.write_text("1")  # an OOM kill just before the loop starts
        ev._stream("c1", cgroup, 0.1, pidfd, watch, out)
    finally:
        os.close(pidfd)
        init.wait()
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"type": "oom", "id": "c1"}
    stats = lines[1:]
    assert 2 <= len(stats) <= 4
    assert all(e["type"] == "stats" and e["id"] == "c1" and e["data"]["pids"] == {"current": 1} for e in stats)


def test_stats_only_prints_one_line(tmp_path, monkeypatch):
    cgroup = FakeCgroup(tmp_path)
    monkeypatch.setattr(ev, "live_container", lambda store, cid, action: (None, cgroup))
    out = io.StringIO()
    assert ev.events(None, "c1", stats_only=True, interval="5s", out=out) == 0
    event = orjson.loads(out.getvalue())
    assert out.getvalue().count("\n") == 1
    assert list(event) == ["type", "id", "data"] and event["type"] == "stats"
