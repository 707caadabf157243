"""Shared plumbing for the deliberately broken runtimes in this directory.

Each fake is a tiny script that forwards runc's command line to the real
runtime (CONFORMANCE_REAL_RUNTIME, default /usr/sbin/runc) but breaks one
thing on the way, so the self-tests can prove that a check notices.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REAL = os.environ.get("CONFORMANCE_REAL_RUNTIME", "/usr/sbin/runc")
VALUE_GLOBALS = {"--root", "--log", "--log-format", "--criu", "--rootless"}
Config = dict[str, Any]


def split(argv: list[str]) -> tuple[list[str], str, list[str]]:
    """(global options, command, command arguments) of a runc command line."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in VALUE_GLOBALS else 1
    command = argv[i] if i < len(argv) else ""
    return argv[:i], command, argv[i + 1:]


def bundle_dir(args: list[str]) -> Path:
    """The --bundle/-b of a create or run command (default: cwd)."""
    for i, arg in enumerate(args):
        if arg in ("--bundle", "-b") and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--bundle="):
            return Path(arg.split("=", 1)[1])
    return Path.cwd()


def real(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([REAL, *argv], check=False, **kw)


def main(edit: Callable[[Config], None] | None = None,
         after_create: Callable[[list[str], list[str]], None] | None = None,
         state: Callable[[Config], None] | None = None) -> int:
    """Forward to the real runtime; edit config.json before create/run,
    act after a successful create, or rewrite state output."""
    argv = sys.argv[1:]
    globals_, command, args = split(argv)
    if edit and command in ("create", "run"):
        path = bundle_dir(args) / "config.json"
        if path.exists():
            config = json.loads(path.read_text())
            edit(config)
            path.write_text(json.dumps(config))
    if state and command == "state":
        res = real(argv, stdout=subprocess.PIPE)
        if res.returncode == 0:
            data = json.loads(res.stdout)
            state(data)
            print(json.dumps(data))
        return res.returncode
    rc = real(argv).returncode
    if after_create and command == "create" and rc == 0:
        after_create(globals_, args)
    return rc
