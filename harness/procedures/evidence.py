"""A case proven by another case's verdict in the same run (``harness/plan/evidence.py``).

The case names its evidence (``params.evidence``, a test id); the run gives the procedure
the final record of that case (``rig.evidence``: test id -> record or None). Nothing is
applied to the bench. The verdict follows the evidence and never looks better than it:

- the evidence passed: passed, with what it measured as the check's detail;
- it failed: failed, with its failure;
- it was a bench error: a bench error; it was skipped: not testable, with its reason;
- it has no verdict in this run (not selected, or not run yet): not testable, saying so.
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
    seen = f"{ref} {outcome} in this run with {state}: {_measured(rec)}"
    ok = outcome == "passed"
    if ok:
        m.measured = m.expected
    m.check("evidence", ok, seen, f"{ref} {outcome}: {rec.get('message') or 'no message'}")
    m.note = f"proven by {ref} ({state}); no bench time of its own"
