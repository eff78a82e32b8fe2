"""Benchmark: what link faults cost now that a lost reply costs line time, not a fixed wait.

Runs ``bmshil run`` on the simulated bench twice, clean and with link faults (``--sim-faults``
with ``link: {drop_every: 7, corrupt_every: 11}``: one reply in seven dropped, one in eleven
with a corrupt checksum), and prints for both the wall time (this machine), the bench time
(the simulator's virtual clock, link time included: every transaction costs its request,
turnaround and reply at the bench's baud rate), the outcome counts and the ratios faulty /
clean. Target (issue 13): at most 1.5x on both, every case still passing.

Usage: ``.venv/bin/python benchmarks/link.py [--select EXPR | --full] [--keep DIR]``. The
default is the subset of ``benchmarks/faults.py``'s link runs; ``--full`` runs the whole
regression (a faulty full run takes several minutes of wall time).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBSET = "P01 or P02 or P05 or P06 or P07 or P08 or P13 or P14 or P25 or P26 or P67 or S10 or S13"
FAULTS = "link: {drop_every: 7, corrupt_every: 11}\n"


@dataclass
class Run:
    name: str
    exit_code: int
    wall_s: float
    bench_s: float
    outcomes: dict[str, int]

    @property
    def all_passed(self) -> bool:
        bad = {k: v for k, v in self.outcomes.items() if k not in ("passed", "skipped")}
        return self.exit_code == 0 and not bad


def run(name: str, work: Path, select: str | None, faults: str | None) -> Run:
    out = work / name
    cmd = [sys.executable, "-m", "harness", "run", "--out", str(out)]
    cmd += ["--results-root", str(work / "root")]
    if select:
        cmd += ["-k", select]
    if faults:
        path = work / f"{name}-faults.yaml"
        path.write_text(faults, encoding="utf-8")
        cmd += ["--sim-faults", str(path)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - t0
    records = [
        json.loads(line)
        for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    bench = sum(r.get("bench_s") or 0.0 for r in records)
    return Run(name, proc.returncode, wall, bench, outcomes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--select", default=SUBSET, help="-k expression (default: a subset)")
    group.add_argument("--full", action="store_true", help="the whole regression")
    ap.add_argument("--keep", default=None, help="keep the results under this directory")
    args = ap.parse_args()
    select = None if args.full else args.select
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bmshil-link-"))
    work.mkdir(parents=True, exist_ok=True)
    clean = run("clean", work, select, None)
    faulty = run("faulty", work, select, FAULTS)
    print(f"selection      {'full regression' if select is None else select}")
    print(f"faults         {FAULTS.strip()}")
    print(f"{'run':<8} {'exit':>4} {'wall s':>8} {'bench s':>9}  outcomes")
    for r in (clean, faulty):
        print(f"{r.name:<8} {r.exit_code:>4} {r.wall_s:>8.1f} {r.bench_s:>9.0f}  {r.outcomes}")
    wall_x = faulty.wall_s / clean.wall_s if clean.wall_s else float("nan")
    bench_x = faulty.bench_s / clean.bench_s if clean.bench_s else float("nan")
    print(f"ratio faulty/clean: wall {wall_x:.2f}x, bench {bench_x:.2f}x (target <= 1.5x)")
    ok = clean.all_passed and faulty.all_passed
    print(f"every case passed in both runs: {'yes' if ok else 'NO'}")
    print(f"results kept in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
