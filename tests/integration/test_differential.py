"""The differential run (conformance/diff.py, commands.py) in CI: every hand-written config
case and command scenario, two combined configs and eight drawn from the schema, under
runc and ociish; any difference conformance/deliberate.py does not explain fails the test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


@pytest.mark.slow
def test_ociish_shows_what_runc_shows(tmp_path: Path) -> None:
    if not (shutil.which("runc") or Path("/usr/sbin/runc").exists()):
        pytest.skip("runc is not installed (apt-get install runc)")
    ociish = tmp_path / "ociish"
    ociish.write_text(f"#!/bin/sh\nexec {sys.executable} -m ociish \"$@\"\n")
    ociish.chmod(0o755)
    done = subprocess.run([sys.executable, "-m", "conformance", "diff", "--ociish", str(ociish), "--no-crun",
                           "--generated", "2", "--schema", "8", "--timeout", "60"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " 0 unexplained" in done.stdout.splitlines()[0], done.stdout
