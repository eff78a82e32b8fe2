"""Compare the measured values of two regression runs, case by case (prints; exit 1 on a
difference).

    .venv/bin/python benchmarks/compare_results.py BEFORE/results.jsonl AFTER/results.jsonl

For a refactoring that must not change behaviour: every final record of one file has a
final record of the same test id in the other, with the same outcome and a ``measured``
equal within floating-point noise (``--rel``, default 1e-9; lists element by element).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def final_records(path: Path) -> dict[str, dict[str, Any]]:
    """test id -> its last record (the final one; ``not_run`` is never final)."""
    out: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path}: line {n}: not JSON: {exc}") from None
        if rec.get("outcome") != "not_run":
            out[rec["test_id"]] = rec
    return out


def same(a: Any, b: Any, rel: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel) for k in a)
    return a == b


def compare(before: Path, after: Path, rel: float) -> list[str]:
    """Every difference, one sentence each (empty: the runs agree)."""
    a, b = final_records(before), final_records(after)
    problems = [f"{tid}: only in {before}" for tid in a if tid not in b]
    problems += [f"{tid}: only in {after}" for tid in b if tid not in a]
    for tid in a.keys() & b.keys():
        ra, rb = a[tid], b[tid]
        for key in ("outcome", "measured"):
            if not same(ra.get(key), rb.get(key), rel):
                problems.append(f"{tid}: {key} {ra.get(key)!r} before, {rb.get(key)!r} after")
    return sorted(problems)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rel", type=float, default=1e-9)
    args = ap.parse_args(argv)
    problems = compare(args.before, args.after, args.rel)
    n = len(final_records(args.before))
    for p in problems:
        print(p)
    print(f"{n} cases compared, {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
