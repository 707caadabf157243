"""The guest test suite: tests that need a host with systemd as PID 1 on pure cgroup v2.

They run inside the test VM (`tests/vm/run.sh` boots it and runs `pytest tests/vm` there).
Anywhere else this directory holds nothing to collect: the guest's image marks itself with
/etc/ociish-test-vm, and without it the test files are not even imported.

tests/vm is not a package, so pytest imports this file as the module ``conftest`` in the
place of tests/conftest.py, whose helpers the test modules import (``from conftest import
Runtime, ...``); ``pytest_configure`` puts tests/conftest.py back under that name, as
tests/integration/conftest.py does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

GUEST_MARKER = Path("/etc/ociish-test-vm")
SHARED_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

if not GUEST_MARKER.exists():
    collect_ignore_glob = ["test_*.py"]


def pytest_configure(config: pytest.Config) -> None:
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == SHARED_CONFTEST:
            sys.modules["conftest"] = plugin
            return
