"""The mutants of the mutation benchmark (``bmssim/twin/mutants.py``, issue 10 item 10).

- every mutant is registered with a description and the case meant to kill it, every edit
  still fits the code it mutates (its fragment occurs once), and each one changes what the
  twin does: the same scenario on a healthy twin and on the mutated one gives different
  observations (no full regression here);
- the mutant is selected by the faults file (``mutant: NAME``), lives on its twin only and
  goes when the faults are cleared; an unknown name is refused with file, key and value;
- end to end, a small sample of mutants is killed by a ``-k`` subset of the regression.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import run_outcomes
from twin_support import configure

from bmssim.faults import Faults
from bmssim.twin import mutate
from bmssim.twin.mutants import BY_NAME, MUTANTS, NAMES, Edit, Mutant
from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()
ROOT = Path(__file__).resolve().parent.parent
Scenario = Callable[[World], Any]


def world_with(mutant: str | None = None) -> World:
    faults = {"mutant": mutant} if mutant else {}
    w = World(SPEC, faults=Faults.from_dict(faults, SPEC, source="mutant.yaml"))
    w.advance(1000)
    return w


def fets(w: World) -> tuple[bool, bool]:
    out = w.twin.outputs()
    return out.charge_fet, out.discharge_fet


def has(flag: str) -> Callable[[World], bool]:
    return lambda w: flag in w.flags()


def after(setup: Callable[[World], None], observe: Callable[[World], Any]) -> Scenario:
    def scenario(w: World) -> Any:
        setup(w)
        return observe(w)

    return scenario


def _cell(v: float, index: int = 0, ms: int = 1500, charge: float | None = None):
    def setup(w: World) -> None:
        if charge is not None:
            w.charge(charge)
        w.set_cells_v(v, index)
        w.advance(ms)

    return setup


def _ntc(channel: int, temp: float, current: float | None = None):
    def setup(w: World) -> None:
        if current is not None and current > 0:
            w.charge(current)
        elif current is not None:
            w.discharge(-current)
        w.set_ntc_c(channel, temp)
        w.advance(1500)

    return setup


def _steps(*steps: tuple[str, Any]):
    """A setup from (what, argument) steps: cells (v, index|None), ntc (ch, c), charge,
    discharge, idle, ms, cfg (values, switches), soc (Ah), relay (name, closed), ctl."""

    def setup(w: World) -> None:
        for what, arg in steps:
            if what == "cells":
                w.set_cells_v(*arg)
            elif what == "ntc":
                w.set_ntc_c(*arg)
            elif what == "charge":
                w.charge(arg)
            elif what == "discharge":
                w.discharge(arg)
            elif what == "idle":
                w.idle()
            elif what == "ms":
                w.advance(int(arg))
            elif what == "cfg":
                configure(w, *arg)
            elif what == "soc":
                w.twin.set_remaining_capacity(arg)
            elif what == "relay":
                w.set_relay(*arg)
            elif what == "ctl":
                w.twin.control(*arg)
            else:
                raise AssertionError(what)

    return setup


def _fet_open_ms(w: World, signal: str = "discharge_fet") -> int | None:
    opened = [t for t, s, v in w.bench.trace.events if s == signal and v == 0.0]
    return opened[0] if opened else None


def _samples(every_ms: int, count: int, observe: Callable[[World], Any]) -> Scenario:
    def scenario(w: World) -> Any:
        out = []
        for _ in range(count):
            w.advance(every_ms)
            out.append(observe(w))
        return out

    return scenario


def _limit(w: World) -> bool:
    return w.twin.outputs().current_limit_fet


def _balancing(w: World) -> bool:
    return any(w.twin.status().balancing)


def _m(w: World) -> Any:
    return w.twin.measurements()


OC_OFF = ({}, {56: False})  # passive limiting off, so the charger's current reaches P55
UNBALANCED = [("cells", (3.45, None)), ("cells", (3.50, 15)), ("ms", 2000)]

#: mutant -> a scenario whose observation differs between the healthy and the mutated twin
SCENARIOS: dict[str, Scenario] = {
    "scan_skips_cell16": after(_cell(3.70, 15, charge=10.0), has("cell_overvoltage_protection")),
    "cell_ntc4_ignored": after(_ntc(3, 58.0, 10.0), has("charge_overtemperature_protection")),
    "pack_sum_skips_last_cell": after(_cell(3.55, None), has("pack_high_voltage_alarm")),
    "state_band_5a": after(_steps(("charge", 2.0), ("ms", 500)), lambda w: w.twin.state),
    "minutes_counted_as_seconds": after(
        _steps(("charge", 10.0), ("ms", 60_000)), lambda w: w.twin.history_count
    ),
    "high_trip_strict": after(_cell(3.55), has("cell_high_voltage_alarm")),
    "low_recovery_strict": after(
        _steps(
            ("discharge", 10.0),
            ("cells", (2.85, 0)),
            ("ms", 1500),
            ("cells", (3.10, 0)),
            ("ms", 1500),
        ),
        has("cell_low_voltage_alarm"),
    ),
    "cell_protection_recovers_at_trip": after(
        _steps(
            ("charge", 10.0), ("cells", (3.70, 0)), ("ms", 1500), ("cells", (3.50, 0)), ("ms", 1500)
        ),
        has("cell_overvoltage_protection"),
    ),
    "prohibition_without_hysteresis": after(
        _steps(
            ("charge", 10.0), ("cells", (1.40, 0)), ("ms", 1500), ("cells", (1.55, 0)), ("ms", 1500)
        ),
        has("low_voltage_charge_prohibition"),
    ),
    "charge_rows_act_discharging": after(
        _ntc(0, 58.0, -10.0), has("charge_overtemperature_protection")
    ),
    "discharge_rows_act_charging": after(
        _ntc(0, 70.0, 10.0), has("discharge_overtemperature_protection")
    ),
    "pack_uv_released_while_waiting": after(
        _steps(
            ("cfg", ({7: 2.5, 8: 2.9}, {54: True})),
            ("discharge", 10.0),
            ("cells", (2.65, None)),
            ("ms", 1500),
            ("idle", None),
            ("cells", (3.10, None)),
            ("ms", 2000),
        ),
        has("pack_undervoltage_protection"),
    ),
    "cell_difference_latched": after(
        _steps(("cells", (2.75, 0)), ("ms", 1500), ("cells", (3.30, 0)), ("ms", 1500)),
        has("cell_difference_fault"),
    ),
    "s13_ignored": after(
        _steps(("cfg", ({}, {13: False})), ("cells", (3.55, None)), ("ms", 1500)),
        has("pack_high_voltage_alarm"),
    ),
    "row_confirmation_not_restarted": after(
        _steps(
            ("cells", (3.56, 0)),
            ("ms", 600),
            ("cells", (3.30, 0)),
            ("ms", 600),
            ("cells", (3.56, 0)),
            ("ms", 200),
        ),
        has("cell_high_voltage_alarm"),
    ),
    "p53_raises_charge_bit": after(
        _steps(("discharge", 106.0), ("ms", 1500)),
        lambda w: (
            "discharge_overcurrent_alarm" in w.flags(),
            "charge_overcurrent_alarm" in w.flags(),
        ),
    ),
    "cell_alarm_opens_charge_fet": after(_cell(3.56, charge=10.0), fets),
    "ambient_power_protections_discharge_only": after(_ntc(4, 62.0), fets),
    "soc_alarm_reads_p80": after(
        _steps(("soc", 8.0), ("ms", 1500)), has("remaining_capacity_alarm")
    ),
    "gap_only_after_pack_ov": after(
        _steps(
            ("soc", 98.0),
            ("charge", 10.0),
            ("cells", (3.70, 0)),
            ("ms", 1500),
            ("cells", (3.30, 0)),
            ("ms", 1500),
        ),
        has("gap_compensation_waiting"),
    ),
    "overcurrent_timer_not_reset": after(
        _steps(
            ("cfg", OC_OFF),
            ("charge", 115.0),
            ("ms", 6000),
            ("charge", 50.0),
            ("ms", 2000),
            ("charge", 115.0),
            ("ms", 3000),
        ),
        has("charge_overcurrent_protection"),
    ),
    "lockout_count_off_by_one": after(
        _steps(("cfg", ({67: 1.0, 70: 2.0}, {56: False})), ("charge", 115.0), ("ms", 14_000)),
        lambda w: w.twin.locked(55),
    ),
    "discharge_delay_from_p67": after(
        _steps(("cfg", ({68: 2.0}, {})), ("discharge", 115.0), ("ms", 3000)),
        has("discharge_overcurrent_protection"),
    ),
    "recovery_fixed_60s": after(
        _steps(
            ("cfg", ({70: 5.0}, {56: False})),
            ("charge", 115.0),
            ("ms", 11_000),
            ("charge", 50.0),
            ("ms", 10_000),
        ),
        has("charge_overcurrent_protection"),
    ),
    "transient_lockout_ignores_s39": after(
        _steps(("cfg", ({70: 5.0}, {})), ("discharge", 260.0), ("ms", 40_000)),
        lambda w: w.twin.locked(57),
    ),
    "transient_on_sampled_current": after(
        _steps(("ms", 5), ("discharge", 260.0), ("ms", 100)), _fet_open_ms
    ),
    "lockout_survives_block_write": after(
        _steps(
            ("cfg", ({67: 1.0, 70: 2.0}, {56: False})),
            ("charge", 115.0),
            ("ms", 14_000),
            ("charge", 10.0),
            ("cfg", ({}, {})),
        ),
        lambda w: w.twin.locked(55),
    ),
    "short_lockout_ignores_s40": after(
        _steps(
            ("cfg", ({70: 5.0}, {40: False})),
            ("discharge", 10.0),
            ("relay", ("short_circuit", True)),
            ("ms", 60_000),
        ),
        lambda w: w.twin.short_circuit_locked(),
    ),
    "secondary_trip_charge_only": after(
        _steps(("cfg", ({}, {32: True})), ("relay", ("secondary_trip", True)), ("ms", 100)), fets
    ),
    "balancing_stops_at_start_difference": after(
        _steps(*UNBALANCED, ("cells", (3.475, 15)), ("ms", 2000)), _balancing
    ),
    "static_timer_not_restarted_by_charge": after(
        _steps(
            ("cfg", ({65: 1.0}, {})),
            *UNBALANCED,
            ("ms", 50 * 60_000),
            ("charge", 10.0),
            ("ms", 5000),
            ("idle", None),
            ("ms", 20 * 60_000),
        ),
        _balancing,
    ),
    "balancing_ignores_s52": after(_steps(("ntc", (4, 55.0)), *UNBALANCED), _balancing),
    "heating_start_stop_swapped": after(
        _steps(("cfg", ({}, {31: True})), ("charge", 10.0), ("ntc", (0, 5.0)), ("ms", 1500)),
        lambda w: w.twin.heating.on(),
    ),
    "heating_without_charger": after(
        _steps(("cfg", ({}, {31: True})), ("ntc", (0, -5.0)), ("ms", 1500)),
        lambda w: w.twin.heating.on(),
    ),
    "passive_limit_starts_at_p52": after(_steps(("charge", 67.0), ("ms", 2000)), _limit),
    "limit_time_in_seconds": after(_steps(("charge", 75.0)), _samples(1000, 20, _limit)),
    "active_limit_never_engages": after(
        _steps(("cfg", ({}, {55: True})), ("charge", 30.0), ("ms", 500)), _limit
    ),
    "activation_delay_in_seconds": after(
        _steps(
            ("cfg", ({}, {54: True})),
            ("discharge", 10.0),
            ("cells", (2.60, 0)),
            ("ms", 1500),
            ("idle", None),
            ("cells", (3.30, 0)),
            ("ctl", (0, 0x10)),
            ("ms", 5000),
        ),
        has("cell_undervoltage_protection"),
    ),
    "auto_activation_ignores_soc": after(
        _steps(("soc", 4.0), ("discharge", 10.0), ("ms", 1500)), has("waiting_auto_activation")
    ),
    "coulomb_counts_down_charging": after(
        _steps(("charge", 10.0), ("ms", 36_000)), lambda w: _m(w).remaining_ah
    ),
    "soc_not_clamped": after(
        _steps(("soc", 99.9), ("charge", 20.0), ("ms", 60_000)),
        lambda w: (_m(w).remaining_ah, _m(w).soc_permille),
    ),
    "cycle_at_full_capacity": after(
        _steps(("soc", 100.0), ("discharge", 100.0), ("ms", 51 * 60_000)),
        lambda w: _m(w).cycles,
    ),
    "busbar_sign_wrong_charging": after(
        _steps(("cfg", ({85: 1.0}, {})), ("charge", 50.0), ("ms", 500)),
        lambda w: _m(w).cell_v[8],
    ),
    "busbar_position_off_by_one": after(
        _steps(("cfg", ({85: 1.0}, {})), ("discharge", 50.0), ("ms", 500)),
        lambda w: _m(w).cell_v[8:10],
    ),
    "standby_shutdown_ignores_s58": after(
        _steps(("cfg", ({78: 1.0}, {58: False})), ("ms", 3700_000)), has("shutdown")
    ),
    "power_switch_ignored": after(_steps(("cfg", ({}, {57: True})), ("ms", 100)), fets),
    "soft_start_ignores_s48": after(
        _steps(
            ("cfg", ({}, {48: False})),
            ("ctl", (0, 0x1F)),
            ("discharge", 50.0),
            ("ms", 100),
            ("ctl", (0, 0x10)),
            ("ms", 500),
        ),
        lambda w: w.load_current_a(),
    ),
    "soft_start_in_ticks": after(
        _steps(
            ("ctl", (0, 0x1F)), ("discharge", 50.0), ("ms", 100), ("ctl", (0, 0x10)), ("ms", 500)
        ),
        lambda w: w.load_current_a(),
    ),
    "history_intervals_swapped": after(_steps(("ms", 31 * 60_000)), lambda w: w.twin.history_count),
    "reported_current_sign": after(
        _steps(("charge", 20.0), ("ms", 500)), lambda w: _m(w).current_a
    ),
}


# ---------------------------------------------------------------------- the registry


def test_every_mutant_is_registered_with_a_description_and_its_killer() -> None:
    assert 40 <= len(MUTANTS) <= 50
    assert len(NAMES) == len(MUTANTS)  # names are unique
    for m in MUTANTS:
        assert m.name.isidentifier() and m.name == m.name.lower(), m.name
        assert len(m.description) > 20, m.name
        assert m.kills, m.name
        assert m.edits, m.name
        for edit in m.edits:
            assert edit.old != edit.new, m.name


def test_every_edit_still_fits_the_code_it_mutates() -> None:
    for m in MUTANTS:
        fns = mutate.functions(m)  # raises when a fragment is not there exactly once
        assert set(fns) == {e.target for e in m.edits}


def test_a_fragment_that_is_no_longer_there_is_refused_naming_it() -> None:
    stale = Mutant(
        "stale",
        "a mutant of code that changed",
        (Edit("balancing.Balancing.vt", "stop = diff <= b.eff(99)", "stop = True"),),
        kills="-",
    )
    with pytest.raises(mutate.MutantError, match=r"stale.*Balancing\.vt.*b\.eff\(99\).*0 times"):
        mutate.functions(stale)
    with pytest.raises(mutate.MutantError, match="no such method"):
        mutate.functions(Mutant("x", "y", (Edit("balancing.Balancing.nope", "a", "b"),), "-"))


def test_every_mutant_has_a_twin_level_scenario() -> None:
    assert set(SCENARIOS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_the_mutant_changes_what_the_twin_does(name: str) -> None:
    scenario = SCENARIOS[name]
    healthy = scenario(world_with())
    mutated_world = world_with(name)
    assert mutated_world.twin.mutant == name
    mutated = scenario(mutated_world)
    assert healthy != mutated, f"{name}: {BY_NAME[name].description}: no difference seen"


# ---------------------------------------------------------------------- selection


def test_the_mutant_lives_on_its_twin_only_and_goes_with_the_faults() -> None:
    scenario = SCENARIOS["scan_skips_cell16"]
    healthy, mutated = world_with(), world_with("scan_skips_cell16")
    assert scenario(healthy) is True
    assert scenario(mutated) is False
    assert scenario(world_with()) is True  # a twin built after it is healthy
    mutated.set_faults(Faults.empty())
    assert mutated.twin.mutant is None
    mutated.set_cells_v(3.30)
    mutated.idle()
    mutated.advance(3000)
    assert "cell_overvoltage_protection" not in mutated.flags()
    assert scenario(mutated) is True  # the twin's own logic again
    # and another one can be put in force on the same twin by the control channel's faults
    mutated.set_faults(Faults.from_dict({"mutant": "s13_ignored"}, SPEC))
    assert mutated.twin.mutant == "s13_ignored"


def test_a_mutant_with_a_row_listener_is_heard() -> None:
    """GapCompensation hears the rows through a listener: the mutated one is called."""
    w = world_with("gap_only_after_pack_ov")
    gap = w.twin.gap
    assert gap._row_changed in w.twin.board.row_listeners
    assert "_row_changed" in vars(gap)
    w.set_faults(Faults.empty())
    assert "_row_changed" not in vars(gap)
    assert gap._row_changed in w.twin.board.row_listeners


def test_the_mutant_is_reported_in_force_and_round_trips() -> None:
    f = Faults.from_dict({"mutant": "s13_ignored", "version": "16.9"}, SPEC)
    assert f and f.mutant == "s13_ignored"
    assert f.to_dict()["mutant"] == "s13_ignored"
    assert Faults.from_dict(f.to_dict(), SPEC).mutant == "s13_ignored"
    assert "mutant" not in Faults.empty().to_dict()
    assert Faults.from_dict({"mutant": None}, SPEC).mutant is None


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("scan_skip_cell16", r"'scan_skip_cell16' \(did you mean scan_skips_cell16\?"),
        ("nothing_like_it", r"'nothing_like_it' \(50 known"),
        (3, r"unknown mutant 3 "),
        (["s13_ignored"], r"unknown mutant \['s13_ignored'\]"),
    ],
)
def test_an_unknown_mutant_is_refused_naming_file_key_and_value(
    tmp_path: Path, value: Any, match: str
) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text(json.dumps({"mutant": value}), encoding="utf-8")
    with pytest.raises(ValueError, match=match) as err:
        Faults.load(path, SPEC)
    assert str(err.value).startswith(f"{path}: mutant: unknown mutant ")


# ---------------------------------------------------------------------- end to end


@pytest.mark.parametrize(
    ("mutant", "selection", "killer"),
    [
        (
            "scan_skips_cell16",
            "P01-cell-high-voltage-alarm-trip",
            "P01-cell-high-voltage-alarm-trip",
        ),
        (
            "s13_ignored",
            "S13-pack-high-voltage-alarm-switch-off",
            "S13-pack-high-voltage-alarm-switch-off",
        ),
        (
            "cell_protection_recovers_at_trip",
            "P06-cell-overvoltage-recovery",
            "P06-cell-overvoltage-recovery",
        ),
    ],
)
def test_a_sample_of_mutants_is_killed_end_to_end(
    tmp_path: Path, mutant: str, selection: str, killer: str
) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(f"mutant: {mutant}\n", encoding="utf-8")
    code, text, outcomes = run_outcomes(
        tmp_path / "out", "-k", selection, "--sim-faults", str(faults)
    )
    assert code == 1, text
    assert outcomes.get(killer) == "failed", (outcomes, text)
    assert "FAIL" in text
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["sim_faults_in_force"]["mutant"] == mutant


def test_an_unknown_mutant_is_refused_by_the_run(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("mutant: scan_skips_cell17\n", encoding="utf-8")
    code, text, outcomes = run_outcomes(
        tmp_path / "out", "-k", "P01-cell-high-voltage-alarm-trip", "--sim-faults", str(faults)
    )
    assert code == 2, text
    flat = " ".join(text.split())
    assert str(faults) in flat and "mutant: unknown mutant 'scan_skips_cell17'" in flat
    assert outcomes == {}
