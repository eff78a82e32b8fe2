"""A case proven by another case's verdict in the same run (``harness/plan/evidence.py``).

The case names its evidence (``params.evidence``, a test id); the run gives the procedure
the final record of that case (``rig.evidence``: test id -> record or None). Nothing is
applied to the bench. The verdict follows the evidence and never looks better than it:

- the evidence passed: passed, with what it measured as the check's detail;
- it failed: failed, with its failure;
- it was a bench error: a bench error; it was skipped: not testable, with its reason;
- it has no verdict in this run (not selected, or not run yet): not testable, saying so.

With ``params.evidence_check`` the case is proven by that one check of the evidence's record
instead of its verdict: the check passed, passed; it failed, failed (whatever else the
evidence found); the evidence has no such check (it ended before it), not testable, with the
evidence's outcome and message; a bench error or a skip as above.
"""

from __future__ import annotations

from typing import Any

from harness.procedures.record import BenchFault, CaseNotTestable, Measurement
from harness.procedures.rig import Rig


def _measured(rec: dict[str, Any]) -> str:
    unit = f" {rec.get('unit')}" if rec.get("unit") else ""
    measured, expected, tol = rec.get("measured"), rec.get("expected"), rec.get("tolerance")
    if measured is None:
        return "nothing measured"
    out = f"measured {measured:g}{unit}"
    if expected is not None and tol is not None:
        out += f" (expected {expected:g} +- {tol:g}{unit})"
    return out


def _other_state(m: Measurement) -> float | None:
    """What a switch case measured when its evidence says the state did not hold: the other
    state (1 for 0, 0 for 1); None for anything else."""
    return 1.0 - m.expected if m.expected in (0.0, 1.0) else None


def run(rig: Rig, case: Any, m: Measurement) -> None:
    ref = rig.setup.text("evidence")
    state = str(rig.setup.params.get("evidence_state", ""))
    lookup = getattr(rig, "evidence", None)
    rec = lookup(ref) if lookup is not None else None
    if rec is None:
        raise CaseNotTestable(
            f"its evidence, case {ref}, has no verdict in this run (not selected, or not run yet)"
        )
    outcome = rec.get("outcome")
    if outcome == "skipped":
        raise CaseNotTestable(
            f"its evidence, case {ref}, was not tested: {rec.get('reason') or rec.get('message')}"
        )
    if outcome == "error":
        raise BenchFault(f"its evidence, case {ref}, ended in a bench error: {rec.get('message')}")
    name = rig.setup.params.get("evidence_check")
    if name is not None:
        _by_check(m, ref, state, rec, str(name))
        return
    seen = f"{ref} {outcome} in this run with {state}: {_measured(rec)}"
    ok = outcome == "passed"
    m.measured = m.expected if ok else _other_state(m)
    m.check("evidence", ok, seen, f"{ref} {outcome}: {rec.get('message') or 'no message'}")
    m.note = f"proven by {ref} ({state}); no bench time of its own"


def _by_check(m: Measurement, ref: str, state: str, rec: dict[str, Any], name: str) -> None:
    """The verdict of one named check of the evidence's record."""
    found = [c for c in rec.get("checks") or [] if c.get("name") == name]
    if not found:
        raise CaseNotTestable(
            f"its evidence, case {ref} ({rec.get('outcome')}), has no check {name!r}: it "
            f"ended before it ({rec.get('message') or 'no message'})"
        )
    check = found[-1]
    ok = bool(check.get("ok"))
    m.measured = m.expected if ok else _other_state(m)
    m.check(
        "evidence",
        ok,
        f"{ref}, check {name!r}, with {state}: {check.get('detail')}",
        f"{ref}, check {name!r}: {check.get('detail')}",
    )
    m.note = f"proven by the check {name!r} of {ref} ({state}); no bench time of its own"
