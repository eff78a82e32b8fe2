"""The compliance report's data: each spec row's verdict from the final records, the results
table (one row per case, with spec value, tolerance and measured value in their units), the
counts and the per-category table."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reports.runs import OUTCOMES, RunData, plan_cases

#: Order of the kinds of one item inside a category table.
KIND_ORDER = (
    "trip",
    "recovery",
    "quiet",
    "hold",
    "delay",
    "function",
    "report",
    "readback",
    "switch-on",
    "switch-off",
)
#: What a case of a kind without an expected value checks (the results table's spec value).
SPEC_TEXT = {
    "quiet": "does not act outside its condition",
    "hold": "holds its state inside the band",
    "report": "reports what the bench applied, within its accuracy",
}

VERDICT_TEXT = {
    "passed": "PASS",
    "failed": "FAIL",
    "conditional": "CONDITIONAL",
    "error": "BENCH ERROR",
    "skipped": "NOT TESTED",
    "not_run": "NOT RUN",
}


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
        return {"PASS": "pass", "INCOMPLETE": "incomplete", "CONDITIONAL": "conditional"}.get(
            self.text, "fail"
        )


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
    if rec.get("kind") in SPEC_TEXT:
        return SPEC_TEXT[rec["kind"]]
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


def _budget(rec: dict[str, Any]) -> str:
    """The uncertainty budget in one cell: U (k) and each contribution's standard
    uncertainty; a contribution not given says so."""
    budget = rec.get("uncertainty_budget")
    if not isinstance(budget, dict):
        return ""
    unit = rec.get("unit")
    parts = []
    for c in budget.get("contributions") or []:
        if c.get("standard") is None:
            parts.append(f"{c.get('source')}: not given")
        else:
            parts.append(
                f"{c.get('source')}: u {_with_unit(_num(c['standard']), unit)} "
                f"({c.get('distribution')})"
            )
    head = f"U {_with_unit(_num(budget.get('expanded')), unit)} (k = {_num(budget.get('k'))})"
    if not budget.get("complete", True):
        head += ", incomplete"
    return "; ".join([head, *parts]) if parts else f"{head}: no contribution (exact)"


def verdict_text(rec: dict[str, Any]) -> str:
    """A record's verdict cell: a conditional decision says so whatever the outcome."""
    decision = str(rec.get("decision") or "")
    if decision.startswith("conditional"):
        return decision.upper()
    return VERDICT_TEXT[rec["outcome"]]


def verdict_css(rec: dict[str, Any]) -> str:
    decision = str(rec.get("decision") or "")
    return "conditional" if decision.startswith("conditional") else rec["outcome"]


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


#: Columns shown in a category table (the frame also holds hidden sort columns).
_DISPLAY = [
    "item",
    "test",
    "name",
    "kind",
    "spec value",
    "tolerance",
    "measured",
    "uncertainty budget",
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
                "_css": verdict_css(rec),
                "item": canonical_item(rec["item"]),
                "test": rec["test_id"],
                "name": _row_name(spec, rec),
                "kind": kind,
                "spec value": _spec_value(rec),
                "tolerance": _tolerance(rec),
                "measured": _measured(rec),
                "uncertainty budget": _budget(rec),
                "margin": _with_unit(_num(rec.get("margin")), rec.get("unit")),
                "verdict": verdict_text(rec),
                "notes": _notes(rec),
                "plot": _plot_html(run, rec["test_id"]),
            }
        )
    frame = pd.DataFrame(rows, columns=["_order", "_category", "_outcome", "_css", *_DISPLAY])
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
    css = part["_css"].tolist()
    tests = part["test"].tolist()
    # A category without any saved plot gets no empty plot column.
    columns = _DISPLAY if part["plot"].astype(bool).any() else _DISPLAY[:-1]
    shown = part[columns].reset_index(drop=True)
    text_cols = [c for c in columns if c != "plot"]
    classes = {c: [f"c-{c.replace(' ', '-')}"] * len(shown) for c in columns}
    classes["verdict"] = [f"c-verdict v-{o}" for o in css]
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


def _item_of(test_id: str) -> str:
    """The item of a test id without a record: ``P05-cell-...`` -> ``P05``."""
    return test_id.split("-", 1)[0]
