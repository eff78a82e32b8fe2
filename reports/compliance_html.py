"""The compliance report's HTML: one page (run, bench, device, configuration, results by
category, traceability, plots) from the template below."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jinja2

from harness.procedures.uncertainty import RULE_TEXT
from reports.compliance_model import (
    _item_of,
    _row_name,
    _spec,
    canonical_item,
    category_order,
    category_table_html,
    counts_frame,
    results_frame,
    verdict,
)
from reports.runs import OUTCOMES, RunData
from reports.traceability import traceability


def _conditional_rows(run: RunData) -> list[dict[str, str]]:
    """The planned cases whose final record is conditional, with value and budget."""
    from reports.compliance_model import _budget, _measured, _tolerance
    from reports.compliance_model import _spec_value as spec_value

    finals = {r["test_id"]: r for r in run.records}
    return [
        {
            "test": t,
            "decision": decision,
            "measured": _measured(finals[t]),
            "spec": f"{spec_value(finals[t])} {_tolerance(finals[t])}".strip(),
            "budget": _budget(finals[t]),
        }
        for t, decision in run.completion.conditional.items()
        if t in finals
    ]


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
td.v-conditional { background: #fff0a8; font-weight: bold; }
td.c-uncertainty-budget { max-width: 60mm; font-size: 7.5pt; }
.verdict.conditional { color: #7a5a00; border-color: #7a5a00; }
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
<h3 id="decision-rule-title">Decision rule</h3>
<p id="decision-rule">{{ decision_rule }}. Each measured value carries its uncertainty
budget (GUM: contributions as standard uncertainties, root-sum-square, expanded
U = k u<sub>c</sub>, k = 2, about 95 %): the search bracket or timing step, the accuracy of
the instrument that applied the stimulus (bench file), the device's reporting resolution,
the scope's time base. A contribution the bench file does not give is shown as not given,
never counted as zero.</p>
{% if conditional_rows %}<table class="results" id="conditional"><thead><tr><th>test</th>
<th>decision</th><th>measured</th><th>spec value</th><th>uncertainty budget</th></tr></thead>
{% for r in conditional_rows %}<tr class="row-conditional" id="cond-{{ r.test }}">
<td class="c-test">{{ r.test }}</td><td class="c-verdict v-conditional">{{ r.decision }}</td>
<td>{{ r.measured }}</td><td>{{ r.spec }}</td>
<td class="c-uncertainty-budget">{{ r.budget }}</td></tr>
{% endfor %}</table>{% else %}<p id="no-conditional">No conditional decision.</p>{% endif %}
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
        decision_rule=RULE_TEXT.get(str(info.get("decision_rule") or "simple"), "")
        or f"decision rule {info.get('decision_rule')}",
        conditional_rows=_conditional_rows(run),
        outcomes=OUTCOMES,
        counts=counts,
        total=sum(counts.values()),
        by_category=by_category,
        sections=sections,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
