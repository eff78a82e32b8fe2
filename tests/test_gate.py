"""Release gate on synthetic runs: a conforming baseline, then candidates with deviations.

Runs cover the whole plan (every suite), so a conforming candidate covers every spec row;
the deviations come from the harness's own tolerance rule through ``tests/synthetic.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from synthetic import make_results_dir
from typer.testing import CliRunner

from bmsspec import load_spec
from harness.cli import app
from reports.gate import (
    EXIT_CANNOT_COMPARE,
    EXIT_FAIL,
    EXIT_PASS,
    IncompatibleRuns,
    evaluate,
    load_waivers,
    run_gate,
)
from reports.runs import ReportInputError, load_run

P05_TRIP = "P05-cell-overvoltage-protection-trip"
P07_TRIP = "P07-cell-undervoltage-protection-trip"
S10_ON = "S10-cell-overvoltage-protection-switch-on"
S10_OFF = "S10-cell-overvoltage-protection-switch-off"
TODAY = dt.date(2026, 2, 1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gate")
    make_results_dir(root / "baseline", suite=None)
    make_results_dir(root / "conforming", suite=None)
    make_results_dir(root / "deviation", suite=None, measured={P05_TRIP: 3.70})
    make_results_dir(root / "drift", suite=None, measured={P07_TRIP: 2.706})
    make_results_dir(root / "hole", suite=None, drop=[S10_ON, S10_OFF])
    make_results_dir(root / "other-bench", suite=None, bench_id="lab-a-rack-3")
    make_results_dir(root / "other-spec", suite=None, spec_sha256="0" * 64)
    return root


def _gate(runs: Path, candidate: str, **kw) -> tuple[int, str]:
    return run_gate(runs / "baseline", runs / candidate, today=TODAY, **kw)


def _waivers(tmp_path: Path, entries: list[dict]) -> Path:
    import yaml

    path = tmp_path / "waivers.yaml"
    path.write_text(yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")
    return path


def test_conforming_candidate_passes(runs: Path) -> None:
    code, md = _gate(runs, "conforming")
    assert code == EXIT_PASS, md
    assert md.startswith("## Release gate: PASS")
    assert "Coverage: 151/151" in md


def test_deviation_fails_for_the_right_item_and_reason(runs: Path) -> None:
    result = evaluate(
        load_run(runs / "baseline"), load_run(runs / "deviation"), spec=load_spec(), today=TODAY
    )
    assert result.exit_code == EXIT_FAIL
    (finding,) = result.failures
    assert (finding.rule, finding.item, finding.test_id) == ("regression", "P5", P05_TRIP)
    assert "passed in the baseline (3.65 V)" in finding.detail
    assert "measured 3.7 V, expected 3.65 +- 0.01 V" in finding.detail


def test_waiver_accepts_the_deviation_until_it_expires(runs: Path, tmp_path: Path) -> None:
    entry = {
        "item": "P5",
        "reason": "FW-123: comparator offset, fix in 16.5",
        "owner": "fw-team",
        "expires": dt.date(2026, 3, 1),
    }
    code, md = _gate(runs, "deviation", waivers_file=_waivers(tmp_path, [entry]))
    assert code == EXIT_PASS, md
    assert "### Waived (1)" in md and "FW-123" in md and "fw-team until 2026-03-01" in md

    entry["expires"] = dt.date(2026, 1, 31)  # the day before TODAY
    code, md = _gate(runs, "deviation", waivers_file=_waivers(tmp_path, [entry]))
    assert code == EXIT_FAIL
    assert "### Expired waivers, not applied (1)" in md and "expired 2026-01-31" in md


def test_waiver_for_another_item_does_not_apply(runs: Path, tmp_path: Path) -> None:
    entry = {"item": "P6", "reason": "unrelated", "owner": "x", "expires": "2026-12-31"}
    code, md = _gate(runs, "deviation", waivers_file=_waivers(tmp_path, [entry]))
    assert code == EXIT_FAIL
    assert "Waivers that matched nothing (1)" in md


def test_drift_inside_tolerance_is_flagged(runs: Path) -> None:
    result = evaluate(
        load_run(runs / "baseline"), load_run(runs / "drift"), spec=load_spec(), today=TODAY
    )
    (finding,) = result.failures
    assert (finding.rule, finding.test_id) == ("drift", P07_TRIP)
    assert "still passes" in finding.detail and "+0.006 V" in finding.detail
    # 6 mV of a 10 mV tolerance: inside a 0.7 share, outside 0.5
    relaxed = evaluate(
        load_run(runs / "baseline"),
        load_run(runs / "drift"),
        spec=load_spec(),
        drift_share=0.7,
        today=TODAY,
    )
    assert relaxed.exit_code == EXIT_PASS


def test_coverage_hole_and_dropped_tests(runs: Path) -> None:
    result = evaluate(
        load_run(runs / "baseline"), load_run(runs / "hole"), spec=load_spec(), today=TODAY
    )
    rules = {(f.rule, f.item, f.test_id) for f in result.failures}
    assert rules == {
        ("coverage", "S10", ""),
        ("dropped", "S10", S10_ON),
        ("dropped", "S10", S10_OFF),
    }
    assert (result.covered, result.required) == (150, 151)


def test_bench_errors_do_not_cover_a_row_and_skips_need_a_reason(
    runs: Path, tmp_path: Path
) -> None:
    make_results_dir(tmp_path / "errors", suite=None, outcomes={S10_ON: "error", S10_OFF: "error"})
    result = evaluate(
        load_run(runs / "baseline"), load_run(tmp_path / "errors"), spec=load_spec(), today=TODAY
    )
    cover = [f for f in result.failures if f.rule == "coverage"]
    assert [(f.item, f.detail.split(" (")[0]) for f in cover] == [("S10", "only bench errors")]
    assert {f.test_id for f in result.failures if f.rule == "regression"} == {S10_ON, S10_OFF}

    make_results_dir(
        tmp_path / "skips", suite=None, outcomes={S10_ON: "skipped", S10_OFF: "skipped"}
    )
    path = tmp_path / "skips" / "results.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for rec in lines:
        if rec["item"] == "S10":
            rec["reason"], rec["message"] = None, ""
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    result = evaluate(
        load_run(runs / "baseline"), load_run(tmp_path / "skips"), spec=load_spec(), today=TODAY
    )
    assert [f.item for f in result.failures if f.rule == "coverage"] == ["S10"]


def test_known_failure_is_not_a_regression(runs: Path) -> None:
    result = evaluate(
        load_run(runs / "deviation"), load_run(runs / "deviation"), spec=load_spec(), today=TODAY
    )
    assert result.exit_code == EXIT_PASS
    assert [f.test_id for f in result.known_failures] == [P05_TRIP]


def test_different_bench_or_spec_cannot_be_compared_unless_allowed(runs: Path) -> None:
    code, md = _gate(runs, "other-bench")
    assert code == EXIT_CANNOT_COMPARE
    assert "CANNOT COMPARE" in md and "lab-a-rack-3" in md and "--allow-bench-change" in md
    code, md = _gate(runs, "other-bench", allow_bench_change=True)
    assert code == EXIT_PASS and "compared anyway" in md

    code, md = _gate(runs, "other-spec")
    assert code == EXIT_CANNOT_COMPARE and "spec versions differ" in md
    with pytest.raises(IncompatibleRuns):
        evaluate(load_run(runs / "baseline"), load_run(runs / "other-spec"), spec=load_spec())
    code, md = _gate(runs, "other-spec", allow_spec_change=True)
    assert code == EXIT_PASS and "--allow-spec-change" in md


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ("{item: P5}", "expected a list of waivers"),
        ("- [P5]", "entry 1: expected a mapping"),
        ("- {item: P5, reason: r, owner: o}", "entry 1: key 'expires' is missing"),
        (
            "- {item: P5, reason: r, owner: o, expires: 2026-13-01}",
            "entry 1: key 'expires': '2026-13-01' is not a date",
        ),
        (
            "- {item: P5, reason: r, owner: o, expires: soon}",
            "entry 1: key 'expires': 'soon' is not a date",
        ),
        (
            "- {item: P5, reason: '', owner: o, expires: 2026-03-01}",
            "entry 1: key 'reason': expected a non-empty text, got ''",
        ),
        (
            "- {item: P99, reason: r, owner: o, expires: 2026-03-01}",
            "entry 1: key 'item': 'P99' is not a row of the spec",
        ),
        (
            "- {item: P5, reason: r, owner: o, expires: 2026-03-01}\n"
            "- {item: cell, reason: r, owner: o, expires: 2026-03-01}",
            "entry 2: key 'item': 'cell' is neither an item",
        ),
        (
            "- {item: P5, reason: r, owner: o, expires: 2026-03-01, until: x}",
            "entry 1: unknown key 'until' (value 'x')",
        ),
        ("- {item: P5, reason: r\n", "not valid YAML"),
    ],
)
def test_malformed_waiver_is_refused_with_file_entry_key_value(
    tmp_path: Path, entries: str, expected: str
) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(entries + "\n", encoding="utf-8")
    with pytest.raises(ReportInputError) as info:
        load_waivers(path, load_spec())
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_waiver_by_test_id_and_padded_item(tmp_path: Path) -> None:
    path = _waivers(
        tmp_path,
        [
            {"item": P05_TRIP, "reason": "r", "owner": "o", "expires": "2026-03-01"},
            {"item": "p05", "reason": "r", "owner": "o", "expires": "2026-03-01"},
        ],
    )
    first, second = load_waivers(path, load_spec())
    assert first.item == P05_TRIP and second.item == "P5"
    assert first.expires == dt.date(2026, 3, 1)


def test_cli_gate_exit_codes_and_summary_file(runs: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    summary = tmp_path / "summary.md"
    base = ["gate", "--baseline", str(runs / "baseline"), "--summary", str(summary)]
    ok = runner.invoke(app, [*base, "--candidate", str(runs / "conforming")])
    assert ok.exit_code == EXIT_PASS, ok.output
    bad = runner.invoke(app, [*base, "--candidate", str(runs / "deviation")])
    assert bad.exit_code == EXIT_FAIL and P05_TRIP in bad.output
    cannot = runner.invoke(app, [*base, "--candidate", str(tmp_path / "nowhere")])
    assert cannot.exit_code == EXIT_CANNOT_COMPARE
    assert "neither a results directory nor a history run id" in cannot.output
    broken = _waivers(tmp_path, [{"item": "P5"}])
    refused = runner.invoke(
        app, [*base, "--candidate", str(runs / "deviation"), "--waivers", str(broken)]
    )
    assert refused.exit_code == EXIT_CANNOT_COMPARE and "key 'reason' is missing" in refused.output
    text = summary.read_text(encoding="utf-8")
    assert text.count("## Release gate:") == 4


def test_drift_share_must_be_positive(runs: Path) -> None:
    code, md = _gate(runs, "conforming", drift_share=0.0)
    assert code == EXIT_CANNOT_COMPARE and "--drift" in md
