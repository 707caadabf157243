"""ociish.cli.argv: the fast path gives argparse's result, and is taken for the clients' calls."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ociish.cli.argv import parse_common
from ociish.cli import _parser
from ociish.errors import OciishError

PODMAN = ["--log-format=json", "--log", "/r/oci-log"]
SHIM = ["--root", "/run/containerd/runc/default", "--log", "/b/log.json", "--log-format", "json"]
# what podman/conmon, containerd's shim and users send (docs/clients.md)
CLIENT_CALLS = [
    [*PODMAN, "create", "--bundle", "/u", "--pid-file", "/r/pidfile", "c1"],
    ["--systemd-cgroup", *PODMAN, "create", "--bundle", "/u", "--pid-file", "/r/pidfile", "--console-socket", "/s", "c1"],
    ["start", "c1"], ["state", "c1"], ["delete", "--force", "c1"], ["kill", "c1", "9"], ["kill", "--all", "c1", "KILL"],
    [*SHIM, "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "--no-pivot", "c2"],
    [*SHIM, "--systemd-cgroup", "start", "c2"], [*SHIM, "delete", "c2"], [*SHIM, "kill", "c2", "15"],
    [*SHIM, "state", "c2"], ["create", "mybundle"], ["create", "c3", "/bundle"], ["run", "-d", "c4", "--bundle", "/b"],
    ["--root=/tmp/r", "run", "--bundle=/b", "--keep", "c5"], ["create", "-b", "/b", "--preserve-fds", "2", "c6"],
    ["--debug", "--rootless", "false", "delete", "-f", "c7"],
    [*PODMAN, "exec", "--pid-file", "/e/exec_pid", "--process", "/e/exec-process-1", "--detach", "c1"],
    [*SHIM, "exec", "--process", "/b/p.json", "--console-socket", "/s", "--detach", "--pid-file", "/b/e.pid", "c2"],
    ["exec", "-t", "c1", "sh", "-c", "ls -l"], ["exec", "c1", "ls", "-l", "--tty"], ["exec", "-e", "A=1", "-e", "B=2",
    "-g", "10", "--cap", "CAP_KILL", "-u", "1:1", "c1", "id"], ["exec", "--process", "/p.json", "c1"],
]
# shapes the fast path leaves to argparse (help, errors, abbreviations, odd forms)
UNUSUAL = [
    [], ["--help"], ["state"], ["state", "a", "b"], ["state", "-h"], ["state", "--root", "/r", "c"], ["--bundl", "x"],
    ["create", "--bund", "/b", "c"], ["create", "--preserve-fds", "-1", "c"], ["create", "--preserve-fds", "x", "c"],
    ["--log-format", "xml", "state", "c"], ["kill", "c", "-9"], ["delete", "--force=1", "c"], ["--", "state", "c"],
    ["list"], ["exec", "c", "--", "true"], ["exec", "-g", "x", "c"], ["create", "-bx", "c"], ["--root"],
    ["state", "--", "c"], ["-v"],
]


def argparse_result(argv: list[str]) -> dict[str, Any] | None:
    try:
        return vars(_parser().parse_args(argv))
    except (OciishError, SystemExit):
        return None


@pytest.mark.parametrize("argv", CLIENT_CALLS, ids=" ".join)
def test_client_calls_take_the_fast_path_with_argparses_result(argv: list[str]) -> None:
    fast = parse_common(argv)
    assert fast is not None
    assert vars(fast) == argparse_result(argv)


@pytest.mark.parametrize("argv", UNUSUAL, ids=lambda a: " ".join(a) or "nothing")
def test_unusual_command_lines_go_to_argparse(argv: list[str]) -> None:
    assert parse_common(argv) is None


TOKENS = st.sampled_from(["create", "run", "start", "state", "kill", "delete", "list", "c1", "/b", "9", "-9", "x",
                          "--root", "--root=/r", "--log", "--log-format", "json", "--log-format=text", "--debug",
                          "--bundle", "-b", "--bundle=/b", "--pid-file", "--force", "-f", "--all", "-a", "--keep",
                          "-d", "--preserve-fds", "3", "--no-pivot", "--systemd-cgroup", "--", "-", "", "-h",
                          "--console-socket", "--rootless", "--criu", "--pidfd-socket", "--version", "-v",
                          "exec", "exec", "-e", "A=1", "-g", "--process", "-t", "--tty", "ls", "-l", "--cap"])


@settings(max_examples=int(os.environ.get("OCIISH_ARGV_EXAMPLES", "1500")), deadline=None, derandomize=True, database=None)
@given(argv=st.lists(TOKENS, max_size=8))
def test_any_command_line_parses_as_argparse_parses_it(argv: list[str]) -> None:
    fast = parse_common(argv)
    if fast is not None:
        assert vars(fast) == argparse_result(argv)
