"""The compliance report: one results directory -> one self-contained HTML file (and a PDF).

What a lab hands over and signs, so the file must stand alone: CSS inline, every plot a
base64 ``data:`` URI, no script, no web font, nothing fetched. The page is printed to PDF by
headless Chromium (``print_pdf``), which is also what the tests use to check that the page
renders (``dump_dom``).

Rows come from ``results.jsonl``; names and the spec order come from the spec tables
(``harness.spec.load_spec``). When the spec of this checkout is not the one the run used
(``spec_sha256`` differs), the report says so in the header: names may then be off, the
measured values are still the run's.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from reports.runs import OUTCOMES, ReportInputError, RunData, load_run

#: Order of the kinds of one item inside a category table.
KIND_ORDER = ("trip", "recovery", "delay", "function", "readback", "switch-on", "switch-off")
VERDICT_TEXT = {"passed": "PASS", "failed": "FAIL", "error": "BENCH ERROR", "skipped": "NOT TESTED"}
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
    """The overall verdict and why (a FAIL always lists its reasons)."""

    passed: bool
    reasons: list[str]

    @property
    def text(self) -> str:
        return "PASS" if self.passed else "FAIL"


# --------------------------------------------------------------------------- spec order


def _spec() -> Any | None:
    """The spec tables of this checkout, or None when they cannot be loaded (the report still
    renders from the records alone; the header says so)."""
    try:
        from harness.spec import load_spec

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
    """PASS only when the run finished, something passed, and nothing failed or errored."""
    counts = run.counts()
    reasons = []
    if counts["failed"]:
        reasons.append(f"{counts['failed']} test(s) failed (product defect)")
    if counts["error"]:
        reasons.append(f"{counts['error']} test(s) hit a bench error (no verdict)")
    if not counts["passed"]:
        reasons.append("no test passed")
    if not run.info.get("finished_at"):
        reasons.append("the run did not finish (run.json has no finished_at)")
    return Verdict(passed=not reasons, reasons=reasons)


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
    return f'<img class="plot" alt="{alt}" src="data:image/png;base64,{data}">'


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
    for rec in run.records:
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
        f'<tr class="row-{o}" data-outcome="{o}">{p}' for o, p in zip(outcomes, body, strict=True)
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
img.plot { width: 60mm; display: block; }
.verdict { display: inline-block; font-size: 20pt; font-weight: bold; padding: 4pt 14pt;
           border: 2px solid; margin: 4pt 0; }
.verdict.pass { color: #0a6b0a; border-color: #0a6b0a; }
.verdict.fail { color: #a00000; border-color: #a00000; }
.warning { color: #a05000; }
.signatures td { height: 16mm; width: 60mm; }
.hash { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; }
</style></head>
<body>
<h1>BMS specification compliance report</h1>
<table class="header" id="header">
<tr><th>Device</th><td id="device">{{ device_name or "not read" }}</td>
    <th>Firmware</th><td id="firmware">{{ firmware or "not read" }}</td></tr>
<tr><th>Manufacturer</th><td>{{ manufacturer }}</td>
    <th>Suite</th><td id="suite">{{ suite }}</td></tr>
<tr><th>Bench</th><td id="bench">{{ bench_id or "not opened" }}</td>
    <th>Bench file</th><td>{{ bench_file }}</td></tr>
<tr><th>Spec</th><td>{{ spec_file }}</td>
    <th>Spec SHA-256</th><td class="hash" id="spec-hash">{{ spec_sha256 }}</td></tr>
<tr><th>Started</th><td id="date">{{ started_at }}</td>
    <th>Finished</th><td>{{ finished_at }}</td></tr>
<tr><th>Operator</th><td id="operator">{{ operator }}</td>
    <th>Harness</th><td>bms-hil {{ harness_version }}</td></tr>
<tr><th>Results</th><td colspan="3">{{ results_dir }}</td></tr>
{% if sim_faults %}
<tr><th>Simulator faults</th><td colspan="3">{{ sim_faults }}</td></tr>
{% endif %}
</table>
{% for w in warnings %}<p class="warning">{{ w }}</p>{% endfor %}
<h2>Instruments</h2>
{% if instruments %}
<table id="instruments"><tr><th>Role</th><th>Manufacturer</th><th>Model</th><th>Serial</th>
<th>Firmware</th><th>Address</th><th>Calibration due</th></tr>
{% for i in instruments %}
<tr><td>{{ i.name }}</td><td>{{ i.manufacturer }}</td><td>{{ i.model }}</td>
<td>{{ i.serial }}</td><td>{{ i.firmware }}</td><td>{{ i.address }}</td>
<td>{{ i.calibration_due or "not given" }}</td></tr>{% endfor %}
</table>
{% else %}<p class="warning">No instrument identities recorded in run.json.</p>{% endif %}
<h2>Summary</h2>
<div class="verdict {{ 'pass' if verdict.passed else 'fail' }}" id="verdict">
{{- verdict.text -}}
</div>
{% if verdict.reasons %}<ul id="verdict-reasons">
{% for r in verdict.reasons %}<li>{{ r }}</li>{% endfor %}
</ul>{% endif %}
<table id="counts"><tr>{% for o in outcomes %}<th>{{ o }}</th>{% endfor %}<th>total</th></tr>
<tr>{% for o in outcomes %}<td id="count-{{ o }}">{{ counts[o] }}</td>{% endfor %}
<td id="count-total">{{ total }}</td></tr></table>
{{ by_category | safe }}
{% for section in sections %}
<h2 id="cat-{{ section.slug }}">{{ section.title }}</h2>
{{ section.table | safe }}
{% endfor %}
<h2>Signatures</h2>
<table class="signatures"><tr><th>Tested by</th><th>Reviewed by</th><th>Approved by</th></tr>
<tr><td></td><td></td><td></td></tr>
<tr><td>Name / date</td><td>Name / date</td><td>Name / date</td></tr></table>
<p>Generated {{ generated_at }} by bms-hil {{ harness_version }} from {{ results_dir }}.</p>
</body></html>
"""
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
    return _TEMPLATE.render(
        device_name=run.device_name,
        firmware=run.firmware,
        manufacturer=run.device_manufacturer,
        suite=info.get("suite") or "(whole plan)",
        bench_id=run.bench_id,
        bench_file=info.get("bench_file") or "",
        spec_file=spec_file,
        spec_sha256=run.spec_sha256 or "not recorded",
        started_at=run.started_at,
        finished_at=info.get("finished_at") or "did not finish",
        operator=info.get("operator") or "",
        harness_version=info.get("harness_version") or "",
        results_dir=str(run.directory),
        sim_faults=info.get("sim_faults"),
        instruments=run.instruments,
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
