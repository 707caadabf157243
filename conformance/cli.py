"""Command line: run the suite, write scorecards, compare two runs."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from conformance import report
from conformance.assets import AssetError
from conformance.harness import Session
from conformance.model import CheckResult
from conformance.registry import Check, all_checks
from conformance.requirements import REQUIREMENTS
from conformance.runner import decide, run_checks
from conformance.runtime import DEFAULT_TIMEOUT, version

COMMANDS = ("run", "scorecard", "compare", "list", "diff")


class UsageError(Exception):
    """Bad arguments or inputs: reported, exit status 2."""


def _runtime_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--runtime", required=required, help="runtime binary with runc's CLI")
    p.add_argument("--filter", action="append", default=[], metavar="EXPR",
                   help="only checks whose name, area or requirement id matches the glob "
                        "(substring without glob characters); repeatable, comma-separated")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="checks run in parallel (default: number of CPUs)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds any single runtime command may take")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("-v", "--verbose", action="store_true", help="print each check's result")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="OCI runtime-spec conformance suite for runtimes with runc's CLI. "
                    "Without a command, `run` is assumed.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run checks and print a scorecard")
    _runtime_args(run)
    run.add_argument("--markdown", type=Path, help="also write a markdown scorecard")
    card = sub.add_parser("scorecard", help="write a markdown scorecard (runs or loads results)")
    _runtime_args(card, required=False)
    card.add_argument("--results", type=Path, action="append", default=[],
                      help="result JSON of an earlier run; repeat for more columns")
    card.add_argument("--markdown", type=Path, required=True, help="output file")
    cmp_ = sub.add_parser("compare", help="fail if the candidate misses a MUST the baseline "
                                          "passes")
    cmp_.add_argument("--baseline", type=Path, required=True)
    cmp_.add_argument("--candidate", type=Path, required=True)
    dif = sub.add_parser("diff", help="run the same bundles under ociish, runc (and crun) and list what "
                                      "differs; exit 1 on a difference conformance/deliberate.py does not explain")
    dif.add_argument("--ociish", required=True, help="the ociish binary")
    dif.add_argument("--seed", type=int, default=15, help="seed of the generated configs")
    dif.add_argument("--generated", type=int, default=4, help="how many generated configs")
    dif.add_argument("--schema", type=int, default=8, help="how many configs with a section drawn from the schema")
    dif.add_argument("--filter", action="append", default=[], metavar="GLOB", help="only cases matching")
    dif.add_argument("--no-crun", action="store_true", help="compare with runc only")
    dif.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    dif.add_argument("-v", "--verbose", action="store_true", help="print each case as it is done")
    lst = sub.add_parser("list", help="list requirements and the checks covering them")
    lst.add_argument("--filter", action="append", default=[], metavar="EXPR")
    return parser


def _patterns(filters: list[str]) -> list[str]:
    return [p for f in filters for p in f.split(",") if p]


def select(filters: list[str]) -> list[Check]:
    checks = all_checks()
    pats = _patterns(filters)
    return [c for c in checks if c.matches(pats)] if pats else checks


def execute(runtime: str, filters: list[str], jobs: int, timeout: float,
            verbose: bool) -> dict[str, Any]:
    """Run the selected checks against runtime; the JSON-ready result."""
    checks = select(filters)
    if not checks:
        raise UsageError("no check matches the filter")
    started = time.monotonic()

    def progress(res: CheckResult) -> None:
        if verbose:
            worst = sorted({v.status.value for v in res.verdicts})
            print(f"{'/'.join(worst):10} {res.name} ({res.duration:.2f}s)", file=sys.stderr)

    with Session(runtime, timeout) as session:
        results = run_checks(session, checks, jobs, progress)
    duration = time.monotonic() - started
    run_ids = {r for c in checks for r in c.covers}
    reqs = [r for r in REQUIREMENTS if r.id in run_ids or (not filters and not r.testable)]
    decided = decide(reqs, results)
    cov = report.coverage(REQUIREMENTS, all_checks())
    return report.to_json(runtime, version(runtime, timeout), decided, results, cov, duration,
                          _patterns(filters))


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)


def _resolve(runtime: str) -> str:
    found = shutil.which(runtime)
    if not found:
        raise UsageError(f"runtime {runtime!r} not found or not executable")
    return str(Path(found).resolve())


def cmd_run(args: argparse.Namespace) -> int:
    data = execute(_resolve(args.runtime), args.filter, args.jobs, args.timeout, args.verbose)
    print(report.text_scorecard(data))
    _write(args.json, json.dumps(data, indent=1))
    if args.markdown:
        _write(args.markdown, report.markdown_scorecard([data], " ".join(["python -m conformance",
                                                                           *sys.argv[1:]])))
    return 0


def cmd_scorecard(args: argparse.Namespace) -> int:
    runs = [report.load(p) for p in args.results]
    if args.runtime:
        data = execute(_resolve(args.runtime), args.filter, args.jobs, args.timeout,
                       args.verbose)
        _write(args.json, json.dumps(data, indent=1))
        runs.insert(0, data)
    if not runs:
        raise UsageError("scorecard needs --runtime or --results")
    command = " ".join(["python -m conformance", *sys.argv[1:]])
    _write(args.markdown, report.markdown_scorecard(runs, command))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    result = report.compare(report.load(args.baseline), report.load(args.candidate))
    for rid in result.skipped:
        print(f"warning: {rid} passes in the baseline but was skipped", file=sys.stderr)
    for rid, status, reason in result.regressions:
        print(f"REGRESSION {rid}: {status}" + (f" -- {reason}" if reason else ""))
    print(f"{len(result.regressions)} MUST regression(s) against the baseline")
    return 0 if result.ok else 1


def cmd_list(args: argparse.Namespace) -> int:
    checks = select(args.filter)
    by_req: dict[str, list[str]] = {}
    for c in checks:
        for r in c.covers:
            by_req.setdefault(r, []).append(c.name)
    for req in REQUIREMENTS:
        if args.filter and req.id not in by_req:
            continue
        where = ", ".join(by_req.get(req.id, [])) or f"untestable: {req.untestable}"
        print(f"{req.level.value:6} {req.id:48} {where}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from fnmatch import fnmatchcase

    from conformance import commands, diff

    cases: list[diff.Observed] = [*diff.HAND_WRITTEN, *diff.generated_cases(args.seed, args.generated),
                                  *diff.schema_cases(args.seed, args.schema),
                                  *commands.SCENARIOS]
    if args.filter:
        cases = [c for c in cases if any(fnmatchcase(c.name, f) for f in args.filter)]
    started = time.monotonic()

    def progress(name: str) -> None:
        if args.verbose:
            print(f"{time.monotonic() - started:6.1f}s {name}", file=sys.stderr)
    scratch = Path(tempfile.mkdtemp(prefix="ociish-diff-"))
    try:
        runtimes = diff.default_runtimes(_resolve(args.ociish), scratch, not args.no_crun)
        outcome = diff.run(runtimes, cases, args.timeout, progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(diff.summary(outcome, list(runtimes)))
    return 1 if outcome.unexplained else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS + ("-h", "--help"):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    handler = {"run": cmd_run, "scorecard": cmd_scorecard, "compare": cmd_compare,
               "list": cmd_list, "diff": cmd_diff}[args.command]
    try:
        return handler(args)
    except (AssetError, UsageError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
