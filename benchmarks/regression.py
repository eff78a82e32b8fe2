"""Benchmark: the full regression suite on the simulated bench, real wire traffic included.

Prints:
- wall time of ``bmshil run --suite regression`` on this machine (aim: under 30 s), and where
  it goes: start-up (this script starting ``bmshil`` to the first case's start), cases (sum
  of the cases' wall times), between cases (the rest of the case loop: recording, Allure,
  handing plots over, pytest), close (last case's end to run.json final: safe state,
  simulator stop, waiting for the plot worker), reports (``--reports``), the rest (junit,
  summary, history, process exit). From run.json ``timing`` (``time.monotonic()``,
  one clock for both processes) and this script's own clock;
- its bench time (what a real bench would spend: the simulator's virtual clock), against the
  sum of the spec's mandatory waits (each delay case's configured delay) and against the
  bench time of a naive 1-step ramp for every threshold case.

Usage: ``.venv/bin/python benchmarks/regression.py [--suite regression] [--out DIR]
[--reports]`` (DIR is the results root: the run is ``DIR/run``, its history ``DIR/history.sqlite``).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bmsspec import SECONDS_PER_UNIT as UNIT_S

ROOT = Path(__file__).resolve().parent.parent

#: Dwell per probe the procedures use (past the ~1 s confirmation time).
DWELL_S = 1.5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="regression")
    ap.add_argument("--out", default=None)
    ap.add_argument("--reports", action="store_true", help="also write the reports (timed)")
    args = ap.parse_args()
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bmshil-regression-"))
    out = root / "run"
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--suite",
        args.suite,
        "--out",
        str(out),
        "--results-root",
        str(root),
    ]
    if args.reports:
        cmd.append("--reports")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    t_end = time.monotonic()
    wall = t_end - t0
    records = [
        json.loads(line)
        for line in (out / "results.jsonl").read_text().splitlines()
        if line.strip()
    ]
    bench_s = sum(r.get("bench_s") or 0.0 for r in records)
    mandatory = sum(
        abs(r["expected"]) * UNIT_S[r["unit"]]
        for r in records
        if r["kind"] == "delay" and r.get("expected") is not None and r.get("unit") in UNIT_S
    )
    thresholds = [r for r in records if r["kind"] in ("trip", "recovery") and r.get("naive_probes")]
    probes = sum(r.get("probes") or 0 for r in thresholds)
    naive = sum(r["naive_probes"] for r in thresholds)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    print(f"suite                      {args.suite} ({len(records)} cases: {counts})")
    print(f"exit code                  {proc.returncode}")
    print(f"elapsed time               {wall:.1f} s on this machine (aim < 30 s)")
    for label, seconds in where_the_time_goes(out, records, t0, t_end):
        print(f"  {label:<25}{seconds}")
    print(f"bench time (virtual)       {bench_s:.0f} s = {bench_s / 3600:.2f} h")
    print(f"mandatory waits (spec)     {mandatory:.0f} s = {mandatory / 3600:.2f} h (delay cases)")
    if mandatory:
        print(f"bench / mandatory          {bench_s / mandatory:.3f} x (issue 13 aims at <= 1.5 x)")
        est = plan_estimate_s(args.suite)
        print(
            f"plan estimate / mandatory  {est / mandatory:.3f} x "
            f"(the plan's estimate {est / 3600:.2f} h, `bmshil plan`)"
        )
    print(f"threshold probes           {probes} (bisection) vs {naive} (naive 1-step ramp)")
    if probes:
        print(f"probe ratio naive/search   {naive / probes:.1f} x")
        print(f"naive ramp bench time      {naive * DWELL_S / 3600:.2f} h (threshold cases alone)")
    return 0


def plan_estimate_s(suite: str) -> float:
    """The plan's own estimate of the suite's real-bench time, as ``bmshil plan`` prints it
    on the default bench ("regression 7 h 51 min")."""
    out = subprocess.run(
        [sys.executable, "-m", "harness", "plan", "--suite", suite],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(
        rf"{re.escape(suite)} (?:(\d+) h )?(\d+) min(?: (\d+) s)?", " ".join(out.split())
    )
    if found is None:
        raise SystemExit(f"bmshil plan printed no estimate for suite {suite!r}:\n{out}")
    hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def where_the_time_goes(
    out: Path, records: list[dict], t0: float, t_end: float
) -> list[tuple[str, str]]:
    """The elapsed time in consecutive parts, from run.json ``timing`` (same monotonic
    clock as ``t0``/``t_end``); parts it cannot tell are left out, never guessed."""
    try:
        timing = json.loads((out / "run.json").read_text()).get("timing") or {}
    except (OSError, json.JSONDecodeError):
        timing = {}
    first = timing.get("first_case_started_mono")
    last = timing.get("last_case_finished_mono")
    closed = timing.get("close_finished_mono")
    if first is None or last is None or closed is None:
        return [("(no timing in run.json)", "-")]
    cases_s = sum(r.get("wall_s") or 0.0 for r in records if r.get("outcome") != "not_run")
    parts = [
        ("start-up", first - t0, "bmshil started -> first case starts"),
        ("cases", cases_s, f"sum of {len(records)} case wall times"),
        ("between cases", (last - first) - cases_s, "rest of the case loop"),
        ("close", closed - last, f"incl. {timing.get('plots_wait_s') or 0:.2f} s plot wait"),
    ]
    mark = closed
    if timing.get("reports_started_mono") is not None:
        parts.append(("after close", timing["reports_started_mono"] - closed, "junit, history"))
        parts.append(
            (
                "reports",
                timing["reports_finished_mono"] - timing["reports_started_mono"],
                f"compliance {timing.get('compliance_report_s', 0):.1f} s, "
                f"allure {timing.get('allure_report_s', 0):.1f} s",
            )
        )
        mark = timing["reports_finished_mono"]
        parts.append(("rest", t_end - mark, "process exit"))
    else:
        parts.append(("rest", t_end - mark, "junit, summary, history, process exit"))
    parts.append(("elapsed total", t_end - t0, "as measured here"))
    return [(label, f"{s:6.1f} s  ({what})") for label, s, what in parts]


if __name__ == "__main__":
    raise SystemExit(main())
