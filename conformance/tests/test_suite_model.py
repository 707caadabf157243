"""Fast tests of the suite's own bookkeeping (no containers needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance import report
from conformance.model import CheckResult, Level, Status, Verdict
from conformance.mountinfo import Mount
from conformance.probe_report import ProbeOutputError, ProbeReport
from conformance.registry import all_checks
from conformance.requirements import BY_ID, REQUIREMENTS
from conformance.runner import decide


def test_every_testable_requirement_has_a_check() -> None:
    covered = {r for c in all_checks() for r in c.covers}
    missing = [r.id for r in REQUIREMENTS if r.testable and r.id not in covered]
    assert not missing


def test_checks_cover_only_known_testable_requirements() -> None:
    for chk in all_checks():
        for rid in chk.covers:
            assert rid in BY_ID, f"{chk.name} covers unknown {rid}"
            assert BY_ID[rid].testable, f"{chk.name} covers untestable {rid}"


def test_requirements_are_well_formed() -> None:
    for req in REQUIREMENTS:
        assert req.spec.split("#")[0] in ("runtime.md", "runtime-linux.md", "config.md",
                                          "config-linux.md"), req.id
        assert req.summary.endswith("."), req.id
        assert req.untestable is None or req.untestable.strip(), req.id


def _result(check: str, *verdicts: tuple[str, Status]) -> CheckResult:
    return CheckResult(check, "area", "", tuple(r for r, _ in verdicts), 0.1,
                       [Verdict(r, check, s, "why" if s is not Status.PASS else "")
                        for r, s in verdicts])


def test_decide_fails_on_any_failure_and_skips_only_when_all_skip() -> None:
    reqs = [r for r in REQUIREMENTS if r.testable][:3]
    a, b, c = (r.id for r in reqs)
    decided = decide(reqs, [_result("one", (a, Status.PASS), (b, Status.SKIP), (c, Status.SKIP)),
                            _result("two", (a, Status.FAIL), (b, Status.PASS))])
    assert [d.status for d in decided] == [Status.FAIL, Status.PASS, Status.SKIP]


def _run(statuses: dict[str, str]) -> dict[str, Any]:
    return {"suite": "ociish-conformance", "requirements": [
        {"id": rid, "level": BY_ID[rid].level.value, "status": st, "reason": ""}
        for rid, st in statuses.items()]}


def test_compare_flags_only_lost_musts() -> None:
    must = [r.id for r in REQUIREMENTS if r.level is Level.MUST and r.testable][:4]
    should = next(r.id for r in REQUIREMENTS if r.level is Level.SHOULD and r.testable)
    base = _run({must[0]: "pass", must[1]: "pass", must[2]: "fail", must[3]: "pass",
                 should: "pass"})
    cand = _run({must[0]: "pass", must[1]: "fail", must[2]: "pass", must[3]: "skip",
                 should: "fail"})
    result = report.compare(base, cand)
    assert [r[0] for r in result.regressions] == [must[1]]
    assert result.skipped == [must[3]]
    assert not result.ok
    assert report.compare(base, base).ok


def test_probe_report_needs_complete_output() -> None:
    good = {"probe": "ociish-conformance", "complete": True, "env": ["A=1"]}
    noise = "runtime chatter\n"
    assert ProbeReport.from_output(noise + json.dumps(good) + "\r\n").env == {"A": "1"}
    with pytest.raises(ProbeOutputError):
        ProbeReport.from_output(noise + json.dumps({**good, "complete": False}))
    with pytest.raises(ProbeOutputError):
        ProbeReport.from_output(noise + json.dumps(good)[:-10])
    with pytest.raises(ProbeOutputError):
        ProbeReport.from_output(noise)


def test_mountinfo_parsing() -> None:
    line = ("71 65 0:44 / /mnt/with\\040space ro,nosuid shared:3 master:1 - tmpfs tmpfs "
            "rw,size=1024k")
    m = Mount.parse(line)
    assert m.point == "/mnt/with space"
    assert {"ro", "nosuid"} <= m.options
    assert m.propagation == "shared"
    assert m.super_value("size") == "1024k"
    assert Mount.parse("1 0 0:1 / / rw - ext4 /dev/vda rw").propagation == "private"
