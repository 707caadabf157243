"""A regression guard that times nothing: which modules each command imports.

jsonschema (~45 ms here), structlog (imports asyncio) and orjson (dataclasses, uuid)
must stay out of the commands that do not need them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import Bundle, unique_id

HEAVY = ("jsonschema", "structlog", "asyncio", "orjson", "ctypes", "ociish.cgroups.manager", "ociish.ops.create", "jeepney")
# what `state` does without: argparse (ociish.cli.argv), re/enum/json (ociish.jsonio), typing,
# types (SimpleNamespace: the fast path returns its own Parsed)
STATE_NEVER = ("argparse", "re", "enum", "json", "typing", "dataclasses", "shutil", "socket", "types")
# what no create/exec/run needs at import time
CREATE_NEVER = ("jsonschema", "structlog", "orjson", "argparse", "typing", "dataclasses", "inspect", "json",
                "jeepney", "ociish.cgroups.systemd", "pyroute2")
# what printing a warning or an error on stderr must not pull in (structlog's package is ~60 ms)
LOGGING_NEVER = ("structlog", "asyncio", "ssl", "logging", "typing", "json", "inspect")
# what a create of a config without seccomp or regex-checked fields does without (enum is
# imported by re and by signal.py; difflib only suggests a name for an unknown key; the
# memory policy and resctrl modules are for configs with linux.memoryPolicy or linux.intelRdt,
# pyroute2 (~180 ms) for those with linux.netDevices; ociish.linux.libc binds libc with
# _ctypes, not the ctypes package)
PLAIN_CREATE_NEVER = ("re", "enum", "signal", "difflib", "ociish.linux.mempolicy", "ociish.resctrl", "pyroute2",
                      "ctypes")

PROBE = """
import sys
from ociish.cli import main
code = main(sys.argv[1:])
loaded = sorted(sys.modules)
import json
print(json.dumps(loaded), file=sys.__stderr__)
"""


def probe(*argv: str, cwd: Path) -> tuple[set[str], str]:
    """(modules loaded, stderr) of an in-process `ociish ARGV`.  Output goes through a file:
    a created container's init keeps the runtime's stderr, a pipe would not reach EOF."""
    with tempfile.TemporaryFile("w+") as err:
        subprocess.run([sys.executable, "-c", PROBE, *argv], stdout=subprocess.DEVNULL, stderr=err, cwd=cwd,
                       timeout=60)
        err.seek(0)
        lines = err.read().strip().splitlines()
    return set(json.loads(lines[-1])), "\n".join(lines[:-1])


def modules_after(*argv: str, cwd: Path) -> set[str]:
    return probe(*argv, cwd=cwd)[0]


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
    code = ("import sys; import ociish.ops.run, ociish.ops.exec, ociish.process.init; loaded = sorted(sys.modules); "
            "import json; print(json.dumps(loaded), file=sys.__stderr__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stderr.strip().splitlines()[-1]))
    assert not loaded & set(CREATE_NEVER), sorted(loaded & set(CREATE_NEVER))


def test_validation_imports_jsonschema_and_delete_does_not(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert "jsonschema" in modules_after("validate", "--bundle", str(tmp_path), cwd=tmp_path)
    quiet = modules_after("--root", str(tmp_path), "delete", "--force", "gone", cwd=tmp_path)
    assert not quiet & {"jsonschema", "structlog", "orjson", "jeepney"}


def test_the_cgroup_manager_imports_the_dbus_client_only_for_the_systemd_driver() -> None:
    """jeepney (~20 ms with typing, enum, socket) is for `--systemd-cgroup` containers alone."""
    code = ("import sys; from ociish.cgroups import CgroupManager, ebpf, mapping, devices, detect, stats; "
            "from ociish.ops import update, pause, ps, events; import json; "
            "print(json.dumps(sorted(m for m in sys.modules if 'jeepney' in m or m == 'ociish.cgroups.systemd')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_libseccomp_is_loaded_without_ctypes_util() -> None:
    """pyseccomp's import runs ctypes.util (subprocess, ldconfig): ociish answers for it, then
    leaves the real module to whoever imports it later."""
    code = ("import sys; from ociish.security.seccomp import _library; lib = _library(); "
            "print(lib._libseccomp_path, 'ctypes.util' in sys.modules, 'subprocess' in sys.modules); "
            "import ctypes.util; print(ctypes.util.find_library.__module__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["libseccomp.so.2", "False", "False", "ctypes.util"]


def test_a_warning_printing_create_loads_no_logging_library(tmp_path: Path, busybox_rootfs: Path) -> None:
    """A warning costs a write to stderr: none of structlog, asyncio or logging (issue 16)."""
    bundle = Bundle(tmp_path / "bundle", busybox_rootfs)
    bundle.config["process"]["capabilities"]["bounding"].append("CAP_NOT_A_CAPABILITY")
    bundle.args("sleep", "100")
    root, cid = tmp_path / "root", unique_id()
    try:
        loaded, stderr = probe("--root", str(root), "create", "--bundle", str(bundle.path), cid, cwd=tmp_path)
        assert "ociish: warning: process.capabilities: unknown capability 'CAP_NOT_A_CAPABILITY' ignored" in stderr
        assert (root / cid / "state.json").exists(), stderr
    finally:
        subprocess.run([sys.executable, "-m", "ociish", "--root", str(root), "delete", "--force", cid],
                       capture_output=True, check=True)
    assert not loaded & set(LOGGING_NEVER), sorted(loaded & set(LOGGING_NEVER))
    assert not loaded & set(PLAIN_CREATE_NEVER), sorted(loaded & set(PLAIN_CREATE_NEVER))


def test_a_json_log_loads_only_structlogs_processors(tmp_path: Path) -> None:
    """--log-format json renders with structlog.processors, without the package's __init__
    (structlog.dev and structlog.stdlib import asyncio); stderr still gets the error."""
    log_file = tmp_path / "log.json"
    loaded, stderr = probe("--root", str(tmp_path / "root"), "--log", str(log_file), "--log-format", "json",
                           "create", "--bundle", str(tmp_path / "missing"), "c", cwd=tmp_path)
    [line] = log_file.read_text().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error" and entry["msg"] in stderr and entry["time"].endswith("Z"), (entry, stderr)
    assert "structlog.processors" in loaded
    assert not loaded & {"structlog.dev", "structlog.stdlib", "asyncio", "ssl"}, sorted(loaded)
    assert "structlog" not in loaded  # the package stood in for only while its processors loaded
