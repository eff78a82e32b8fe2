"""The test plan: coverage of every spec row, isolation, suites, capabilities, the CLI."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from bmsspec import load_spec
from harness import FIXTURES_DIR
from harness.cli import app
from harness.plan import (
    DEFAULT_CAPABILITIES,
    REGRESSION_BUDGET_S,
    WORKING_DAY_S,
    Case,
    build_plan,
    kind_counts,
    suite_estimates,
)
from harness.plan_view import bench_capabilities, format_duration

runner = CliRunner()
DEFAULT_SIM = FIXTURES_DIR / "sim.yaml"

#: Supply and load envelope of the bench files (ARCHITECTURE.md "Bench files").
SUPPLY_MAX_V, SUPPLY_MAX_A, LOAD_MAX_A = 65.0, 120.0, 300.0


@pytest.fixture(scope="module")
def spec():
    return load_spec()


@pytest.fixture(scope="module")
def plan(spec):
    return build_plan(spec, DEFAULT_CAPABILITIES)


def _by_id(plan):
    return {c.id: c for c in plan}


def _plan_json(*args: str) -> list[dict]:
    result = runner.invoke(app, ["plan", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- coverage


def test_cli_json_covers_every_parameter_and_switch():
    cases = _plan_json()
    items = {c["item"] for c in cases}
    missing = [f"P{n}" for n in range(1, 88) if f"P{n}" not in items]
    missing += [f"S{n}" for n in range(1, 65) if f"S{n}" not in items]
    assert missing == []
    for c in cases:
        for key in ("id", "item", "kind", "expected", "tolerance", "unit", "est_bench_s"):
            assert key in c, (c["id"], key)


def test_case_ids_are_unique_stable_and_well_formed(spec, plan):
    ids = [c.id for c in plan]
    assert len(ids) == len(set(ids))
    assert ids == [c.id for c in build_plan(spec, DEFAULT_CAPABILITIES)]
    for c in plan:
        assert re.fullmatch(r"[PS]\d{2}-[a-z0-9-]+", c.id), c.id
        assert c.item == f"{c.id[0]}{c.number}"
    by_id = _by_id(plan)
    assert "P05-cell-overvoltage-protection-trip" in by_id
    assert "P06-cell-overvoltage-recovery" in by_id
    assert "S10-cell-overvoltage-protection-switch-on" in by_id
    assert "S10-cell-overvoltage-protection-switch-off" in by_id


def test_thresholds_give_trip_and_recovery_cases(spec, plan):
    kinds = {(c.number, c.kind) for c in plan}
    for p in spec.parameters:
        if p.kind in ("alarm", "protection", "configuration") and p.partner is not None:
            assert (p.number, "trip") in kinds, p.item
            assert (p.partner, "recovery") in kinds, p.item
    # the single (unpaired) thresholds have a trip case from their recipe
    for n in (9, 10, 55, 56, 57, 79, 80):
        assert (n, "trip") in kinds
    for c in plan:
        if c.kind == "trip":
            assert c.expected == spec.param(c.number).default
        if c.kind == "recovery":
            assert c.expected == spec.param(c.number).default
            assert c.params["partner_expected"] == spec.param(spec.param(c.number).partner).default


def test_search_ranges_bracket_the_threshold_inside_the_envelope(spec, plan):
    for c in plan:
        if c.procedure != "threshold":
            continue
        start, stop = c.params["start"], c.params["stop"]
        trip = spec.param(c.params["trip"])
        high = trip.direction == "high"
        if c.kind == "trip":
            assert (start < c.expected < stop) if high else (start > c.expected > stop), c.id
        else:
            beyond = start >= trip.default if high else start <= trip.default
            assert beyond, c.id
            assert (stop < c.expected) if high else (stop > c.expected), c.id
        if c.params["stimulus"] == "port":
            assert max(start, stop) <= SUPPLY_MAX_V, c.id
        if c.params["stimulus"] == "charge_current":
            assert max(start, stop) <= SUPPLY_MAX_A, c.id
        if c.params["stimulus"] in ("discharge_current", "transient"):
            assert min(start, stop) >= -LOAD_MAX_A, c.id
        assert c.tolerance == pytest.approx(spec.tolerance_for(c.number).band(c.expected))


def test_delay_cases(spec, plan):
    delays = {c.number for c in plan if c.kind == "delay"}
    assert {58, 65, 67, 68, 69, 70, 71, 72, 73, 74, 76, 77, 78} <= delays
    by_id = _by_id(plan)
    lock = by_id["P71-overcurrent-recovery-count-lockout"]
    assert lock.procedure == "delay.lockout" and lock.expected == 5
    assert by_id["P70-overcurrent-recovery-delay"].procedure == "delay.overcurrent_recovery"
    assert by_id["P67-charging-overcurrent-delay"].switch_overrides == {56: False}


def test_every_override_is_a_block_the_device_must_accept(spec, plan):
    for c in plan:
        values = spec.defaults()
        values.update(c.overrides)
        assert spec.block_violations(values) == [], c.id
        for n in c.switch_overrides:
            spec.switch(n)


def test_isolation_overrides(plan):
    by_id = _by_id(plan)
    for cid in ("P17-pack-undervoltage-protection-trip", "P18-pack-undervoltage-recovery"):
        assert by_id[cid].overrides == {7: 2.50, 8: 2.90}
    assert by_id["P51-charging-overcurrent-alarm-trip"].switch_overrides == {56: False}
    assert by_id["P31-discharging-low-temperature-alarm-trip"].overrides == {35: -20.0}


def test_block_cases(spec, plan):
    readback = [c for c in plan if c.procedure == "readback.write"]
    assert sorted(c.number for c in readback) == list(range(1, 88))
    for c in readback:
        p = spec.param(c.number)
        assert c.expected != p.default, c.id
        values = spec.defaults()
        values[c.number] = c.expected
        assert spec.block_violations(values) == [], c.id
    by_id = _by_id(plan)
    bad = by_id["P05-cell-overvoltage-protection-out-of-range"]
    assert bad.procedure == "readback.out_of_range"
    assert bad.params["value"] > spec.param(5).range[1]
    values = spec.defaults()
    values[5] = bad.params["value"]
    assert spec.block_violations(values) != []
    assert by_id["P60-battery-remaining-capacity-single-write"].procedure == "readback.single_write"


def test_function_cases(plan):
    functions = {c.number: c for c in plan if c.kind == "function"}
    assert set(functions) == {51, 59, 60, 66, 74, 81, 82, 83, 84, 85, 86, 87}
    # S53 waits after the remaining-capacity protection too: SOC below P80, not a cell
    waits = functions[74]
    assert waits.procedure == "function.auto_activation_waiting"
    assert waits.params["stimulus"] == "soc" and waits.params["level"] < 5.0
    assert waits.switch_overrides == {53: True, 54: False}
    # P83 needs a series resistor in a sense lead (capability connection_fault, off here)
    assert not functions[83].testable and "connection_fault" in functions[83].reason
    assert functions[83].switch_overrides == {47: True}
    assert functions[85].overrides == {85: 5.0} and functions[85].expected == 5.0


def test_switch_cases(spec, plan):
    switch_cases = [c for c in plan if c.kind in ("switch-on", "switch-off")]
    assert len(switch_cases) == 128
    for c in switch_cases:
        assert c.switch_overrides[c.number] is (c.kind == "switch-on")
        assert c.expected == (1.0 if c.kind == "switch-on" else 0.0)
        s = spec.switch(c.number)
        if s.needs in ("unused", "inverter") or s.hardware in ("lcd", "bluetooth", "parallel"):
            assert c.procedure == "readback.bit" and c.reason, c.id
    by_id = _by_id(plan)
    s10 = by_id["S10-cell-overvoltage-protection-switch-on"]
    assert s10.params["param"] == 5 and s10.params["level"] > spec.param(5).default
    assert s10.condition == "charging"


def test_capabilities_decide_testability(spec):
    none = dict.fromkeys(DEFAULT_CAPABILITIES, False)
    bare = _by_id(build_plan(spec, none))
    assert not bare["P37-cell-low-temperature-heating-trip"].testable
    assert "heater" in bare["P37-cell-low-temperature-heating-trip"].reason
    assert not bare["P69-transient-overcurrent-delay"].testable
    assert not bare["P05-cell-overvoltage-protection-trip"].testable  # real cells
    assert not bare["S10-cell-overvoltage-protection-switch-off"].testable  # unsafe
    assert not bare["S31-cell-low-temperature-heating-switch-on"].testable
    full = _by_id(build_plan(spec, dict.fromkeys(DEFAULT_CAPABILITIES, True)))
    assert full["S04-button-switch-failure-switch-on"].testable
    assert full["S38-output-short-circuit-protection-switch-off"].testable
    # without a capability a case still appears, with its reason and no bench time
    assert bare["S04-button-switch-failure-switch-on"].reason
    assert bare["S04-button-switch-failure-switch-on"].est_bench_s == 0.0


# --------------------------------------------------------------------------- suites


def test_suites(spec, plan):
    smoke = build_plan(spec, DEFAULT_CAPABILITIES, "smoke")
    regression = build_plan(spec, DEFAULT_CAPABILITIES, "regression")
    soak = build_plan(spec, DEFAULT_CAPABILITIES, "soak")
    assert 3 <= len(smoke) <= 15
    estimates = suite_estimates(plan)
    assert estimates["smoke"] <= 15 * 60
    assert estimates["regression"] <= REGRESSION_BUDGET_S  # issue 10 item 11: 9.18 h
    assert estimates["soak"] > WORKING_DAY_S
    reg = _by_id(regression)
    short = reg["P78-standby-shutdown-delay-shortened"]
    assert short.overrides == {78: 1.0} and short.expected == 1.0 and short.unit == "hours"
    assert reg["P65-static-balancing-time-delay-shortened"].expected == 1.0
    assert reg["P72-charging-current-limit-delay-shortened"].expected == 1.0
    assert reg["P73-charging-activation-delay"].expected == 1.0
    long = _by_id(soak)
    assert long["P78-standby-shutdown-delay"].expected == 48.0
    assert long["P65-static-balancing-time-delay"].expected == 10.0
    assert long["P77-standby-recording-interval-delay"].expected == 240.0
    assert "P78-standby-shutdown-delay" not in reg
    assert {c.id for c in plan} == {c.id for c in regression} | {c.id for c in soak}
    with pytest.raises(ValueError, match="unknown suite"):
        build_plan(spec, DEFAULT_CAPABILITIES, "nightly")


def test_cases_survive_json(plan):
    for c in plan:
        again = Case.model_validate(json.loads(json.dumps(c.to_dict())))
        assert again == c


# --------------------------------------------------------------------------- CLI


def test_cli_table_ends_with_counts_and_estimates(spec):
    result = runner.invoke(app, ["plan"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "P05-cell-overvoltage-protection-trip" in result.stdout
    # `bmshil plan` plans for fixtures/sim.yaml's capabilities
    plan = build_plan(spec, bench_capabilities()[0])
    counts = kind_counts(plan)
    assert f"trip {counts['trip']}" in result.stdout
    assert f"switch-off {counts['switch-off']}" in result.stdout
    est = suite_estimates(plan)
    assert f"regression {format_duration(est['regression'])}" in result.stdout


def test_cli_suite_filter():
    smoke = _plan_json("--suite", "smoke")
    assert smoke and all("smoke" in c["suites"] for c in smoke)


def test_cli_bad_suite_exits_2():
    result = runner.invoke(app, ["plan", "--suite", "nightly"])
    assert result.exit_code == 2
    assert "unknown suite 'nightly'" in result.output


def test_cli_bench_file_capabilities(tmp_path):
    import yaml

    from harness import FIXTURES_DIR

    # A whole bench file, loaded with the same loader as `bmshil run`.
    doc = yaml.safe_load((FIXTURES_DIR / "example-lab.yaml").read_text())
    doc["capabilities"] = {"heater": False, "scope": True, "simulated_cells": True}
    bench = tmp_path / "lab.yaml"
    bench.write_text(yaml.safe_dump(doc))
    cases = {c["id"]: c for c in _plan_json("--bench", str(bench))}
    assert cases["P37-cell-low-temperature-heating-trip"]["testable"] is False
    assert cases["P05-cell-overvoltage-protection-trip"]["testable"] is True
    missing = runner.invoke(app, ["plan", "--bench", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_bench_capabilities_defaults(tmp_path):
    caps, source = bench_capabilities(None)
    assert isinstance(caps, dict) and source
    no_caps = tmp_path / "b.yaml"
    no_caps.write_text("bench: x\nlaunch: {command: [x]}\n")
    assert bench_capabilities(no_caps)[0]["heater"] is False
    bad = tmp_path / "c.yaml"
    bad.write_text("bench: x\nlaunch: {command: [x]}\ncapabilities: {heater: maybe}\n")
    with pytest.raises(ValueError, match="capabilities.heater"):
        bench_capabilities(bad)
    typo = tmp_path / "d.yaml"
    typo.write_text("bench: x\nlaunch: {command: [x]}\ncapabilities: {heatr: true}\n")
    with pytest.raises(ValueError, match="unknown key capabilities.heatr"):
        bench_capabilities(typo)
    broken = tmp_path / "e.yaml"
    broken.write_text("bench: [x\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        bench_capabilities(broken)


# --------------------------------------------------------------------------- hand-steps

HAND_CASES = {
    "S04-button-switch-failure-switch-on": ["button"],
    "S04-button-switch-failure-switch-off": ["button"],
    "S57-power-on-off-function-switch-on": ["power_switch"],
    "S57-power-on-off-function-switch-off": ["power_switch"],
    "P73-charging-activation-delay": ["button"],
    "P73-charging-activation-delay-after-pack-undervoltage": ["button"],
    "S54-manual-activation-of-charging-switch-on": ["button"],
    "P83-connection-fault-impedance-function": ["connection_fault"],
    "S32-secondary-disconnection-protection-switch-on": ["secondary_trip"],
    "S32-secondary-disconnection-protection-switch-off": ["secondary_trip"],
    "S38-output-short-circuit-protection-switch-on": ["short_circuit"],
    "S38-output-short-circuit-protection-switch-off": ["short_circuit"],
    "S40-output-short-circuit-lockout-switch-on": ["short_circuit", "bms_power"],
    "S40-output-short-circuit-lockout-switch-off": ["short_circuit"],
}
ALL_RELAYS = ["button", "bms_power", "power_switch", "secondary_trip", "short_circuit"]


def test_cases_name_their_hand_steps(spec):
    full = _by_id(build_plan(spec, dict.fromkeys(DEFAULT_CAPABILITIES, True)))
    for cid, steps in HAND_CASES.items():
        assert full[cid].params["hand_steps"] == steps, cid
        assert full[cid].testable, cid
    with_steps = {c.id for c in full.values() if c.params.get("hand_steps")}
    assert with_steps == set(HAND_CASES)
    assert full["S57-power-on-off-function-switch-on"].params["nominal_steps"] == ["power_switch"]
    assert full["P83-connection-fault-impedance-function"].switch_overrides == {47: True}
    assert full["P73-charging-activation-delay"].switch_overrides == {54: True}
    assert full["S04-button-switch-failure-switch-on"].params["stuck_timeout_s"] > 0


def test_missing_hardware_makes_hand_step_cases_untestable_with_the_reason(spec):
    bare = _by_id(build_plan(spec, DEFAULT_CAPABILITIES))
    for cid in HAND_CASES:
        assert not bare[cid].testable, cid
        assert "bench capability" in bare[cid].reason, cid
        assert bare[cid].needs_operator is False and bare[cid].operator_wait_s is None
    assert "button" in bare["S04-button-switch-failure-switch-on"].reason
    assert "connection_fault" in bare["P83-connection-fault-impedance-function"].reason
    caps = dict.fromkeys(DEFAULT_CAPABILITIES, True) | {"bms_power": False}
    s40 = _by_id(build_plan(spec, caps))["S40-output-short-circuit-lockout-switch-on"]
    assert not s40.testable and "bms_power" in s40.reason
    caps = dict.fromkeys(DEFAULT_CAPABILITIES, True) | {"simulated_cells": False}
    real = _by_id(build_plan(spec, caps))
    assert not real["S38-output-short-circuit-protection-switch-off"].testable
    assert real["S38-output-short-circuit-protection-switch-on"].testable


def test_needs_operator_follows_the_benchs_relays(spec):
    caps = dict.fromkeys(DEFAULT_CAPABILITIES, True)
    unknown = _by_id(build_plan(spec, caps))
    wired = _by_id(build_plan(spec, caps, relays=ALL_RELAYS + ["connection_fault"]))
    manual = _by_id(build_plan(spec, caps, relays=[]))
    half = _by_id(build_plan(spec, caps, relays=["short_circuit"]))
    for cid in HAND_CASES:
        assert unknown[cid].needs_operator is None, cid
        assert wired[cid].needs_operator is False and wired[cid].operator_wait_s is None, cid
        assert manual[cid].needs_operator is True and manual[cid].operator_wait_s > 0, cid
    s40 = "S40-output-short-circuit-lockout-switch-on"
    assert half[s40].needs_operator is True  # bms_power still by hand
    assert half[s40].operator_wait_s == 2 * half[s40].params["operator_timeout_s"]
    assert manual[s40].operator_wait_s == 4 * manual[s40].params["operator_timeout_s"]
    assert not any(c.needs_operator for c in wired.values())
    assert not any(c.needs_operator for c in manual.values() if not c.params.get("hand_steps"))
    js = json.loads(json.dumps(manual["P73-charging-activation-delay"].to_dict()))
    assert js["needs_operator"] is True and js["operator_wait_s"] == 300.0


def test_sim_fixture_declares_the_hand_step_hardware_and_relays(spec):
    from harness.benchfile import bench_relays

    caps, _ = bench_capabilities()
    plan = _by_id(build_plan(spec, caps, relays=bench_relays(DEFAULT_SIM)))
    for cid in HAND_CASES:
        assert plan[cid].testable and plan[cid].needs_operator is False, cid


def test_plan_shows_which_cases_need_a_person(tmp_path):
    import yaml

    from harness import FIXTURES_DIR

    doc = yaml.safe_load((FIXTURES_DIR / "sim.yaml").read_text())
    doc["relays"] = []  # a bench with none of the hand-step relays
    bench = tmp_path / "no-relays.yaml"
    bench.write_text(yaml.safe_dump(doc))
    cases = {c["id"]: c for c in _plan_json("--bench", str(bench))}
    s4 = cases["S04-button-switch-failure-switch-on"]
    assert s4["needs_operator"] is True and s4["operator_wait_s"] > 0
    assert cases["P05-cell-overvoltage-protection-trip"]["needs_operator"] is False
    wired = {c["id"]: c for c in _plan_json()}
    assert wired["S04-button-switch-failure-switch-on"]["needs_operator"] is False
    table = runner.invoke(app, ["plan", "--bench", str(bench), "--wide"])
    assert table.exit_code == 0 and "needs an operator" in table.output
