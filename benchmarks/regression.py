"""Benchmark: the full regression suite on the simulated bench, real wire traffic included.

Prints:
- wall time of ``bmshil run --suite regression`` on this machine (aim: under 30 s);
- its bench time (what a real bench would spend: the simulator's virtual clock), against the
  sum of the spec's mandatory waits (each delay case's configured delay) and against the
  bench time of a naive 1-step ramp for every threshold case.

Usage: ``.venv/bin/python benchmarks/regression.py [--suite regression] [--out DIR]`` (DIR
is the results root: the run is ``DIR/run``, its history ``DIR/history.sqlite``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNIT_S = {"second": 1.0, "mS": 0.001, "minute": 60.0, "hours": 3600.0}
#: Dwell per probe the procedures use (past the ~1 s confirmation time).
DWELL_S = 1.5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="regression")
    ap.add_argument("--out", default=None)
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
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
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
    print(f"bench time (virtual)       {bench_s:.0f} s = {bench_s / 3600:.2f} h")
    print(f"mandatory waits (spec)     {mandatory:.0f} s = {mandatory / 3600:.2f} h (delay cases)")
    print(f"threshold probes           {probes} (bisection) vs {naive} (naive 1-step ramp)")
    if probes:
        print(f"probe ratio naive/search   {naive / probes:.1f} x")
        print(f"naive ramp bench time      {naive * DWELL_S / 3600:.2f} h (threshold cases alone)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
