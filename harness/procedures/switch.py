"""Switch procedures: enabled, the function acts; disabled, it does not.

A switch governing a threshold is tested by driving its stimulus clearly beyond the trip
(three tolerances, dwelling past the confirmation and any delay) and observing both the flag
and the current at the terminals. Switches whose function needs hardware the bench lacks,
or which the spec calls unused, are read-back cases: the bit is written and read back, and
the report says why the function itself was not exercised.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from harness.procedures import function
from harness.procedures.record import Measurement
from harness.procedures.rig import STOPPED_A, Rig, fet_state


def run(rig: Rig, case: Any, m: Measurement, on: bool) -> None:
    number = case.number
    m.expected = 1.0 if on else 0.0
    m.tolerance = 0.0
    procedure = (case.procedure or "").lower()
    if procedure == "readback":
        bit_read_back(rig, m, number, on)
        return
    special = SPECIAL.get(number)
    if special is not None:
        special(rig, m, on)
        return
    params = case.params or {}
    governed = (
        rig.spec.param(int(params["param"])) if "param" in params else _governed_trip(rig, number)
    )
    if governed is None:
        bit_read_back(rig, m, number, on)
        return
    level = params.get("level")
    beyond_trip(rig, m, governed, on, None if level is None else float(level))


def bit_read_back(rig: Rig, m: Measurement, number: int, on: bool) -> None:
    """Write the switch bit and read it back (the function itself is not exercised)."""
    rig.bench.bms.write_parameters({}, switches={number: on})
    back = rig.bench.bms.read_parameters()
    m.measured = 1.0 if back.switches[number] else 0.0


def _governed_trip(rig: Rig, number: int) -> Any | None:
    sw = rig.spec.switch(number)
    for n in sw.governs or []:
        p = rig.spec.param(n)
        if p.kind in ("alarm", "protection") and p.flag:
            return p
    return None


def beyond_trip(rig: Rig, m: Measurement, param: Any, on: bool, level: float | None = None) -> None:
    """Drive the governed threshold beyond its trip (the plan's level, or three tolerances)
    and observe."""
    from harness.procedures.runner import (
        effective_tolerance,
        threshold_setup,  # runner imports this module
    )

    tol_abs = effective_tolerance(rig.spec, param, rig.parameter(param.number))
    fake = SimpleNamespace(number=param.number, kind="trip", tolerance=tol_abs, params={})
    setup, trip, sign = threshold_setup(rig, fake)
    trip_value = abs(rig.parameter(trip.number)) if sign < 0 else rig.parameter(trip.number)
    value = trip_value + 3 * tol_abs if setup.direction == "high" else trip_value - 3 * tol_abs
    if level is not None:
        value = abs(level) if sign < 0 else level
    if setup.condition in ("charging", "discharging", "charger"):
        rig.condition(setup.condition)
    else:
        rig.condition("standby")
    rig.wait(0.5)
    with rig.rec.step(f"P{trip.number} stimulus to {value:g} (switch {'on' if on else 'off'})"):
        obs = rig.probe(setup.stimulus, value, setup.flag, setup.dwell_s, cell=setup.cell)
    m.measured = 1.0 if obs.flag else 0.0
    at = f"with P{trip.number} stimulus at {value:g} {trip.unit} (switch {'on' if on else 'off'})"
    flowing = None
    current = ""
    if setup.condition == "charging":
        flowing = obs.supply_a >= STOPPED_A
        current = f"charge current {obs.supply_a:.2f} A, charge FET {fet_state(obs.charge_fet)}"
    elif setup.condition == "discharging":
        flowing = obs.load_a >= STOPPED_A
        current = (
            f"discharge current {obs.load_a:.2f} A, discharge FET {fet_state(obs.discharge_fet)}"
        )
    if on:
        if setup.action is not None and flowing is not None:
            m.check(
                "current stopped",
                not flowing,
                f"{current} {at}",
                f"current still flowing with P{trip.number} beyond its trip: {current}",
            )
    else:
        if flowing is not None:
            m.check(
                "current keeps flowing",
                flowing,
                f"{current} {at}",
                f"current stopped although the switch is off: {current}",
            )
        # Only the FET this function would open: another row (a cell far below its
        # undervoltage protection, say) may legitimately open the other one.
        if setup.action in ("charge", "both"):
            m.check(
                "charge FET stays closed",
                obs.charge_fet,
                f"charge FET {fet_state(obs.charge_fet)} {at}",
                "charge FET opened with the switch off",
            )
        if setup.action in ("discharge", "both"):
            m.check(
                "discharge FET stays closed",
                obs.discharge_fet,
                f"discharge FET {fet_state(obs.discharge_fet)} {at}",
                "discharge FET opened with the switch off",
            )


def _temperature_sensor(rig: Rig, m: Measurement, on: bool) -> None:
    rig.bench.resistors.open("cell1")
    rig.wait(2.0)
    obs = rig.observe("temperature_sensor_fault")
    m.measured = 1.0 if obs.flag else 0.0
    rig.bench.resistors.normal("cell1")


def _transient_lockout(rig: Rig, m: Measurement, on: bool) -> None:
    from harness.procedures import delay

    inner = Measurement(name=m.name, unit="count")
    delay.lockout(rig, inner, 1.0, kind="transient")
    locked = inner.measured is not None
    m.measured = 1.0 if locked else 0.0
    m.note = inner.note


def _gap(rig: Rig, m: Measurement, on: bool) -> None:
    inner = Measurement(name=m.name, unit="%")
    function.gap_compensation(rig, inner, switch_on=on)
    if on:
        held = any(c.name == "charging held after recovery" and c.ok for c in inner.checks)
        m.measured = 1.0 if held else 0.0
    else:
        m.measured = 0.0 if inner.measured == 1.0 else 1.0
    m.note = "; ".join(c.reason for c in inner.failed_checks())


def _soft_start(rig: Rig, m: Measurement, on: bool) -> None:
    from harness.procedures import delay

    inner = Measurement(name=m.name, unit="mS")
    delay.soft_start(rig, inner)
    expected_ms = rig.parameter(58)
    m.measured = 1.0 if (inner.measured or 0.0) >= expected_ms * 0.5 else 0.0
    m.note = f"full current after {inner.measured} ms"


def _wrap(fn: Any, **kw: Any):
    """Run a function procedure with its expectation tied to the switch state.

    The function checks that the behaviour matches what the switch state asks for; the
    switch case's measured value is then 1 when the function acted and 0 when it did not,
    so the report reads "expected 1 (acts), measured 0" for an ignored switch."""

    def run_special(rig: Rig, m: Measurement, on: bool) -> None:
        # Timed functions report in the unit of their delay; seconds unless they say.
        inner = Measurement(name=m.name, unit=kw.get("unit", "second"))
        fn(rig, inner, **{k: (on if v is ON else v) for k, v in kw.items() if k != "unit"})
        behaved = inner.outcome == "passed"
        acted = on if behaved else not on
        m.measured = 1.0 if acted else 0.0
        m.note = "; ".join([inner.note] + inner.failures()).strip("; ")

    return run_special


def _hand(fn: Any, **kw: Any):
    """A hand-step function procedure as a switch case: the function sets ``measured`` (1
    when it acted) and its checks, phrased for the switch state, are the case's own
    observations (the flag and the current at the terminals)."""

    def run_special(rig: Rig, m: Measurement, on: bool) -> None:
        fn(rig, m, **{k: (on if v is ON else v) for k, v in kw.items()})

    return run_special


ON, OFF = object(), object()

SPECIAL = {
    2: _temperature_sensor,
    4: _hand(function.button_stuck, expect_fault=ON),
    32: _hand(function.secondary_trip, expect_trip=ON),
    38: _hand(function.short_circuit, expect_trip=ON),
    40: _hand(function.short_circuit_lockout, expect_lock=ON),
    54: _hand(function.manual_activation_switch, expect_wait=ON),
    57: _hand(function.power_switch, expect_control=ON),
    31: _wrap(function.heating, expect_on=ON),
    39: _transient_lockout,
    42: _gap,
    48: _soft_start,
    49: _wrap(function.balancing, condition="charging", expect_on=ON),
    50: _wrap(function.balancing, condition="standby", expect_on=ON),
    51: _wrap(function.static_balancing_time, expect_stop=ON),
    52: _wrap(function.balancing_overtemperature, expect_inhibit=ON),
    53: _wrap(function.auto_activation, expect=ON),
    55: _wrap(function.current_limit_active, expect_limit=ON, unit="A"),
    56: _wrap(function.current_limit_passive, expect_limit=ON),
    58: _wrap(function.standby_shutdown, expect=ON),
    59: _wrap(function.history_interval, working=False, expect_records=ON),
}
