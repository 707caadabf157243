"""`ociish ps`: the JSON form and the filtered `ps` table, with a stand-in `ps` on PATH."""

from __future__ import annotations

import os
import stat

import pytest

from ociish.errors import OciishError
from ociish.ops import ps as ops_ps

PS_EF = """UID        PID  PPID  C STIME TTY          TIME CMD
root         1     0  0 10:00 ?        00:00:01 /sbin/init
root       812     1  0 10:01 ?        00:00:00 sleep 1000
root       813   812  0 10:01 ?        00:00:00 sh -c sleep 1812
root      8120     1  0 10:02 ?        00:00:00 other
"""


@pytest.fixture
def fake_ps(tmp_path, monkeypatch):
    """A `ps` that records its arguments and prints PS_EF (or custom output)."""
    def install(output: str = PS_EF, status: int = 0, stderr: str = "") -> None:
        (tmp_path / "out").write_text(output)
        script = tmp_path / "ps"
        script.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncat {tmp_path}/out\n'
                          f'printf %s "{stderr}" >&2\nexit {status}\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")

    install.args = lambda: (tmp_path / "args").read_text().strip()
    return install


def test_json_is_an_array_or_null():
    assert ops_ps.as_json([812, 813]) == "[812,813]\n"
    assert ops_ps.as_json([]) == "null\n"  # runc prints Go's nil slice


def test_table_keeps_the_header_and_the_container_rows(fake_ps):
    fake_ps()
    table = ops_ps.as_table([812, 813], [])
    assert fake_ps.args() == "-ef"
    assert table.splitlines() == [PS_EF.splitlines()[0], PS_EF.splitlines()[2], PS_EF.splitlines()[3]]
    assert ops_ps.as_table([], []) == PS_EF.splitlines()[0] + "\n"


def test_table_with_ps_arguments_finds_the_pid_column(fake_ps):
    fake_ps("COMMAND  PID\nsleep    812\nother   8120\n")
    assert ops_ps.as_table([812], ["-o", "comm,pid"]) == "COMMAND  PID\nsleep    812\n"
    assert fake_ps.args() == "-o comm,pid"


def test_table_errors(fake_ps, monkeypatch, tmp_path):
    fake_ps("COMMAND\nsleep\n")
    with pytest.raises(OciishError, match=r"^ps: ps -o comm printed no PID column"):
        ops_ps.as_table([812], ["-o", "comm"])
    fake_ps("", status=1, stderr="error: garbage option")
    with pytest.raises(OciishError, match=r"^ps: ps --bogus: error: garbage option$"):
        ops_ps.as_table([812], ["--bogus"])
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(OciishError, match=r"no ps command"):
        ops_ps.as_table([812], [])


def test_ps_arguments_need_the_table_format():
    with pytest.raises(OciishError, match=r"only apply to --format table"):
        ops_ps.ps(None, "c1", "json", ["-o", "pid"])


def test_a_container_without_cgroup_is_a_clear_error(tmp_path):
    """A rootless container on cgroup v1 records no cgroup: say so instead of printing nothing."""
    from ociish.ops.pause import pause
    from ociish.state.store import StateStore

    store = StateStore(str(tmp_path))
    store.make_dir("c1")
    store.write("c1", {"id": "c1", "status": "created", "pid": os.getpid(), "cgroup": None})
    with pytest.raises(OciishError, match=r"^cannot list the processes of container 'c1': it has no cgroup of its own"):
        ops_ps.ps(store, "c1", "json", [])
    with pytest.raises(OciishError, match=r"^cannot pause container 'c1': it has no cgroup of its own"):
        pause(store, "c1")
