"""Core data types: requirements, statuses and verdicts."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

SPEC_VERSION = "1.3.0"


class Level(enum.StrEnum):
    """Strength of a requirement (REQUIRED / MUST NOT count as MUST)."""

    MUST = "MUST"
    SHOULD = "SHOULD"


class Status(enum.StrEnum):
    """Outcome of a check for one requirement."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Requirement:
    """One testable statement of the runtime spec, paraphrased."""

    id: str
    level: Level
    area: str
    spec: str  # file#anchor, e.g. "config.md#configProcess"
    section: str  # human-readable section title
    summary: str
    untestable: str | None = None  # reason, when no check can run here

    @property
    def testable(self) -> bool:
        return self.untestable is None


@dataclass
class Verdict:
    """Status of one requirement as decided by one check."""

    requirement: str
    check: str
    status: Status
    reason: str = ""


@dataclass
class CheckResult:
    """Everything one check run produced."""

    name: str
    area: str
    doc: str
    covers: tuple[str, ...]
    duration: float
    verdicts: list[Verdict] = field(default_factory=list)
