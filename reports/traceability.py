"""Traceability: every spec row to the cases that test it, their outcomes and their evidence
(plots, Allure attachments), with the rows no case executed named as gaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.compliance_model import (
    KIND_ORDER,
    VERDICT_TEXT,
    _item_of,
    _measured,
    _notes,
    canonical_item,
)
from reports.runs import RunData, plan_cases

#: Status of a spec row in the traceability matrix, worst first.
TRACE_FAIL, TRACE_ERROR, TRACE_PASS, TRACE_GAP = "FAIL", "BENCH ERROR", "PASS", "GAP"

NO_CASE = "no case in the plan"

#: Outcomes that executed a case on the bench (a skipped or not-run case did not).
EXECUTED = ("passed", "failed", "error")


@dataclass
class TraceCase:
    """One case of a spec row: its final outcome and the evidence the run holds for it."""

    test_id: str
    kind: str
    outcome: str
    #: ``PASS``/``FAIL``/... (``NO RECORD`` for a planned case the run never recorded).
    verdict: str
    #: Measured value with its uncertainty and unit (``3.7 ± 0.002 V``), "" if none.
    evidence: str
    #: Why the case gave no verdict (skip reason, not-run message) or its failure message.
    reason: str
    #: In-page anchor of its detail row (``case-<id>``; ``notrun-<id>`` without a record).
    anchor: str
    has_plot: bool = False
    attachments: int = 0
    #: What the evidence cell says about the reason ("" when the row's status says it).
    note: str = ""

    @property
    def executed(self) -> bool:
        return self.outcome in EXECUTED


@dataclass
class TraceRow:
    """One spec row (parameter or switch) with the cases that test it."""

    item: str
    name: str
    cases: list[TraceCase]
    status: str
    #: Why a GAP is one (or a BENCH ERROR has no verdict): the cases' reasons.
    reason: str = ""
    #: For a row without a case: the whole plan's cases of the item the run did not select.
    detail: str = ""
    #: For a PASS row with a case that gave no verdict: ``partial: 1 of 2 cases ...``.
    partial: str = ""

    @property
    def css(self) -> str:
        return {TRACE_PASS: "pass", TRACE_FAIL: "fail", TRACE_ERROR: "error"}.get(
            self.status, "gap"
        )


@dataclass
class Traceability:
    """Every spec row in spec order (P1..P87, S1..S64) -> cases -> verdicts -> evidence."""

    rows: list[TraceRow]
    #: Test ids of the run naming an item that is not a row of this checkout's spec.
    outside: list[str] = field(default_factory=list)

    def having(self, status: str) -> list[TraceRow]:
        return [r for r in self.rows if r.status == status]

    @property
    def covered(self) -> list[TraceRow]:
        """Rows with at least one passing case and no failing one."""
        return self.having(TRACE_PASS)

    @property
    def gaps(self) -> list[TraceRow]:
        return self.having(TRACE_GAP)

    @property
    def gaps_by_reason(self) -> dict[str, list[str]]:
        """{reason: [items]} of the gaps, reasons in the order of their first gap."""
        out: dict[str, list[str]] = {}
        for row in self.gaps:
            out.setdefault(row.reason, []).append(row.item)
        return out

    @property
    def summary(self) -> str:
        n_p = sum(1 for r in self.covered if r.item.startswith("P"))
        text = (
            f"{len(self.covered)} of {len(self.rows)} spec rows covered by a passing case "
            f"({n_p} parameters, {len(self.covered) - n_p} switches); "
            f"{len(self.gaps)} gap(s)"
        )
        for status, label in ((TRACE_FAIL, "failing"), (TRACE_ERROR, "bench error only")):
            if rows := self.having(status):
                text += f"; {len(rows)} {label}: {', '.join(r.item for r in rows)}"
        if partial := [r.item for r in self.covered if r.partial]:
            text += f"; {len(partial)} covered only in part: {', '.join(partial)}"
        return text


def _allure_attachments(results: Path) -> dict[str, int]:
    """{test id: number of attachments} of the case's Allure result (the last one written
    for the id when a resumed run has several); {} without ``allure-results``."""
    import json

    found: dict[str, tuple[int, int]] = {}
    if not results.is_dir():
        return {}
    for result_file in results.glob("*-result.json"):
        try:
            result = json.loads(result_file.read_text(encoding="utf-8"))
            attachments = result.get("attachments") or []
            source = next(a["source"] for a in attachments if a.get("name") == "result")
            test_id = str(json.loads((results / source).read_text(encoding="utf-8"))["test_id"])
            stop = int(result.get("stop") or 0)
        except (OSError, ValueError, KeyError, TypeError, StopIteration):
            continue
        if test_id not in found or stop >= found[test_id][0]:
            found[test_id] = (stop, len(attachments))
    return {k: n for k, (_, n) in found.items()}


def _plot_files(run: RunData, known: set[str]) -> dict[str, int]:
    """{test id: PNG files in ``plots/``}: ``<id>.png`` and ``<id>-<name>.png`` (a suffix
    that makes another known test id belongs to that one)."""
    out: dict[str, int] = {}
    plots = run.directory / "plots"
    if not plots.is_dir():
        return out
    for png in plots.glob("*.png"):
        stem = png.stem
        owner = stem if stem in known else None
        while owner is None and "-" in stem:
            stem = stem.rsplit("-", 1)[0]
            owner = stem if stem in known else None
        if owner is not None:
            out[owner] = out.get(owner, 0) + 1
    return out


def traceability(run: RunData, spec: Any) -> Traceability:
    """The traceability matrix of a run: one row per spec row in spec order, each with the
    run's cases of that item (planned, or recorded without being planned) in kind order.

    A row's status: ``FAIL`` when a case failed, else ``PASS`` when one passed, else
    ``BENCH ERROR`` when one was executed but hit a bench error, else ``GAP`` (no case
    executed: skipped, not run, or no case in the plan) with the reason."""
    done = run.completion
    final = {r["test_id"]: r for r in run.records}
    planned = [str(t) for t in run.info.get("planned") or []]
    ids = list(dict.fromkeys([*planned, *final]))
    plan = plan_cases()
    known = set(ids) | set(plan)
    allure_counts = _allure_attachments(run.directory / "allure-results")
    plot_counts = _plot_files(run, known)
    by_item: dict[str, list[TraceCase]] = {}
    for test_id in ids:
        rec = final.get(test_id)
        case = plan.get(test_id)
        item = canonical_item(
            (rec or {}).get("item") or (case.item if case is not None else _item_of(test_id))
        )
        kind = (rec or {}).get("kind") or (case.kind if case is not None else "")
        if rec is None:
            outcome, verdict_text = "not_run", "NO RECORD"
        else:
            outcome, verdict_text = rec["outcome"], VERDICT_TEXT[rec["outcome"]]
        if outcome == "skipped" and rec is not None:
            reason = _notes(rec)  # the skip reason (and note), as the detail row has it
        elif outcome == "not_run":
            reason = done.not_run_reasons.get(test_id) or str(
                (rec or {}).get("message") or (rec or {}).get("reason") or "not run"
            )
        else:
            reason = str((rec or {}).get("message") or "")
        if rec is not None and not rec.get("unit") and case is not None:
            rec = {**rec, "unit": case.unit}
        by_item.setdefault(item, []).append(
            TraceCase(
                test_id=test_id,
                kind=kind,
                outcome=outcome,
                verdict=verdict_text,
                evidence=_measured(rec) if rec is not None and outcome in EXECUTED else "",
                reason=reason,
                anchor=f"case-{test_id}" if rec is not None else f"notrun-{test_id}",
                has_plot=run.plot(test_id) is not None,
                attachments=allure_counts.get(test_id, plot_counts.get(test_id, 0)),
            )
        )
    rows = []
    items = [(f"P{p.number}", p.name) for p in spec.parameters] + [
        (f"S{s.number}", s.name) for s in spec.switches
    ]
    for item, name in items:
        cases = sorted(
            by_item.pop(item, []),
            key=lambda c: (
                KIND_ORDER.index(c.kind) if c.kind in KIND_ORDER else len(KIND_ORDER),
                c.test_id,
            ),
        )
        rows.append(_trace_row(item, name, cases, run, plan))
    outside = [c.test_id for cases in by_item.values() for c in cases]
    return Traceability(rows=rows, outside=outside)


def _selection_text(info: dict[str, Any]) -> str:
    """``suite regression, -k 'P05 or P06'`` from run.json's ``selection`` (or ``suite``)."""
    sel = info.get("selection") if isinstance(info.get("selection"), dict) else {}
    suite = sel.get("suite", info.get("suite"))
    parts = [f"suite {suite}" if suite else "whole plan"]
    if sel.get("keyword"):
        parts.append(f"-k {sel['keyword']!r}")
    if sel.get("marker"):
        parts.append(f"-m {sel['marker']!r}")
    return ", ".join(parts)


def _trace_row(
    item: str, name: str, cases: list[TraceCase], run: RunData, plan: dict[str, Any]
) -> TraceRow:
    outcomes = {c.outcome for c in cases}
    if not cases:
        elsewhere = [c for c in plan.values() if canonical_item(c.item) == item]
        if run.info.get("planned") is None:
            reason = f"{NO_CASE} (the run recorded no plan, and no record of {item})"
        else:
            reason = f"{NO_CASE} (this run's selection: {_selection_text(run.info)})"
        detail = (
            "the whole plan has "
            + ", ".join(f"{c.id} [{', '.join(c.suites) or 'no suite'}]" for c in elsewhere)
            if elsewhere
            else "the whole plan has no case of this row either"
        )
        return TraceRow(item, name, [], TRACE_GAP, reason, detail)
    if "failed" in outcomes:
        status = TRACE_FAIL
    elif "passed" in outcomes:
        status = TRACE_PASS
    elif "error" in outcomes:
        status = TRACE_ERROR
    else:
        status = TRACE_GAP
    silent = [c for c in cases if not c.executed or c.outcome == "error"]
    reasons = list(dict.fromkeys(c.reason for c in silent if c.reason))
    row_reason = "; ".join(reasons) if status in (TRACE_GAP, TRACE_ERROR) else ""
    open_cases = [c for c in cases if c.outcome != "passed"]
    partial = (
        f"partial: {len(open_cases)} of {len(cases)} cases without a verdict"
        if status == TRACE_PASS and open_cases
        else ""
    )
    for c in cases:
        if c.outcome == "passed":
            c.note = ""
        elif row_reason and len(reasons) == 1:
            c.note = ""  # the status cell says it once for the row
        else:
            c.note = c.reason
    return TraceRow(item, name, cases, status, row_reason, partial=partial)
