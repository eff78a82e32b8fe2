"""What the BMS reports, and the regression that holds what fits the budget (issue 10 items
7, 8 and 11).

- the plan: one ``report`` case per entry of ``test_plans/reported.yaml``, each channel's
  level distinguishable and its accuracy the ``tolerances.yaml`` band at it; bad entries
  refused naming file, entry, key and value; the regression within 9.18 h;
- cases proven by another case's verdict (S51/S53/S58 on): tied in the plan, judged from
  the record (passed, failed, bench error, skipped, absent);
- end to end on the simulated bench: the conforming twin passes every report case, the S58
  cases and P63's trip at 0.030 V; each telemetry deviation fails exactly its report case
  naming the channel; deviations inside the accuracy fail nothing; S58 ignored fails S58
  off.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import run_by_id

from bmsspec import TEST_PLANS_DIR, SpecError, load_spec
from bmsspec.config import configured_spec
from harness.plan import REGRESSION_BUDGET_S, build_plan, suite_estimates
from harness.plan.common import Case
from harness.procedures.record import BenchFault, CaseNotTestable
from harness.procedures.runner import run_case

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec()
CAPS = yaml.safe_load((ROOT / "fixtures" / "sim.yaml").read_text())["capabilities"]
RELAYS = ["button", "bms_power", "power_switch", "secondary_trip", "short_circuit"]

CELLS = "P66-battery-series-cell-count-report-cell-voltage"
TEMPS = "S02-temperature-sensor-failure-report-temperature"
CURRENT = "P60-battery-remaining-capacity-report-current"
PACK = "P66-battery-series-cell-count-report-pack-voltage"
SOC = "P60-battery-remaining-capacity-report-soc"
REPORTS = [CELLS, TEMPS, CURRENT, PACK, SOC]
S58_ON = "S58-standby-power-off-function-switch-on"
S58_OFF = "S58-standby-power-off-function-switch-off"
P78_SHORT = "P78-standby-shutdown-delay-shortened"
P63_TRIP = "P63-balancing-activation-voltage-difference-trip"
#: Cases of the same rows that must not be touched by a telemetry deviation.
UNRELATED = [
    "P66-battery-series-cell-count-function",
    "P60-battery-remaining-capacity-readback",
    "S02-temperature-sensor-failure-switch-on",
]


@pytest.fixture(scope="module")
def regression() -> dict[str, Case]:
    return {c.id: c for c in build_plan(SPEC, CAPS, "regression", relays=RELAYS)}


# -- the plan ---------------------------------------------------------------------------


def test_one_report_case_per_entry_in_the_regression(regression) -> None:
    reports = [c for c in regression.values() if c.kind == "report"]
    assert len(reports) == len(SPEC.reported)
    assert sorted(c.id for c in reports) == sorted(REPORTS)
    for c in reports:
        assert c.testable, (c.id, c.reason)
        assert c.procedure == "report" and c.expected is None and c.tolerance is None
        assert 20.0 < c.est_bench_s < 60.0  # estimated, and cheap
    total = sum(c.est_bench_s for c in reports)
    assert total < 5 * 60


def test_every_channel_is_distinguishable_and_judged_at_its_stated_accuracy(regression) -> None:
    for cid in REPORTS:
        for setting in regression[cid].params["settings"]:
            for ch in setting:
                band = SPEC.accuracy(ch["quantity"]).band(ch["level"])
                assert ch["accuracy"] == pytest.approx(band), (cid, ch)
    first, rotated = regression[CELLS].params["settings"]
    for setting in (first, rotated):
        assert [ch["cell"] for ch in setting] == list(range(1, 17))
        levels = sorted(ch["level"] for ch in setting)
        gaps = [b - a for a, b in zip(levels, levels[1:], strict=False)]
        assert min(gaps) > 0.010  # a swapped or offset cell reads off by more than 10 mV
        assert max(levels) < SPEC.param(9).default  # no balancing
    moved = [abs(a["level"] - b["level"]) for a, b in zip(first, rotated, strict=True)]
    assert min(moved) > 0.1  # a stuck cell cannot match both settings
    (temps,) = regression[TEMPS].params["settings"]
    assert {ch["label"] for ch in temps} == {
        "cell NTC 1",
        "cell NTC 2",
        "cell NTC 3",
        "cell NTC 4",
        "ambient NTC",
        "power NTC",
    }
    levels = sorted(ch["level"] for ch in temps)
    assert min(b - a for a, b in zip(levels, levels[1:], strict=False)) > 2 * 2.0
    signs = [setting[0]["level"] > 0 for setting in regression[CURRENT].params["settings"]]
    assert signs == [True, False]  # charging, then discharging


P65_SHORT = "P65-static-balancing-time-delay-shortened"


def test_s58_off_is_proven_by_the_rest_p65s_restart_case_already_spends(regression) -> None:
    off, host = regression[S58_OFF], regression[P65_SHORT]
    assert off.testable and off.procedure == "evidence" and off.est_bench_s == 0.0
    assert off.params["evidence"] == P65_SHORT
    assert off.params["evidence_check"] == "stays awake (S58 off)"
    # the host rests in the state S58 off needs, and long enough for its watch
    assert host.switch_overrides[58] is False and host.overrides[78] == 1.0
    assert host.params["awake_watch"] == {"idle_s": 3600.0, "band_s": 360.0, "confirm_s": 1.5}
    assert host.est_bench_s > 3600 + 360
    ids = list(regression)
    assert off.sequence_group == host.sequence_group and ids.index(P65_SHORT) < ids.index(off.id)


def test_the_regression_fits_its_budget_with_s58_off_in_it(regression) -> None:
    assert regression[S58_OFF].testable
    estimates = suite_estimates(build_plan(SPEC, CAPS, relays=RELAYS))
    assert estimates["regression"] <= REGRESSION_BUDGET_S
    assert REGRESSION_BUDGET_S == pytest.approx(9.18 * 3600)


def test_switch_on_cases_are_proven_by_the_shortened_delay_cases(regression) -> None:
    ids = list(regression)
    for switch, evidence in (
        ("S58-standby-power-off-function", P78_SHORT),
        ("S51-timeout-prohibition-of-equalization", "P65-static-balancing-time-delay-shortened"),
        (
            "S53-automatic-activation-of-charging",
            "P74-charging-activation-interval-delay-shortened",
        ),
    ):
        on = regression[f"{switch}-switch-on"]
        assert on.testable and on.procedure == "evidence" and on.est_bench_s == 0.0
        assert on.params["evidence"] == evidence
        assert on.sequence_group == regression[evidence].sequence_group is not None
        assert ids.index(evidence) < ids.index(on.id)
    # the hours that do not fit stay in the soak and say so in the regression
    for off in (
        "S51-timeout-prohibition-of-equalization-switch-off",
        "S53-automatic-activation-of-charging-switch-off",
    ):
        assert not regression[off].testable and "soak" in regression[off].reason


def test_evidence_that_runs_in_another_state_makes_the_case_untestable(tmp_path: Path) -> None:
    # a configuration with S58 off: P78's delay case then runs with S58 off
    config = tmp_path / "s58-off.yaml"
    config.write_text("S58: false\n", encoding="utf-8")
    spec, _ = configured_spec(SPEC, config)
    plan = {c.id: c for c in build_plan(spec, CAPS, "regression", relays=RELAYS)}
    on = plan[S58_ON]
    assert not on.testable and on.est_bench_s == 0.0
    assert on.reason == (
        f"its evidence {P78_SHORT} runs with S58 off here, this case needs S58 on, P78=1 hours"
    )
    assert plan[S58_OFF].testable  # its own measurement is unaffected


def _copy(tmp_path: Path) -> Path:
    out = tmp_path / "test_plans"
    shutil.copytree(TEST_PLANS_DIR, out)
    return out


def test_an_evidence_naming_no_case_is_refused(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    path = d / "switches.yaml"
    path.write_text(
        path.read_text().replace(
            "evidence: P78-standby-shutdown-delay-shortened", "evidence: P78-standby-shutdown"
        )
    )
    with pytest.raises(ValueError) as info:
        build_plan(load_spec(d), CAPS, "regression")
    assert str(info.value) == (
        "switches.yaml row 58 (standby-power-off-function): key 'recipe.on.evidence' value "
        "'P78-standby-shutdown': no such case in the plan"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "stimulus: 'ntc:power', level: 40.0",
            "stimulus: 'ntc:heater', level: 40.0",
            "reported.yaml entry 2 (temperature): key 'settings.0.channels.5' value ",
        ),
        ("item: S2\n", "item: S99\n", "reported.yaml entry 2 (temperature): key 'item' value "),
        (
            "first: {below: P9, by: 0.25, round: 3}, step: 0.015}\n",
            "first: {below: P99, by: 0.25, round: 3}, step: 0.015}\n",
            "reported.yaml entry 1 (cell-voltage): key 'settings.0.cells.first' value 'P99': "
            "no such row",
        ),
        (
            "- channels: [{stimulus: charge_current, level: 50.0}]",
            "- channels: [{stimulus: charge_current, level: 50.0}, {stimulus: soc, level: 3}]",
            "reported.yaml entry 3 (current): key 'settings.0' value ",
        ),
        ("name: soc\n", "name: current\n", "reported.yaml entry 5 (current): key 'name' value "),
    ],
)
def test_bad_report_entries_are_refused_naming_file_entry_key_and_value(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    d = _copy(tmp_path)
    path = d / "reported.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError) as info:
        load_spec(d)
    assert str(info.value).startswith(message), str(info.value)


# -- a case proven by another's verdict ----------------------------------------------------


def _judged(regression, record: dict[str, Any] | None):
    case = regression[S58_ON]
    return run_case(None, SPEC, case, evidence=lambda tid: record if tid == P78_SHORT else None)


def test_evidence_passed_passes_with_what_it_measured(regression) -> None:
    rec = {"outcome": "passed", "measured": 1.004, "expected": 1.0, "tolerance": 0.1}
    m = _judged(regression, {**rec, "unit": "hours", "message": ""})
    assert m.outcome == "passed" and m.measured == 1.0
    (check,) = m.checks
    assert check.seen == (
        f"{P78_SHORT} passed in this run with S58 on, P78=1 hours: measured 1.004 hours "
        "(expected 1 +- 0.1 hours)"
    )


def test_evidence_failed_fails_with_its_failure(regression) -> None:
    m = _judged(regression, {"outcome": "failed", "message": "standby shutdown: not seen"})
    assert m.outcome == "failed"
    assert f"evidence: {P78_SHORT} failed: standby shutdown: not seen" in m.failures()


def test_evidence_without_a_verdict_gives_none(regression) -> None:
    with pytest.raises(BenchFault, match="ended in a bench error: link lost"):
        _judged(regression, {"outcome": "error", "message": "link lost"})
    with pytest.raises(CaseNotTestable, match="was not tested: no relay"):
        _judged(regression, {"outcome": "skipped", "reason": "no relay"})
    with pytest.raises(CaseNotTestable, match="has no verdict in this run"):
        _judged(regression, None)


def _judged_by_check(regression, record: dict[str, Any] | None):
    case = regression[S58_OFF]
    return run_case(None, SPEC, case, evidence=lambda tid: record if tid == P65_SHORT else None)


def _host(outcome: str, *checks: dict[str, Any]) -> dict[str, Any]:
    return {"outcome": outcome, "message": "balancing stops: not seen", "checks": list(checks)}


AWAKE = "stays awake (S58 off)"


def test_a_state_proven_by_a_check_follows_that_check_not_the_verdict(regression) -> None:
    seen = "system state awake after 1.100 h of rest"
    # the host failed on its own row, the check S58 off rests on held: S58 off passes
    m = _judged_by_check(regression, _host("failed", {"name": AWAKE, "ok": True, "detail": seen}))
    assert m.outcome == "passed" and m.measured == m.expected
    (check,) = m.checks
    assert check.seen == f"{P65_SHORT}, check {AWAKE!r}, with S58 off, P78=1 hours: {seen}"
    # the host passed, the check failed: S58 off fails with what was seen
    asleep = {"name": AWAKE, "ok": False, "detail": "system state shutdown after 1.005 h"}
    m = _judged_by_check(regression, _host("passed", asleep))
    assert m.outcome == "failed" and m.measured == 1.0  # the other state: it shut down
    assert (
        f"evidence: {P65_SHORT}, check {AWAKE!r}: system state shutdown after 1.005 h"
        in m.failures()
    )


def test_a_state_proven_by_a_check_the_evidence_never_made_has_no_verdict(regression) -> None:
    with pytest.raises(
        CaseNotTestable, match=f"has no check '{re.escape(AWAKE)}': it ended before it"
    ):
        _judged_by_check(regression, _host("failed", {"name": "balancing starts", "ok": False}))
    with pytest.raises(BenchFault, match="ended in a bench error"):
        _judged_by_check(regression, {"outcome": "error", "message": "link lost", "checks": []})


def test_an_evidence_check_without_its_evidence_is_refused(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    path = d / "switches.yaml"
    text = path.read_text()
    old = "        evidence: P65-static-balancing-time-delay-shortened\n"
    assert old in text
    path.write_text(text.replace(old, ""))
    with pytest.raises(SpecError, match="evidence_check needs evidence"):
        load_spec(d)


# -- end to end ---------------------------------------------------------------------------


def _faults(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faults.yaml"
    path.write_text(text, encoding="utf-8")
    return path


SELECTION = " or ".join(REPORTS + UNRELATED)


def test_the_conforming_twin_passes_the_reports_s58_and_p63(tmp_path: Path) -> None:
    sel = " or ".join([*REPORTS, S58_ON, S58_OFF, P78_SHORT, P65_SHORT, P63_TRIP])
    code, text, ids = run_by_id(tmp_path / "out", "-k", sel)
    assert code == 0, text
    assert all(r["outcome"] == "passed" for r in ids.values()), text
    cells = ids[CELLS]
    named = [c for c in cells["checks"] if "channel" in c]
    assert len(named) == 32 and {c["channel"] for c in named} == {f"cell {n}" for n in range(1, 17)}
    assert named[6]["detail"].startswith("cell 7 reported 3.240 V, applied 3.240 V")
    assert cells["channel"] == "cells 1-16"
    # P63: the reset waits until balancing has stopped, so the trip is found at 0.030 V
    assert ids[P63_TRIP]["measured"] == pytest.approx(0.030, abs=0.002)
    # S58 on rests on P78's record of this run; S58 off on P65's rest, watched past P78's band
    assert ids[S58_ON]["bench_s"] == 0.0 and P78_SHORT in ids[S58_ON]["checks"][0]["detail"]
    assert ids[S58_OFF]["bench_s"] == 0.0
    (seen,) = ids[S58_OFF]["checks"]
    assert seen["detail"] == (
        f"{P65_SHORT}, check 'stays awake (S58 off)', with S58 off, P78=1 hours: system state "
        "awake after 1.100 h of rest (P78 1 h; watched until 1.100 h)"
    )
    assert ids[P65_SHORT]["bench_s"] > 1.1 * 3600


@pytest.mark.parametrize(
    ("deviation", "case", "failure"),
    [
        (
            "{quantity: cell_voltage, channel: 7, kind: offset, value: 0.030}",
            CELLS,
            "cell 7 reported 3.270 V, applied 3.240 V, accuracy ±0.010 V",
        ),
        (
            "{quantity: cell_temperature, channel: 3, kind: offset, value: 4.0}",
            TEMPS,
            "cell NTC 3 reported 34.0 °C, applied 30.0 °C, accuracy ±2.0 °C",
        ),
        (
            "{quantity: ambient_temperature, kind: offset, value: -3.0}",
            TEMPS,
            "ambient NTC reported 7.0 °C, applied 10.0 °C, accuracy ±2.0 °C",
        ),
        (
            "{quantity: current, kind: scale, value: -1.0}",
            CURRENT,
            "current discharging reported 60.00 A, applied -60.00 A, accuracy ±0.60 A",
        ),
        (
            "{quantity: pack_voltage, kind: offset, value: 0.8}",
            PACK,
            "pack voltage reported 52.00 V, applied 51.20 V, accuracy ±0.30 V",
        ),
        (
            "{quantity: soc, kind: offset, value: 2.0}",
            SOC,
            "SOC reported 25.0 %, applied 23.0 %, accuracy ±1.0 %",
        ),
    ],
)
def test_a_telemetry_deviation_fails_exactly_its_report_case_naming_the_channel(
    tmp_path: Path, deviation: str, case: str, failure: str
) -> None:
    faults = _faults(tmp_path, f"telemetry:\n  - {deviation}\n")
    code, text, ids = run_by_id(tmp_path / "out", "-k", SELECTION, "--sim-faults", str(faults))
    assert code == 1, text
    failed = sorted(i for i, r in ids.items() if r["outcome"] == "failed")
    assert failed == [case], text
    assert len(ids) == len(REPORTS) + len(UNRELATED)
    assert all(r["outcome"] == "passed" for i, r in ids.items() if i != case), text
    bad = [c for c in ids[case]["checks"] if not c["ok"]]
    assert failure in [c["failure"] for c in bad], bad
    assert failure in ids[case]["message"]


def test_deviations_inside_the_accuracy_fail_nothing(tmp_path: Path) -> None:
    faults = _faults(
        tmp_path,
        "telemetry:\n"
        "  - {quantity: cell_voltage, channel: 7, kind: offset, value: 0.008}\n"
        "  - {quantity: cell_temperature, channel: 3, kind: offset, value: 1.5}\n"
        "  - {quantity: power_temperature, kind: offset, value: -1.5}\n"
        "  - {quantity: current, kind: scale, value: 1.008}\n"
        "  - {quantity: pack_voltage, kind: offset, value: 0.2}\n"
        "  - {quantity: soc, kind: offset, value: 0.5}\n",
    )
    code, text, ids = run_by_id(tmp_path / "out", "-k", SELECTION, "--sim-faults", str(faults))
    assert code == 0, text
    assert all(r["outcome"] == "passed" for r in ids.values()), text
    assert ids[CELLS]["measured"] == pytest.approx(0.008, abs=1e-4)  # the deviation is seen


def test_an_ignored_s58_fails_its_switch_off_case(tmp_path: Path) -> None:
    faults = _faults(tmp_path, "firmware:\n  - {item: S58, kind: ignored}\n")
    sel = f"{S58_ON} or {S58_OFF} or {P78_SHORT} or {P65_SHORT}"
    code, text, ids = run_by_id(tmp_path / "out", "-k", sel, "--sim-faults", str(faults))
    assert code == 1, text
    off = ids[S58_OFF]
    assert off["outcome"] == "failed" and off["measured"] == 1.0
    assert "check 'stays awake (S58 off)': system state shutdown after 1.00" in off["message"]
    assert ids[P78_SHORT]["outcome"] == ids[S58_ON]["outcome"] == "passed"
    # the host cannot tell its balancing stop from the shutdown, and says so
    host = ids[P65_SHORT]
    assert host["outcome"] == "failed"
    assert "the stop cannot be told from a standby shutdown" in host["message"]


def test_a_switch_on_case_without_its_evidence_in_the_run_is_not_tested(tmp_path: Path) -> None:
    # (with one case that passes: a run in which nothing passed is a FAIL)
    code, text, ids = run_by_id(tmp_path / "out", "-k", f"{S58_ON} or {UNRELATED[0]}")
    assert code == 0, text
    r = ids[S58_ON]
    assert r["outcome"] == "skipped"
    assert r["reason"] == (
        f"its evidence, case {P78_SHORT}, has no verdict in this run (not selected, or not run yet)"
    )
