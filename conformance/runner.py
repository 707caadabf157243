"""Run checks in isolation (optionally in parallel) and decide requirements."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from conformance.harness import CheckContext, CheckFailed, CheckSkipped, Session
from conformance.model import CheckResult, Requirement, Status, Verdict
from conformance.registry import Check


def run_check(session: Session, chk: Check) -> CheckResult:
    """Run one check in its own sandbox; never raises."""
    started = time.monotonic()
    ctx = CheckContext(session, chk.name, chk.covers)
    outcome: dict[str, tuple[Status, str]]
    try:
        chk.func(ctx)
        outcome = ctx.verdicts()
    except CheckSkipped as exc:
        outcome = {r: (Status.SKIP, str(exc)) for r in chk.covers}
    except CheckFailed as exc:
        outcome = {r: (Status.FAIL, _join(str(exc), reason))
                   for r, (_, reason) in ctx.verdicts().items()}
    except Exception as exc:  # noqa: BLE001 - a crash is a failure, reported
        where = traceback.extract_tb(exc.__traceback__)[-1]
        msg = f"{type(exc).__name__}: {exc} (at {where.name}:{where.lineno})"
        outcome = {r: (Status.FAIL, msg) for r in chk.covers}
    finally:
        ctx.close()
    # Session paths differ on every run; keep reasons comparable.
    work = str(session.workdir)
    verdicts = [Verdict(r, chk.name, st, reason.replace(work, "$WORK"))
                for r, (st, reason) in outcome.items()]
    return CheckResult(chk.name, chk.area, chk.doc, chk.covers, time.monotonic() - started,
                       verdicts)


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if second else first


def run_checks(session: Session, checks: Iterable[Check], jobs: int = 1,
               progress: Callable[[CheckResult], None] | None = None
               ) -> list[CheckResult]:
    """Run checks with up to jobs in parallel; results in registry order."""
    checks = list(checks)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_check, session, c) for c in checks]
        results = []
        for fut in futures:
            res = fut.result()
            if progress:
                progress(res)
            results.append(res)
    return results


@dataclass
class RequirementResult:
    """The decision for one requirement over all checks that cover it."""

    requirement: Requirement
    status: Status | None  # None: untestable here, or not run (filtered)
    reason: str
    checks: list[str]


def decide(requirements: Iterable[Requirement],
           results: list[CheckResult]) -> list[RequirementResult]:
    """Fail if any check failed it; pass if some passed; else skip."""
    by_req: dict[str, list[Verdict]] = {}
    for res in results:
        for v in res.verdicts:
            by_req.setdefault(v.requirement, []).append(v)
    decided = []
    for req in requirements:
        verdicts = by_req.get(req.id, [])
        checks = sorted({v.check for v in verdicts})
        if not req.testable:
            decided.append(RequirementResult(req, None, req.untestable or "", checks))
            continue
        if not verdicts:
            decided.append(RequirementResult(req, None, "not run", checks))
            continue
        failed = [v for v in verdicts if v.status is Status.FAIL]
        passed = [v for v in verdicts if v.status is Status.PASS]
        if failed:
            status = Status.FAIL
            reason = " | ".join(f"{v.check}: {v.reason}" for v in failed)
        elif passed:
            status, reason = Status.PASS, ""
        else:
            status = Status.SKIP
            reason = "; ".join(sorted({v.reason for v in verdicts}))
        decided.append(RequirementResult(req, status, reason, checks))
    return decided
