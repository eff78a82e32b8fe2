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

from pathlib import Path

from reports.compliance_html import _TEMPLATE as _TEMPLATE
from reports.compliance_html import _faults_text as _faults_text
from reports.compliance_html import _slug as _slug
from reports.compliance_html import info_list as info_list
from reports.compliance_html import render_html
from reports.compliance_model import _DISPLAY as _DISPLAY
from reports.compliance_model import KIND_ORDER as KIND_ORDER
from reports.compliance_model import VERDICT_TEXT as VERDICT_TEXT
from reports.compliance_model import Verdict as Verdict
from reports.compliance_model import _item_of as _item_of
from reports.compliance_model import _measured as _measured
from reports.compliance_model import _notes as _notes
from reports.compliance_model import _num as _num
from reports.compliance_model import _plot_html as _plot_html
from reports.compliance_model import _row_name as _row_name
from reports.compliance_model import _spec as _spec
from reports.compliance_model import _spec_value as _spec_value
from reports.compliance_model import _tolerance as _tolerance
from reports.compliance_model import _with_unit as _with_unit
from reports.compliance_model import canonical_item as canonical_item
from reports.compliance_model import category_order as category_order
from reports.compliance_model import category_table_html as category_table_html
from reports.compliance_model import counts_frame as counts_frame
from reports.compliance_model import item_order as item_order
from reports.compliance_model import results_frame as results_frame
from reports.compliance_model import verdict as verdict
from reports.compliance_pdf import CHROMIUM_CANDIDATES as CHROMIUM_CANDIDATES
from reports.compliance_pdf import CHROMIUM_FLAGS as CHROMIUM_FLAGS
from reports.compliance_pdf import ChromiumError as ChromiumError
from reports.compliance_pdf import _run_chromium as _run_chromium
from reports.compliance_pdf import dump_dom as dump_dom
from reports.compliance_pdf import find_chromium as find_chromium
from reports.compliance_pdf import print_pdf
from reports.runs import ReportInputError, load_run
from reports.traceability import EXECUTED as EXECUTED
from reports.traceability import NO_CASE as NO_CASE
from reports.traceability import TRACE_ERROR as TRACE_ERROR
from reports.traceability import TRACE_FAIL as TRACE_FAIL
from reports.traceability import TRACE_GAP as TRACE_GAP
from reports.traceability import TRACE_PASS as TRACE_PASS
from reports.traceability import Traceability as Traceability
from reports.traceability import TraceCase as TraceCase
from reports.traceability import TraceRow as TraceRow
from reports.traceability import _allure_attachments as _allure_attachments
from reports.traceability import _plot_files as _plot_files
from reports.traceability import _selection_text as _selection_text
from reports.traceability import _trace_row as _trace_row
from reports.traceability import traceability as traceability

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
