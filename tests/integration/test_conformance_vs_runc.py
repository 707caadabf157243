"""The conformance suite against ociish and against runc: ociish may not fail any MUST
requirement that runc passes on this host (conformance/README.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


@pytest.mark.slow
def test_ociish_passes_every_must_that_runc_passes(tmp_path: Path) -> None:
    runc = shutil.which("runc") or "/usr/sbin/runc"
    if not Path(runc).exists():
        pytest.skip("runc is not installed (apt-get install runc)")
    ociish = tmp_path / "ociish"
    ociish.write_text(f"#!/bin/sh\nexec {sys.executable} -m ociish \"$@\"\n")
    ociish.chmod(0o755)
    results = {}
    for name, binary in (("runc", runc), ("ociish", str(ociish))):
        results[name] = tmp_path / f"{name}.json"
        # generous per-command timeouts: a slow shared CI machine must not turn into a verdict
        done = subprocess.run([sys.executable, "-m", "conformance", "--runtime", binary, "--timeout", "60",
                               "--json", str(results[name])],
                              cwd=REPO, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
    compare = subprocess.run([sys.executable, "-m", "conformance", "compare", "--baseline", str(results["runc"]),
                              "--candidate", str(results["ociish"])], cwd=REPO, capture_output=True, text=True)
    assert compare.returncode == 0, compare.stdout + compare.stderr
