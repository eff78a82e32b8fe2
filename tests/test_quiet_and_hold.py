"""Quiet outside its condition, and holds inside the band (issue 10 items 3 and 5).

Plan: every threshold row the BMS evaluates only while charging or discharging has a quiet
case (or its recipe says why not), every trip/recovery pair a hold case (or a reason), with
the trip case's bounds. End to end on the simulated bench: a row that acts in any condition
(``condition_ignored``) fails its quiet case and only it; a recovery at the trip value
(``no_hysteresis``) fails the pair's hold case and only it; the conforming twin passes them
all, with checks that read true.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_evidence import assert_checks_read_true, bmshil_run

from bmsspec import TEST_PLANS_DIR, SpecError, load_spec
from harness.plan import DEFAULT_CAPABILITIES, build_plan, kind_counts, suite_estimates
from harness.plan.bands import on_grid
from harness.plan.conditions import OTHER_CONDITION

#: Both kinds together may add ~15 minutes of estimated real-bench time to the regression.
BUDGET_S = 15 * 60 * 1.05
NEW_KINDS = "quiet or hold"


@pytest.fixture(scope="module")
def spec():
    return load_spec()


@pytest.fixture(scope="module")
def plan(spec):
    return {c.id: c for c in build_plan(spec, DEFAULT_CAPABILITIES)}


def _threshold_rows(spec):
    return [p for p in spec.parameters if p.recipe is not None and p.recipe.threshold is not None]


def _case(plan, item: str, kind: str):
    found = [c for c in plan.values() if c.item == item and c.kind == kind]
    assert len(found) <= 1, found
    return found[0] if found else None


# -- plan -------------------------------------------------------------------------------------


def test_every_conditioned_row_has_a_quiet_case_or_a_reason(spec, plan):
    conditioned = 0
    for p in _threshold_rows(spec):
        quiet = _case(plan, p.item, "quiet")
        given = p.recipe.threshold.quiet
        if p.condition not in OTHER_CONDITION:
            assert quiet is None, f"{p.item} (condition {p.condition}) has a quiet case"
            continue
        conditioned += 1
        if given is not None and given.reason is not None:
            assert quiet is None and len(given.reason) > 20, p.item
            continue
        assert quiet is not None, f"{p.item} ({p.condition}) has no quiet case and no reason"
        trip = _case(plan, p.item, "trip")
        assert quiet.id == trip.id.removesuffix("-trip") + "-quiet"
        assert quiet.procedure == "quiet" and quiet.kind == "quiet"
        # the other condition, the trip search's far value, its dwell, flag and FETs
        assert quiet.condition == OTHER_CONDITION[p.condition] == quiet.params["condition"]
        assert quiet.params["level"] == trip.params["stop"]
        for key in ("stimulus", "flag", "fet", "dwell_s", "sign", "start", "stop"):
            assert quiet.params[key] == trip.params[key], (p.item, key)
        assert set(trip.overrides.items()) <= set(quiet.overrides.items())
        assert quiet.testable == trip.testable
        assert quiet.est_bench_s > quiet.params["dwell_s"]
        assert "regression" in quiet.suites
    assert conditioned >= 16  # P10, P21-P37 (odd), P51, P53, P55-P57, P80


def test_quiet_declares_what_the_other_condition_trips(plan):
    p25 = plan["P25-charging-overtemperature-protection-quiet"]
    assert p25.condition == "discharging" and p25.params["level"] == 60.0
    assert p25.params["fet"] == "charge"
    assert p25.params["expect"] == ["discharge_high_temperature_alarm"]
    # P33 is moved above the stop, so the discharge the row is held in keeps flowing
    assert p25.overrides[33] > p25.params["level"]
    p33 = plan["P33-discharging-overtemperature-protection-quiet"]
    assert p33.condition == "charging" and p33.overrides[25] > p33.params["level"]


def test_every_pair_has_a_hold_case_or_a_reason(spec, plan):
    pairs = 0
    for p in _threshold_rows(spec):
        hold = _case(plan, p.item, "hold")
        if p.partner is None:
            assert hold is None, p.item
            continue
        pairs += 1
        if p.recipe.threshold.hold is not None:
            assert hold is None and p.recipe.threshold.hold.reason, p.item
            continue
        assert hold is not None, f"{p.item}/P{p.partner} has no hold case and no reason"
        trip = _case(plan, p.item, "trip")
        assert hold.id == trip.id.removesuffix("-trip") + "-hold"
        assert hold.procedure == "hold" and hold.condition == trip.condition
        for key in ("stimulus", "flag", "fet", "dwell_s", "start", "stop", "condition"):
            assert hold.params[key] == trip.params[key], (p.item, key)
        level, res = hold.params["level"], hold.params["resolution"]
        at_trip = hold.params["trip_value"]
        at_recovery = hold.params["recovery_value"]
        assert at_trip == p.default and at_recovery == spec.param(p.partner).default
        low, high = sorted((at_trip, at_recovery))
        assert low < level < high, p.item
        assert level == on_grid(level, res), p.item
        assert abs(level - (at_trip + at_recovery) / 2) <= res / 2 + 1e-9, p.item
        assert hold.testable, (p.item, hold.reason)
        assert "regression" in hold.suites
    assert pairs >= 28


def test_balancing_holds_between_start_and_stop_difference(plan):
    hold = plan["P63-balancing-activation-voltage-difference-hold"]
    assert hold.params["flag"] == "balancing"
    assert 0.02 < hold.params["level"] < 0.03
    assert (
        hold.params["base_v"]
        == plan["P63-balancing-activation-voltage-difference-trip"].params["base_v"]
    )


def test_new_kinds_are_counted_and_fit_the_budget(spec):
    regression = build_plan(spec, DEFAULT_CAPABILITIES, "regression")
    counts = kind_counts(regression)
    kinds = list(counts)
    assert kinds.index("recovery") < kinds.index("quiet") < kinds.index("hold")
    assert counts["quiet"] >= 10 and counts["hold"] >= 28
    added = sum(c.est_bench_s for c in regression if c.kind in ("quiet", "hold") and c.testable)
    assert 0 < added <= BUDGET_S
    rest = [c for c in regression if c.kind not in ("quiet", "hold")]
    assert suite_estimates(regression)["regression"] == pytest.approx(
        suite_estimates(rest)["regression"] + added
    )


# -- recipes ----------------------------------------------------------------------------------


def _tables(tmp_path: Path) -> Path:
    out = tmp_path / "test_plans"
    shutil.copytree(TEST_PLANS_DIR, out)
    return out


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


P23_ACTS = "        acts: {flag: charge_low_temperature_alarm, fets: none}\n"


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (
            "        quiet: {expect: [cell_cold]}\n",
            "parameters.yaml row 23 (charging-low-temperature-alarm): key "
            "'recipe.threshold.quiet.expect.0' value 'cell_cold': not a name in status_flags.yaml",
        ),
        (
            "        quiet: {reason: because, expect: [discharge_low_temperature_alarm]}\n",
            "parameters.yaml row 23 (charging-low-temperature-alarm): key 'recipe.threshold.quiet'",
        ),
        (
            "        quiet: {overrides: {P99: 1.0}}\n",
            "parameters.yaml row 23 (charging-low-temperature-alarm): key "
            "'recipe.threshold.quiet.overrides.P99' value 'P99': no such row",
        ),
        (
            "        hold: {reason: ''}\n",
            "parameters.yaml row 23 (charging-low-temperature-alarm): key "
            "'recipe.threshold.hold.reason' value ''",
        ),
    ],
)
def test_a_bad_quiet_or_hold_recipe_names_file_row_key_and_value(tmp_path, new, message):
    tables = _tables(tmp_path)
    _edit(tables / "parameters.yaml", P23_ACTS, P23_ACTS + new)
    with pytest.raises(SpecError) as err:
        load_spec(tables)
    assert message in str(err.value)


def test_the_plan_follows_the_quiet_and_hold_recipes(tmp_path):
    tables = _tables(tmp_path)
    _edit(
        tables / "parameters.yaml",
        P23_ACTS,
        P23_ACTS
        + "        quiet: {reason: not on this device}\n"
        + "        hold: {reason: nor on this one}\n",
    )
    ids = {c.id for c in build_plan(load_spec(tables), DEFAULT_CAPABILITIES)}
    assert "P23-charging-low-temperature-alarm-trip" in ids
    assert "P23-charging-low-temperature-alarm-quiet" not in ids
    assert "P23-charging-low-temperature-alarm-hold" not in ids


def test_a_quiet_recipe_on_a_row_of_any_condition_is_refused(tmp_path):
    tables = _tables(tmp_path)
    acts = "        acts: {flag: ambient_high_temperature_alarm, fets: none}\n"
    _edit(tables / "parameters.yaml", acts, acts + "        quiet: {expect: []}\n")
    with pytest.raises(ValueError, match=r"row 39 .*recipe.threshold.quiet.*condition is any"):
        build_plan(load_spec(tables), DEFAULT_CAPABILITIES)


# -- end to end on the simulated bench --------------------------------------------------------


def _run(tmp_path: Path, faults: str | None) -> tuple[int, str, dict[str, dict]]:
    args = ["--suite", "regression", "-k", NEW_KINDS]
    if faults is not None:
        path = tmp_path / "faults.yaml"
        path.write_text(f"firmware:\n  - {faults}\n")
        args += ["--sim-faults", str(path)]
    code, text, records = bmshil_run(tmp_path / "out", *args)
    assert_checks_read_true(records)
    return code, text, {r["test_id"]: r for r in records}


def _failed(records: dict[str, dict]) -> list[str]:
    return sorted(i for i, r in records.items() if r["outcome"] != "passed")


def test_the_conforming_twin_passes_every_quiet_and_hold_case(tmp_path, plan):
    code, text, records = _run(tmp_path, None)
    assert code == 0, text
    wanted = {i for i, c in plan.items() if c.kind in ("quiet", "hold") and c.testable}
    assert set(records) == wanted
    assert _failed(records) == []
    p25 = records["P25-charging-overtemperature-protection-quiet"]
    assert p25["measured"] == 60.0
    assert "discharge_high_temperature_alarm set" in p25["note"]


def test_a_row_acting_in_any_condition_fails_its_quiet_case_only(tmp_path):
    code, text, records = _run(tmp_path, "{item: P25, kind: condition_ignored}")
    assert code == 1, text
    quiet = "P25-charging-overtemperature-protection-quiet"
    assert _failed(records) == [quiet]
    message = records[quiet]["message"]
    assert "charge_overtemperature_protection set at 60 °C while discharging" in message
    assert "charge FET opened at 60 °C while discharging" in message


def test_a_recovery_at_the_trip_fails_the_pairs_hold_case_only(tmp_path):
    code, text, records = _run(tmp_path, "{item: P24, kind: no_hysteresis}")
    assert code == 1, text
    hold = "P23-charging-low-temperature-alarm-hold"
    assert _failed(records) == [hold]
    message = records[hold]["message"]
    assert (
        "charge_low_temperature_alarm cleared at 3.6 °C inside its band (trip 2 °C, "
        "recovery 5 °C), after the trip at -3 °C"
    ) in message
    # approached from the quiet side it stayed clear: only the acting side fails
    checks = {c["name"]: c for c in records[hold]["checks"]}
    assert checks["charge_low_temperature_alarm clear (from the quiet side)"]["ok"] is True
    assert checks["charge_low_temperature_alarm set (from the acting side)"]["ok"] is False


def test_a_protection_recovering_at_its_trip_fails_its_flag_and_fet_hold(tmp_path):
    code, text, records = _run(tmp_path, "{item: P5, kind: no_hysteresis}")
    assert code == 1, text
    hold = "P05-cell-overvoltage-protection-hold"
    assert _failed(records) == [hold]
    message = records[hold]["message"]
    assert "cell_overvoltage_protection cleared at 3.514 V inside its band" in message
    assert "charge FET closed at 3.514 V inside its band" in message
