"""Whether live tests (real containers) can run here, and with what."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

FAKES = Path(__file__).resolve().parent / "fakes"
RUNC = os.environ.get("CONFORMANCE_REAL_RUNTIME", "/usr/sbin/runc")


def live_skip_reason() -> str | None:
    """Why tests that run containers cannot run here (None: they can)."""
    if not (shutil.which(RUNC) and os.access(RUNC, os.X_OK)):
        return f"runc not found at {RUNC} (set CONFORMANCE_REAL_RUNTIME)"
    if os.geteuid() != 0:
        return "running containers needs root"
    if not shutil.which("gcc"):
        return "gcc is needed to build the probe"
    return None
