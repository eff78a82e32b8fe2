"""Benchmark: the regression under the realistic device profile, one run per seed.

Runs ``bmshil run --sim-profile realistic --sim-seed S`` for each seed (at most ``--jobs``
at a time, under ``nice``), then prints:
- per run: wall time, its verdict (PASS, CONDITIONAL: a conditional decision, FAIL), outcome
  counts, bench time (the sum of the cases' ``bench_s``), and each conditional decision;
- per measured row (a case with an expected and a measured value): the measured values'
  spread across the seeds (max - min), the largest deviation from the configured value, the
  largest expanded uncertainty U, the tolerance (the stated accuracy), and whether every
  seed's deviation stays inside the tolerance (``ok``) or not (``OUT``); and how many rows
  have every seed's deviation inside its own U;
- the rows whose "decision stable" check saw chattering, with the seeds.

It asserts nothing (a benchmark); the exit code is 0.

Usage: ``.venv/bin/python benchmarks/seeds.py [--seeds 1-10] [--jobs 2] [--out DIR]
[--profile realistic] [-k EXPR]``; ``--reuse DIR`` only reads the runs already in DIR.
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


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def _run(profile: str, seed: int, out: Path, keyword: str | None) -> subprocess.Popen[bytes]:
    cmd = ["nice", "-n", "10", sys.executable, "-m", "harness", "run", "--out", str(out)]
    cmd += ["--results-root", str(out.parent / "root"), "--sim-profile", profile]
    cmd += ["--sim-seed", str(seed)]
    cmd += ["-k", keyword] if keyword else []
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _summary(records: list[dict]) -> str:
    """Outcome counts and bench time (the sum of the cases' bench_s) of one run."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r.get("outcome", "?")] = counts.get(r.get("outcome", "?"), 0) + 1
    conditional = [
        f"{r['test_id']} {r['decision']}"
        for r in records
        if str(r.get("decision") or "").startswith("conditional")
    ]
    bench_h = sum(float(r.get("bench_s") or 0.0) for r in records) / 3600
    told = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    verdict = "FAIL" if counts.get("failed") else ("CONDITIONAL" if conditional else "PASS")
    line = f"{verdict}: {len(records)} cases ({told}); bench time {bench_h:.2f} h"
    return line + "".join(f"\n           {c}" for c in conditional)


def _records(run: Path) -> list[dict]:
    path = run / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1-10")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--profile", default="realistic")
    ap.add_argument("--out", default=None)
    ap.add_argument("--reuse", default=None, help="read the runs already in this directory")
    ap.add_argument("-k", dest="keyword", default=None)
    args = ap.parse_args()
    seeds = _seeds(args.seeds)
    root = Path(args.reuse or args.out or tempfile.mkdtemp(prefix="bmshil-seeds-"))
    root.mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        pending, running = list(seeds), []
        while pending or running:
            while pending and len(running) < args.jobs:
                s = pending.pop(0)
                proc = _run(args.profile, s, root / f"seed-{s}", args.keyword)
                running.append((s, proc, time.monotonic()))
            time.sleep(0.5)
            for item in list(running):
                s, proc, t0 = item
                if proc.poll() is not None:
                    wall = time.monotonic() - t0
                    (root / f"seed-{s}.wall").write_text(f"{wall:.1f}")
                    running.remove(item)
    print(f"profile {args.profile}, seeds {args.seeds}, runs in {root}")
    rows: dict[str, dict] = {}
    chatter: dict[str, list[int]] = {}
    for s in seeds:
        wall = root / f"seed-{s}.wall"
        records = _records(root / f"seed-{s}")
        walls = f"{float(wall.read_text()):.1f} s" if wall.exists() else "?"
        print(f"seed {s:>3}: wall {walls:>8}  {_summary(records)}")
        for r in records:
            if r.get("expected") is None or r.get("measured") is None:
                continue
            row = rows.setdefault(r["test_id"], {"dev": [], "m": [], "u": [], "tol": None})
            row["m"].append(float(r["measured"]))
            row["dev"].append(float(r["measured"]) - float(r["expected"]))
            row["u"].append(float(r.get("uncertainty") or 0.0))
            row["tol"] = r.get("tolerance")
            row["unit"] = r.get("unit") or ""
            for c in r.get("checks") or []:
                if c.get("name") == "decision stable" and "chatters" in (c.get("detail") or ""):
                    chatter.setdefault(r["test_id"], []).append(s)
    print()
    print(f"{'row':<58} {'n':>3} {'spread':>9} {'max|dev|':>9} {'max U':>8} {'tol':>7}  in tol")
    outside = within_u = 0
    for test_id, row in sorted(rows.items()):
        spread = max(row["m"]) - min(row["m"])
        worst = max(abs(d) for d in row["dev"])
        tol = row["tol"]
        inside = tol is None or worst <= float(tol) + 1e-9
        outside += not inside
        within_u += all(abs(d) <= u + 1e-9 for d, u in zip(row["dev"], row["u"], strict=True))
        tol_text = "-" if tol is None else f"{float(tol):.4g}"
        print(
            f"{test_id:<58} {len(row['m']):>3} {spread:>9.4g} {worst:>9.4g} "
            f"{max(row['u']):>8.3g} {tol_text:>7}  {'ok' if inside else 'OUT'} {row['unit']}"
        )
    print()
    print(f"{len(rows)} measured rows; {outside} with a deviation beyond the tolerance;")
    print(f"{within_u} with every seed's deviation inside its own expanded uncertainty U")
    if chatter:
        print("chattering (decision stable saw values that acted in some probes only):")
        for test_id, which in sorted(chatter.items()):
            print(f"  {test_id}: seeds {', '.join(map(str, which))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
