"""A regression guard that times nothing: which modules each command imports.

jsonschema (~45 ms here), structlog (imports asyncio) and orjson (dataclasses, uuid)
must stay out of the commands that do not need them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("jsonschema", "structlog", "asyncio", "orjson", "ctypes", "ociish.cgroups.manager", "ociish.create")
# what `state` does without: argparse (ociish.argv), re/enum/json (ociish.jsonio), typing
STATE_NEVER = ("argparse", "re", "enum", "json", "typing", "dataclasses", "shutil", "socket")
# what no create/exec/run needs at import time (a failing create imports structlog to log)
CREATE_NEVER = ("jsonschema", "structlog", "orjson", "argparse", "typing", "dataclasses", "inspect", "json")

PROBE = """
import sys
from ociish.cli import main
code = main(sys.argv[1:])
loaded = sorted(sys.modules)
import json
print(json.dumps(loaded), file=sys.__stderr__)
"""


def modules_after(*argv: str, cwd: Path) -> set[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=cwd)
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    """A state root holding one record of a live process (this test's own)."""
    root = tmp_path / "root"
    (root / "c").mkdir(parents=True)
    with open(f"/proc/{os.getpid()}/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    record = {"ociVersion": "1.3.0", "id": "c", "status": "created", "pid": os.getpid(), "init_start": start,
              "bundle": "/b", "creator": {"pid": 0, "start": None}, "cgroup": None}
    (root / "c" / "state.json").write_text(json.dumps(record))
    return root


@pytest.mark.parametrize("argv", [["state", "c"], ["list"], ["list", "--format", "json"], ["--version"]])
def test_query_commands_stay_light(state_root: Path, argv: list[str]) -> None:
    loaded = modules_after("--root", str(state_root), *argv, cwd=state_root)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_state_imports_nothing_but_what_it_uses(state_root: Path) -> None:
    loaded = modules_after("--root", str(state_root), "state", "c", cwd=state_root)
    assert not loaded & set(STATE_NEVER), sorted(loaded & set(STATE_NEVER))


def test_the_create_and_exec_modules_import_nothing_heavy() -> None:
    code = ("import sys; import ociish.run, ociish.execute, ociish.process.init; loaded = sorted(sys.modules); "
            "import json; print(json.dumps(loaded), file=sys.__stderr__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stderr.strip().splitlines()[-1]))
    assert not loaded & set(CREATE_NEVER), sorted(loaded & set(CREATE_NEVER))


def test_validation_imports_jsonschema_and_delete_does_not(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert "jsonschema" in modules_after("validate", "--bundle", str(tmp_path), cwd=tmp_path)
    quiet = modules_after("--root", str(tmp_path), "delete", "--force", "gone", cwd=tmp_path)
    assert not quiet & {"jsonschema", "structlog", "orjson"}


def test_libseccomp_is_loaded_without_ctypes_util() -> None:
    """pyseccomp's import runs ctypes.util (subprocess, ldconfig): ociish answers for it, then
    leaves the real module to whoever imports it later."""
    code = ("import sys; from ociish.security.seccomp import _library; lib = _library(); "
            "print(lib._libseccomp_path, 'ctypes.util' in sys.modules, 'subprocess' in sys.modules); "
            "import ctypes.util; print(ctypes.util.find_library.__module__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["libseccomp.so.2", "False", "False", "ctypes.util"]
