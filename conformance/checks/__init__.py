"""Conformance checks, one module per area; each registers with @check."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from conformance.bundle import Bundle

MARKER = "/marker"


def sh(script: str) -> list[str]:
    """process.args running script with the rootfs's busybox sh."""
    return ["/bin/sh", "-c", script]


def marked_program(bundle: Bundle, then: str = "exec sleep 1000") -> Path:
    """Make the program append a line to /marker first; the marker's host path."""
    bundle.process["args"] = sh(f"echo ran >> {MARKER}; {then}")
    return bundle.in_rootfs(MARKER)


def wait_for(predicate: Callable[[], object], timeout: float = 5.0,
             interval: float = 0.02) -> bool:
    """Poll predicate until it is true or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def runs(path: Path) -> int:
    """How many times a marked program ran (lines in its marker file)."""
    return len(path.read_text().splitlines()) if path.exists() else 0
