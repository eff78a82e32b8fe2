"""Release gate: may this firmware ship, compared with a baseline run on the same bench?

The firmware team gates on it in CI, so it must be strict and explain itself. A candidate
run fails the gate on:

* **regression**: a test that failed or hit a bench error now and passed in the baseline or
  was not in it (a failure already present in the baseline is listed as *known*, not a
  regression: the gate judges the change, the compliance report judges the device);
* **dropped**: a test that passed in the baseline and is absent from the candidate (a
  vanished test can hide a regression);
* **coverage**: a spec row (P1..P87, S1..S64 of this checkout's spec) with no executed
  (passed/failed) record and no skip with a reason; bench errors do not cover a row;
* **drift**: a value whose deviation from its spec value moved by more than ``drift`` x its
  tolerance since the baseline, even while both pass (a threshold creeping toward its limit).

* **incomplete**: the candidate run did not run every planned case (interrupted, bench
  lost, crashed, or planned cases without a final record: ``RunData.completion``); its
  not-run cases also count as dropped and uncovered. No waiver accepts an incomplete run.

Runs from different spec versions or benches are not compared unless allowed (exit 2), nor
is an incomplete baseline unless ``allow_incomplete_baseline`` (a baseline that stopped
halfway would make every case it did not reach look new). A
waiver file (YAML list of ``{item, reason, owner, expires}``) accepts findings for an item or
a test id until its expiry date; an expired waiver no longer counts and is listed. Exit
codes: 0 pass, 1 gate failed, 2 cannot compare (incompatible runs or bad input).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from reports.compliance import canonical_item, item_order
from reports.gate_markdown import NOT_RUN_LISTED as NOT_RUN_LISTED
from reports.gate_markdown import _describe as _describe
from reports.gate_markdown import _md, markdown
from reports.gate_model import _ITEM_RE as _ITEM_RE
from reports.gate_model import _TEST_ID_RE as _TEST_ID_RE
from reports.gate_model import (
    DEFAULT_DRIFT,
    EXECUTED,
    EXIT_CANNOT_COMPARE,
    Finding,
    GateResult,
    IncompatibleRuns,
)
from reports.gate_model import EXIT_FAIL as EXIT_FAIL
from reports.gate_model import EXIT_PASS as EXIT_PASS
from reports.runs import ReportInputError, RunData, load_run
from reports.waivers import WAIVER_KEYS as WAIVER_KEYS
from reports.waivers import Waiver, load_waivers
from reports.waivers import _waiver_item as _waiver_item
from reports.waivers import _WaiverLoader as _WaiverLoader

# --------------------------------------------------------------------------- runs


def resolve_run(ref: str | Path, db_url: str | None = None) -> tuple[RunData, str]:
    """A results directory, or the id of a run in the history database; with a label."""
    text = str(ref)
    path = Path(text)
    if path.exists():
        return load_run(path), str(path)
    if text.isdigit():
        from reports.history import load_history_run

        return load_history_run(int(text), db_url), f"history run {text}"
    raise ReportInputError(f"{text}: neither a results directory nor a history run id")


def incomplete_line(run: RunData, role: str) -> str | None:
    """``<role> run INCOMPLETE: <status>: <reason>; N of M planned cases not run``, or None
    for a complete run."""
    done = run.completion
    return None if done.complete else f"{role} run INCOMPLETE: {done.summary}"


def check_compatible(
    baseline: RunData,
    candidate: RunData,
    allow_spec_change: bool,
    allow_bench_change: bool,
    allow_incomplete_baseline: bool = False,
    allow_config_change: bool = False,
) -> list[str]:
    """Raise IncompatibleRuns unless allowed; returns notes about what was allowed."""
    notes = []
    base_incomplete = incomplete_line(baseline, "baseline")
    if base_incomplete:
        if not allow_incomplete_baseline:
            raise IncompatibleRuns(
                f"{base_incomplete}: an incomplete baseline cannot be compared "
                "(use --allow-incomplete-baseline to compare anyway)"
            )
        notes.append(f"{base_incomplete}: compared anyway (--allow-incomplete-baseline)")
    b_spec, c_spec = baseline.spec_sha256, candidate.spec_sha256
    if b_spec is None or c_spec is None or b_spec != c_spec:
        text = (
            f"spec versions differ: baseline spec_sha256 {b_spec or 'not recorded'}, "
            f"candidate {c_spec or 'not recorded'}"
        )
        if not allow_spec_change:
            raise IncompatibleRuns(f"{text} (use --allow-spec-change to compare anyway)")
        notes.append(f"{text}: compared anyway (--allow-spec-change)")
    b_bench, c_bench = baseline.bench_id, candidate.bench_id
    if b_bench is None or c_bench is None or b_bench != c_bench:
        text = (
            f"benches differ: baseline bench_id {b_bench or 'not recorded'}, "
            f"candidate {c_bench or 'not recorded'}"
        )
        if not allow_bench_change:
            raise IncompatibleRuns(f"{text} (use --allow-bench-change to compare anyway)")
        notes.append(f"{text}: compared anyway (--allow-bench-change)")
    b_cfg, c_cfg = _config_identity(baseline), _config_identity(candidate)
    if b_cfg != c_cfg:
        text = (
            f"device configurations differ: baseline {baseline.configuration_name}, "
            f"candidate {candidate.configuration_name}"
        )
        if not allow_config_change:
            raise IncompatibleRuns(f"{text} (use --allow-config-change to compare anyway)")
        notes.append(f"{text}: compared anyway (--allow-config-change)")
    return notes


def _config_identity(run: RunData) -> str:
    """``spec defaults`` (the tables' defaults: the spec itself is compared above), or the
    sha256 of the configuration file's canonical content."""
    c = run.configuration
    if c.get("file") is None:
        return "spec defaults"
    return str(c.get("sha256") or "not recorded")


# --------------------------------------------------------------------------- rules


#: ``--conditional``: what the gate makes of a conditional decision.
CONDITIONAL_CHOICES = ("accept", "reject")


def judged(rec: dict[str, Any], conditional: str = "reject") -> dict[str, Any]:
    """``rec`` as the gate counts it. A conditional decision (its uncertainty interval
    straddles a limit) is ``failed`` under ``reject`` (the default: it never reads better
    than it is); under ``accept`` it counts as ``passed`` unless the run's rule already
    failed it (a conditional fail under simple acceptance)."""
    decision = str(rec.get("decision") or "")
    if not decision.startswith("conditional") and rec.get("outcome") != "conditional":
        return rec
    if conditional not in CONDITIONAL_CHOICES:
        raise ReportInputError(
            f"--conditional {conditional!r}: choose from {', '.join(CONDITIONAL_CHOICES)}"
        )
    kept = conditional == "accept" and rec.get("outcome") in ("passed", "conditional")
    why = f"{decision or 'conditional'} ({conditional}ed by --conditional {conditional})"
    message = f"{why}: {rec.get('message') or ''}".rstrip(": ")
    return {**rec, "outcome": "passed" if kept else "failed", "message": message}


def with_conditional(run: RunData, conditional: str) -> RunData:
    """A copy of ``run`` whose records are :func:`judged`."""
    return RunData(run.directory, run.info, [judged(r, conditional) for r in run.records])


def _by_test(run: RunData) -> dict[str, dict[str, Any]]:
    return {r["test_id"]: r for r in run.records}


def _ran(run: RunData) -> dict[str, dict[str, Any]]:
    """Final records of the cases the run got to (``not_run`` records left out)."""
    return {r["test_id"]: r for r in run.records if r["outcome"] != "not_run"}


def _fmt(value: Any, unit: str | None) -> str:
    if value is None:
        return "nothing"
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return f"{text} {unit or ''}".strip()


def regressions(baseline: RunData, candidate: RunData) -> tuple[list[Finding], list[Finding]]:
    """(regressions and dropped tests, known failures)."""
    base = _by_test(baseline)
    cand = _ran(candidate)
    not_run = {r["test_id"]: r for r in candidate.records if r["outcome"] == "not_run"}
    found, known = [], []
    for test_id, rec in cand.items():
        if rec["outcome"] not in ("failed", "error"):
            continue
        what = "failed" if rec["outcome"] == "failed" else "hit a bench error (no verdict)"
        why = rec.get("message") or ""
        before = base.get(test_id)
        item = canonical_item(rec["item"])
        if before is not None and before["outcome"] == rec["outcome"]:
            known.append(Finding("known", item, test_id, f"{what} in both runs: {why}".strip()))
            continue
        if before is None:
            was = "not in the baseline"
        else:
            was = f"{before['outcome']} in the baseline"
            if before.get("measured") is not None:
                was += f" ({_fmt(before['measured'], before.get('unit'))})"
        found.append(Finding("regression", item, test_id, f"{what} now, {was}: {why}".rstrip(": ")))
    for test_id, before in base.items():
        if before["outcome"] == "passed" and test_id not in cand:
            why = not_run.get(test_id, {}).get("message") or ""
            found.append(
                Finding(
                    "dropped",
                    canonical_item(before["item"]),
                    test_id,
                    "passed in the baseline, not run in the candidate"
                    + (f" (not_run: {why})" if why else ""),
                )
            )
    return found, known


def required_items(spec: Any) -> list[str]:
    """Every row a candidate must cover: P1..P87 then S1..S64 of the spec."""
    return [p.item for p in spec.parameters] + [s.item for s in spec.switches]


def coverage(candidate: RunData, spec: Any) -> tuple[list[Finding], int, int]:
    """(uncovered rows, covered count, required count)."""
    records: dict[str, list[dict[str, Any]]] = {}
    for rec in candidate.records:
        records.setdefault(canonical_item(rec["item"]), []).append(rec)
    found = []
    items = required_items(spec)
    for item in items:
        recs = records.get(item, [])
        executed = any(r["outcome"] in EXECUTED for r in recs)
        explained = any(
            r["outcome"] == "skipped" and (r.get("reason") or r.get("message") or "").strip()
            for r in recs
        )
        if executed or explained:
            continue
        if not recs:
            detail = "no record in the candidate"
        elif all(r["outcome"] == "not_run" for r in recs):
            detail = "not run (" + ", ".join(r["test_id"] for r in recs) + ")"
        elif all(r["outcome"] == "error" for r in recs):
            detail = "only bench errors (" + ", ".join(r["test_id"] for r in recs) + ")"
        else:
            detail = "only skipped without a reason (" + ", ".join(r["test_id"] for r in recs) + ")"
        found.append(Finding("coverage", item, "", detail))
    return found, len(items) - len(found), len(items)


def drift(baseline: RunData, candidate: RunData, share: float) -> list[Finding]:
    """Values whose deviation from the spec value moved by more than ``share`` x tolerance.

    The deviation (measured - expected) is compared, not the raw value, so a run with a
    shortened delay or an allowed spec change is still compared fairly. Exact rows
    (tolerance 0: counts, switches) cannot drift without failing, so they are left out.
    """
    base = _by_test(baseline)
    found = []
    for test_id, rec in _by_test(candidate).items():
        before = base.get(test_id)
        if before is None or rec["outcome"] != "passed":
            continue
        values = (
            rec.get("measured"),
            rec.get("expected"),
            before.get("measured"),
            before.get("expected"),
        )
        tol = rec.get("tolerance")
        if any(v is None for v in values) or not tol:
            continue
        moved = (values[0] - values[1]) - (values[2] - values[3])
        if abs(moved) > share * tol + 1e-12:
            unit = rec.get("unit")
            found.append(
                Finding(
                    "drift",
                    canonical_item(rec["item"]),
                    test_id,
                    f"moved {moved:+.6g} {unit or ''} ({_fmt(values[2], unit)} -> "
                    f"{_fmt(values[0], unit)}), more than {share:g} x tolerance "
                    f"{_fmt(tol, unit)}; still passes".replace("  ", " "),
                )
            )
    return found


# --------------------------------------------------------------------------- the gate


def evaluate(
    baseline: RunData,
    candidate: RunData,
    *,
    spec: Any,
    waivers: list[Waiver] | None = None,
    drift_share: float = DEFAULT_DRIFT,
    allow_spec_change: bool = False,
    allow_bench_change: bool = False,
    allow_incomplete_baseline: bool = False,
    allow_config_change: bool = False,
    today: dt.date | None = None,
    baseline_label: str = "baseline",
    candidate_label: str = "candidate",
    conditional: str = "reject",
) -> GateResult:
    """Run every rule; raises IncompatibleRuns when the runs must not be compared.
    ``conditional`` says what a conditional decision counts as (:func:`judged`)."""
    baseline = with_conditional(baseline, conditional)
    candidate = with_conditional(candidate, conditional)
    if not drift_share > 0:
        raise ReportInputError(f"--drift {drift_share!r}: must be a share above 0 (e.g. 0.5)")
    notes = check_compatible(
        baseline,
        candidate,
        allow_spec_change,
        allow_bench_change,
        allow_incomplete_baseline,
        allow_config_change,
    )
    if candidate.spec_sha256 and candidate.spec_sha256 != spec.sha256:
        notes.append(
            f"coverage is judged against this checkout's spec ({spec.sha256[:12]}), not the "
            f"candidate's ({candidate.spec_sha256[:12]})"
        )
    today = today or dt.date.today()
    result = GateResult(
        baseline, candidate, baseline_label, candidate_label, drift_share, notes=notes
    )
    result.incomplete = incomplete_line(candidate, "candidate")
    found, result.known_failures = regressions(baseline, candidate)
    uncovered, result.covered, result.required = coverage(candidate, spec)
    found += uncovered + drift(baseline, candidate, drift_share)
    found.sort(key=lambda f: (item_order(f.item), f.rule, f.test_id))
    waivers = waivers or []
    active = [w for w in waivers if w.active(today)]
    result.expired_waivers = [w for w in waivers if not w.active(today)]
    used: set[int] = set()
    for finding in found:
        for w in active:
            if w.covers(finding):
                finding.waived_by = w
                used.add(w.entry)
                break
    result.unused_waivers = [w for w in active if w.entry not in used]
    result.findings = found
    return result


def run_gate(
    baseline: str | Path,
    candidate: str | Path,
    *,
    waivers_file: Path | str | None = None,
    drift_share: float = DEFAULT_DRIFT,
    allow_spec_change: bool = False,
    allow_bench_change: bool = False,
    db_url: str | None = None,
    today: dt.date | None = None,
    allow_incomplete_baseline: bool = False,
    allow_config_change: bool = False,
    conditional: str = "reject",
) -> tuple[int, str]:
    """The CLI's whole job: (exit code, Markdown). Bad input, incompatible runs and an
    incomplete baseline (unless ``allow_incomplete_baseline``) give exit 2 with a Markdown
    explanation, so CI always has something to show; an incomplete candidate fails (1)."""
    cand = None
    try:
        from bmsspec import load_spec

        spec = load_spec()
        waivers = load_waivers(waivers_file, spec) if waivers_file else []
        base, base_label = resolve_run(baseline, db_url)
        cand, cand_label = resolve_run(candidate, db_url)
        result = evaluate(
            base,
            cand,
            spec=spec,
            waivers=waivers,
            drift_share=drift_share,
            allow_spec_change=allow_spec_change,
            allow_bench_change=allow_bench_change,
            allow_incomplete_baseline=allow_incomplete_baseline,
            allow_config_change=allow_config_change,
            today=today,
            baseline_label=base_label,
            candidate_label=cand_label,
            conditional=conditional,
        )
    except (ReportInputError, IncompatibleRuns) as exc:
        md = f"## Release gate: CANNOT COMPARE\n\n{_md(str(exc))}\n"
        cand_incomplete = incomplete_line(cand, "candidate") if cand is not None else None
        if cand_incomplete:
            md += f"\n**{_md(cand_incomplete)}**\n"
        return EXIT_CANNOT_COMPARE, md
    return result.exit_code, markdown(result)
