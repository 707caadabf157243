"""Scorecards: JSON results, a text summary, markdown tables, comparisons."""

from __future__ import annotations

import json
import platform
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.model import SPEC_VERSION, CheckResult, Level, Requirement
from conformance.registry import Check
from conformance.runner import RequirementResult

SPEC_URL = f"https://github.com/opencontainers/runtime-spec/blob/v{SPEC_VERSION}/"
STATUSES = ("pass", "fail", "skip", "untestable", "not-run")


def status_name(res: RequirementResult) -> str:
    if res.status is not None:
        return res.status.value
    return "untestable" if not res.requirement.testable else "not-run"


def coverage(requirements: Iterable[Requirement], checks: Iterable[Check]) -> dict[str, Any]:
    """Testable requirements that have at least one check, per level."""
    covered = {r for c in checks for r in c.covers}
    out: dict[str, Any] = {}
    for level in Level:
        testable = [r for r in requirements if r.level is level and r.testable]
        checked = [r for r in testable if r.id in covered]
        out[level.value] = {"testable": len(testable), "checked": len(checked)}
    total_t = sum(v["testable"] for v in out.values())
    total_c = sum(v["checked"] for v in out.values())
    out["percent"] = round(100.0 * total_c / total_t, 1) if total_t else 0.0
    return out


def totals(decided: list[RequirementResult]) -> dict[str, dict[str, dict[str, int]]]:
    """Status counts per level and per area."""
    by_level: dict[str, Counter[str]] = {}
    by_area: dict[str, Counter[str]] = {}
    for res in decided:
        st = status_name(res)
        by_level.setdefault(res.requirement.level.value, Counter())[st] += 1
        by_area.setdefault(res.requirement.area, Counter())[st] += 1
    return {"level": {k: dict(v) for k, v in sorted(by_level.items())},
            "area": {k: dict(v) for k, v in sorted(by_area.items())}}


def to_json(runtime: str, version: str, decided: list[RequirementResult],
            results: list[CheckResult], cov: dict[str, Any], duration: float,
            filters: list[str]) -> dict[str, Any]:
    """The machine-readable result of one run (input to compare/scorecard)."""
    return {
        "suite": "ociish-conformance",
        "spec_version": SPEC_VERSION,
        "runtime": {"path": runtime, "version": version},
        "host": {"kernel": platform.release()},
        "duration_s": round(duration, 2),
        "filter": filters,
        "coverage": cov,
        "totals": totals(decided),
        "requirements": [
            {"id": r.requirement.id, "level": r.requirement.level.value,
             "area": r.requirement.area, "spec": r.requirement.spec,
             "section": r.requirement.section, "summary": r.requirement.summary,
             "status": status_name(r), "reason": r.reason, "checks": r.checks}
            for r in decided],
        "checks": [
            {"name": c.name, "area": c.area, "doc": c.doc, "covers": list(c.covers),
             "duration_s": round(c.duration, 3),
             "verdicts": [{"requirement": v.requirement, "status": v.status.value,
                           "reason": v.reason} for v in c.verdicts]}
            for c in results],
    }


def text_scorecard(data: dict[str, Any]) -> str:
    """Human summary: one line per requirement, then totals."""
    lines = [f"OCI runtime-spec v{data['spec_version']} conformance: "
             f"{data['runtime']['path']} ({data['runtime']['version'] or 'unknown version'})",
             ""]
    area = None
    for req in sorted(data["requirements"], key=lambda r: (r["area"], r["id"])):
        if req["area"] != area:
            area = req["area"]
            lines.append(f"[{area}]")
        reason = f"  -- {req['reason']}" if req["reason"] and req["status"] != "pass" else ""
        lines.append(f"  {req['status'].upper():10} {req['level']:6} {req['id']}  "
                     f"({req['spec']}){reason}")
    lines += ["", _totals_text(data), f"duration: {data['duration_s']}s"]
    return "\n".join(lines)


def _totals_text(data: dict[str, Any]) -> str:
    cov = data["coverage"]
    rows = ["totals:"]
    for kind in ("level", "area"):
        for name, counts in data["totals"][kind].items():
            rows.append(f"  {name:12} " + "  ".join(
                f"{st} {counts.get(st, 0)}" for st in STATUSES if counts.get(st)))
    parts = [f"{lvl} {cov[lvl]['checked']}/{cov[lvl]['testable']}" for lvl in ("MUST", "SHOULD")]
    rows.append(f"coverage (checked/testable): {', '.join(parts)} = {cov['percent']}%")
    return "\n".join(rows)


def _cell(req: dict[str, Any] | None) -> str:
    if req is None:
        return "not run"
    status = req["status"]
    label = {"pass": "pass", "fail": "**FAIL**", "skip": "skip", "untestable": "n/a",
             "not-run": "not run"}[status]
    if status in ("fail", "skip", "untestable") and req["reason"]:
        reason = " ".join(req["reason"].split()).replace("|", "\\|")
        label += f": {reason[:160]}{'...' if len(reason) > 160 else ''}"
    return label


def markdown_scorecard(runs: list[dict[str, Any]], command: str) -> str:
    """A markdown scorecard with one result column per run."""
    names = [Path(r["runtime"]["path"]).name for r in runs]
    reqs = {r["id"]: r for run in reversed(runs) for r in run["requirements"]}
    results = [{r["id"]: r for r in run["requirements"]} for run in runs]
    cov = runs[0]["coverage"]
    out = [f"# OCI runtime-spec v{SPEC_VERSION} conformance scorecard", "",
           f"Generated by `{command}` (see conformance/README.md).", "",
           "| runtime | version | kernel | duration |", "| --- | --- | --- | --- |"]
    out += [f"| {n} | {r['runtime']['version']} | {r['host']['kernel']} | {r['duration_s']}s |"
            for n, r in zip(names, runs)]
    out += ["", f"Coverage: {cov['MUST']['checked']}/{cov['MUST']['testable']} testable MUST and "
            f"{cov['SHOULD']['checked']}/{cov['SHOULD']['testable']} testable SHOULD "
            f"requirements have checks ({cov['percent']}%).", "", "## Totals", "",
            "| level / area | " + " | ".join(names) + " |",
            "| --- |" + " --- |" * len(names)]
    for kind in ("level", "area"):
        keys = sorted({k for r in runs for k in r["totals"][kind]})
        for key in keys:
            cells = []
            for run in runs:
                c = run["totals"][kind].get(key, {})
                cells.append(", ".join(f"{c[s]} {s}" for s in STATUSES if c.get(s)))
            out.append(f"| {'**' + key + '**' if kind == 'level' else key} | "
                       + " | ".join(cells) + " |")
    for area in sorted({r["area"] for r in reqs.values()}):
        out += ["", f"## {area}", "", "| requirement | level | spec | "
                + " | ".join(names) + " |", "| --- | --- | --- |" + " --- |" * len(names)]
        for rid in sorted(i for i, r in reqs.items() if r["area"] == area):
            req = reqs[rid]
            link = f"[{req['spec']}]({SPEC_URL}{req['spec']})"
            out.append(f"| `{rid}`<br>{req['summary']} | {req['level']} | {link} | "
                       + " | ".join(_cell(res.get(rid)) for res in results) + " |")
    return "\n".join(out) + "\n"


@dataclass
class Comparison:
    """MUST requirements the baseline passes but the candidate does not."""

    regressions: list[tuple[str, str, str]]  # id, candidate status, reason
    skipped: list[str]  # baseline pass, candidate skip (reported, not fatal)

    @property
    def ok(self) -> bool:
        return not self.regressions


def compare(baseline: dict[str, Any], candidate: dict[str, Any]) -> Comparison:
    cand = {r["id"]: r for r in candidate["requirements"]}
    regressions, skipped = [], []
    for req in baseline["requirements"]:
        if req["level"] != "MUST" or req["status"] != "pass":
            continue
        other = cand.get(req["id"])
        status = other["status"] if other else "missing"
        if status == "skip":
            skipped.append(req["id"])
        elif status != "pass":
            regressions.append((req["id"], status, other["reason"] if other else ""))
    return Comparison(regressions, skipped)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    if data.get("suite") != "ociish-conformance":
        raise ValueError(f"{path} is not a conformance result file")
    return data
