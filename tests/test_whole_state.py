"""The whole reported state at every threshold observation, and a verified clean start
(issue 10 item 2).

Unit tests of the comparison (``harness/procedures/expect.py``) with hand-made
observations; the clean start (``runner.prepare``) with a fake rig whose device keeps a
flag latched; end to end on the simulated bench with firmware deviations that open a FET
the row does not own, or the wrong one.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from e2e_support import run_by_id

from bmsspec import load_spec
from harness.plan import DEFAULT_CAPABILITIES, build_plan
from harness.procedures import runner
from harness.procedures.expect import (
    Expectation,
    StateWatch,
    clean_state,
    compare,
    coupled_actions,
    judge_at,
)
from harness.procedures.record import BenchFault, Measurement, Recorder
from harness.procedures.rig import Observation

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec()


def obs(
    *raised: str,
    charge_fet: bool = True,
    discharge_fet: bool = True,
    supply_a: float = 0.0,
    load_a: float = 0.0,
    stimulus: float | None = 61.0,
    states: tuple[str, ...] = ("standby",),
) -> Observation:
    flags = {f.name: False for f in SPEC.flags}
    for name in (*raised, *states):
        flags[name] = True
    flags["charge_fet"], flags["discharge_fet"] = charge_fet, discharge_fet
    return Observation(
        t_s=0.0,
        stimulus=stimulus,
        flag=False,
        flags=flags,
        charge_fet=charge_fet,
        discharge_fet=discharge_fet,
        supply_a=supply_a,
        load_a=load_a,
    )


def expectation(flag: str, fet: str | None, condition: str = "any", **kw: Any) -> Expectation:
    params = {"flag": flag, "fet": fet, "condition": condition, "stimulus": "ntc:ambient", **kw}
    return Expectation.from_params(params, "°C", SPEC)


def failures(o: Observation, exp: Expectation, acted: bool) -> list[str]:
    return [d.failure for d in compare(o, exp, acted=acted)]


# -- the comparison ------------------------------------------------------------------------


def test_a_conforming_protection_with_its_coupling_shows_no_deviation() -> None:
    exp = expectation(
        "ambient_overtemperature_protection", "both", couplings=["ambient_high_temperature_alarm"]
    )
    tripped = obs(
        "ambient_overtemperature_protection",
        "ambient_high_temperature_alarm",
        charge_fet=False,
        discharge_fet=False,
    )
    assert failures(tripped, exp, acted=True) == []
    # before it acted: the coupled alarm may be up, both FETs closed
    assert failures(obs("ambient_high_temperature_alarm"), exp, acted=False) == []


def test_system_states_and_fet_bits_are_not_flags() -> None:
    exp = expectation("cell_high_voltage_alarm", None, "charging")
    seen = obs(
        "cell_high_voltage_alarm", supply_a=5.0, states=("charging", "float_charging", "standby")
    )
    assert failures(seen, exp, acted=True) == []


def test_an_unexpected_flag_is_named() -> None:
    exp = expectation("power_high_temperature_alarm", None)
    assert failures(obs("ambient_high_temperature_alarm"), exp, acted=False) == [
        "unexpected flag ambient_high_temperature_alarm"
    ]


def test_both_fet_protection_that_leaves_the_charge_fet_closed_names_it() -> None:
    exp = expectation("ambient_overtemperature_protection", "both")
    seen = obs("ambient_overtemperature_protection", discharge_fet=False)
    assert failures(seen, exp, acted=True) == ["charge FET still closed"]


def test_an_alarm_that_opens_a_fet_names_the_fet_and_the_alarm() -> None:
    exp = expectation("cell_high_voltage_alarm", None, "charging")
    seen = obs("cell_high_voltage_alarm", charge_fet=False, supply_a=0.0)
    assert failures(seen, exp, acted=True) == [
        "charge FET open although cell_high_voltage_alarm opens no FET"
    ]


def test_a_protection_that_opens_the_other_fet_too_is_caught() -> None:
    exp = expectation("cell_overvoltage_protection", "charge", "charging")
    seen = obs("cell_overvoltage_protection", charge_fet=False, discharge_fet=False)
    assert failures(seen, exp, acted=True) == [
        "discharge FET open although cell_overvoltage_protection opens only the charge FET"
    ]
    quiet = obs(discharge_fet=False, supply_a=5.0)
    assert failures(quiet, exp, acted=False) == [
        "discharge FET open although cell_overvoltage_protection has not acted"
    ]


def test_the_terminal_current_must_agree_with_the_fets_and_the_condition() -> None:
    exp = expectation("cell_high_voltage_alarm", None, "charging")
    # charge FET closed while charging, but nothing flows
    assert failures(obs(supply_a=0.1), exp, acted=False) == [
        "charge current 0.10 A although the charge FET is closed while charging"
    ]
    # a FET reported open while its current flows
    exp = expectation("cell_undervoltage_protection", "discharge", "discharging")
    seen = obs("cell_undervoltage_protection", discharge_fet=False, load_a=5.0)
    assert failures(seen, exp, acted=True) == [
        "discharge current 5.00 A although the discharge FET is open"
    ]


def test_a_coupled_protection_holds_its_own_fet_open_as_its_recipe_says() -> None:
    # The charge prohibition's cell is below the undervoltage protection too: that row's
    # recipe opens the discharge FET, so with the coupling declared it may be open.
    assert coupled_actions(SPEC, ["cell_undervoltage_protection", "cell_low_voltage_alarm"]) == {
        "cell_undervoltage_protection": frozenset({"discharge"})
    }
    seen = obs(
        "cell_undervoltage_protection", discharge_fet=False, supply_a=5.0, states=("charging",)
    )
    declared = expectation(
        "low_voltage_charge_prohibition",
        "charge",
        "charging",
        couplings=["cell_undervoltage_protection"],
    )
    assert failures(seen, declared, acted=False) == []
    undeclared = expectation("low_voltage_charge_prohibition", "charge", "charging")
    assert failures(seen, undeclared, acted=False) == [
        "unexpected flag cell_undervoltage_protection",
        "discharge FET open although low_voltage_charge_prohibition has not acted",
    ]


def test_each_distinct_deviation_is_reported_once_per_case_with_where_and_how_often() -> None:
    exp = expectation("power_high_temperature_alarm", None)
    watch = StateWatch(exp)
    watch.see(obs(stimulus=50.0), acted=False)
    for t in (61.0, 62.0, 63.0):
        watch.see(obs("power_high_temperature_alarm", charge_fet=False, stimulus=t), acted=True)
    m = Measurement(name="P47", unit="°C")
    watch.report(m)
    (c,) = m.check_records()
    assert c["name"] == "whole state: charge FET" and c["ok"] is False
    assert (
        c["failure"]
        == "charge FET open although power_high_temperature_alarm opens no FET at 61 °C"
    )
    assert "(3 of 4 observations)" in c["detail"]
    assert m.outcome == "failed"


def test_a_conforming_case_records_one_passing_check_and_none_without_observations() -> None:
    exp = expectation("power_high_temperature_alarm", None)
    silent = Measurement(name="P47", unit="°C")
    StateWatch(exp).report(silent)
    assert silent.checks == []  # nothing observed: no check that could not have failed
    watch = StateWatch(exp)
    watch.see(obs(), acted=False)
    watch.see(obs("power_high_temperature_alarm"), acted=True)
    m = Measurement(name="P47", unit="°C")
    watch.report(m)
    (c,) = m.check_records()
    assert c["name"] == "whole state" and c["ok"] is True
    assert c["detail"].startswith("2 observations: flags raised: power_high_temperature_alarm")


def test_a_negative_spec_value_is_located_in_its_own_sign() -> None:
    exp = Expectation.from_params(
        {
            "flag": "discharge_overcurrent_alarm",
            "fet": None,
            "condition": "discharging",
            "sign": -1,
        },
        "A",
    )
    watch = StateWatch(exp)
    watch.see(obs("cell_low_voltage_alarm", load_a=5.0, stimulus=80.0), acted=False)
    m = Measurement(name="P53", unit="A")
    watch.report(m)
    assert m.failures() == [
        "whole state: flag cell_low_voltage_alarm: unexpected flag cell_low_voltage_alarm at -80 A"
    ]


def test_clean_state_names_every_raised_flag_and_open_fet() -> None:
    assert clean_state(obs(states=("standby", "charging"))) == []
    assert clean_state(obs("cell_high_voltage_alarm", "shutdown", charge_fet=False)) == [
        "cell_high_voltage_alarm",
        "shutdown",
        "charge FET open",
    ]


def test_a_delay_end_is_judged_whole_where_the_fet_opened() -> None:
    params = {
        "flag": "charge_overcurrent_protection",
        "fet": "charge",
        "couplings": ["charge_overcurrent_alarm"],
    }
    tripped = ("charge_overcurrent_protection", "charge_overcurrent_alarm")
    ok = Measurement(name="P67", unit="second")
    judge_at(
        ok,
        params,
        obs(*tripped, charge_fet=False),
        acted=True,
        condition="charging",
        place="when the charge FET opened",
    )
    assert [c.name for c in ok.checks] == ["whole state"] and ok.outcome == "passed"
    both = Measurement(name="P67", unit="second")
    judge_at(
        both,
        params,
        obs(*tripped, charge_fet=False, discharge_fet=False),
        acted=True,
        condition="charging",
        place="when the charge FET opened",
    )
    assert both.failures() == [
        "whole state: discharge FET: discharge FET open although charge_overcurrent_protection "
        "opens only the charge FET when the charge FET opened"
    ]


# -- the clean start -------------------------------------------------------------------------


class LatchedDevice:
    """A fake rig for ``runner.prepare``: the device keeps ``latched`` raised until the
    block is rewritten (``clears_on_write``) or for ever."""

    def __init__(self, latched: str | None, clears_on_write: bool) -> None:
        self.latched = latched
        self.clears_on_write = clears_on_write
        self.t = 0.0
        self.spec = SPEC
        self.rec = Recorder()
        self.hands = None
        self.rated_ah = None
        self.rewrites = 0
        self.bench = SimpleNamespace(
            bms=SimpleNamespace(
                telemetry=lambda: SimpleNamespace(remaining_ah=1e9),
                set_remaining_capacity=lambda ah: None,
            ),
            relays=None,
        )

    def nominal_stimuli(self) -> None:
        pass

    def wake_if_shut_down(self) -> bool:
        return False

    def configure(self, values: Any, switches: Any, explicit: Any = frozenset()) -> bool:
        return False

    def rewrite_block(self) -> None:
        self.rewrites += 1
        if self.clears_on_write:
            self.latched = None

    def observe(self, flag: str | None) -> Observation:
        raised = (self.latched,) if self.latched else ()
        return obs(*raised, stimulus=None)

    def wait_until(self, predicate: Any, timeout_s: float, poll_s: float) -> Observation | None:
        end = self.t + timeout_s
        while True:
            o = self.observe(None)
            if predicate(o):
                return o
            if self.t >= end:
                return None
            self.t += poll_s


def p05_trip() -> Any:
    (case,) = [
        c
        for c in build_plan(SPEC, DEFAULT_CAPABILITIES)
        if c.id == "P05-cell-overvoltage-protection-trip"
    ]
    return case


def test_a_latched_alarm_from_an_earlier_case_is_caught_at_the_next_start() -> None:
    # An alarm opens no FET: the old clean-start wait (protections and FETs only) passed it.
    rig = LatchedDevice("cell_high_voltage_alarm", clears_on_write=False)
    with pytest.raises(BenchFault) as caught:
        runner.prepare(rig, p05_trip())  # type: ignore[arg-type]
    assert str(caught.value) == "nominal state unreachable: still active: cell_high_voltage_alarm"
    assert rig.rewrites == 1  # the clearing ladder ran before giving up


def test_a_latched_flag_the_block_write_clears_gives_a_recorded_clean_start() -> None:
    rig = LatchedDevice("transient_overcurrent_lockout", clears_on_write=True)
    clean = runner.prepare(rig, p05_trip())  # type: ignore[arg-type]
    assert clean_state(clean) == []
    assert rig.rewrites == 1
    assert rig.rec.steps[-1].startswith(
        "clean start: no alarm, protection, fault or activation flag raised"
    )
    assert "charge FET closed, discharge FET closed" in rig.rec.steps[-1]


# -- end to end on the simulated bench ---------------------------------------------------------


def test_a_fet_the_row_does_not_own_or_the_wrong_one_fails_naming_the_fet(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(
        "firmware:\n"
        "  - {item: P47, kind: extra_action, value: both}\n"
        "  - {item: P43, kind: wrong_fet, value: discharge}\n"
    )
    unrelated = (
        "P39-ambient-high-temperature-alarm-trip",
        "P41-ambient-low-temperature-alarm-trip",
        "P05-cell-overvoltage-protection-trip",
    )
    sel = " or ".join(
        ("P47-power-high-temperature-alarm-trip", "P43-ambient-overtemperature-protection-trip")
        + unrelated
    )
    code, text, ids = run_by_id(tmp_path / "out", "-k", sel, "--sim-faults", str(faults))
    assert code == 1, text
    alarm = ids["P47-power-high-temperature-alarm-trip"]
    assert alarm["outcome"] == "failed", alarm
    assert "charge FET open although power_high_temperature_alarm opens no FET" in alarm["message"]
    assert (
        "discharge FET open although power_high_temperature_alarm opens no FET"
        in (alarm["message"])
    )
    # reported once per case, not once per probe
    names = [c["name"] for c in alarm["checks"] if not c["ok"]]
    assert names.count("whole state: charge FET") == 1, names
    protection = ids["P43-ambient-overtemperature-protection-trip"]
    assert protection["outcome"] == "failed", protection
    assert "charge FET still closed at " in protection["message"]
    for case in unrelated:
        assert ids[case]["outcome"] == "passed", ids[case]
        checks = {c["name"]: c for c in ids[case]["checks"]}
        assert checks["whole state"]["ok"] and checks["clean start"]["ok"]
