"""Switch procedures: enabled, the function acts; disabled, it does not.

A switch governing a threshold is tested by driving its stimulus clearly beyond the trip
(three tolerances, dwelling past the confirmation and any delay) and observing both the flag
and the current at the terminals. Switches whose function needs hardware the bench lacks,
or which the spec calls unused, are read-back cases: the bit is written and read back, and
the report says why the function itself was not exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.procedures import activation, delay, function, hardware
from harness.procedures.record import BenchFault, Measurement
from harness.procedures.rig import STOPPED_A, Rig, fet_state


@dataclass(frozen=True)
class BeyondTrip:
    """A switch case's probe beyond its governed threshold, as the plan set it up."""

    param: int
    stimulus: str
    level: float
    direction: str
    flag: str | None
    action: str | None
    condition: str
    dwell_s: float
    cell: int
    sign: int
    unit: str

    @classmethod
    def from_case(cls, case: Any) -> BeyondTrip:
        p = case.params
        return cls(
            param=int(p["param"]),
            stimulus=str(p["stimulus"]),
            level=float(p["level"]),
            direction=str(p["direction"]),
            flag=p.get("flag"),
            action=p.get("fet"),
            condition=str(p["condition"]),
            dwell_s=float(p["dwell_s"]),
            cell=int(p.get("cell", 1)),
            sign=int(p.get("sign", 1)),
            unit=str(p.get("unit", "")),
        )


def bit(rig: Rig, case: Any, m: Measurement) -> None:
    """Write the switch bit and read it back (the function itself is not exercised)."""
    number, on = case.number, bool(case.params["state"])
    rig.bench.bms.write_parameters({}, switches={number: on})
    back = rig.bench.bms.read_parameters()
    m.measured = 1.0 if back.switches[number] else 0.0


def beyond_trip(rig: Rig, case: Any, m: Measurement) -> None:
    """Drive the governed threshold beyond its trip (the plan's level) and observe."""
    setup = BeyondTrip.from_case(case)
    on = bool(case.params["state"])
    value = abs(setup.level) if setup.sign < 0 else setup.level
    if setup.condition in ("charging", "discharging", "charger"):
        rig.condition(setup.condition)
    else:
        rig.condition("standby")
    rig.wait(0.5)
    what = f"P{setup.param} stimulus"
    with rig.rec.step(f"{what} to {value:g} (switch {'on' if on else 'off'})"):
        obs = rig.probe(setup.stimulus, value, setup.flag, setup.dwell_s, cell=setup.cell)
    m.measured = 1.0 if obs.flag else 0.0
    at = f"with {what} at {value:g} {setup.unit} (switch {'on' if on else 'off'})"
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
                f"current still flowing with P{setup.param} beyond its trip: {current}",
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


def temperature_sensor(rig: Rig, case: Any, m: Measurement) -> None:
    """S2: an open NTC raises the temperature-sensor fault (when the switch is on)."""
    ntc = str(case.params.get("ntc", "cell1"))
    rig.bench.resistors.open(ntc)
    rig.wait(2.0)
    obs = rig.observe(case.flag or "temperature_sensor_fault")
    m.measured = 1.0 if obs.flag else 0.0
    rig.bench.resistors.normal(ntc)


def transient_lockout(rig: Rig, case: Any, m: Measurement) -> None:
    inner = Measurement(name=m.name, unit="count")
    delay.lockout(rig, inner, kind="transient")
    locked = inner.measured is not None
    m.measured = 1.0 if locked else 0.0
    m.note = inner.note


def gap_compensation(rig: Rig, case: Any, m: Measurement) -> None:
    on = bool(case.params["state"])
    inner = Measurement(name=m.name, unit="%")
    function.gap_compensation(rig, inner, switch_on=on)
    if on:
        held = any(c.name == "charging held after recovery" and c.ok for c in inner.checks)
        m.measured = 1.0 if held else 0.0
    else:
        m.measured = 0.0 if inner.measured == 1.0 else 1.0
    m.note = "; ".join(c.reason for c in inner.failed_checks())


def soft_start(rig: Rig, case: Any, m: Measurement) -> None:
    """S48: the soft start acted when the full current came half of P58 or more after the
    FET command. The polled time lies in [measured - its bracket, measured]; when lost
    replies widened that bracket across the half, the link decided, not the device: a bench
    error (with S48 off, replies lost right after the command read as a soft start)."""
    inner = Measurement(name=m.name, unit="mS")
    delay.soft_start(rig, inner)
    half_ms = rig.setup.num("soft_start_ms") * 0.5
    measured = inner.measured or 0.0
    earliest = measured - (inner.uncertainty or 0.0)
    if rig.resolution_lost and earliest < half_ms <= measured:
        raise BenchFault(
            f"timing resolution lost to the link: {rig.resolution_lost[0]}; the full current "
            f"came between {earliest:g} and {measured:g} ms after the FET command, on both "
            f"sides of the {half_ms:g} ms that tells a soft start from none"
        )
    m.measured = 1.0 if measured >= half_ms else 0.0
    m.note = f"full current after {inner.measured} ms"


def _wrap(fn: Any, **kw: Any):
    """Run a function procedure with its expectation tied to the switch state.

    The function checks that the behaviour matches what the switch state asks for; the
    switch case's measured value is then 1 when the function acted and 0 when it did not,
    so the report reads "expected 1 (acts), measured 0" for an ignored switch."""

    def run_special(rig: Rig, case: Any, m: Measurement) -> None:
        on = bool(case.params["state"])
        # Timed functions report in the unit of their delay; seconds unless they say.
        inner = Measurement(name=m.name, unit=kw.get("unit", "second"))
        fn(rig, inner, **{k: (on if v is ON else v) for k, v in kw.items() if k != "unit"})
        behaved = inner.outcome == "passed"
        acted = on if behaved else not on
        m.measured = 1.0 if acted else 0.0
        # What the function saw is the switch case's evidence too (the verdict is the
        # same: a failed inner check already makes ``measured`` contradict the state).
        m.checks.extend(inner.checks)
        m.note = "; ".join([inner.note] + inner.failures()).strip("; ")

    return run_special


def _hand(fn: Any, **kw: Any):
    """A hand-step function procedure as a switch case: the function sets ``measured`` (1
    when it acted) and its checks, phrased for the switch state, are the case's own
    observations (the flag and the current at the terminals)."""

    def run_special(rig: Rig, case: Any, m: Measurement) -> None:
        on = bool(case.params["state"])
        fn(rig, m, **{k: (on if v is ON else v) for k, v in kw.items()})

    return run_special


ON = object()  # stands for the case's switch state in a wrapped function's arguments


def _balancing(rig: Rig, case: Any, m: Measurement) -> None:
    _wrap(function.balancing, condition=str(case.params["condition"]), expect_on=ON)(rig, case, m)


#: Registry entries of the switch procedures (``harness/procedures/registry.py``).
PROCEDURES = {
    "switch.bit": bit,
    "switch.beyond_trip": beyond_trip,
    "switch.temperature_sensor": temperature_sensor,
    "switch.button_stuck": _hand(hardware.button_stuck, expect_fault=ON),
    "switch.secondary_trip": _hand(hardware.secondary_trip, expect_trip=ON),
    "switch.short_circuit": _hand(hardware.short_circuit, expect_trip=ON),
    "switch.short_circuit_lockout": _hand(hardware.short_circuit_lockout, expect_lock=ON),
    "switch.manual_activation": _hand(activation.manual_activation_switch, expect_wait=ON),
    "switch.power_switch": _hand(hardware.power_switch, expect_control=ON),
    "switch.heating": _wrap(function.heating, expect_on=ON),
    "switch.transient_lockout": transient_lockout,
    "switch.gap_compensation": gap_compensation,
    "switch.soft_start": soft_start,
    "switch.balancing": _balancing,
    "switch.static_balancing_time": _wrap(function.static_balancing_time, expect_stop=ON),
    "switch.balancing_overtemperature": _wrap(
        function.balancing_overtemperature, expect_inhibit=ON
    ),
    "switch.auto_activation": _wrap(activation.auto_activation, expect=ON),
    "switch.current_limit_active": _wrap(function.current_limit_active, expect_limit=ON, unit="A"),
    "switch.current_limit_passive": _wrap(function.current_limit_passive, expect_limit=ON),
    "switch.standby_shutdown": _wrap(function.standby_shutdown, expect=ON),
    "switch.history": _wrap(function.history_interval, working=False, expect_records=ON),
}
