"""Compare the plan this checkout builds with a snapshot taken from another checkout.

``snapshot`` writes, for three benches (the simulated defaults, every capability, none) and
each suite (and all), the fields a refactoring of the plan must keep: id, expected,
tolerance, overrides, switch_overrides, suites, est_bench_s, testable, reason.
``compare`` reads such a snapshot and prints every difference (exit 1 when any).

Usage::

    PYTHONPATH=/work/main python benchmarks/plan_compare.py snapshot /tmp/plan-before.json
    PYTHONPATH=$PWD python benchmarks/plan_compare.py compare /tmp/plan-before.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

FIELDS = (
    "expected",
    "tolerance",
    "overrides",
    "switch_overrides",
    "suites",
    "est_bench_s",
    "testable",
    "reason",
)


def _benches() -> dict[str, dict[str, bool]]:
    from harness.plan import DEFAULT_CAPABILITIES

    return {
        "defaults": dict(DEFAULT_CAPABILITIES),
        "all": dict.fromkeys(DEFAULT_CAPABILITIES, True),
        "none": dict.fromkeys(DEFAULT_CAPABILITIES, False),
    }


def snapshot() -> dict[str, Any]:
    from bmsspec import load_spec
    from harness.plan import SUITES, build_plan

    spec = load_spec()
    out: dict[str, Any] = {}
    for bench, caps in _benches().items():
        for suite in (None, *SUITES):
            cases = build_plan(spec, caps, suite)
            out[f"{bench}/{suite or 'all'}"] = [
                {"id": c.id, **{k: c.to_dict()[k] for k in FIELDS}} for c in cases
            ]
    return out


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    diffs: list[str] = []
    for key, old_cases in before.items():
        new_cases = after.get(key, [])
        old = {c["id"]: c for c in old_cases}
        new = {c["id"]: c for c in new_cases}
        for cid in old.keys() - new.keys():
            diffs.append(f"{key}: {cid} is gone")
        for cid in new.keys() - old.keys():
            diffs.append(f"{key}: {cid} is new")
        if [c for c in old if c in new] != [c for c in new if c in old]:
            diffs.append(f"{key}: the case order changed")
        for cid in old.keys() & new.keys():
            for field in FIELDS:
                if old[cid][field] != new[cid][field]:
                    diffs.append(
                        f"{key}: {cid} {field}: {old[cid][field]!r} -> {new[cid][field]!r}"
                    )
    return sorted(diffs)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("snapshot", "compare"):
        print(__doc__)
        return 2
    if argv[0] == "snapshot":
        with open(argv[1], "w", encoding="utf-8") as fh:
            json.dump(snapshot(), fh, indent=1, sort_keys=True)
        return 0
    with open(argv[1], encoding="utf-8") as fh:
        before = json.load(fh)
    diffs = compare(before, snapshot())
    for line in diffs:
        print(line)
    print(f"{len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
