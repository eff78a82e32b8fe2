"""The test plan: spec tables + bench capabilities -> a flat list of :class:`Case`.

The plan is data, not code that runs: every case says what it tests (item, kind), what it
expects (expected, tolerance, unit), how the bench must be configured for it (overrides of
parameters and switches that isolate it or shorten a long delay), which procedure runs it
with which parameters, which suites it belongs to, what it costs on a real bench, and - when
the bench cannot run it - why. Building it is pure and fast, so the CLI, the pytest plugin
and the report all call :func:`build_plan` and agree.

Choices (docs/BEHAVIOUR.md and ../shared/DOMAIN.md):

* A threshold pair gives a ``trip`` case (expected = the trip row's default) and a
  ``recovery`` case (expected = the recovery row's default). Single thresholds (P9, P10,
  P55, P56, P57, P79, P80) give a ``trip`` case.
* ``params.start``/``params.stop`` bound the search in the spec unit and sign (discharge
  currents negative): a trip search runs from a value where nothing acts to beyond the trip;
  a recovery search starts beyond the trip (so it trips first) and runs back past the
  recovery. ``resolution`` is the fine step, ``dwell_s`` the time per probe.
* Long delays are tested in ``regression`` with a shortened configured value (an override;
  the case's expected value is the shortened value) and at their default in ``soak``.
* ``expected`` of a switch case is 1.0 when the function must act and 0.0 when it must not.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bmsspec import SECONDS_PER_UNIT, Parameter, Spec, Switch

SUITES = ("smoke", "regression", "soak")

CaseKind = Literal["trip", "recovery", "delay", "switch-on", "switch-off", "readback", "function"]
Procedure = Literal[
    "threshold", "delay", "overcurrent_recovery", "lockout", "switch", "readback", "function"
]

#: Capabilities a bench file may declare; anything not declared counts as absent.
CAPABILITIES = (
    "heater",
    "secondary_trip",
    "button",
    "short_circuit",
    "switch",
    "lcd",
    "bluetooth",
    "parallel",
    "scope",
    "simulated_cells",
    "bms_power",
    "connection_fault",
)

#: Used when no bench file is available: a simulated bench with everything but the hardware
#: a cell simulator and an electronic load cannot emulate.
DEFAULT_CAPABILITIES: dict[str, bool] = {
    "heater": True,
    "scope": True,
    "simulated_cells": True,
    "secondary_trip": False,
    "button": False,
    "short_circuit": False,
    "switch": False,
    "lcd": False,
    "bluetooth": False,
    "parallel": False,
    "bms_power": False,
    "connection_fault": False,
}

#: Hand-steps a case may need (``params["hand_steps"]``) and the capability that says the
#: bench has the hardware for each; a ``relays`` entry of the same name works it without a
#: person (``harness/procedures/hands.py``).
HAND_STEP_CAPABILITY = {
    "button": "button",
    "bms_power": "bms_power",
    "power_switch": "switch",
    "secondary_trip": "secondary_trip",
    "short_circuit": "short_circuit",
    "connection_fault": "connection_fault",
}
#: How long a case waits for each operator answer (seconds; ``params["operator_timeout_s"]``).
OPERATOR_TIMEOUT_S = 300.0
#: Bounded waits of the hand-step procedures (bench seconds): a stuck button is reported
#: within ``STUCK_TIMEOUT_S`` of being held (the firmware's stuck time is not a spec row).
STUCK_TIMEOUT_S = 30.0

#: Nominal bench (BEHAVIOUR.md "Nominal bench").
NOMINAL_CELL_V = 3.300
NOMINAL_TEMP_C = 25.0
NOMINAL_SOC = 50.0
N_CELLS = 16

#: Confirmation time of a voltage/temperature/SOC condition is ~1 s; a probe dwells longer.
DWELL_S = 1.5
#: Fixed cost of preparing a case on a real bench (nominal state, block write, settle).
SETUP_S = 20.0
#: Working day the regression suite must fit (est_bench_s sum).
WORKING_DAY_S = 8 * 3600.0

#: Quantity -> (stimulus, fine resolution, margin beyond the threshold, category).
_STIMULUS: dict[str, tuple[str, float, float, str]] = {
    "cell_voltage": ("cell", 0.002, 0.10, "cell voltage"),
    "pack_voltage": ("pack", 0.032, 1.0, "pack voltage"),
    "port_voltage": ("port", 0.05, 1.5, "charger"),
    "cell_temperature": ("ntc:cell1", 0.2, 5.0, "temperature"),
    "ambient_temperature": ("ntc:ambient", 0.2, 5.0, "temperature"),
    "power_temperature": ("ntc:power", 0.2, 5.0, "temperature"),
    "charge_current": ("charge_current", 0.2, 5.0, "current"),
    "discharge_current": ("discharge_current", 0.2, 5.0, "current"),
    "soc": ("soc", 1.0, 5.0, "capacity"),
    "cell_voltage_difference": ("cell_difference", 0.002, 0.05, "cell voltage"),
}

#: Search bounds that the generic margin would get wrong (masking thresholds, envelopes).
_STOP_CAP: dict[int, float] = {
    1: 3.62,  # stay below P5 (3.65 V)
    15: 58.2,  # 58.4 V = 16 x P5: stay below cell over-voltage
    19: 64.5,  # supply envelope 65 V
    21: 54.0,  # stay below P25 (55 C), which stops charging
    29: 54.0,  # stay below P33 (55 C), which stops discharging
    51: 75.0,
    53: -108.0,  # stay short of P56 (-110 A)
    55: 115.5,  # supply envelope 120 A
    79: 6.0,  # stay above P80 (5 %)
}
_START: dict[int, float] = {
    10: 2.0,  # BEHAVIOUR.md: from 2.0 V down
    63: 0.0,
    61: 0.0,
    79: 20.0,
    80: 15.0,
}

#: Isolation overrides per threshold (the trip number; its recovery case uses the same).
_ISOLATION: dict[int, dict[int, float]] = {
    17: {7: 2.50, 8: 2.90},  # DOMAIN.md: P7 (2.70 V x 16 = 43.2 V) masks pack undervoltage
    31: {35: -20.0},  # P35 (-10 C) trips with P31 and stops the discharge it needs
    55: {67: 1.0},  # one-second delay makes each probe of the search short
    56: {68: 1.0},
}
#: Switch overrides per threshold: passive current limiting (S56, on by default) would hold
#: the charge current at 10 A as soon as it passes P51.
_ISOLATION_SWITCHES: dict[int, dict[int, bool]] = {
    37: {31: True},
    51: {56: False},
    55: {56: False},
}

#: Trip numbers of single (unpaired) thresholds.
SINGLE_TRIPS = (9, 10, 55, 56, 57, 79, 80)


class Case(BaseModel):
    """One test case of the plan. JSON-able through :meth:`to_dict`."""

    model_config = ConfigDict(extra="forbid")

    id: str
    item: str
    number: int
    kind: CaseKind
    category: str
    quantity: str | None = None
    direction: str | None = None
    condition: str | None = None
    flag: str | None = None
    expected: float | None = None
    tolerance: float | None = None
    unit: str = ""
    overrides: dict[int, float] = Field(default_factory=dict)
    switch_overrides: dict[int, bool] = Field(default_factory=dict)
    procedure: Procedure
    params: dict[str, Any] = Field(default_factory=dict)
    suites: list[str] = Field(default_factory=list)
    est_bench_s: float = 0.0
    testable: bool = True
    reason: str | None = None
    #: A person must act in this case (a hand-step the bench wires no relay for); None when
    #: the plan was built without knowing the bench's relays.
    needs_operator: bool | None = False
    #: The longest the case waits for that person: its prompts x the prompt timeout.
    operator_wait_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (override keys become strings in JSON, ints here)."""
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------- helpers


def _cid(row: Parameter | Switch, suffix: str) -> str:
    """Stable case id ``P05-cell-overvoltage-protection-trip``: item (two digits), slug,
    suffix; the suffix's first word is not repeated when the slug already ends with it
    (``P06-cell-overvoltage-recovery``, ``P78-standby-shutdown-delay-shortened``)."""
    prefix = "P" if isinstance(row, Parameter) else "S"
    head = suffix.split("-", 1)
    if row.id.endswith("-" + head[0]):
        suffix = head[1] if len(head) > 1 else ""
    return f"{prefix}{row.number:02d}-{row.id}" + (f"-{suffix}" if suffix else "")


def _r(value: float, step: float) -> float:
    """Round to the grid of ``step`` (and to clean decimals)."""
    decimals = max(0, -math.floor(math.log10(step))) + 1 if step < 1 else 3
    return round(value, decimals)


def _to_seconds(value: float, unit: str) -> float:
    return value * SECONDS_PER_UNIT.get(unit, 1.0)


def _nominal(quantity: str) -> float:
    return {
        "cell_voltage": NOMINAL_CELL_V,
        "pack_voltage": NOMINAL_CELL_V * N_CELLS,
        "port_voltage": NOMINAL_CELL_V * N_CELLS + 2.0,
        "cell_temperature": NOMINAL_TEMP_C,
        "ambient_temperature": NOMINAL_TEMP_C,
        "power_temperature": NOMINAL_TEMP_C,
        "soc": NOMINAL_SOC,
        "cell_voltage_difference": 0.0,
    }.get(quantity, 0.0)


def _fet(p: Parameter) -> str | None:
    """Which FET the row opens when it acts (BEHAVIOUR.md "Alarm vs protection")."""
    if p.kind != "protection":
        return None
    if p.quantity in ("ambient_temperature", "power_temperature"):
        return "both"
    if p.number == 10:
        return "charge"
    cond = p.bench_condition
    return "charge" if cond == "charging" else "discharge"


def _probes(start: float, target: float, resolution: float) -> int:
    """Probes of a coarse-then-fine (or bisection) search: coarse steps of 10 x resolution
    up to the threshold, then ten fine ones."""
    return math.ceil(abs(target - start) / (10 * resolution)) + 10


def _delay_s(spec: Spec, p: Parameter, overrides: Mapping[int, float]) -> float:
    if p.delay is None:
        return 0.0
    d = spec.param(p.delay)
    return _to_seconds(overrides.get(d.number, d.default), d.unit)


def _capable(caps: Mapping[str, bool], name: str) -> bool:
    return bool(caps.get(name, False))


def _hands_reason(params: Mapping[str, Any], caps: Mapping[str, bool]) -> tuple[bool, str | None]:
    """(testable, reason) of a case's hand-steps: each needs its hardware on the bench."""
    for step in params.get("hand_steps", []):
        cap = HAND_STEP_CAPABILITY[step]
        if not _capable(caps, cap):
            what = cap.replace("_", " ")
            return False, f"needs {what} hardware (bench capability {cap} is false)"
    return True, None


def _operator_fields(case: Case, relays: Collection[str] | None) -> None:
    """``needs_operator``/``operator_wait_s`` of a case from the bench's relays."""
    steps = case.params.get("hand_steps") or []
    if not steps:
        return
    case.params.setdefault("operator_timeout_s", OPERATOR_TIMEOUT_S)
    timeout = float(case.params["operator_timeout_s"])
    prompts = case.params.get("hand_prompts") or {}
    if relays is None:
        case.needs_operator = None
        manual = list(steps)
    else:
        manual = [s for s in steps if s not in relays]
        case.needs_operator = bool(manual)
    if not case.testable:
        case.needs_operator, case.operator_wait_s = False, None
        return
    waits = sum(int(prompts.get(s, 2)) for s in manual) * timeout
    case.operator_wait_s = waits if manual else None


def _stimulus_reason(stimulus: str, caps: Mapping[str, bool]) -> str | None:
    if stimulus in ("cell", "pack", "cell_difference") and not _capable(caps, "simulated_cells"):
        return "needs a cell simulator (bench capability simulated_cells is false)"
    return None


# --------------------------------------------------------------------------- thresholds


def _threshold_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    cases: list[Case] = []
    for p in spec.parameters:
        if p.kind == "recovery" or p.direction is None:
            continue
        if p.partner is None and p.number not in SINGLE_TRIPS:
            continue
        cases.append(_threshold_case(spec, p, p, "trip", caps))
        if p.partner is not None:
            cases.append(_threshold_case(spec, p, spec.param(p.partner), "recovery", caps))
    return cases


def _threshold_case(
    spec: Spec,
    trip: Parameter,
    row: Parameter,
    kind: Literal["trip", "recovery"],
    caps: Mapping[str, bool],
) -> Case:
    stimulus, resolution, margin, category = _STIMULUS[trip.quantity]
    if trip.number == 57:
        stimulus = "transient"
    if trip.number in (9, 63):
        category = "balancing"
    high = trip.direction == "high"
    if trip.quantity in ("charge_current", "discharge_current"):
        margin = max(margin, 0.05 * abs(trip.default))
    beyond = trip.default + margin if high else trip.default - margin
    beyond = _STOP_CAP.get(trip.number, beyond)
    if trip.quantity in ("charge_current", "discharge_current"):
        calm = 0.8 * trip.default
    else:
        calm = _START.get(trip.number, _nominal(trip.quantity))
    calm = _START.get(trip.number, calm)
    overrides = dict(_ISOLATION.get(trip.number, {}))
    switch_overrides = dict(_ISOLATION_SWITCHES.get(trip.number, {}))
    dwell = DWELL_S + _delay_s(spec, trip, overrides)
    if trip.number == 57:
        dwell = 0.5  # a load transient step of 100 ms per probe; the comparator needs 30 ms
    params: dict[str, Any] = {
        "stimulus": stimulus,
        "resolution": resolution,
        "dwell_s": dwell,
        "fet": _fet(trip),
        "trip": trip.number,
    }
    if stimulus == "cell_difference":
        # P63/P64: highest cell at P9 + 0.05 V so the activation voltage is met (BEHAVIOUR.md)
        base = spec.param(9).default + 0.05 if trip.number == 63 else NOMINAL_CELL_V
        params["base_v"] = round(base, 3)
        params["moving_cell"] = "down"
    if stimulus in ("cell", "cell_difference"):
        params["cell"] = 1
    if kind == "trip":
        start, stop = calm, beyond
        expected = trip.default
        if trip.partner is not None:
            params["partner"] = trip.partner
            params["partner_expected"] = spec.param(trip.partner).default
        if trip.recovery_offset is not None:
            sign = -1.0 if high else 1.0
            params["recovery_expected"] = round(trip.default - sign * trip.recovery_offset, 6)
        probes = _probes(start, expected, resolution)
        est = SETUP_S + probes * dwell
    else:
        recovery = row.default
        past = recovery - margin if high else recovery + margin
        if trip.number == 63:
            past = max(0.0, past)
        start, stop = beyond, past
        expected = recovery
        params["partner"] = trip.number
        params["partner_expected"] = trip.default
        probes = _probes(start, expected, resolution)
        est = SETUP_S + (probes + 1) * dwell
    params["start"] = _r(start, resolution)
    params["stop"] = _r(stop, resolution)
    tol = spec.tolerance_for(row).band(expected)
    reason = _stimulus_reason(stimulus, caps)
    if trip.number == 37 and not _capable(caps, "heater"):
        reason = "needs heater hardware (S31; bench capability heater is false)"
    if trip.number == 57 and not _capable(caps, "scope"):
        params["timing"] = "poll"
    return Case(
        id=_cid(row, kind),
        item=row.item,
        number=row.number,
        kind=kind,
        category=category,
        quantity=trip.quantity,
        direction=trip.direction,
        condition=trip.bench_condition,
        flag=trip.flag,
        expected=expected,
        tolerance=round(tol, 6),
        unit=row.unit,
        overrides=overrides,
        switch_overrides=switch_overrides,
        procedure="threshold",
        params=params,
        suites=["regression"],
        est_bench_s=round(est, 1) if reason is None else 0.0,
        testable=reason is None,
        reason=reason,
    )


# --------------------------------------------------------------------------- delays


def _delay_case(
    spec: Spec,
    number: int,
    *,
    procedure: Procedure = "delay",
    params: dict[str, Any],
    overrides: dict[int, float] | None = None,
    switch_overrides: dict[int, bool] | None = None,
    shortened_to: float | None = None,
    suites: Iterable[str] = ("regression",),
    repetitions: int = 3,
    reason: str | None = None,
    flag: str | None = None,
    condition: str | None = None,
    expected: float | None = None,
    suffix: str = "delay",
) -> Case:
    p = spec.param(number)
    overrides = dict(overrides or {})
    if shortened_to is not None:
        overrides[number] = shortened_to
        suffix = "delay-shortened"
    value = overrides.get(number, p.default) if expected is None else expected
    tol = spec.tolerance_for(p).band(value)
    if p.quantity == "time":
        wait_s = _to_seconds(value, p.unit)
    else:
        wait_s = 0.0
    # Each repetition: prepare, the delay itself (+10 %), and the aftermath.
    est = repetitions * (SETUP_S + 1.1 * wait_s + 10.0)
    if "est_extra_s" in params:
        est += params.pop("est_extra_s")
    params = {**params, "repetitions": repetitions}
    if shortened_to is not None:
        params["shortened_from"] = p.default
    return Case(
        id=_cid(p, suffix),
        item=p.item,
        number=number,
        kind="delay",
        category="timing",
        quantity=p.quantity,
        direction=None,
        condition=condition or p.bench_condition,
        flag=flag if flag is not None else p.flag,
        expected=value,
        tolerance=round(tol, 6),
        unit=p.unit,
        overrides=overrides,
        switch_overrides=dict(switch_overrides or {}),
        procedure=procedure,
        params=params,
        suites=list(suites),
        est_bench_s=round(est, 1) if reason is None else 0.0,
        testable=reason is None,
        reason=reason,
    )


def _delay_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    p55, p56, p57 = (spec.param(n).default for n in (55, 56, 57))
    p70 = spec.param(70).default
    scope = _capable(caps, "scope")
    cases = [
        _delay_case(
            spec,
            58,
            params={
                "stimulus": "discharge_current",
                "level": -20.0,
                "precharge_max_a": 1.0,
                "timing": "scope" if scope else "poll",
            },
            flag=None,
            condition="discharging",
        ),
        _delay_case(
            spec,
            67,
            params={
                "stimulus": "charge_current",
                "level": min(p55 * 1.05, 115.5),
                "fet": "charge",
                "est_extra_s": 3 * p70,
            },
            switch_overrides={56: False},
        ),
        _delay_case(
            spec,
            68,
            params={
                "stimulus": "discharge_current",
                "level": round(p56 * 1.1, 2),
                "fet": "discharge",
                "est_extra_s": 3 * p70,
            },
        ),
        _delay_case(
            spec,
            69,
            params={
                "stimulus": "transient",
                "level": round(p57 * 1.1, 2),
                "step_ms": 100,
                "fet": "discharge",
                "timing": "scope",
                "est_extra_s": 3 * p70,
            },
            reason=None
            if scope
            else "needs a scope: a 30 ms delay cannot be timed by "
            "polling the BMS (bench capability scope is false)",
        ),
        _delay_case(
            spec,
            70,
            procedure="overcurrent_recovery",
            params={
                "stimulus": "discharge_current",
                "level": round(p56 * 1.1, 2),
                "fet": "discharge",
            },
            overrides={68: 1.0},
            flag="discharge_overcurrent_protection",
        ),
        _delay_case(
            spec,
            71,
            procedure="lockout",
            params={
                "lockout": "discharge",
                "stimulus": "discharge_current",
                "est_extra_s": 40.0,
                "level": round(p56 * 1.1, 2),
                "fet": "discharge",
            },
            overrides={68: 1.0, 70: 5.0},
            repetitions=1,
            flag="discharge_overcurrent_protection",
            expected=spec.param(71).default,
            suffix="lockout",
        ),
        _delay_case(
            spec,
            73,
            params={
                "trigger": "cell_undervoltage",
                "stimulus": "cell",
                "level": 2.60,
                "action": "manual_activation",
                "hand_steps": ["button"],
                "hand_prompts": {"button": 1},
                "press_s": 0.5,
            },
            switch_overrides={54: True},
            repetitions=2,
            reason=_hands_reason({"hand_steps": ["button"]}, caps)[1],
        ),
    ]
    p51 = spec.param(51).default
    limit = {"stimulus": "charge_current", "level": p51 + 10.0, "limit_a": 10.0}
    cases += [
        _delay_case(spec, 72, params=dict(limit), shortened_to=1.0, repetitions=1),
        _delay_case(spec, 72, params=dict(limit), suites=("soak",), repetitions=1),
    ]
    balancing = {
        "stimulus": "cell",
        "level": spec.param(9).default + 0.05,
        "cell": 1,
        "observe": "balancing",
    }
    auto = {
        "trigger": "cell_undervoltage",
        "stimulus": "cell",
        "level": 2.60,
        "observe": "discharge_fet",
        "pulse_s": 60,
    }
    cases += [
        _delay_case(spec, 65, params=dict(balancing), shortened_to=1.0, repetitions=1),
        _delay_case(spec, 65, params=dict(balancing), suites=("soak",), repetitions=1),
        _delay_case(spec, 74, params=dict(auto), shortened_to=1.0, repetitions=1),
        _delay_case(spec, 74, params=dict(auto), suites=("soak",), repetitions=1),
    ]
    for n, short, state in ((76, 2.0, "charging"), (77, 3.0, "standby")):
        rec = {"observe": "history_records", "state": state}
        cases += [
            _delay_case(spec, n, params=dict(rec), shortened_to=short, condition=state),
            _delay_case(spec, n, params=dict(rec), suites=("soak",), condition=state),
        ]
    sleep = {"observe": "shutdown", "wake": "supply_on"}
    cases += [
        _delay_case(spec, 78, params=dict(sleep), shortened_to=1.0, repetitions=1),
        _delay_case(spec, 78, params=dict(sleep), suites=("soak",), repetitions=1),
    ]
    return cases


# --------------------------------------------------------------------------- parameter block


def readback_value(spec: Spec, p: Parameter) -> float:
    """A value to write for P's read-back: one step (or a few) away from the default, so a
    write that did not take is seen, and such that the whole default block stays acceptable
    (ranges, parameter bounds, trip/recovery order): the device must accept it."""
    values = spec.defaults()
    step = p.resolution
    if p.quantity in ("count", "position"):
        step = 1.0
    for k in (1, -1, 2, -2, 5, -5, 10, -10):
        candidate = round(p.default + k * step, p.encoding.decimals)
        values[p.number] = candidate
        if not spec.block_violations(values):
            return candidate
    raise ValueError(f"{p.item}: no acceptable read-back value near {p.default}")


def out_of_range_value(spec: Spec, p: Parameter) -> float:
    """A value just beyond the parameter's numeric maximum (or minimum) that still fits the
    wire field, so refusing it is the device's range check, not the codec's."""
    r = p.range_spec
    lo_enc, hi_enc = p.encodable_range
    if r is not None and r.max is not None and r.max + 10 * p.resolution <= hi_enc:
        return round(r.max + 10 * p.resolution, p.encoding.decimals)
    if r is not None and r.min is not None and r.min - 10 * p.resolution >= lo_enc:
        return round(r.min - 10 * p.resolution, p.encoding.decimals)
    raise ValueError(f"{p.item} has no numeric bound to exceed")


def _block_cases(spec: Spec) -> list[Case]:
    cases = []
    for p in spec.parameters:
        value = readback_value(spec, p)
        reason = None
        if p.number in (74, 75):
            reason = "not in use per the spec: read-back only"
        elif p.number == 83:
            reason = "needs real busbars (a cell simulator has none): read-back only"
        cases.append(
            Case(
                id=_cid(p, "readback"),
                item=p.item,
                number=p.number,
                kind="readback",
                category="parameter block",
                quantity=p.quantity,
                unit=p.unit,
                expected=value,
                tolerance=round(p.resolution / 2, 6),
                procedure="readback",
                params={"mode": "write", "value": value, "default": p.default},
                suites=["regression"],
                est_bench_s=SETUP_S + 10.0,
                reason=reason,
            )
        )
    p5 = spec.param(5)
    bad = out_of_range_value(spec, p5)
    cases.append(
        Case(
            id=_cid(p5, "out-of-range"),
            item=p5.item,
            number=5,
            kind="readback",
            category="parameter block",
            quantity=p5.quantity,
            unit=p5.unit,
            expected=p5.default,
            tolerance=round(p5.resolution / 2, 6),
            procedure="readback",
            params={"mode": "out_of_range", "param": 5, "value": bad, "expect": "refused"},
            suites=["smoke", "regression"],
            est_bench_s=SETUP_S + 10.0,
        )
    )
    p60 = spec.param(60)
    ah = round(p60.default / 2, 2)
    cases.append(
        Case(
            id=_cid(p60, "single-write"),
            item=p60.item,
            number=60,
            kind="readback",
            category="parameter block",
            quantity=p60.quantity,
            unit=p60.unit,
            expected=ah,
            tolerance=round(p60.resolution / 2, 6),
            procedure="readback",
            params={"mode": "single_write", "value": ah, "command": "0x49"},
            suites=["smoke", "regression"],
            est_bench_s=SETUP_S + 5.0,
        )
    )
    return cases


# --------------------------------------------------------------------------- functions


def _function_case(
    spec: Spec,
    number: int,
    *,
    expected: float | None,
    unit: str,
    params: dict[str, Any],
    category: str,
    overrides: dict[int, float] | None = None,
    switch_overrides: dict[int, bool] | None = None,
    est: float = SETUP_S + 30.0,
    tolerance: float | None = None,
    reason: str | None = None,
    quantity: str | None = None,
) -> Case:
    p = spec.param(number)
    return Case(
        id=_cid(p, "function"),
        item=p.item,
        number=number,
        kind="function",
        category=category,
        quantity=quantity or p.quantity,
        condition=p.bench_condition,
        flag=p.flag,
        expected=expected,
        tolerance=tolerance,
        unit=unit,
        overrides=dict(overrides or {}),
        switch_overrides=dict(switch_overrides or {}),
        procedure="function",
        params=params,
        suites=["regression"],
        est_bench_s=0.0 if reason else est,
        testable=reason is None,
        reason=reason,
    )


def _function_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    soc_tol = spec.tolerance_for(79).band(0.0)
    cells = _stimulus_reason("cell", caps)
    # Compensation: 20 A discharge through 5.0 mOhm moves the reported cell by 0.100 V.
    current_a = -20.0
    r_mohm = 5.0
    cell_tol_v = spec.tolerance_for(1).abs
    r_tol = round(cell_tol_v / abs(current_a) * 1000.0, 3)
    cases = [
        _function_case(
            spec,
            59,
            expected=25.0,
            unit="%",
            category="capacity",
            quantity="soc",
            params={
                "function": "soc",
                "rated_ah": 80.0,
                "remaining_ah": 20.0,
                "formula": "floor(1000 * remaining / rated) / 10",
            },
            overrides={59: 80.0, 60: 20.0},
            tolerance=soc_tol,
        ),
        _function_case(
            spec,
            60,
            expected=30.0,
            unit="%",
            category="capacity",
            quantity="soc",
            params={"function": "soc", "remaining_ah": 30.0, "write": "single"},
            tolerance=soc_tol,
        ),
        _function_case(
            spec,
            66,
            expected=spec.param(66).default,
            unit="count",
            category="configuration",
            params={"function": "cell_count", "observe": "telemetry cell count"},
            tolerance=0.0,
        ),
        _function_case(
            spec,
            81,
            expected=spec.param(81).default,
            unit="%",
            category="capacity",
            params={
                "function": "gap_compensation",
                "trip": 5,
                "soc_above": 97.0,
                "soc_below": 95.0,
            },
            switch_overrides={42: True},
            tolerance=soc_tol,
            est=SETUP_S + 120.0,
            reason=cells,
        ),
        _function_case(
            spec,
            82,
            expected=spec.param(82).default,
            unit="%",
            category="capacity",
            params={"function": "cycle_count", "discharge_a": -50.0, "rated_ah": 5.0},
            overrides={59: 5.0, 60: 5.0},
            tolerance=soc_tol,
            est=SETUP_S + 5.0 * 0.8 / 50.0 * 3600.0 + 60.0,
        ),
        _function_case(
            spec,
            83,
            expected=1.0,
            unit="",
            category="configuration",
            params={
                "function": "connection_fault",
                "hand_steps": ["connection_fault"],
                "hand_prompts": {"connection_fault": 2},
                "current_a": current_a,
                # used when a person inserts the resistor (a relay's bench entry says its own)
                "ohm": 0.020,
                "cell": 8,
                "acts_above_mohm": spec.param(83).default,
            },
            switch_overrides={47: True},
            tolerance=0.0,
            est=SETUP_S + 20.0,
            reason=_hands_reason({"hand_steps": ["connection_fault"]}, caps)[1],
        ),
    ]
    for pos, imp in ((84, 85), (86, 87)):
        position = spec.param(pos).default
        common = {
            "function": "impedance_compensation",
            "position_param": pos,
            "impedance_param": imp,
            "current_a": current_a,
            "impedance_mohm": r_mohm,
        }
        cases.append(
            _function_case(
                spec,
                pos,
                expected=position,
                unit="count",
                category="configuration",
                params={**common, "observe": "position"},
                overrides={imp: r_mohm},
                tolerance=0.0,
                reason=cells,
            )
        )
        cases.append(
            _function_case(
                spec,
                imp,
                expected=r_mohm,
                unit="mΩ",
                category="configuration",
                params={**common, "observe": "impedance"},
                overrides={imp: r_mohm},
                tolerance=r_tol,
                reason=cells,
            )
        )
    return cases


# --------------------------------------------------------------------------- switches

#: Switches exercised by a function (not by driving a governed threshold).
_SWITCH_FUNCTIONS: dict[int, dict[str, Any]] = {
    2: {"function": "temperature_sensor", "fault": "open", "ntc": "cell1"},
    4: {"function": "button_stuck", "stuck_timeout_s": STUCK_TIMEOUT_S},
    31: {"function": "heating", "stimulus": "ntc:cell1", "level": -5.0},
    32: {"function": "secondary_trip", "react_s": 5.0},
    38: {"function": "short_circuit", "short_s": 0.2},
    39: {"function": "transient_lockout"},
    40: {"function": "short_circuit_lockout"},
    42: {"function": "gap_compensation"},
    48: {"function": "soft_start"},
    49: {"function": "balancing", "condition": "charging"},
    50: {"function": "balancing", "condition": "standby"},
    51: {"function": "static_balancing_time"},
    52: {"function": "balancing_overtemperature", "ambient_c": 53.0},
    53: {"function": "auto_activation", "observe": "waiting_auto_activation"},
    54: {
        "function": "manual_activation",
        "observe": "waiting_manual_activation",
        "press_s": 0.5,
    },
    55: {"function": "current_limit_active", "limit_a": 10.0, "offered_a": 30.0},
    56: {"function": "current_limit_passive", "limit_a": 10.0},
    57: {"function": "power_switch"},
    58: {"function": "standby_shutdown"},
    59: {"function": "history", "state": "standby"},
}
#: Extra overrides that make a switch case short or isolate it.
_SWITCH_OVERRIDES: dict[int, dict[int, float]] = {
    # The level beyond a trip (three tolerances) must not reach the next protection on the
    # same stimulus, or the switch-off case sees that protection act instead:
    14: {5: 3.80},  # 58.5 V / 16 = 3.656 V per cell passes P5 (3.65 V)
    16: {7: 2.50, 8: 2.90},
    17: {25: 65.0},  # 56 C passes P25 (55 C)
    21: {33: 65.0},  # 58 C passes P33 (55 C)
    23: {35: -20.0},
    34: {67: 1.0},
    36: {68: 1.0},
    39: {70: 5.0},
    40: {70: 5.0},  # five short-circuit trips in a row, each retried after P70
    51: {65: 1.0},
    53: {74: 1.0},
    58: {78: 1.0},
    59: {77: 3.0},
}
_SWITCH_SWITCH_OVERRIDES: dict[int, dict[int, bool]] = {33: {56: False}, 34: {56: False}}
#: Hand-steps of switch cases, by (switch, state): what the case needs done at the bench, the
#: prompts a person answers per step, the bounded waits. S57 on needs the power switch ON
#: for its nominal state; S40 on clears its lock-out by a power-cycle (BMS supply).
_SWITCH_HANDS: dict[tuple[int, bool], dict[str, Any]] = {
    (4, True): {"hand_steps": ["button"], "hand_prompts": {"button": 2}},
    (4, False): {"hand_steps": ["button"], "hand_prompts": {"button": 2}},
    (32, True): {"hand_steps": ["secondary_trip"], "hand_prompts": {"secondary_trip": 2}},
    (32, False): {"hand_steps": ["secondary_trip"], "hand_prompts": {"secondary_trip": 2}},
    (38, True): {"hand_steps": ["short_circuit"], "hand_prompts": {"short_circuit": 2}},
    (38, False): {"hand_steps": ["short_circuit"], "hand_prompts": {"short_circuit": 2}},
    (40, True): {
        "hand_steps": ["short_circuit", "bms_power"],
        "hand_prompts": {"short_circuit": 2, "bms_power": 2},
    },
    (40, False): {"hand_steps": ["short_circuit"], "hand_prompts": {"short_circuit": 2}},
    (54, True): {"hand_steps": ["button"], "hand_prompts": {"button": 1}},
    (57, True): {
        "hand_steps": ["power_switch"],
        "hand_prompts": {"power_switch": 4},
        "nominal_steps": ["power_switch"],
    },
    (57, False): {"hand_steps": ["power_switch"], "hand_prompts": {"power_switch": 2}},
}
#: Bench seconds of the hand-step switch cases beyond the setup (estimates).
_SWITCH_HAND_EST = {4: 45.0, 32: 20.0, 38: 150.0, 40: 120.0, 54: 100.0, 57: 30.0}
#: Switch cases too long for a working day: they run in soak (each waits an hour).
_SOAK_SWITCHES = (51, 58)
_READBACK_ONLY = {
    "unused": "temporarily unused per the spec: read-back only",
    "inverter": "concerns the inverter link (requested current), not the bench: read-back only",
}
_READBACK_HARDWARE = ("lcd", "bluetooth", "parallel")


def _switch_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    cases = []
    for s in spec.switches:
        for on in (True, False):
            cases.append(_switch_case(spec, s, on, caps))
    return cases


def _governed_trip(spec: Spec, s: Switch) -> Parameter | None:
    for n in s.governs:
        p = spec.param(n)
        if p.kind in ("alarm", "protection") and p.direction is not None:
            return p
    return None


def _switch_case(spec: Spec, s: Switch, on: bool, caps: Mapping[str, bool]) -> Case:
    kind: CaseKind = "switch-on" if on else "switch-off"
    overrides = dict(_SWITCH_OVERRIDES.get(s.number, {}))
    switch_overrides = dict(_SWITCH_SWITCH_OVERRIDES.get(s.number, {}))
    switch_overrides[s.number] = on
    procedure: Procedure = "switch"
    params: dict[str, Any] = {"switch": s.number, "state": on}
    reason: str | None = None
    testable = True
    trip = _governed_trip(spec, s)
    quantity = direction = None
    condition = None
    est = SETUP_S + 15.0
    hw = s.hardware
    if s.needs in _READBACK_ONLY or hw in _READBACK_HARDWARE:
        procedure = "readback"
        reason = _READBACK_ONLY.get(
            s.needs, f"needs {hw} hardware the harness cannot observe: read-back only"
        )
        params["mode"] = "bit"
        est = SETUP_S + 5.0
    elif hw is not None and not _capable(caps, hw):
        testable = False
        reason = f"needs {hw.replace('_', ' ')} hardware (bench capability {hw} is false)"
    if procedure == "switch":
        if s.number in _SWITCH_FUNCTIONS:
            params.update(_SWITCH_FUNCTIONS[s.number])
        hand = _SWITCH_HANDS.get((s.number, on))
        if hand is not None:
            params.update(hand)
            if testable:
                testable, reason = _hands_reason(params, caps)
            if (
                s.number in (38, 40)
                and not on
                and testable
                and not _capable(caps, "simulated_cells")
            ):
                testable = False
                reason = "disabling a protection is unsafe with real cells (no cell simulator)"
            est = SETUP_S + _SWITCH_HAND_EST.get(s.number, 30.0)
        elif trip is not None:
            stimulus = _STIMULUS[trip.quantity][0]
            if trip.number == 57:
                stimulus = "transient"
            band = spec.tolerance_for(trip).band(trip.default)
            level = trip.default + 3 * band if trip.direction == "high" else trip.default - 3 * band
            params.update(
                {
                    "param": trip.number,
                    "stimulus": stimulus,
                    "level": round(level, 4),
                    "fet": _fet(trip),
                }
            )
            quantity, direction = trip.quantity, trip.direction
            condition = trip.bench_condition
            est = SETUP_S + DWELL_S + _delay_s(spec, trip, overrides) + 10.0
            stim_reason = _stimulus_reason(stimulus, caps)
            if stim_reason:
                testable, reason = False, stim_reason
            if trip.number == 37 and not _capable(caps, "heater"):
                testable = False
                reason = "needs heater hardware (bench capability heater is false)"
        if (
            not on
            and testable
            and not _capable(caps, "simulated_cells")
            and trip is not None
            and trip.kind == "protection"
        ):
            testable = False
            reason = "disabling a protection is unsafe with real cells (no cell simulator)"
        if s.number in (51, 58):
            est = SETUP_S + 1.1 * 3600.0
        elif s.number == 59:
            est = SETUP_S + 3 * 3 * 60.0
        elif s.number == 39:
            est = SETUP_S + 6 * (5.0 + 2.0)
    suites = ["soak"] if s.number in _SOAK_SWITCHES else ["regression"]
    if s.number == 10 and not on:
        suites.insert(0, "smoke")
    return Case(
        id=_cid(s, kind),
        item=s.item,
        number=s.number,
        kind=kind,
        category="function switch",
        quantity=quantity,
        direction=direction,
        condition=condition,
        flag=s.flag,
        expected=1.0 if on else 0.0,
        tolerance=0.0,
        unit="",
        overrides=overrides,
        switch_overrides=switch_overrides,
        procedure=procedure,
        params=params,
        suites=suites,
        est_bench_s=round(est, 1) if testable else 0.0,
        testable=testable,
        reason=reason,
    )


# --------------------------------------------------------------------------- the plan

#: Cases in the smoke suite (minutes on a real bench): the protections that matter most.
SMOKE = (
    "P05-cell-overvoltage-protection-trip",
    "P07-cell-undervoltage-protection-trip",
    "P25-charging-overtemperature-protection-trip",
    "P56-discharging-overcurrent-protection-trip",
    "P01-cell-high-voltage-alarm-readback",
)


def build_plan(
    spec: Spec,
    capabilities: Mapping[str, bool] | None = None,
    suite: str | None = None,
    *,
    relays: Collection[str] | None = None,
) -> list[Case]:
    """Every case for this spec on a bench with these capabilities; ``suite`` filters.

    ``relays``: the hand-steps the bench wires to relays (``harness.benchfile.bench_relays``);
    a case with a hand-step outside it ``needs_operator``. None: not known (then
    ``needs_operator`` is None for every case with hand-steps).

    Raises ValueError for an unknown suite name (the CLI turns it into exit code 2).
    """
    if suite is not None and suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    caps = dict(DEFAULT_CAPABILITIES if capabilities is None else capabilities)
    cases = (
        _threshold_cases(spec, caps)
        + _delay_cases(spec, caps)
        + _function_cases(spec, caps)
        + _block_cases(spec)
        + _switch_cases(spec, caps)
    )
    for case in cases:
        if case.id in SMOKE and "smoke" not in case.suites:
            case.suites.insert(0, "smoke")
        if not case.testable and case.reason is None:
            case.reason = "not testable on this bench"
        _operator_fields(case, relays)
    ids = [c.id for c in cases]
    if len(ids) != len(set(ids)):
        doubled = sorted({i for i in ids if ids.count(i) > 1})
        raise AssertionError(f"plan has doubled case ids: {doubled}")
    if suite is None:
        return cases
    selected = [c for c in cases if suite in c.suites]
    if suite == "regression":
        # A spec row the regression does not run still appears in it, as a case that says
        # where it runs, so a regression report (and the release gate) covers every row.
        covered = {c.item for c in selected}
        for c in cases:
            if c.item not in covered and "soak" in c.suites and c.testable:
                selected.append(
                    c.model_copy(
                        update={
                            "testable": False,
                            "reason": "runs in the soak suite: its wait does not fit a working "
                            "day (the block cannot hold this delay below one hour)",
                            "est_bench_s": 0.0,
                            "suites": ["regression"],
                        }
                    )
                )
    return selected


def suite_estimates(cases: Iterable[Case]) -> dict[str, float]:
    """Estimated real-bench seconds per suite (testable cases only)."""
    totals = {name: 0.0 for name in SUITES}
    for c in cases:
        if c.testable:
            for name in c.suites:
                totals[name] = totals.get(name, 0.0) + c.est_bench_s
    return totals


def kind_counts(cases: Iterable[Case]) -> dict[str, int]:
    """Number of cases per kind (in a fixed order)."""
    order = ("trip", "recovery", "delay", "switch-on", "switch-off", "readback", "function")
    counts = dict.fromkeys(order, 0)
    for c in cases:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    return counts


def covered_items(cases: Iterable[Case]) -> set[str]:
    """Items ("P5", "S10") that at least one case exercises or reports on."""
    return {c.item for c in cases}
