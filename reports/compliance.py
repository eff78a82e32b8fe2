"""The compliance report: one results directory -> one self-contained HTML file (and a PDF).

What a lab hands over and signs, so the file must stand alone: CSS inline, every plot a
base64 ``data:`` URI, no script, no web font, nothing fetched. The page is printed to PDF by
headless Chromium (``print_pdf``), which is also what the tests use to check that the page
renders (``dump_dom``).

Rows come from ``results.jsonl``; names and the spec order come from the spec tables
(``bmsspec.load_spec``). When the spec of this checkout is not the one the run used
(``spec_sha256`` differs), the report says so in the header: names may then be off, the
measured values are still the run's.

The overall verdict is the run's ``completion.verdict`` (``reports.runs.Completion``): a run
that did not give every planned case a final record, or did not end ``complete``, is never
PASS: the page opens with an ``INCOMPLETE`` banner (status, reason, how many planned cases
were not run) and lists the cases not run with the reason.

Instruments are listed with their calibration record (calibrated on, due, certificate id,
from the bench file through ``run.json``); one past due at the run's start, or accepted past
due with ``--allow-overdue`` (``overdue_accepted``), is marked OVERDUE.

The traceability matrix (:func:`traceability`) has one row per spec row, P1..P87 then
S1..S64 in spec order, with the run's cases of that item (linked to their detail rows), the
verdict of each and its evidence (measured value with uncertainty and unit, plot link,
number of attachments). A row without an executed case (skipped, not run, or no case in the
run's plan) is a GAP with the reason; the summary line above counts the rows covered by a
passing case and lists the gaps.

Printing: table rows, the header block and the signature block are never split across pages
and table headers repeat on every page (print CSS in the template); the PDF test checks it.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from reports.runs import OUTCOMES, ReportInputError, RunData, load_run, plan_cases

#: Order of the kinds of one item inside a category table.
KIND_ORDER = ("trip", "recovery", "delay", "function", "readback", "switch-on", "switch-off")
VERDICT_TEXT = {
    "passed": "PASS",
    "failed": "FAIL",
    "error": "BENCH ERROR",
    "skipped": "NOT TESTED",
    "not_run": "NOT RUN",
}
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags from the brief: no network, no first-run work, no GPU; a private profile per call.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ChromiumError(RuntimeError):
    """Headless Chromium is missing or failed to print/dump a page."""


@dataclass
class Verdict:
    """The overall verdict (``PASS``, ``FAIL`` or ``INCOMPLETE``) and why; anything but PASS
    always lists its reasons."""

    text: str
    reasons: list[str]

    @property
    def passed(self) -> bool:
        return self.text == "PASS"

    @property
    def css(self) -> str:
        return {"PASS": "pass", "INCOMPLETE": "incomplete"}.get(self.text, "fail")


# --------------------------------------------------------------------------- spec order


def _spec() -> Any | None:
    """The spec tables of this checkout, or None when they cannot be loaded (the report still
    renders from the records alone; the header says so)."""
    try:
        from bmsspec import load_spec

        return load_spec()
    except Exception:  # a broken spec must not stop the lab from printing its results
        return None


def item_order(item: str) -> tuple[int, int]:
    """Spec order of an item: P1..P87 then S1..S64; anything else last."""
    prefix, digits = item[:1].upper(), item[1:]
    if digits.isdigit():
        return ({"P": 0, "S": 1}.get(prefix, 2), int(digits))
    return (3, 0)


def canonical_item(item: str) -> str:
    """``P05`` -> ``P5`` (records and waivers may pad the number)."""
    prefix, digits = item[:1].upper(), item[1:]
    return f"{prefix}{int(digits)}" if prefix in "PS" and digits.isdigit() else item


def _row_name(spec: Any | None, rec: dict[str, Any]) -> str:
    if spec is not None:
        try:
            return spec.item(canonical_item(rec["item"])).name
        except (KeyError, ValueError):
            pass
    name = rec.get("name") or ""
    return "" if name == rec["test_id"] else name


def verdict(run: RunData) -> Verdict:
    """The run's :attr:`~reports.runs.Completion.verdict`: FAIL on a product defect, else
    INCOMPLETE unless every planned case has a final record of a run that ended complete,
    else FAIL on a bench error or when nothing passed, else PASS."""
    done = run.completion
    return Verdict(text=done.verdict, reasons=list(done.verdict_reasons))


# --------------------------------------------------------------------------- formatting


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _with_unit(text: str, unit: str | None) -> str:
    return f"{text} {unit}".strip() if text and unit else text


def _spec_value(rec: dict[str, Any]) -> str:
    if rec.get("kind") in ("switch-on", "switch-off"):
        return "acts" if rec.get("expected") else "does not act"
    return _with_unit(_num(rec.get("expected")), rec.get("unit"))


def _tolerance(rec: dict[str, Any]) -> str:
    tol = rec.get("tolerance")
    if tol is None or rec.get("kind") in ("switch-on", "switch-off"):
        return ""
    return _with_unit(f"± {_num(tol)}", rec.get("unit"))


def _measured(rec: dict[str, Any]) -> str:
    if rec.get("kind") in ("switch-on", "switch-off") and rec.get("measured") is not None:
        return "acted" if rec["measured"] else "did not act"
    text = _num(rec.get("measured"))
    if text and rec.get("uncertainty") is not None:
        text = f"{text} ± {_num(rec['uncertainty'])}"
    return _with_unit(text, rec.get("unit"))


def _notes(rec: dict[str, Any]) -> str:
    parts = []
    if rec["outcome"] == "skipped":
        parts.append(rec.get("reason") or rec.get("message") or "not testable (no reason given)")
    elif rec.get("message"):
        parts.append(rec["message"])
    if rec.get("note"):
        parts.append(rec["note"])
    return "; ".join(parts)


def _plot_html(run: RunData, test_id: str) -> str:
    path = run.plot(test_id)
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    alt = html.escape(f"trace of {test_id}")
    anchor = html.escape(f"plot-{test_id}")
    return f'<img class="plot" id="{anchor}" alt="{alt}" src="data:image/png;base64,{data}">'


# --------------------------------------------------------------------------- tables


#: Columns shown in a category table (the frame also holds hidden sort columns).
_DISPLAY = [
    "item",
    "test",
    "name",
    "kind",
    "spec value",
    "tolerance",
    "measured",
    "margin",
    "verdict",
    "notes",
    "plot",
]


def results_frame(run: RunData, spec: Any | None = None) -> pd.DataFrame:
    """One row per record in spec order, with the display columns and the raw ones used for
    grouping (``_category``, ``_outcome``)."""
    rows = []
    plan = (
        plan_cases() if any(not r.get("kind") or not r.get("category") for r in run.records) else {}
    )
    for rec in run.records:
        case = plan.get(rec["test_id"])
        if case is not None and (not rec.get("kind") or not rec.get("category")):
            # a not_run record carries no kind or category: take them from the plan
            rec = {
                "kind": case.kind,
                "category": case.category,
                "unit": case.unit,
                **{k: v for k, v in rec.items() if v not in (None, "")},
            }
        kind = rec.get("kind") or ""
        rows.append(
            {
                "_order": (
                    *item_order(rec["item"]),
                    KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER),
                    rec["test_id"],
                ),
                "_category": rec.get("category") or "uncategorised",
                "_outcome": rec["outcome"],
                "item": canonical_item(rec["item"]),
                "test": rec["test_id"],
                "name": _row_name(spec, rec),
                "kind": kind,
                "spec value": _spec_value(rec),
                "tolerance": _tolerance(rec),
                "measured": _measured(rec),
                "margin": _with_unit(_num(rec.get("margin")), rec.get("unit")),
                "verdict": VERDICT_TEXT[rec["outcome"]],
                "notes": _notes(rec),
                "plot": _plot_html(run, rec["test_id"]),
            }
        )
    frame = pd.DataFrame(rows, columns=["_order", "_category", "_outcome", *_DISPLAY])
    if frame.empty:
        return frame
    return frame.sort_values("_order", kind="stable").reset_index(drop=True)


def category_order(frame: pd.DataFrame) -> list[str]:
    """Categories in the spec order of their first row (frame already sorted)."""
    return list(dict.fromkeys(frame["_category"]))


def category_table_html(frame: pd.DataFrame, category: str, table_id: str) -> str:
    """The table of one category as HTML, through pandas' Styler: text escaped, the plot
    column raw (it is an ``<img>`` built here), one CSS class per verdict on its cell."""
    part = frame[frame["_category"] == category]
    outcomes = part["_outcome"].tolist()
    tests = part["test"].tolist()
    # A category without any saved plot gets no empty plot column.
    columns = _DISPLAY if part["plot"].astype(bool).any() else _DISPLAY[:-1]
    shown = part[columns].reset_index(drop=True)
    text_cols = [c for c in columns if c != "plot"]
    classes = {c: [f"c-{c.replace(' ', '-')}"] * len(shown) for c in columns}
    classes["verdict"] = [f"c-verdict v-{o}" for o in outcomes]
    styler = (
        shown.style.format(escape="html", subset=text_cols)
        .set_td_classes(pd.DataFrame(classes))
        .hide(axis="index")
        .set_table_attributes(f'class="results" id="{html.escape(table_id)}"')
        .set_uuid(table_id)
    )
    # Row classes let print CSS and readers find failures; Styler has no row hook, so add
    # them on the rendered <tr>s in order.
    out = styler.to_html()
    pieces = out.split("<tr>")
    head, body = pieces[:2], pieces[2:]
    rows = [
        f'<tr class="row-{o}" data-outcome="{o}" id="case-{html.escape(t)}">{p}'
        for o, t, p in zip(outcomes, tests, body, strict=True)
    ]
    return "<tr>".join(head) + "".join(rows)


def counts_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Records per category (spec order) and outcome, with a total row."""
    if frame.empty:
        return pd.DataFrame(columns=["category", *OUTCOMES, "total"])
    table = pd.crosstab(frame["_category"], frame["_outcome"]).reindex(
        index=category_order(frame), columns=list(OUTCOMES), fill_value=0
    )
    table["total"] = table.sum(axis=1)
    table.loc["all categories"] = table.sum(axis=0)
    return table.rename_axis("category").reset_index()


# --------------------------------------------------------------------------- traceability

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


# --------------------------------------------------------------------------- page

_TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>BMS compliance report {{ device_name }} {{ firmware }} {{ started_at }}</title>
<style>
@page { size: A4 landscape; margin: 12mm; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 9pt;
       color: #111; margin: 0 auto; max-width: 290mm; }
h1 { font-size: 16pt; margin: 0 0 4pt 0; }
h2 { font-size: 12pt; margin: 14pt 0 4pt 0; border-bottom: 1px solid #888;
     page-break-after: avoid; }
table { border-collapse: collapse; margin: 4pt 0; }
th, td { border: 1px solid #bbb; padding: 2pt 4pt; vertical-align: top; text-align: left; }
th { background: #eee; }
table.header th { width: 38mm; }
table.results { width: 100%; }
table.results tr { page-break-inside: avoid; }
td.c-notes { max-width: 70mm; font-size: 8pt; }
td.c-test { font-size: 7.5pt; color: #444; }
td.v-passed { background: #d7f0d7; font-weight: bold; }
td.v-failed { background: #f7c6c6; font-weight: bold; }
td.v-error { background: #fde3b0; font-weight: bold; }
td.v-skipped { background: #e6e6e6; }
td.v-not_run { background: #f3dfc1; font-weight: bold; }
.banner { font-size: 14pt; font-weight: bold; color: #fff; background: #a05000;
          padding: 6pt 10pt; margin: 4pt 0 8pt 0; border: 2px solid #6b3500; }
img.plot { width: 60mm; display: block; }
.verdict { display: inline-block; font-size: 20pt; font-weight: bold; padding: 4pt 14pt;
           border: 2px solid; margin: 4pt 0; }
.verdict.pass { color: #0a6b0a; border-color: #0a6b0a; }
.verdict.fail { color: #a00000; border-color: #a00000; }
.verdict.incomplete { color: #a05000; border-color: #a05000; }
.warning { color: #a05000; }
.signatures td { height: 16mm; width: 60mm; }
.hash { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; }
td.overdue { background: #f7c6c6; }
td.nowrap { white-space: nowrap; }
.overdue-mark { color: #a00000; font-weight: bold; }
table.trace { width: 100%; }
table.trace td.c-spec { width: 55mm; }
table.trace td.c-status { width: 24mm; font-weight: bold; }
table.trace td.c-status .why, table.trace .note { font-weight: normal; font-size: 7.5pt; }
table.trace td.c-test { width: 75mm; }
table.trace td.c-evidence { font-size: 8pt; }
td.s-pass { background: #d7f0d7; }
td.s-fail { background: #f7c6c6; }
td.s-error { background: #fde3b0; }
td.s-gap { background: #e6e6e6; color: #6b3500; }
.trace-summary { font-weight: bold; }
a { color: #0645ad; text-decoration: none; }
/* Print (headless Chromium): no table row, header block or signature block is cut by a
   page break, and every table repeats its header row on each page it runs over. */
thead { display: table-header-group; }
tfoot { display: table-footer-group; }
tr, tbody.trace-row { break-inside: avoid; page-break-inside: avoid; }
.header-block, .signature-block { break-inside: avoid; page-break-inside: avoid; }
h2 { break-after: avoid; }
</style></head>
<body>
<div class="header-block" id="header-block">
<h1>BMS specification compliance report</h1>
{% if banner %}<div class="banner" id="incomplete-banner">{{ banner }}</div>{% endif %}
<table class="header" id="header">
<tr><th>Device</th><td id="device">{{ device_name or "not read" }}</td>
    <th>Firmware</th><td id="firmware">{{ firmware or "not read" }}</td></tr>
<tr><th>Manufacturer</th><td>{{ manufacturer }}</td>
    <th>Suite</th><td id="suite">{{ suite }}</td></tr>
<tr><th>Bench</th><td id="bench">{{ bench_id or "not opened" }}</td>
    <th>Bench file</th><td>{{ bench_file }}</td></tr>
<tr><th>Spec</th><td>{{ spec_file }}</td>
    <th>Spec SHA-256</th><td class="hash" id="spec-hash">{{ spec_sha256 }}</td></tr>
<tr><th>Device configuration</th><td id="configuration">{{ configuration_name }}</td>
    <th>Configuration SHA-256</th><td class="hash" id="configuration-hash">
    {{- configuration_sha256 }}</td></tr>
<tr><th>Started</th><td id="date">{{ started_at }}</td>
    <th>Finished</th><td>{{ finished_at }}</td></tr>
<tr><th>Operator</th><td id="operator">{{ operator }}</td>
    <th>Harness</th><td>bms-hil {{ harness_version }}</td></tr>
<tr><th>Results</th><td colspan="3">{{ results_dir }}</td></tr>
<tr><th>Run end</th><td id="run-end"{% if not done.complete %} class="warning"{% endif %}>
    {{- done.end_text -}}</td>
    <th>Planned cases</th><td id="completion">{{ done.final }} of {{ done.planned }} with a
    final record; {{ done.not_run_count }} not run</td></tr>
<tr><th>Run id</th><td class="hash">{{ done.run_id or "not recorded" }}</td>
    <th>Sessions</th><td id="sessions">{{ done.sessions }}
    {%- if done.resumed %} (resumed){% endif %}</td></tr>
{% if sim_faults %}
<tr><th>Simulator faults</th><td colspan="3">{{ sim_faults }}</td></tr>
{% endif %}
{% if faults_recorded %}
<tr><th>Simulator faults in force</th><td colspan="3"{% if faults_in_force %} class="warning"
{%- endif %} id="sim-faults-in-force">{{ faults_in_force or "none" }}</td></tr>
{% endif %}
{% if overdue %}
<tr><th>Calibration overdue (accepted)</th><td colspan="3" class="warning" id="overdue">
{%- for o in overdue %}{{ o.instrument }} (due {{ o.calibration_due or "?" }})
{{- "; " if not loop.last }}{% endfor %}, accepted with --allow-overdue</td></tr>
{% endif %}
</table>
</div>
{% for w in warnings %}<p class="warning">{{ w }}</p>{% endfor %}
<h2>Instruments</h2>
{% if instruments %}
<table id="instruments"><thead><tr><th>Role</th><th>Manufacturer</th><th>Model</th>
<th>Serial</th><th>Firmware</th><th>Address</th><th>Calibrated on</th><th>Calibration due</th>
<th>Certificate</th></tr></thead>
<tbody>
{% for i in instruments %}
<tr id="instrument-{{ i.name }}"{% if i.overdue %} class="overdue"{% endif %}>
<td>{{ i.name }}</td><td>{{ i.manufacturer }}</td><td>{{ i.model }}</td>
<td>{{ i.serial }}</td><td>{{ i.firmware }}</td><td>{{ i.address }}</td>
<td class="nowrap" id="cal-on-{{ i.name }}">{{ i.calibrated_on or "not given" }}</td>
<td id="cal-due-{{ i.name }}"{% if i.overdue %} class="overdue"{% endif %}>
{{- i.calibration_due or "not given" }}
{%- if i.overdue %}<br><span class="overdue-mark">{{ i.overdue }}</span>{% endif -%}
</td>
<td class="nowrap" id="cal-cert-{{ i.name }}">{{ i.calibration_certificate or "not given" }}</td>
</tr>{% endfor %}
</tbody>
</table>
{% else %}<p class="warning">No instrument identities recorded in run.json.</p>{% endif %}
<h2>Summary</h2>
<div class="verdict {{ verdict.css }}" id="verdict">
{{- verdict.text -}}
</div>
{% if verdict.reasons %}<ul id="verdict-reasons">
{% for r in verdict.reasons %}<li>{{ r }}</li>{% endfor %}
</ul>{% endif %}
<table id="counts"><tr>{% for o in outcomes %}<th>{{ o }}</th>{% endfor %}<th>total</th></tr>
<tr>{% for o in outcomes %}<td id="count-{{ o }}">{{ counts[o] }}</td>{% endfor %}
<td id="count-total">{{ total }}</td></tr></table>
{% if not_run_rows %}
<h2 id="not-run-title">Planned cases not run
({{ not_run_rows | length }} of {{ done.planned }})</h2>
<table class="results" id="not-run"><thead><tr><th>item</th><th>test</th><th>name</th>
<th>record</th><th>why</th></tr></thead>
{% for r in not_run_rows %}<tr class="row-not_run" data-outcome="not_run" id="notrun-{{ r.test }}">
<td>{{ r.item }}</td><td class="c-test">{{ r.test }}</td><td>{{ r.name }}</td>
<td class="c-verdict v-not_run">{{ r.record }}</td><td class="c-notes">{{ r.why }}</td></tr>
{% endfor %}</table>
{% endif %}
{{ by_category | safe }}
<h2 id="traceability">Traceability</h2>
{% if trace %}
<p class="trace-summary" id="trace-summary">{{ trace.summary }}</p>
{% if trace.gaps %}<ul id="trace-gaps">
{% for reason, items in trace.gaps_by_reason.items() %}<li>GAP {{ items | length }}:
{% for it in items %}<a href="#trace-{{ it }}">{{ it }}</a>{{ ", " if not loop.last }}{% endfor %}
&mdash; {{ reason }}</li>
{% endfor %}</ul>{% endif %}
{% if trace.outside %}<p class="warning" id="trace-outside">{{ trace.outside | length }} case(s)
name an item that is not a row of this checkout's spec: {{ trace.outside | join(", ") }}</p>
{% endif %}
<table class="results trace" id="trace-matrix">
<thead><tr><th>spec row</th><th>status</th><th>case</th><th>verdict</th>
<th>evidence (measured, plot, attachments)</th></tr></thead>
{% for r in trace.rows %}
<tbody class="trace-row" id="trace-{{ r.item }}" data-status="{{ r.status }}">
{% for c in r.cases %}<tr data-case="{{ c.test_id }}">
{% if loop.first %}<td class="c-spec" rowspan="{{ r.cases | length }}"><b>{{ r.item }}</b>
{{ r.name }}</td>
<td class="c-status s-{{ r.css }}" rowspan="{{ r.cases | length }}">{{ r.status }}
{%- if r.reason or r.partial %}<div class="why">{{ r.reason or r.partial }}</div>{% endif %}
</td>{% endif %}
<td class="c-test"><a href="#{{ c.anchor }}">{{ c.test_id }}</a></td>
<td class="c-verdict v-{{ c.outcome }}">{{ c.verdict }}</td>
<td class="c-evidence">{{ c.evidence or ("no measurement" if c.executed else "not executed") }}
{%- if c.has_plot %} &middot; <a href="#plot-{{ c.test_id }}">plot</a>{% endif %}
 &middot; {{ c.attachments }} attachment{{ "" if c.attachments == 1 else "s" }}
{%- if c.note %}<div class="note">{{ c.note }}</div>{% endif %}</td>
</tr>
{% else %}<tr><td class="c-spec"><b>{{ r.item }}</b> {{ r.name }}</td>
<td class="c-status s-gap">{{ r.status }}<div class="why">{{ r.reason }}</div></td>
<td class="c-test" colspan="3">{{ r.detail }}</td></tr>
{% endfor %}
</tbody>
{% endfor %}
</table>
{% else %}<p class="warning" id="trace-missing">The spec tables of this checkout could not be
loaded: no traceability matrix.</p>{% endif %}
{% for section in sections %}
<h2 id="cat-{{ section.slug }}">{{ section.title }}</h2>
{{ section.table | safe }}
{% endfor %}
<div class="signature-block" id="signatures">
<h2>Signatures</h2>
<table class="signatures"><thead><tr><th>Tested by</th><th>Reviewed by</th><th>Approved by</th>
</tr></thead>
<tbody><tr><td></td><td></td><td></td></tr>
<tr><td>Name / date</td><td>Name / date</td><td>Name / date</td></tr></tbody></table>
<p>Generated {{ generated_at }} by bms-hil {{ harness_version }} from {{ results_dir }}.</p>
</div>
</body></html>
"""
)


def info_list(value: Any) -> list[str]:
    """A run.json list of texts (or one text) as a list of strings."""
    if not value:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _item_of(test_id: str) -> str:
    """The item of a test id without a record: ``P05-cell-...`` -> ``P05``."""
    return test_id.split("-", 1)[0]


def _faults_text(faults: Any | None) -> str:
    """``name=value; ...`` of the simulator faults in force (nested values as JSON)."""
    import json

    if not faults:
        return ""
    if not isinstance(faults, dict):
        return json.dumps(faults, sort_keys=True, default=str)
    return "; ".join(
        f"{k}={v if isinstance(v, (str, int, float)) else json.dumps(v, sort_keys=True)}"
        for k, v in faults.items()
    )


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def render_html(run: RunData, spec: Any | None = None) -> str:
    """The whole report page as one self-contained HTML string."""
    spec = spec if spec is not None else _spec()
    frame = results_frame(run, spec)
    counts = run.counts()
    warnings = list(run.warnings)
    spec_file = "test_plans/"
    if spec is None:
        warnings.append("The spec tables of this checkout could not be loaded: names omitted.")
    else:
        spec_file = (
            f"{spec.directory} (source {spec.source})" if spec.source else str(spec.directory)
        )
        if run.spec_sha256 and spec.sha256 != run.spec_sha256:
            warnings.append(
                f"This checkout's spec (SHA-256 {spec.sha256}) is not the one the run used: "
                "row names may not match; values are the run's."
            )
    if not run.records:
        warnings.append("results.jsonl holds no record.")
    for problem in info_list(run.info.get("close_problems")):
        warnings.append(f"When the run ended: {problem}")
    sections = []
    if not frame.empty:
        for n, category in enumerate(category_order(frame), start=1):
            sections.append(
                {
                    "title": category[:1].upper() + category[1:],
                    "slug": _slug(category),
                    "table": category_table_html(frame, category, f"table-{_slug(category)}-{n}"),
                }
            )
    by_category = (
        counts_frame(frame)
        .style.hide(axis="index")
        .format(escape="html")
        .set_table_attributes('id="counts-by-category"')
        .set_uuid("counts")
        .to_html()
    )
    info = run.info
    done = run.completion
    final = {r["test_id"]: r for r in run.records}
    not_run_rows = []
    for test_id, why in done.not_run_reasons.items():
        rec = final.get(test_id) or {"test_id": test_id, "item": _item_of(test_id)}
        not_run_rows.append(
            {
                "item": canonical_item(rec["item"]),
                "test": test_id,
                "name": _row_name(spec, rec),
                "record": "NOT RUN" if test_id in final else "no record",
                "why": why,
            }
        )
    overdue = run.overdue_accepted
    overdue_names = {o["instrument"] for o in overdue}
    instruments = [
        {
            **vars(i),
            "overdue": "OVERDUE (accepted)"
            if i.name in overdue_names
            else ("OVERDUE at run start" if i.overdue_on(run.started_at) else ""),
        }
        for i in run.instruments
    ]
    return _TEMPLATE.render(
        device_name=run.device_name,
        firmware=run.firmware,
        manufacturer=run.device_manufacturer,
        suite=info.get("suite") or "(whole plan)",
        bench_id=run.bench_id,
        bench_file=info.get("bench_file") or "",
        spec_file=spec_file,
        spec_sha256=run.spec_sha256 or "not recorded",
        configuration_name=(run.configuration.get("file") or run.configuration.get("name")),
        configuration_sha256=run.configuration.get("sha256") or "not recorded",
        started_at=run.started_at,
        finished_at=info.get("finished_at") or "did not finish",
        operator=info.get("operator") or "",
        harness_version=info.get("harness_version") or "",
        results_dir=str(run.directory),
        sim_faults=info.get("sim_faults"),
        faults_recorded=run.sim_faults_in_force is not None,
        faults_in_force=_faults_text(run.active_sim_faults),
        overdue=overdue,
        done=done,
        banner=done.banner,
        not_run_rows=not_run_rows,
        instruments=instruments,
        trace=traceability(run, spec) if spec is not None else None,
        warnings=warnings,
        verdict=verdict(run),
        outcomes=OUTCOMES,
        counts=counts,
        total=sum(counts.values()),
        by_category=by_category,
        sections=sections,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


# --------------------------------------------------------------------------- chromium


def find_chromium() -> str | None:
    """Path of a Chromium for headless printing (``BMSHIL_CHROMIUM`` overrides), or None."""
    override = os.environ.get("BMSHIL_CHROMIUM")
    if override:
        return override if Path(override).exists() else shutil.which(override)
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run_chromium(args: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    exe = find_chromium()
    if exe is None:
        raise ChromiumError(
            "chromium not found (install it with scripts/setup-reports.sh, or set BMSHIL_CHROMIUM)"
        )
    with tempfile.TemporaryDirectory(prefix="bmshil-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise ChromiumError(f"chromium did not finish in {timeout_s:g} s: {cmd}") from exc
    if proc.returncode != 0:
        raise ChromiumError(
            f"chromium exited {proc.returncode}: {proc.stderr.strip()[-800:] or '(no output)'}"
        )
    return proc


def print_pdf(html_file: Path, pdf_file: Path, timeout_s: float = 120.0) -> Path:
    """Print an HTML file to PDF with headless Chromium (the page's @page CSS sets A4)."""
    html_file, pdf_file = Path(html_file).resolve(), Path(pdf_file).resolve()
    pdf_file.parent.mkdir(parents=True, exist_ok=True)
    pdf_file.unlink(missing_ok=True)
    _run_chromium(
        ["--no-pdf-header-footer", f"--print-to-pdf={pdf_file}", html_file.as_uri()], timeout_s
    )
    if not pdf_file.is_file() or pdf_file.stat().st_size == 0:
        raise ChromiumError(f"chromium wrote no PDF at {pdf_file}")
    return pdf_file


def dump_dom(html_file: Path, timeout_s: float = 120.0) -> str:
    """The DOM of a page as headless Chromium rendered it (for checks on what a reader sees)."""
    return _run_chromium(["--dump-dom", Path(html_file).resolve().as_uri()], timeout_s).stdout


# --------------------------------------------------------------------------- entry point


def write_report(results_dir: Path, out: Path | None = None, pdf: bool = False) -> list[Path]:
    """Write ``report.html`` (default inside the results directory) and, with ``pdf``, the PDF
    next to it. Returns the written paths. Raises ReportInputError / ChromiumError."""
    run = load_run(results_dir)
    out = Path(out) if out else Path(results_dir) / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise ReportInputError(f"--out {out}: expected an .html file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(run), encoding="utf-8")
    written = [out]
    if pdf:
        written.append(print_pdf(out, out.with_suffix(".pdf")))
    return written
