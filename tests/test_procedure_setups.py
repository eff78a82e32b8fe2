"""The setups procedures read come from the plan: recipe expressions computed from the Spec
the plan is given, so a device configuration moves every value a procedure applies or waits
for; a procedure reading a missing value is a bench error naming the case and the key."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from bmsspec import load_spec
from bmsspec.config import configured_spec
from bmsspec.recipes import Ref
from harness.plan import build_plan
from harness.procedures.record import BenchFault
from harness.procedures.setup import Nominal, Setup

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "test_plans" / "configs" / "pack-1101-ZA11-160Ah.yaml"


def _cases(spec) -> dict[str, object]:
    return {c.id: c for c in build_plan(spec)}


@pytest.fixture(scope="module")
def plans():
    spec = load_spec()
    pack, _ = configured_spec(spec, PACK)
    return _cases(spec), _cases(pack)


def test_a_number_as_base_is_relative_to_the_item_it_is_divided_by():
    ref = Ref.model_validate({"of": 30.0, "times": 100.0, "per": "P59", "round": 1})
    assert ref.items() == ["P59"]
    assert ref.evaluate(lambda item: {"P59": 160.0}[item], lambda *_: 0.0) == 18.8
    with pytest.raises(ValidationError, match="needs per"):
        Ref.model_validate({"of": 30.0})
    with pytest.raises(ValidationError, match="of must be a number or an item"):
        Ref.model_validate({"of": "X9"})


@pytest.mark.parametrize(
    ("case_id", "key", "default", "pack"),
    [
        # the stimulus levels the procedures apply (the plan's reach check sees them)
        ("S56-passive-current-limit-charging-switch-on", "level", 75.0, 155.0),
        ("S39-transient-overcurrent-lockout-switch-on", "level", -253.0, -303.0),
        ("P68-discharging-overcurrent-delay", "level", -121.0, -176.0),
        # waits and counts
        ("P71-overcurrent-recovery-count-lockout", "count", 5.0, 5.0),
        ("P70-overcurrent-recovery-delay", "trip_within_s", 7.0, 7.0),
        ("P59-battery-rated-capacity-function", "rated_ah", 80.0, 80.0),
        ("P60-battery-remaining-capacity-function", "rated_ah", 100.0, 160.0),
    ],
)
def test_setup_values_follow_the_configuration(plans, case_id, key, default, pack):
    by_default, by_pack = plans
    assert by_default[case_id].params[key] == pytest.approx(default)
    assert by_pack[case_id].params[key] == pytest.approx(pack)


def test_the_expected_soc_follows_the_rated_capacity(plans):
    by_default, by_pack = plans
    case = "P60-battery-remaining-capacity-function"
    assert by_default[case].expected == 30.0
    assert by_pack[case].expected == pytest.approx(18.8)


def test_the_nominal_state_follows_the_configuration_and_the_case(plans):
    by_default, by_pack = plans
    trip = "P01-cell-high-voltage-alarm-trip"
    assert by_default[trip].params["nominal"]["remaining_ah"] == 50.0
    assert by_pack[trip].params["nominal"]["remaining_ah"] == 80.0
    assert by_pack[trip].params["nominal"]["rated_ah"] == 160.0
    # A case that writes its own remaining capacity gets no nominal one; its rated is its own.
    soc = by_pack["P59-battery-rated-capacity-function"].params["nominal"]
    assert "remaining_ah" not in soc and soc["rated_ah"] == 80.0
    # A shortened recovery delay shortens the wait for a latched state.
    assert by_default["S39-transient-overcurrent-lockout-switch-on"].params["nominal"][
        "clear_after_write_s"
    ] == pytest.approx(12.5)


def test_recipes_isolate_what_the_pack_switches_differently(plans):
    _, by_pack = plans
    for case in ("P07-cell-undervoltage-protection-trip", "P18-pack-undervoltage-recovery"):
        assert by_pack[case].switch_overrides[54] is False
    interval = by_pack["P74-charging-activation-interval-delay-shortened"]
    assert interval.switch_overrides == {53: True, 54: False}


def test_a_missing_setup_value_names_the_case_and_the_key():
    setup = Setup("P70-overcurrent-recovery-delay", {"level": "high"})
    with pytest.raises(BenchFault, match="P70-overcurrent-recovery-delay.*'recovery_s'"):
        setup.num("recovery_s")
    with pytest.raises(BenchFault, match="key 'level' value 'high': not a number"):
        setup.level()
    with pytest.raises(BenchFault, match="no nominal state"):
        Nominal.from_case(SimpleNamespace(id="X", params={}))


def test_a_second_stimulus_is_read_by_name():
    setup = Setup("S52", {"stimuli": [{"stimulus": "ntc:ambient", "level": 55.0}]})
    assert setup.level("ntc:ambient") == 55.0
    with pytest.raises(BenchFault, match="no level of stimulus 'cell'"):
        setup.level("cell")


def test_reach_sees_every_stimulus_a_case_lists():
    from harness.plan import Case, beyond_reach
    from harness.reach import reach_of

    reach = reach_of(ROOT / "fixtures" / "sim.yaml")
    assert reach is not None
    case = Case(
        id="X",
        item="S52",
        number=52,
        kind="switch-on",
        category="function switch",
        procedure="switch.balancing_overtemperature",
        params={
            "stimulus": "cell",
            "level": 3.4,
            "stimuli": [{"stimulus": "charge_current", "level": 500.0}],
        },
    )
    assert beyond_reach(case, reach) == "needs 500 A of charge current, the supply is rated 120 A"
    case.params["stimuli"][0]["level"] = 50.0
    assert beyond_reach(case, reach) is None
