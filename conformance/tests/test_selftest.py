"""Checks must fail against runtimes that break exactly what they check,
and pass against runc."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from conformance.harness import Session
from conformance.model import Status
from conformance.registry import all_checks
from conformance.runner import run_check
from conformance.tests.live import FAKES, live_skip_reason

pytestmark = pytest.mark.skipif(live_skip_reason() is not None,
                                reason=live_skip_reason() or "")

# (fake runtime, check, requirement the fake breaks)
BROKEN = [
    ("no-hostname", "kernel.uts_names", "config.hostname"),
    ("ignore-cwd", "process.cwd", "config.process.cwd"),
    ("create-starts", "lifecycle.walkthrough", "runtime.create.program-deferred"),
    ("wrong-state", "lifecycle.walkthrough", "runtime.state.status"),
    ("reverse-mounts", "mounts.mount_order", "config.mounts.order"),
    ("writable-root", "filesystem.readonly_root", "config.root.readonly"),
    ("no-hooks", "hooks.hook_lifecycle", "config.hooks.prestart.when"),
    ("no-rlimits", "process.rlimits", "config.process.rlimits"),
    ("no-masked-paths", "filesystem.masked_paths", "config-linux.maskedPaths"),
]

CHECKS = {c.name: c for c in all_checks()}


def verdict(session: Session, check: str, requirement: str) -> tuple[Status, str]:
    result = run_check(session, CHECKS[check])
    v = next(v for v in result.verdicts if v.requirement == requirement)
    return v.status, v.reason


@pytest.mark.parametrize(("fake", "check", "requirement"), BROKEN,
                         ids=[f"{f}:{c}" for f, c, _ in BROKEN])
def test_check_catches_fake(session_for: Callable[[str], Session], fake: str, check: str,
                            requirement: str) -> None:
    status, reason = verdict(session_for(fake), check, requirement)
    assert status is Status.FAIL, f"{check} did not notice {fake}"
    assert reason


@pytest.mark.parametrize(("check", "requirement"),
                         sorted({(c, r) for _, c, r in BROKEN}),
                         ids=sorted({f"{c}:{r}" for _, c, r in BROKEN}))
def test_check_passes_runc(session_for: Callable[[str], Session], check: str,
                           requirement: str) -> None:
    status, reason = verdict(session_for("runc"), check, requirement)
    assert status is Status.PASS, reason


def test_hung_runtime_is_cut_off() -> None:
    """A runtime that never returns fails the check within the command timeout."""
    started = time.monotonic()
    with Session(str(FAKES / "hang-start"), timeout=2) as session:
        status, reason = verdict(session, "lifecycle.walkthrough", "runtime.start.runs-program")
    assert status is Status.FAIL
    assert "timed out" in reason
    assert time.monotonic() - started < 30
