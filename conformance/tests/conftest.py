"""Fixtures: one suite session per runtime (real runc or a broken fake)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from conformance.harness import Session
from conformance.tests.live import FAKES, RUNC, live_skip_reason


def pytest_report_header(config: pytest.Config) -> str:
    reason = live_skip_reason()
    return f"conformance self-tests: {'skipping live tests: ' + reason if reason else RUNC}"


@pytest.fixture(scope="session")
def sessions() -> Iterator[dict[str, Session]]:
    """Sessions keyed by runtime name ("runc" or a fake's file name), made lazily."""
    made: dict[str, Session] = {}
    yield made
    for s in made.values():
        s.close()


@pytest.fixture()
def session_for(sessions: dict[str, Session]) -> Callable[[str], Session]:
    def get(name: str) -> Session:
        if name not in sessions:
            sessions[name] = Session(RUNC if name == "runc" else str(FAKES / name))
        return sessions[name]

    return get
