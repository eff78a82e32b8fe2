"""Run one plan case on an open bench: nominal state, isolation, the procedure, back to nominal.

``run_case`` is the one entry point the pytest plugin (and any script) calls. It resolves a
case to its procedure from the spec row the case tests, so the plan stays data and the
procedures stay reusable.
"""

from __future__ import annotations

from typing import Any

from harness.procedures import delay, function, hands, power, readback, switch, threshold
from harness.procedures.record import BenchFault, CaseNotTestable, Measurement, Recorder
from harness.procedures.rig import NOMINAL_TEMP_C, Rig

#: Quantity -> (stimulus, safe value, search resolution).
STIMULI: dict[str, tuple[str, float, float]] = {
    "cell_voltage": ("cell", 3.300, 0.001),
    "pack_voltage": ("pack", 52.800, 0.016),
    "port_voltage": ("port", 54.800, 0.01),
    "cell_temperature": ("ntc:cell1", NOMINAL_TEMP_C, 0.1),
    "ambient_temperature": ("ntc:ambient", NOMINAL_TEMP_C, 0.1),
    "power_temperature": ("ntc:power", NOMINAL_TEMP_C, 0.1),
    "charge_current": ("charge_current", 5.0, 0.1),
    "discharge_current": ("discharge_current", 5.0, 0.1),
    "soc": ("soc", 50.0, 0.1),
    "cell_voltage_difference": ("cell_difference", 0.0, 0.001),
}

#: Which FET a protection opens (BEHAVIOUR.md "Alarm vs protection").
ACTION_BY_CONDITION = {"charging": "charge", "discharging": "discharge"}
BOTH_FET_ITEMS = {43, 44, 45, 46, 49, 50}


def _configure_nominal(rig: Rig, case: Any) -> bool:
    """The case's block (spec values plus its overrides) and SOC 50 %; True if written."""
    spec = rig.spec
    values = {p.number: p.default for p in spec.parameters}
    values.update({int(k): float(v) for k, v in (case.overrides or {}).items()})
    switches = {s.number: s.default for s in spec.switches}
    switches.update({int(k): bool(v) for k, v in (case.switch_overrides or {}).items()})
    explicit = frozenset(int(k) for k in (case.overrides or {}))
    wrote = rig.configure(values, switches, explicit)
    if 60 not in explicit:
        # SOC 50 % (DOMAIN.md's nominal bench), through the single remaining-capacity write.
        rated = rig.parameter(59)
        tele = rig.bench.bms.telemetry()
        if abs(tele.remaining_ah - rated / 2) > 0.05:
            rig.bench.bms.set_remaining_capacity(round(rated / 2, 2))
    return wrote


def _nominal_steps(rig: Rig, case: Any) -> None:
    """Hand-steps the case's nominal state needs in force (S57: the power switch ON)."""
    for name in (case.params or {}).get("nominal_steps", []) or []:
        if rig.hands is not None and name not in rig.hands.active:
            rig.hands.activate(name, "part of this case's nominal state")


def _still_active(rig: Rig) -> str:
    obs = rig.observe(None)
    active = sorted(k for k, v in obs.flags.items() if v and _is_protection_flag(k))
    return f"still active: {', '.join(active)}" if active else "FETs still open"


def prepare(rig: Rig, case: Any) -> None:
    """Nominal state plus the case's isolating overrides (one block write when needed).

    A latched state that neither the recovery delay nor a block write clears is cleared by
    power-cycling the BMS when the bench has a ``bms_power`` relay (then the block and SOC
    are set again); without one the case is a bench error, "nominal state unreachable"."""
    with rig.rec.step("nominal state"):
        rig.nominal_stimuli()
        rig.wake_if_shut_down()
        wrote = _configure_nominal(rig, case)
        _nominal_steps(rig, case)
        settled = _wait_clean(rig, 3.0)
        if not settled and rig.wake_if_shut_down():
            # A shortened standby-shutdown delay just written can put an idle BMS to sleep.
            settled = _wait_clean(rig, 3.0)
        if not settled:
            # Lock-outs and latched protections clear with a block write (BEHAVIOUR.md P71).
            if not wrote:
                rig.rewrite_block()
            timeout = max(5.0, rig.parameter(70) * 1.5 + 5.0)
            settled = _wait_clean(rig, timeout)
        if not settled and power.can_power_cycle(rig.bench):
            latched = _still_active(rig)
            power.power_cycle(rig, f"nominal state unreachable: {latched}")
            rig.nominal_stimuli()
            _configure_nominal(rig, case)
            settled = _wait_clean(rig, max(5.0, rig.parameter(58) / 1000.0 + 5.0))
            if not settled:
                raise BenchFault(
                    f"nominal state unreachable after a power-cycle: {_still_active(rig)} "
                    f"(before it: {latched})"
                )
        if not settled:
            raise BenchFault(f"nominal state unreachable: {_still_active(rig)}")


def _is_protection_flag(name: str) -> bool:
    return any(w in name for w in ("protection", "lockout", "prohibition", "waiting", "shutdown"))


def _wait_clean(rig: Rig, timeout_s: float) -> bool:
    obs = rig.wait_until(
        lambda o: (
            o.charge_fet
            and o.discharge_fet
            and not any(v and _is_protection_flag(k) for k, v in o.flags.items())
        ),
        timeout_s=timeout_s,
        poll_s=0.5,
    )
    return obs is not None


def restore(rig: Rig) -> None:
    """Back to nominal stimuli after a case (parameters are restored by the next prepare)."""
    with rig.rec.step("back to nominal"):
        rig.nominal_stimuli()


def run_case(
    bench: Any,
    spec: Any,
    case: Any,
    recorder: Recorder | None = None,
    *,
    operator: Any = None,
    operator_absent: str | None = None,
) -> Measurement:
    """Run one case; returns its measurement (the verdict is ``measurement.outcome``).

    ``operator`` (``harness.operator.Operator``) does the case's hand-steps the bench has no
    relay for; without one (``operator_absent`` says why: "unattended run") such a case is
    not testable. Raises ``CaseNotTestable`` when the case cannot run on this bench and
    ``BenchFault`` when the bench, not the device, failed.
    """
    if not getattr(case, "testable", True):
        raise CaseNotTestable(case.reason or "not testable on this bench")
    rig = Rig(bench, spec, recorder)
    rig.params = dict(case.params or {})
    # Before anything moves: who does each hand-step (or why nobody can).
    rig.hands = hands.for_case(rig, case, operator, operator_absent)
    if rig.hands.modes:
        with rig.rec.step(f"hand-steps: {rig.hands.describe()}"):
            pass
    m = Measurement(
        name=case.id,
        unit=case.unit or "",
        expected=case.expected,
        tolerance=case.tolerance,
    )
    try:
        prepare(rig, case)
    except BaseException:
        _release_hands(rig, in_flight=True)
        raise
    ok = False
    try:
        _dispatch(rig, case, m)
        ok = True
    except threshold.DeviceDidNotRecover as exc:
        m.check("recovers", False, exc.seen, str(exc))
        ok = True
    finally:
        m.probes = rig.probes
        try:
            _release_hands(rig, in_flight=not ok)
        finally:
            restore(rig)
    return m


def _release_hands(rig: Rig, in_flight: bool) -> None:
    """Every hand-step still in force goes back; with an exception already on its way a
    failure here is logged and the first exception kept (the bench's safe state puts the
    relays back on every exit anyway)."""
    if rig.hands is None or not rig.hands.active:
        return
    if not in_flight:
        rig.hands.release_all()
        return
    import sys

    interrupted = isinstance(sys.exc_info()[1], KeyboardInterrupt)
    try:
        # Interrupted (Ctrl-C, SIGTERM): no prompt; the relays go back.
        rig.hands.release_all(relays_only=interrupted)
    except Exception as exc:  # noqa: BLE001 - the exception in flight is the one to report
        import logging

        logging.getLogger(__name__).error("hand-steps not released: %s", exc)


def _dispatch(rig: Rig, case: Any, m: Measurement) -> None:
    kind = case.kind
    if kind in ("switch-on", "switch-off"):
        switch.run(rig, case, m, on=(kind == "switch-on"))
        return
    number = case.number
    params = case.params or {}
    if kind == "readback":
        mode = params.get("mode", "write")
        if mode == "out_of_range":
            readback.out_of_range_refused(
                rig, m, int(params.get("param", number)), float(params["value"])
            )
        elif mode == "single_write":
            readback.remaining_capacity_single_write(rig, m, float(params.get("value", 75.0)))
        else:
            if "value" not in params:
                raise BenchFault(f"{case.id}: the plan gives no value to write")
            readback.write_and_read_back(rig, m, number, float(params["value"]))
        return
    if kind in ("trip", "recovery"):
        run_threshold(rig, case, m)
        return
    tol_a = _current_tolerance(rig)
    if kind == "delay":
        if number == 58:
            delay.soft_start(rig, m)
        elif number in (67, 68):
            side = "charge" if number == 67 else "discharge"
            delay.overcurrent_delay(rig, m, side, f"{side}_overcurrent_protection", tol_a)
        elif number == 69:
            delay.transient_delay(rig, m, "transient_overcurrent_protection", tol_a)
        elif number == 70:
            delay.overcurrent_recovery(rig, m, tol_a)
        elif number == 71:
            delay.lockout(rig, m, tol_a, kind=params.get("lockout", "discharge"))
        elif number == 72:
            function.current_limit_passive(rig, m, expect_limit=True)
        elif number == 73:
            function.manual_activation(rig, m)
        elif number == 74:
            function.auto_activation(rig, m, expect=True)
        elif number in (76, 77):
            function.history_interval(rig, m, working=(number == 76))
        elif number == 78:
            function.standby_shutdown(rig, m, expect=True)
        elif number == 65:
            function.static_balancing_time(rig, m, expect_stop=True)
        else:
            raise BenchFault(f"no delay procedure for P{number}")
        return
    if kind == "function":
        amps = abs(float(params.get("current_a", params.get("discharge_a", 20.0))))
        if number in (59, 60):
            write = params.get("remaining_ah")
            function.soc_reported(
                rig, m, None if write is None or 60 in (case.overrides or {}) else float(write)
            )
        elif number == 66:
            function.series_count(rig, m)
        elif number == 81:
            function.gap_compensation(rig, m)
        elif number == 82:
            function.cycle_count(rig, m, amps=amps)
        elif number in (84, 85):
            function.impedance_compensation(
                rig, m, 84, 85, "position" if number == 84 else "impedance", amps
            )
        elif number in (86, 87):
            function.impedance_compensation(
                rig, m, 86, 87, "position" if number == 86 else "impedance", amps
            )
        elif number == 83:
            function.connection_fault(rig, m)
        else:
            raise BenchFault(f"no function procedure for P{number}")
        return
    raise BenchFault(f"unknown case kind {kind!r}")


def _current_tolerance(rig: Rig) -> float:
    """Absolute current tolerance at the overcurrent levels (1 % of ~110 A)."""
    return effective_tolerance(rig.spec, rig.spec.param(55), rig.parameter(55))


def effective_tolerance(spec: Any, param: Any, value: float) -> float:
    """The tolerance in force at ``value``: the larger of the absolute and relative parts."""
    tol = spec.tolerance_for(param)
    return max(float(tol.abs or 0.0), float(tol.rel or 0.0) * abs(value))


def threshold_setup(rig: Rig, case: Any) -> tuple[threshold.ThresholdSetup, Any, int]:
    """Resolve a trip/recovery case to a search: (setup, trip parameter, sign)."""
    spec = rig.spec
    param = spec.param(case.number)
    trip = param
    if param.kind == "recovery" and param.partner:
        trip = spec.param(param.partner)
    quantity = trip.quantity
    if trip.number == 9:
        stimulus, safe, res = "cell", 3.300, 0.001
    elif trip.number in (63, 64):
        stimulus, safe, res = "balance_difference", 0.0, 0.001
    elif trip.number == 57:
        stimulus, safe, res = "transient", 5.0, 0.5
    else:
        if quantity not in STIMULI:
            raise BenchFault(f"P{trip.number}: no stimulus for quantity {quantity!r}")
        stimulus, safe, res = STIMULI[quantity]
    if stimulus == "port":
        safe = rig.pack_v() + 2.0
    tol = case.tolerance if case.tolerance is not None else res * 10
    sign = -1.0 if quantity == "discharge_current" else 1.0
    direction = trip.direction or "high"
    if sign < 0:
        direction = "high"  # searched in magnitude: the trip is a larger discharge current
    trip_value = abs(rig.parameter(trip.number)) if sign < 0 else rig.parameter(trip.number)
    span = max(5 * tol, 0.1 * abs(trip_value - safe), 10 * res)
    far = trip_value + span if direction == "high" else trip_value - span
    if trip.number == 57:
        far = min(far, 290.0)
    condition = getattr(trip, "test_condition", None) or trip.condition or "any"
    flag = trip.flag
    if trip.number in (9, 63, 64):
        flag, condition = "balancing", "standby"
    if trip.number in (37, 38):
        flag, condition = "heater", "charger"
    action = None
    if trip.kind == "protection" or trip.number in (10,):
        action = "both" if trip.number in BOTH_FET_ITEMS else ACTION_BY_CONDITION.get(condition)
        if action is None:
            action = "both"
    delay_s = 0.0
    if getattr(trip, "delay", None):
        delay_s = rig.parameter(trip.delay) * (
            0.001 if spec.param(trip.delay).unit == "mS" else 1.0
        )
    params = case.params or {}
    # The plan's search range is in the spec's sign (discharge currents negative) and runs
    # from the side where the function is quiet (trip) or active (recovery) to the other.
    if "start" in params and "stop" in params:
        start, stop = float(params["start"]), float(params["stop"])
        if sign < 0:
            start, stop = abs(start), abs(stop)
        if case.kind == "recovery":
            safe, far = stop, start
        else:
            safe, far = start, stop
    res = float(params.get("resolution", res))
    is_current = quantity in ("charge_current", "discharge_current")
    setup = threshold.ThresholdSetup(
        stimulus=params.get("stimulus", stimulus)
        if params.get("stimulus") in STIMULI_NAMES
        else stimulus,
        direction=direction,
        flag=flag,
        action=action,
        safe=safe,
        far=far,
        resolution=res,
        dwell_s=float(params.get("dwell_s", 1.5 + delay_s)),
        condition=condition,
        cell=int(params.get("cell", 1)),
        reset_timeout_s=max(10.0, rig.parameter(70) * 2 + 10)
        if is_current or trip.number == 57
        else 15.0,
    )
    return setup, trip, int(sign)


STIMULI_NAMES = {s for s, _v, _r in STIMULI.values()} | {"balance_difference", "transient"}


def run_threshold(rig: Rig, case: Any, m: Measurement) -> None:
    setup, trip, sign = threshold_setup(rig, case)
    if "base_v" in (case.params or {}):
        rig.difference_base_v = float(case.params["base_v"])
    if setup.condition in ("charging", "discharging", "charger"):
        rig.condition(setup.condition)
        rig.settle()
    else:
        rig.condition("standby")
    if case.kind == "trip":
        obs = threshold.find_trip(rig, setup, m)
        if obs is not None:
            threshold.judge_action(m, setup, obs, tripped=True)
    else:
        obs = threshold.find_recovery(rig, setup, setup.far, m)
        if obs is not None:
            threshold.judge_action(m, setup, obs, tripped=False)
    if m.measured is not None:
        m.naive_probes = threshold.naive_ramp_probes(setup.safe, m.measured, setup.resolution)
    if sign < 0 and m.measured is not None:
        m.measured = -m.measured
