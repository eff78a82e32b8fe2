"""Mutation benchmark: does the regression catch plausible firmware mistakes?

Runs ``bmshil run`` (the regression, on the simulated bench) once per mutant of the twin's
firmware logic (``bmssim/twin/mutants.py``, selected through the faults file:
``--sim-faults`` with ``mutant: NAME``), at most two at a time, after one run of the
unmutated twin (which must PASS, or no figure is printed). Each results directory is read
the way every report reads it (``reports.runs.load_run``):

- killed: the run's verdict is FAIL (the failed cases are listed, first few);
- survived: the verdict is PASS: the regression did not notice the mistake;
- broken: the run ended INCOMPLETE or ran past ``--timeout`` (counted as not killed).

It prints a table (mutant, result, wall time, the first failed cases), then
``killed K / N non-equivalent (P %)``, every survivor with its reason (equivalent, and
why; or the case that would kill it: the registry's ``kills``), and the wall time.

Usage: ``.venv/bin/python benchmarks/mutation.py [--only NAME ...] [-k EXPR] [--jobs 2]
[--out DIR] [--timeout S] [--no-baseline] [--list]``. ``--only`` (repeatable, or
comma-separated) and ``-k`` (a ``bmshil run -k`` selection) make quick tries; the figure is
the full regression against every mutant. It is a benchmark, not a timed test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bmssim.twin.mutants import BY_NAME, MUTANTS, Mutant  # noqa: E402
from reports.runs import load_run  # noqa: E402

MAX_JOBS = 2
SHOWN = 3


@dataclass
class Result:
    name: str
    result: str = "broken"  # killed | survived | broken
    verdict: str = ""
    failed: list[str] = field(default_factory=list)
    errors: int = 0
    cases: int = 0
    bench_h: float = 0.0
    wall_s: float = 0.0
    note: str = ""


def _run(name: str, work: Path, mutant: str | None, select: str | None, timeout: float) -> Result:
    """One ``bmshil run`` of the regression with ``mutant`` in force (None: unmutated)."""
    here = work / name
    here.mkdir(parents=True)
    args = ["run", "--out", str(here / "run"), "--results-root", str(here)]
    if mutant is not None:
        faults = here / "faults.yaml"
        faults.write_text(f"mutant: {mutant}\n", encoding="utf-8")
        args += ["--sim-faults", str(faults)]
    if select:
        args += ["-k", select]
    res = Result(name)
    t0 = time.monotonic()
    with (here / "bmshil.log").open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            res.note = f"ran past {timeout:.0f} s"
    res.wall_s = time.monotonic() - t0
    if res.note:
        return res
    try:
        run = load_run(here / "run")
    except Exception as exc:  # noqa: BLE001 - a run that left nothing readable is broken
        res.note = f"no readable results (exit {proc.returncode}): {exc}"
        return res
    final: dict[str, dict] = {}
    for r in run.records:
        final[r["test_id"]] = r
    res.verdict = run.completion.verdict
    res.cases = len(final)
    res.failed = [t for t, r in final.items() if r.get("outcome") == "failed"]
    res.errors = sum(1 for r in final.values() if r.get("outcome") == "error")
    res.bench_h = sum(r.get("bench_s") or 0.0 for r in final.values()) / 3600
    if res.verdict == "PASS":
        res.result = "survived"
    elif res.verdict == "FAIL":
        res.result = "killed"
    else:
        res.note = f"{res.verdict}: {run.completion.reason}"
    return res


def _stop(proc: subprocess.Popen) -> None:
    """End the run this script started (its own process group: the harness and its bench)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _failures(res: Result) -> str:
    if res.note:
        return res.note
    shown = ", ".join(res.failed[:SHOWN])
    more = f" (+{len(res.failed) - SHOWN})" if len(res.failed) > SHOWN else ""
    errors = f"; {res.errors} bench errors" if res.errors else ""
    return (shown + more + errors) or "-"


def _line(res: Result) -> str:
    return f"{res.name:40} {res.result:8} {res.wall_s:6.0f} s  {_failures(res)}"


def _select(only: list[str]) -> list[Mutant]:
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"--only: unknown mutant(s) {unknown} (see --list)")
    return [BY_NAME[n] for n in names] if names else list(MUTANTS)


def _summary(mutants: list[Mutant], results: dict[str, Result]) -> list[str]:
    equivalent = [m for m in mutants if m.equivalent and results[m.name].result != "killed"]
    scored = [m for m in mutants if m not in equivalent]
    killed = [m for m in scored if results[m.name].result == "killed"]
    pct = 100.0 * len(killed) / len(scored) if scored else 0.0
    every = sum(1 for m in mutants if results[m.name].result == "killed")
    out = [
        f"killed {len(killed)} / {len(scored)} non-equivalent ({pct:.1f} %); "
        f"{every} / {len(mutants)} of all mutants, equivalent ones included"
    ]
    if equivalent:
        out.append(f"equivalent (not counted): {len(equivalent)}")
        out += [f"  {m.name}: {m.equivalent}" for m in equivalent]
    left = [m for m in scored if results[m.name].result != "killed"]
    if left:
        out.append("survivors and broken runs, each with its reason:")
        for m in left:
            r = results[m.name]
            what = r.result if not r.note else f"{r.result} ({r.note})"
            out.append(f"  {m.name} [{what}]: {m.description}; would be killed by: {m.kills}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=[], help="mutant name(s), repeatable")
    ap.add_argument("-k", dest="select", default=None, help="bmshil run -k selection")
    ap.add_argument("--jobs", type=int, default=MAX_JOBS, help=f"runs at once (1..{MAX_JOBS})")
    ap.add_argument("--out", default=None, help="work directory (default: a new temporary one)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = ap.parse_args()
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:40} {m.description}\n{'':40} kills: {m.kills}")
        return 0
    mutants = _select(args.only)
    jobs = max(1, min(MAX_JOBS, args.jobs))
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bmshil-mutation-"))
    work.mkdir(parents=True, exist_ok=True)
    sel = f", -k {args.select!r}" if args.select else " (the full regression)"
    print(f"mutation benchmark: {len(mutants)} mutants{sel}, {jobs} at a time, in {work}")
    t0 = time.monotonic()
    baseline: Result | None = None
    if not args.no_baseline:
        baseline = _run("baseline", work, None, args.select, args.timeout)
        print(
            f"{'(unmutated twin)':40} {baseline.verdict or baseline.result:8} "
            f"{baseline.wall_s:6.0f} s  {baseline.cases} cases, bench {baseline.bench_h:.2f} h"
        )
        if baseline.verdict != "PASS":
            print("the unmutated regression does not PASS: no mutant can be scored")
            return 1
    results: dict[str, Result] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(_run, m.name, work, m.name, args.select, args.timeout): m for m in mutants
        }
        for future in as_completed(futures):
            res = future.result()
            results[res.name] = res
            print(_line(res), flush=True)
    wall = time.monotonic() - t0
    print()
    print(f"{'mutant':40} {'result':8} {'wall':>8}  first failed cases")
    for m in mutants:
        print(_line(results[m.name]))
    print()
    summary = _summary(mutants, results)
    for line in summary:
        print(line)
    print(
        f"wall time {wall:.0f} s ({wall / 60:.1f} min) on {os.cpu_count()} cores, "
        f"{jobs} runs at a time, {dt.date.today().isoformat()}"
    )
    (work / "mutation.json").write_text(
        json.dumps(
            {
                "date": dt.date.today().isoformat(),
                "selection": args.select,
                "wall_s": wall,
                "baseline": asdict(baseline) if baseline else None,
                "results": [asdict(results[m.name]) for m in mutants],
                "summary": summary,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
