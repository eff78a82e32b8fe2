"""The plan follows the recipes in the tables: change a recipe (or the configured value a
bound is relative to) in a copy of test_plans/ and the plan changes, with no Python edit;
a bad recipe is refused naming the file, the row, the key and the value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bmsspec import TEST_PLANS_DIR, SpecError, load_spec
from harness.plan import DEFAULT_CAPABILITIES, build_plan

P61_RECIPE = """    recipe:
      threshold:
        stimulus: *cell_difference
        condition: any
        acts: {flag: cell_difference_fault, fets: none}
        couplings: [cell_low_voltage_alarm]  # the low cell 0.5 V below 3.3 V is below P3
        start: 0.0
        base_v: 3.3
"""


def _copy(tmp_path: Path) -> Path:
    out = tmp_path / "test_plans"
    shutil.copytree(TEST_PLANS_DIR, out)
    return out


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def _by_id(directory: Path) -> dict:
    return {c.id: c for c in build_plan(load_spec(directory), DEFAULT_CAPABILITIES)}


def test_the_plan_follows_changed_recipes(tmp_path):
    tables = _copy(tmp_path)
    before = _by_id(TEST_PLANS_DIR)
    params = tables / "parameters.yaml"
    # another stimulus bound
    _edit(params, "        stop: {below: P5, by: 0.03}\n", "        stop: {below: P5, by: 0.05}\n")
    # another suite for P3's trip, a new coupling on P3
    _edit(
        params,
        "        couplings: [cell_difference_fault]  # one cell 0.5 V below the others reaches "
        "P61\n  - number: 4\n",
        "        couplings: [pack_low_voltage_alarm]\n"
        "      suites: {trip: [regression, soak]}\n  - number: 4\n",
    )
    after = _by_id(tables)
    trip1 = "P01-cell-high-voltage-alarm-trip"
    assert before[trip1].params["stop"] == 3.62
    assert after[trip1].params["stop"] == 3.6
    trip3 = "P03-cell-low-voltage-alarm-trip"
    assert before[trip3].suites == ["regression"]
    assert after[trip3].suites == ["regression", "soak"]
    assert after[trip3].params["couplings"] == ["pack_low_voltage_alarm"]
    assert before[trip3].params["couplings"] == ["cell_difference_fault"]
    soak = {c.id for c in build_plan(load_spec(tables), DEFAULT_CAPABILITIES, "soak")}
    assert trip3 in soak
    # nothing else moved
    assert before.keys() == after.keys()


def test_bounds_relative_to_a_row_follow_its_configured_value(tmp_path):
    tables = _copy(tmp_path)
    params = tables / "parameters.yaml"
    _edit(
        params,
        '    default: 3.65\n    default_text: "3.650"\n',
        '    default: 3.6\n    default_text: "3.600"\n',
    )
    after = _by_id(tables)
    assert after["P05-cell-overvoltage-protection-trip"].expected == 3.6
    assert after["P01-cell-high-voltage-alarm-trip"].params["stop"] == 3.57  # P5 - 0.03
    # 16 x P5 - 0.2 V
    assert after["P15-pack-overvoltage-protection-trip"].params["stop"] == 57.4


def test_a_row_with_a_recipe_of_an_existing_kind_yields_its_cases(tmp_path):
    tables = _copy(tmp_path)
    params = tables / "parameters.yaml"
    _edit(params, P61_RECIPE, "")
    without = _by_id(tables)
    assert "P61-cell-failure-voltage-difference-trip" not in without
    assert "P62-cell-failure-recovery" not in without
    assert "P61-cell-failure-voltage-difference-readback" in without
    # the recipe back (written anew by a spec editor): the trip and its recovery return
    _edit(
        params,
        "    flag: cell_difference_fault\n  - number: 62\n",
        "    flag: cell_difference_fault\n" + P61_RECIPE + "  - number: 62\n",
    )
    with_it = _by_id(tables)
    trip = with_it["P61-cell-failure-voltage-difference-trip"]
    assert trip.procedure == "threshold" and trip.params["stimulus"] == "cell_difference"
    assert "P62-cell-failure-recovery" in with_it


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "        stop: {below: P5, by: 0.03}\n",
            "        stop: {below: P95, by: 0.03}\n",
            "parameters.yaml row 1 (cell-high-voltage-alarm): key 'recipe.threshold.stop' "
            "value 'P95': no such row",
        ),
        (
            "        acts: {flag: cell_high_voltage_alarm, fets: none}\n",
            "        acts: {flag: cell_high_voltage_alarm, fets: sideways}\n",
            "parameters.yaml row 1 (cell-high-voltage-alarm): key "
            "'recipe.threshold.acts.fets' value 'sideways'",
        ),
        (
            "        acts: {flag: cell_high_voltage_alarm, fets: none}\n",
            "        acts: {flag: cell_high_voltage_alarm, fets: none}\n"
            "        couplings: [cell_hot]\n",
            "parameters.yaml row 1 (cell-high-voltage-alarm): key "
            "'recipe.threshold.couplings.0' value 'cell_hot': not a name in status_flags.yaml",
        ),
    ],
)
def test_a_bad_recipe_names_file_row_key_and_value(tmp_path, old, new, message):
    tables = _copy(tmp_path)
    _edit(tables / "parameters.yaml", old, new)
    with pytest.raises(SpecError) as err:
        load_spec(tables)
    assert message in str(err.value)


def test_a_bad_switch_recipe_names_file_row_key_and_value(tmp_path):
    tables = _copy(tmp_path)
    _edit(
        tables / "switches.yaml",
        "      overrides: {P70: 5.0}\n      params: {count: {of: P71}",
        "      overrides: {P99: 5.0}\n      params: {count: {of: P71}",
    )
    with pytest.raises(SpecError) as err:
        load_spec(tables)
    assert "switches.yaml row 40 (output-short-circuit-lockout): key 'recipe.overrides.P99'" in str(
        err.value
    )
