"""Benchmark: the full regression on one simulated bench and spread over several.

Runs ``bmshil run --suite regression`` once on one simulated bench and once with
``--sim-benches N`` (default 2), each into a fresh results root, and prints for each:
- elapsed time (this script's clock around the ``bmshil`` process: start-up to exit);
- summed bench time per bench (the records' ``bench_s``: what a real bench would spend,
  from the simulator's virtual clock), and the run's bench time, the busiest bench's, as a
  share of the one-bench time (ideal: 1/N; list scheduling longest-first keeps it under
  1/N + the longest case's share);
- the verdict, so a fast but failing run is never read as a result.

Issue 13's targets, printed beside the figures: under 15 s elapsed on one bench and under
10 s with two, on this 2-core machine. The figures are measured, never adjusted; on a
loaded machine they are slower (the load average is printed with them).

Usage: ``.venv/bin/python benchmarks/throughput.py [--benches N] [--suite regression]
[--keep DIR]`` (DIR keeps the results roots ``DIR/one`` and ``DIR/multi``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_ONE_S = 15.0
TARGET_TWO_S = 10.0


def run(root: Path, suite: str, benches: int) -> dict[str, Any]:
    out = root / "run"
    cmd = [sys.executable, "-m", "harness", "run", "--suite", suite, "--out", str(out)]
    cmd += ["--results-root", str(root)]
    if benches > 1:
        cmd += ["--sim-benches", str(benches)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    finals: dict[str, dict[str, Any]] = {}
    path = out / "results.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        finals[rec["test_id"]] = rec
    per_bench: dict[str, float] = {}
    for rec in finals.values():
        worker = rec.get("worker") or "gw0"
        per_bench[worker] = per_bench.get(worker, 0.0) + float(rec.get("bench_s") or 0.0)
    verdict = "?"
    for line in proc.stdout.splitlines():
        for word in ("PASS:", "FAIL:", "INCOMPLETE:"):
            if line.startswith(word):
                verdict = word.rstrip(":")
    longest = max((float(r.get("bench_s") or 0.0) for r in finals.values()), default=0.0)
    return {
        "code": proc.returncode,
        "elapsed_s": elapsed,
        "per_bench_s": dict(sorted(per_bench.items())),
        "bench_s": max(per_bench.values(), default=0.0),
        "total_bench_s": sum(per_bench.values()),
        "longest_case_s": longest,
        "cases": len(finals),
        "verdict": verdict,
        "tail": proc.stdout[-2000:] + proc.stderr[-2000:],
    }


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benches", type=int, default=2, help="simulated benches of the spread run")
    ap.add_argument("--suite", default="regression")
    ap.add_argument("--keep", default=None, help="keep the results roots under this directory")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bmshil-throughput-"))
    for name in ("one", "multi"):
        if (base / name).exists():
            print(f"error: {base / name} exists; choose another --keep", file=sys.stderr)
            return 2
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at start")
    one = run(base / "one", args.suite, 1)
    multi = run(base / "multi", args.suite, args.benches)
    target_multi = TARGET_TWO_S if args.benches == 2 else None
    for label, res, target in (
        ("1 bench", one, TARGET_ONE_S),
        (f"{args.benches} benches", multi, target_multi),
    ):
        aim = f" (target < {target:g} s)" if target else ""
        print(
            f"{label}: elapsed {res['elapsed_s']:.1f} s{aim}; {res['cases']} cases, "
            f"verdict {res['verdict']} (exit {res['code']})"
        )
        per = ", ".join(f"{w} {hours(s)}" for w, s in res["per_bench_s"].items())
        print(f"  bench time per bench: {per}")
        share = res["bench_s"] / one["bench_s"] if one["bench_s"] else float("nan")
        n = len(res["per_bench_s"]) or 1
        bound = (
            (one["bench_s"] / n + res["longest_case_s"]) / one["bench_s"] if one["bench_s"] else 0
        )
        print(
            f"  run's bench time (busiest bench) {hours(res['bench_s'])} = {share:.2f} x the "
            f"one-bench time (ideal {1 / n:.2f}, LPT bound {bound:.2f}: 1/{n} + the longest "
            f"case {hours(res['longest_case_s'])}); summed over benches "
            f"{hours(res['total_bench_s'])}"
        )
        if res["code"] != 0:
            print("  the run did not pass; its output ends:\n" + res["tail"])
    speedup = one["elapsed_s"] / multi["elapsed_s"] if multi["elapsed_s"] else float("nan")
    print(f"elapsed: {args.benches} benches take {1 / speedup:.2f} x the one-bench time")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} at the end")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if one["code"] == 0 and multi["code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
