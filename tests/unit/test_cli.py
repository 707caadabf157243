"""Argument parsing and the bundle forms users type (no containers run here)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ociish.cli import _parser, main, resolve_bundle
from ociish.errors import OciishError


def parse(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(list(argv))


def test_global_flags_in_both_forms_before_the_command() -> None:
    args = parse("--root", "/r", "--log=/l", "--log-format=json", "--systemd-cgroup", "create",
                 "--bundle", "/b", "--pid-file=/p", "--console-socket", "/s", "--no-pivot", "--no-new-keyring",
                 "--preserve-fds", "2", "ID")
    assert (args.root, args.log, args.log_format, args.systemd_cgroup) == ("/r", "/l", "json", True)
    assert (args.command, args.bundle, args.pid_file, args.console_socket) == ("create", "/b", "/p", "/s")
    assert args.no_pivot and args.no_new_keyring and args.preserve_fds == 2 and args.id == "ID"


def test_kill_takes_an_optional_signal_and_all() -> None:
    assert parse("kill", "ID").signal == "SIGTERM"
    args = parse("kill", "--all", "ID", "9")
    assert args.all and args.signal == "9"


def test_delete_force_short_and_long() -> None:
    assert parse("delete", "-f", "x").force and parse("delete", "--force", "x").force


def test_resolve_bundle_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mybundle").mkdir()
    (tmp_path / "mybundle" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert resolve_bundle(parse("create", "mybundle")) == ("mybundle", "mybundle")
    assert resolve_bundle(parse("create", "mybundle/")) == ("mybundle", "mybundle/")
    assert resolve_bundle(parse("create", "ID", "some/bundle")) == ("ID", "some/bundle")
    assert resolve_bundle(parse("create", "-b", "/b", "ID")) == ("ID", "/b")
    assert resolve_bundle(parse("create", "other")) == ("other", ".")  # no ./other/config.json
    (tmp_path / "config.json").write_text("{}")
    assert resolve_bundle(parse("create", "mybundle")) == ("mybundle", ".")  # cwd is a bundle: runc's meaning
    with pytest.raises(OciishError, match="either as --bundle or as an argument"):
        resolve_bundle(parse("create", "-b", "/b", "ID", "B"))
    with pytest.raises(OciishError, match="container id is required"):
        resolve_bundle(parse("create"))


def test_user_errors_exit_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", "/nonexistent-root", "state", "nope"]) == 1
    assert capsys.readouterr().err == "ociish: container 'nope' does not exist\n"
    assert main(["no-such-command"]) == 1
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert main(["checkpoint", "x"]) == 1
    assert "checkpoint: not supported yet" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ociish version ") and "spec: 1.3.0" in out
