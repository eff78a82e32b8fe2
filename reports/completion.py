"""How a run ended, read from its results directory: complete, interrupted, bench lost,
aborted or crashed, its planned cases without a final record, and the verdict that follows
(a run that did not finish its plan is never PASS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: ``run.json`` ``end.status`` values the harness writes.
END_STATUSES = ("running", "complete", "interrupted", "bench_lost", "aborted")

#: Completion statuses beyond the harness's: a run that died without an end record, and a
#: run directory from before ``planned``/``end`` existed that finished.
CRASHED, LEGACY = "crashed", "legacy"

CRASHED_REASON = "no end record (the run process died)"

LEGACY_CRASHED_REASON = (
    "the run did not finish (run.json has no finished_at and no end record; "
    "its plan was not recorded)"
)

COMPLETE_WITH_GAPS_REASON = "the end record says complete, but planned cases lack a final record"


@dataclass(frozen=True)
class Completion:
    """Did the run execute every case it planned, and what may the reports conclude?

    ``status`` is the harness's ``end.status`` (``complete``, ``interrupted``, ``bench_lost``,
    ``aborted``), ``crashed`` (no end record, or one still saying ``running``: the process
    died), or ``legacy`` (a directory from before the contract that finished; one that did
    not is ``crashed`` with ``legacy`` set). ``planned`` counts the planned cases, ``final``
    those with a final record (the last record of their test id, ``not_run`` included);
    ``missing`` lists planned ids without any record, ``not_run`` those whose final record
    says the run did not get to them. ``verdict`` is what every report shows:

    * ``FAIL`` when any final record failed (a product defect, whether or not complete);
    * ``INCOMPLETE`` when the run is not complete;
    * else ``FAIL`` on a bench error or when nothing passed (the rule the compliance report
      always had), and ``PASS`` only when every final record passed or was skipped.
    """

    status: str
    reason: str
    planned: int
    final: int
    missing: list[str]
    not_run: list[str]
    complete: bool
    verdict: str
    verdict_reasons: list[str] = field(default_factory=list)
    #: Why each not-run or missing case was not run (the record's message, else the end reason).
    not_run_reasons: dict[str, str] = field(default_factory=dict)
    #: Ids with a record that the run did not plan (kept, and warned about).
    unplanned: list[str] = field(default_factory=list)
    signal: str | None = None
    at: str | None = None
    legacy: bool = False
    run_id: str | None = None
    sessions: int = 1
    resumed: bool = False
    #: Planned cases whose final record's decision is conditional (its uncertainty interval
    #: straddles a limit), with that decision: never a plain PASS.
    conditional: dict[str, str] = field(default_factory=dict)

    @property
    def not_run_count(self) -> int:
        """Planned cases without a verdict-bearing final record (missing + not run)."""
        return len(self.missing) + len(self.not_run)

    @property
    def unfinished(self) -> list[str]:
        """Planned ids not run, in plan order (not-run records and missing cases)."""
        return list(self.not_run_reasons)

    @property
    def summary(self) -> str:
        """``<status>: <reason>; N of M planned cases not run``."""
        reason = self.reason or "no reason recorded"
        return (
            f"{self.status}: {reason}; {self.not_run_count} of {self.planned} planned cases not run"
        )

    @property
    def banner(self) -> str:
        """The line every report shows for an incomplete run ("" for a complete one)."""
        return "" if self.complete else f"INCOMPLETE \u2014 {self.summary}"

    @property
    def end_text(self) -> str:
        """How the run ended, for a header: ``interrupted (SIGTERM, at ...): reason``."""
        extra = ", ".join(p for p in (self.signal, f"at {self.at}" if self.at else "") if p)
        text = f"{self.status} ({extra})" if extra else self.status
        return f"{text}: {self.reason}" if self.reason else text


def completion(info: dict[str, Any], records: list[dict[str, Any]]) -> Completion:
    """The :class:`Completion` of a run from its ``run.json`` and its (final) records.

    ``records`` are the final records (``load_run`` keeps the last record of a test id); a
    list with repeats is reduced the same way here.
    """
    final: dict[str, dict[str, Any]] = {}
    for rec in records:
        final.pop(rec["test_id"], None)
        final[rec["test_id"]] = rec
    planned_raw = info.get("planned")
    end = info.get("end")
    legacy = planned_raw is None and end is None
    signal = at = None
    if legacy:
        planned = list(final)
        if info.get("finished_at"):
            status, reason = LEGACY, "run from before end records; run.json has finished_at"
        else:
            status, reason = CRASHED, LEGACY_CRASHED_REASON
    else:
        planned = list(dict.fromkeys(planned_raw or []))
        if not isinstance(end, dict) or end.get("status") in (None, "running"):
            status, reason = CRASHED, CRASHED_REASON
        else:
            status = str(end.get("status"))
            reason = str(end.get("reason") or "")
            signal = end.get("signal") or None
            at = end.get("at") or None
    planned_set = set(planned)
    missing = [t for t in planned if t not in final]
    not_run = [t for t in planned if t in final and final[t]["outcome"] == "not_run"]
    unplanned = [t for t in final if t not in planned_set]
    complete = status in ("complete", LEGACY) and not missing and not not_run
    if status in ("complete", LEGACY) and not complete:
        reason = COMPLETE_WITH_GAPS_REASON
    reasons: dict[str, str] = {}
    for t in planned:
        if t in final and final[t]["outcome"] == "not_run":
            reasons[t] = str(final[t].get("message") or final[t].get("reason") or "") or (
                reason or "not run"
            )
        elif t not in final:
            reasons[t] = f"no record ({status}" + (f": {reason})" if reason else ")")
    outcomes = [r["outcome"] for r in final.values()]
    n_failed, n_error = outcomes.count("failed"), outcomes.count("error")
    n_passed = outcomes.count("passed")
    conditional = {
        t: str(final[t]["decision"])
        for t in planned
        if t in final and str(final[t].get("decision") or "").startswith("conditional")
    }
    summary_reason = (
        f"the run is INCOMPLETE: {status}: {reason or 'no reason recorded'}; "
        f"{len(missing) + len(not_run)} of {len(planned)} planned cases not run"
    )
    verdict_reasons = []
    if n_failed:
        verdict_reasons.append(f"{n_failed} test(s) failed (product defect)")
    if not complete:
        verdict_reasons.append(summary_reason)
    if n_error:
        verdict_reasons.append(f"{n_error} test(s) hit a bench error (no verdict)")
    if conditional:
        kinds = sorted(set(conditional.values()))
        verdict_reasons.append(
            f"{len(conditional)} test(s) conditional ({', '.join(kinds)}: the uncertainty "
            f"interval straddles a limit, decision rule {info.get('decision_rule') or 'simple'})"
        )
    if not n_passed:
        verdict_reasons.append("no test passed")
    if n_failed:
        verdict = "FAIL"
    elif not complete:
        verdict = "INCOMPLETE"
    elif n_error:
        verdict = "FAIL"
    elif conditional:
        verdict = "CONDITIONAL"
    elif not n_passed:
        verdict = "FAIL"
    else:
        verdict = "PASS"
    sessions = info.get("sessions")
    n_sessions = _invocations(sessions) if isinstance(sessions, list) and sessions else 1
    resumed = isinstance(sessions, list) and any(
        isinstance(s, dict) and s.get("resumed") for s in sessions
    )
    run_id = info.get("run_id")
    return Completion(
        status=status,
        reason=reason,
        planned=len(planned),
        final=len(planned) - len(missing),
        missing=missing,
        not_run=not_run,
        complete=complete,
        verdict=verdict,
        verdict_reasons=verdict_reasons,
        not_run_reasons=reasons,
        unplanned=unplanned,
        signal=signal,
        at=at,
        legacy=legacy,
        run_id=str(run_id) if run_id else None,
        sessions=n_sessions,
        resumed=resumed,
        conditional=conditional,
    )


def _invocations(sessions: list[Any]) -> int:
    """How many times the run was invoked: a run on several benches has one ``sessions``
    entry per bench, sharing the invocation's ``invocation`` id."""
    seen: set[Any] = set()
    for k, s in enumerate(sessions):
        seen.add(s.get("invocation") or ("entry", k) if isinstance(s, dict) else ("entry", k))
    return len(seen)
