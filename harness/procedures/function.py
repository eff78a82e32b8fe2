"""Function procedures: behaviours that are neither a static threshold nor a single delay.

Each function returns through a ``Measurement``: a measured value against the spec's value
where the spec gives one (SOC, gap-compensation SOC, cycle share, compensation shift), and
checks for the observations that carry the verdict.
"""

from __future__ import annotations

from harness.procedures.delay import poll_interval, timed_until, to_unit
from harness.procedures.record import CaseNotTestable, Measurement
from harness.procedures.rig import NOMINAL_CELL_V, STOPPED_A, Observation, Rig, fet_state


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _charge(obs: Observation) -> str:
    return f"charge current {obs.supply_a:.2f} A, charge FET {fet_state(obs.charge_fet)}"


def soc_reported(rig: Rig, m: Measurement, write_ah: float | None = None) -> None:
    """P59/P60: the reported SOC is remaining / full capacity (full = rated, P59), and
    coulomb counting moves the remaining capacity with the current.

    ``write_ah`` sets the remaining capacity first through the single write (0x49); the
    measured value is the SOC the BMS reports."""
    if write_ah is not None:
        with rig.rec.step(f"write remaining capacity {write_ah:g} Ah (0x49)"):
            rig.bench.bms.set_remaining_capacity(write_ah)
    rated = rig.parameter(59)
    tele = rig.bench.bms.telemetry()
    m.measured = float(tele.soc_pct)
    m.check(
        "rated capacity reported",
        abs(tele.rated_ah - rated) <= 0.01,
        f"rated {tele.rated_ah:g} Ah reported, P59 configured {rated:g} Ah",
        f"reported rated capacity {tele.rated_ah:g} Ah differs from P59 {rated:g} Ah",
    )
    amps, hours = 10.0, 0.25
    with rig.rec.step(f"discharge {amps:g} A for {hours * 60:g} min: coulomb counting"):
        rig.condition("discharging", current_a=amps)
        rig.wait(hours * 3600)
        rig.condition("standby")
    after = rig.bench.bms.telemetry()
    moved = tele.remaining_ah - after.remaining_ah
    want = amps * hours
    m.check(
        "coulomb counting",
        abs(moved - want) <= max(0.01 * want, 0.02),
        f"remaining {tele.remaining_ah:g} -> {after.remaining_ah:g} Ah ({moved:.3f} Ah) for "
        f"{want:g} Ah discharged",
        f"remaining moved by {moved:.3f} Ah for {want:g} Ah discharged",
    )
    m.note = f"{tele.remaining_ah:g} Ah of {tele.full_ah:g} Ah"


def series_count(rig: Rig, m: Measurement) -> None:
    """P66: the telemetry carries as many cells as the configured series count."""
    tele = rig.bench.bms.telemetry()
    m.measured = float(len(tele.cell_v))


def gap_compensation(rig: Rig, m: Measurement, switch_on: bool = True) -> None:
    """P81 / S42: after a cell overvoltage protection, charging resumes only below P81 SOC.

    The SOC is stepped down in 0.5 %-point steps from 98 %; the measured value is the first
    SOC at which charging resumed."""
    rated = rig.parameter(59)
    rig.set_soc_pct(98.0)
    rig.condition("charging")
    trip_v = rig.parameter(5) + 0.030
    with rig.rec.step(f"cell 1 to {trip_v:.3f} V: cell overvoltage protection"):
        obs = rig.probe("cell", trip_v, "cell_overvoltage_protection", 1.5)
    if not obs.flag:
        m.check(
            "cell overvoltage protection",
            False,
            f"cell 1 at {trip_v:.3f} V: {obs.describe('cell_overvoltage_protection')}",
            "protection did not trip",
        )
        return
    with rig.rec.step("cell back to 3.300 V: voltage recovered"):
        obs = rig.probe("cell", NOMINAL_CELL_V, "gap_compensation_waiting", 2.0)
    if not switch_on:
        m.check(
            "charging resumes at once (S42 off)",
            obs.supply_a >= STOPPED_A,
            f"{_charge(obs)} after the voltage recovered at 98 % SOC",
            f"charging held after recovery with S42 off: {_charge(obs)}",
        )
        m.measured = 1.0 if obs.supply_a >= STOPPED_A else 0.0
        return
    m.check(
        "charging held after recovery",
        obs.supply_a < STOPPED_A,
        f"{_charge(obs)} at 98 % SOC after the voltage recovered",
        f"charging resumed at 98 % SOC: {_charge(obs)}",
    )
    pct = 98.0
    while pct > 80.0:
        pct -= 0.5
        obs = rig.probe("soc", pct, "gap_compensation_waiting", 2.0)
        if obs.supply_a >= STOPPED_A and obs.charge_fet:
            m.measured = pct
            m.uncertainty = 0.5
            return
    m.check(
        "charging resumes",
        False,
        f"{_charge(obs)} at {pct:g} % SOC, the lowest probed (rated {rated:g} Ah)",
        f"still held at {pct:g} % SOC (rated {rated:g} Ah)",
    )


def cycle_count(rig: Rig, m: Measurement, amps: float = 50.0) -> None:
    """P82: one cycle is counted each time P82 % of the full capacity has been discharged.

    The device's running total of discharged charge is not visible, so the measured share is
    the charge discharged between two consecutive cycle increments (the pack is refilled
    through the remaining-capacity write in between, which moves no charge)."""
    rated = rig.parameter(59)
    share_step = 0.25  # %-points of capacity per poll: the resolution
    step_s = rated * share_step / 100.0 / amps * 3600
    rig.bench.bms.set_remaining_capacity(rated)
    rig.condition("discharging", current_a=amps)
    rig.settle()
    # An increment seen at the first poll, or a jump of more than one, comes from charge the
    # device had counted before this test (or from a smaller new capacity): its remainder is
    # unknown, so timing starts only at an increment crossed during this discharge.
    increments: list[float] = []
    cycles = rig.bench.bms.telemetry().cycles
    started = rig.now()
    deadline = started + 3.5 * 3600 * rated / amps
    polls = 0
    while rig.now() < deadline and len(increments) < 2:
        rig.wait(step_s)
        polls += 1
        tele = rig.bench.bms.telemetry()
        if tele.cycles > cycles:
            if polls > 1 and tele.cycles - cycles == 1:
                increments.append(rig.now())
            cycles = tele.cycles
            rig.bench.bms.set_remaining_capacity(rated)  # refill: keep clear of P80
        elif tele.soc_pct < 20.0:
            rig.bench.bms.set_remaining_capacity(rated)
    rig.condition("standby")
    if len(increments) < 2:
        share = (rig.now() - started) * amps / 3600 / rated * 100
        m.check(
            "cycles counted",
            False,
            f"{len(increments)} single cycle increments timed while {share:.0f} % of the "
            f"capacity was discharged at {amps:g} A; cycle counter at {cycles}",
            f"fewer than two cycle increments in {share:.0f} % of capacity",
        )
        return
    m.measured = round((increments[1] - increments[0]) * amps / 3600 / rated * 100, 3)
    m.uncertainty = 2 * share_step


def impedance_compensation(
    rig: Rig, m: Measurement, position_item: int, impedance_item: int, measure: str, amps: float
) -> None:
    """P84-P87: the cell at the compensation position reads |I| x R higher while discharging.

    ``measure`` is ``impedance`` (the shift divided by the current, in mOhm, against the
    configured impedance) or ``position`` (the number of the cell whose reading moves)."""
    position = int(rig.parameter(position_item))
    # The board measures periodically: let a sample at rest be taken before the idle reading,
    # or a reading compensated for an earlier current can still be reported.
    rig.condition("standby")
    rig.wait(1.0)
    idle = rig.bench.bms.telemetry().cell_v
    rig.condition("discharging", current_a=amps)
    rig.settle()
    rig.wait(1.5)
    loaded = rig.bench.bms.telemetry()
    rig.condition("standby")
    shifts = [b - a for a, b in zip(idle, loaded.cell_v, strict=False)]
    moved = [i + 1 for i, s in enumerate(shifts) if abs(s) >= 0.005]
    current = abs(loaded.current_a)
    if measure == "position":
        m.measured = float(moved[0]) if len(moved) == 1 else float("nan")
        m.check(
            "one cell compensated",
            len(moved) == 1,
            f"cells whose reading moved by 5 mV or more at {current:.1f} A: {moved}",
            f"{len(moved)} cells moved (cells {moved}), one compensated cell expected",
        )
    else:
        if current < 1.0:
            m.check(
                "current flows",
                False,
                f"discharge current {current:.2f} A reported with the load at {amps:g} A",
                f"no discharge current to compensate ({current:.2f} A, below 1 A)",
            )
            return
        m.measured = round(shifts[position - 1] / current * 1000.0, 3)
        m.note = f"cell {position} moved {shifts[position - 1] * 1000:.1f} mV at {current:.1f} A"


def balancing(rig: Rig, m: Measurement, condition: str, expect_on: bool) -> None:
    """S49 / S50: with an imbalance above the start difference, balancing runs (or not)."""
    top = rig.parameter(9) + 0.050
    diff = rig.parameter(63) + 0.020
    rig.condition(condition)
    obs = rig.probe("balance_difference", diff, "balancing", 2.0)
    m.measured = 1.0 if obs.flag else 0.0
    seen = f"balancing {_on(obs.flag)} with cell 1 at {top:.3f} V, difference {diff:.3f} V"
    m.check(
        "balancing " + ("runs" if expect_on else "stays off"),
        obs.flag == expect_on,
        seen + f" ({condition})",
        f"balancing {'did not run' if expect_on else 'ran'} with cell 1 at {top:.3f} V, "
        f"difference {diff:.3f} V ({condition})",
    )


def balancing_overtemperature(rig: Rig, m: Measurement, expect_inhibit: bool) -> None:
    """S52: balancing stops when the ambient is above its high-temperature alarm (P39)."""
    rig.condition("standby")
    rig.apply("balance_difference", rig.parameter(63) + 0.020)
    rig.set_temperature("ambient", rig.parameter(39) + 5.0)
    rig.wait(2.0)
    obs = rig.observe("balancing")
    m.measured = 0.0 if obs.flag else 1.0
    ambient = rig.parameter(39) + 5
    m.check(
        "balancing " + ("inhibited" if expect_inhibit else "continues"),
        (not obs.flag) == expect_inhibit,
        f"balancing {_on(obs.flag)} with ambient {ambient:g} C",
        f"balancing {'ran' if expect_inhibit else 'stopped'} with ambient {ambient:g} C "
        f"(P39 {rig.parameter(39):g} C)",
    )


def static_balancing_time(rig: Rig, m: Measurement, expect_stop: bool) -> None:
    """P65 / S51: static balancing stops after P65 hours (S51 on), or keeps going (off)."""
    expected_s = rig.parameter(65) * 3600
    rig.restart_idle()
    diff = rig.parameter(63) + 0.020
    obs = rig.probe("balance_difference", diff, "balancing", 2.0)
    if not obs.flag:
        m.check(
            "balancing starts",
            False,
            f"balancing {_on(obs.flag)} 2 s after a {diff:.3f} V difference in standby",
            "static balancing did not start",
        )
        return
    if expect_stop:
        timed_until(rig, m, expected_s, lambda o: not o.flag, "balancing", "balancing stops")
    else:
        rig.wait(expected_s * 1.5)
        still = rig.observe("balancing")
        m.measured = 1.0 if still.flag else 0.0
        m.check(
            "balancing continues past P65",
            still.flag,
            f"balancing {_on(still.flag)} {expected_s * 1.5 / 3600:g} h into standby "
            f"(P65 {rig.parameter(65):g} h)",
            "balancing stopped with S51 off",
        )


def heating(rig: Rig, m: Measurement, expect_on: bool) -> None:
    """S31: with the charger present and a cold cell, the heater runs (or not)."""
    rig.condition("charger")
    cold = rig.parameter(37) - 3.0
    obs = rig.probe("ntc:cell1", cold, "heater", 2.0)
    m.measured = 1.0 if obs.flag else 0.0
    m.check(
        "heater " + ("on" if expect_on else "off"),
        obs.flag == expect_on,
        f"heater {_on(obs.flag)} with the charger present and cell1 NTC at {cold:g} C",
        f"heater {_on(obs.flag)} with cell1 NTC at {cold:g} C, should be {_on(expect_on)}",
    )


def current_limit_active(rig: Rig, m: Measurement, expect_limit: bool) -> None:
    """S55: the current-limit FET holds charging to 10 A whatever the charger offers."""
    offered = 30.0
    rig.apply("charge_current", offered)
    rig.condition("charging", current_a=offered)
    rig.wait(2.0)
    obs = rig.observe(None)
    m.measured = round(obs.supply_a, 3)
    # The switch case's verdict is the switch's (1 acts / 0 not); this is a check of the
    # current, not a change of the case's expected value.
    want = 10.0 if expect_limit else offered
    m.check(
        "current " + ("limited to 10 A" if expect_limit else "not limited"),
        abs(m.measured - want) <= 0.5,
        f"charge current {m.measured:g} A with the charger offering {offered:g} A",
        f"charge current {m.measured:g} A, expected {want:g} +- 0.5 A "
        f"(charger offering {offered:g} A)",
    )


def current_limit_passive(rig: Rig, m: Measurement, expect_limit: bool) -> None:
    """S56 / P72: above the charge overcurrent alarm the BMS limits the current, and re-checks
    after P72 minutes."""
    offered = rig.parameter(51) + 5.0
    rig.apply("charge_current", offered)
    rig.condition("charging", current_a=offered)
    rig.wait(3.0)
    obs = rig.observe(None)
    limited = obs.supply_a <= 10.5
    if m.expected is not None and expect_limit and m.unit == "minute":
        timed_until(
            rig, m, rig.parameter(72) * 60, lambda o: o.supply_a > 10.5, None, "limit re-checked"
        )
        return
    m.measured = 1.0 if limited else 0.0
    m.check(
        "current " + ("limited" if expect_limit else "not limited"),
        limited == expect_limit,
        f"charge current {obs.supply_a:.2f} A with the charger offering {offered:g} A",
        f"charge current {obs.supply_a:.2f} A with the charger offering {offered:g} A: "
        + ("not limited to 10 A" if expect_limit else "limited although limiting is off"),
    )


def _undervoltage_then_nominal(rig: Rig, m: Measurement) -> Observation | None:
    """Cell 1 below P7 while discharging (the protection trips), then back to nominal; the
    observation 2 s later, or None (with a failed check) when the protection did not trip."""
    rig.condition("discharging")
    low = rig.parameter(7) - 0.050
    with rig.rec.step(f"cell 1 to {low:.3f} V: cell undervoltage protection"):
        obs = rig.probe("cell", low, "cell_undervoltage_protection", 1.5)
    if not obs.flag:
        m.check(
            "undervoltage protection",
            False,
            f"cell 1 at {low:.3f} V: {obs.describe('cell_undervoltage_protection')}",
            "did not trip",
        )
        return None
    with rig.rec.step(f"cell 1 back to {NOMINAL_CELL_V:.3f} V"):
        rig.apply("cell", NOMINAL_CELL_V)
        rig.wait(2.0)
    return rig.observe("waiting_manual_activation")


def _press_s(rig: Rig) -> float:
    return float(rig.params.get("press_s", 0.5))


def manual_activation(rig: Rig, m: Measurement) -> None:
    """P73 / S54: after undervoltage protection the BMS waits for the button; P73 minutes after
    a press of the button (a relay pulse, or the operator) the protection is released.

    Timed from the end of the press (relay released, or the operator's confirmation) to the
    discharge FET closing; then the discharge current must flow at the terminals again."""
    waiting = _undervoltage_then_nominal(rig, m)
    if waiting is None:
        return
    m.check(
        "waits for manual activation",
        waiting.flag and not waiting.discharge_fet,
        f"2 s after cell 1 returned to {NOMINAL_CELL_V:.3f} V: "
        + waiting.describe("waiting_manual_activation"),
        "discharge FET closed again without the button"
        if waiting.discharge_fet
        else "waiting flag not reported",
    )
    rig.hands.pulse("button", _press_s(rig), "manual activation")
    timed_until(rig, m, rig.parameter(73) * 60, lambda o: o.discharge_fet, None, "output released")
    if m.measured is None:
        return
    # The full discharge current once the soft start (P58) is over.
    soft_s = rig.parameter(58) / 1000.0 + 3.0
    full = rig.wait_until(rig.condition_flowing, soft_s, 0.2, "waiting_manual_activation")
    after = full or rig.observe("waiting_manual_activation")
    m.check(
        "protection released, current flows",
        full is not None and not after.flag and not after.flags.get("cell_undervoltage_protection"),
        f"after the output was released: {after.describe('waiting_manual_activation')}",
        "still waiting, or no discharge current after the release",
    )
    if not rig.hands.by_relay("button"):
        m.note = (
            (m.note + "; ") if m.note else ""
        ) + "timed from the operator's confirmation of the press"


def manual_activation_switch(rig: Rig, m: Measurement, expect_wait: bool) -> None:
    """S54: on, the output stays off after undervoltage until the button is pressed (then
    released P73 minutes later); off, it comes back by voltage alone. ``measured`` is 1 when
    the BMS waited for the button."""
    waiting = _undervoltage_then_nominal(rig, m)
    if waiting is None:
        return
    held = waiting.flag and not waiting.discharge_fet and waiting.load_a < STOPPED_A
    m.measured = 1.0 if held else 0.0
    seen = f"2 s after cell 1 returned to {NOMINAL_CELL_V:.3f} V: " + waiting.describe(
        "waiting_manual_activation"
    )
    if not expect_wait:
        back = rig.wait_until(lambda o: o.discharge_fet and o.load_a >= STOPPED_A, 10.0, 0.5)
        m.check(
            "output returns without the button (S54 off)",
            back is not None and not held,
            seen + (f"; output back {back.t_s - waiting.t_s:+.1f} s later" if back else ""),
            "the output waited for the button although S54 is off",
        )
        return
    m.check(
        "waits for the button",
        held,
        seen,
        "the output came back without the button" if waiting.discharge_fet else "no waiting flag",
    )
    if not held:
        return
    rig.hands.pulse("button", _press_s(rig), "manual activation")
    bound = rig.parameter(73) * 60 * 1.5 + 10.0
    pressed = rig.now()
    back = rig.wait_until(
        lambda o: o.discharge_fet, bound, poll_interval(rig, bound), "waiting_manual_activation"
    )
    last = back or rig.observe("waiting_manual_activation")
    m.check(
        "released after the press",
        back is not None,
        (
            f"released {back.t_s - pressed:.1f} s after the press (P73 {rig.parameter(73):g} min): "
            if back
            else f"not released within {bound:g} s of the press: "
        )
        + last.describe("waiting_manual_activation"),
        f"output still off {bound:g} s after the press",
    )


def _flowing(obs: Observation) -> bool:
    """Discharge current at the terminals through a closed discharge FET."""
    return obs.discharge_fet and obs.load_a >= STOPPED_A


def _discharge(obs: Observation) -> str:
    return f"discharge current {obs.load_a:.2f} A, discharge FET {fet_state(obs.discharge_fet)}"


def button_stuck(rig: Rig, m: Measurement, expect_fault: bool) -> None:
    """S4: the button held beyond the stuck time raises button_fault (a notice: the
    discharge current keeps flowing) until it is released; S4 off: no fault however long it
    is held. ``measured`` is 1 when the fault was reported.

    The stuck time is the firmware's, not a spec row: the flag is polled for at most the
    plan's ``stuck_timeout_s`` (bench seconds)."""
    bound = float(rig.params.get("stuck_timeout_s", 30.0))
    rig.condition("discharging")
    rig.settle()
    rig.hands.activate("button", "held: a stuck button")
    t0 = rig.now()
    seen = rig.wait_until(lambda o: o.flag, bound, 0.5, "button_fault")
    held_s = rig.now() - t0
    obs = seen if seen is not None else rig.observe("button_fault")
    m.measured = 1.0 if seen is not None else 0.0
    at = f"the button held {held_s:.1f} s"
    if expect_fault:
        m.check(
            "button_fault reported",
            seen is not None,
            f"button_fault {'set' if seen else 'clear'} with {at}",
            f"button_fault not reported with the button held {bound:g} s",
        )
    else:
        m.check(
            "no button_fault (S4 off)",
            seen is None,
            f"button_fault {'set' if seen else 'clear'} with {at}",
            "button_fault reported although S4 is off",
        )
    m.check(
        "current keeps flowing",
        _flowing(obs),
        f"{_discharge(obs)} with {at}",
        f"the discharge current stopped with the button held ({_discharge(obs)}); a button "
        "fault is a notice",
    )
    rig.hands.release("button")
    if seen is not None:
        cleared = rig.wait_until(lambda o: not o.flag, 5.0, 0.5, "button_fault")
        m.check(
            "fault clears on release",
            cleared is not None,
            f"button_fault {'clear' if cleared else 'still set'} after the release",
            "button_fault still set 5 s after the button was released",
        )
    m.note = f"button_fault after {held_s:.1f} s held" if seen is not None else m.note


def power_switch(rig: Rig, m: Measurement, expect_control: bool) -> None:
    """S57: on, the output is enabled only while the external self-locking switch is ON
    (the case's nominal state has it ON); off, the switch has no effect. Observed at each
    switch position: the FETs the BMS reports and the discharge current at the terminals.
    ``measured`` is 1 when the output followed the switch."""
    rig.condition("discharging")
    start = "ON" if expect_control else "OFF"
    first = rig.wait_until(rig.condition_flowing, 10.0, 0.2)
    obs = first or rig.observe(None)
    m.check(
        f"output on with the switch {start}",
        first is not None,
        f"{_discharge(obs)} with the switch {start}",
        f"no output with the switch {start}: {obs.describe()}",
    )
    if expect_control:
        rig.hands.release("power_switch", "switched OFF")
        off = rig.wait_until(lambda o: not _flowing(o), 5.0, 0.2)
        o_off = off or rig.observe(None)
        followed = off is not None
        m.check(
            "output off with the switch OFF",
            followed and not o_off.discharge_fet,
            f"with the switch OFF: {o_off.describe()}",
            f"the output stayed on with the switch OFF: {_discharge(o_off)}",
        )
        rig.hands.activate("power_switch", "switched ON again")
        on = rig.wait_until(rig.condition_flowing, 10.0, 0.2)
        o_on = on or rig.observe(None)
        m.check(
            "output back with the switch ON",
            on is not None,
            f"with the switch ON again: {_discharge(o_on)}",
            f"no output after the switch went ON again: {o_on.describe()}",
        )
    else:
        rig.hands.activate("power_switch", "switched ON")
        rig.wait(2.0)
        o_on = rig.observe(None)
        rig.hands.release("power_switch", "switched OFF")
        rig.wait(2.0)
        o_off = rig.observe(None)
        followed = not _flowing(o_off)
        m.check(
            "no effect with S57 off",
            _flowing(o_on) and _flowing(o_off),
            f"switch ON: {_discharge(o_on)}; switch OFF: {_discharge(o_off)}",
            f"the output followed the switch although S57 is off (ON: {_discharge(o_on)}; "
            f"OFF: {_discharge(o_off)})",
        )
    m.measured = 1.0 if followed else 0.0


def secondary_trip(rig: Rig, m: Measurement, expect_trip: bool) -> None:
    """S32: the secondary-trip input asserted raises secondary_trip_protection and stops the
    current at the terminals; S32 off: nothing happens. ``measured`` is 1 when it tripped."""
    bound = float(rig.params.get("react_s", 5.0))
    flag = "secondary_trip_protection"
    rig.condition("discharging")
    rig.settle()
    rig.hands.activate("secondary_trip", "asserted")
    if expect_trip:
        seen = rig.wait_until(lambda o: o.flag and not _flowing(o), bound, 0.1, flag)
        obs = seen or rig.observe(flag)
    else:
        rig.wait(bound)
        obs = rig.observe(flag)
    tripped = obs.flag
    m.measured = 1.0 if tripped else 0.0
    at = f"with the secondary-trip input asserted: {obs.describe(flag)}"
    if expect_trip:
        m.check("flag reported", obs.flag, at, f"{flag} not reported within {bound:g} s")
        m.check(
            "current stopped",
            not _flowing(obs),
            at,
            f"the discharge current kept flowing: {_discharge(obs)}",
        )
    else:
        m.check("no flag (S32 off)", not obs.flag, at, f"{flag} reported although S32 is off")
        m.check(
            "current keeps flowing", _flowing(obs), at, f"the current stopped: {_discharge(obs)}"
        )
    rig.hands.release("secondary_trip", "released")
    if expect_trip:
        back = rig.wait_until(_flowing, 10.0, 0.2)
        m.note = (
            "output back within 10 s of the release"
            if back is not None
            else "output still off 10 s after the release"
        )


_SHORT_FLAG = "output_short_circuit_protection"
_LOCK_FLAG = "output_short_circuit_lockout"


def _other_protections(obs: Observation) -> list[str]:
    return sorted(
        k
        for k, v in obs.flags.items()
        if v and ("protection" in k or "lockout" in k) and k not in (_SHORT_FLAG, _LOCK_FLAG)
    )


def short_circuit(rig: Rig, m: Measurement, expect_trip: bool) -> None:
    """S38: a short on the output (relay-driven contactor, held ``short_s``) raises
    output_short_circuit_protection and opens the discharge FET (no current at the
    terminals), and the output comes back by itself after the recovery delay (P70, "after
    60 seconds"); S38 off: no short-circuit protection (another current protection may act,
    and is named). ``measured`` is 1 when the short-circuit protection acted."""
    hold = float(rig.params.get("short_s", 0.2))
    rig.condition("discharging")
    rig.settle()
    rig.hands.pulse("short_circuit", hold, f"output shorted for {hold:g} s")
    obs = rig.observe(_SHORT_FLAG)
    m.measured = 1.0 if obs.flag else 0.0
    at = f"just after a {hold:g} s short: {obs.describe(_SHORT_FLAG)}"
    recovery_s = rig.parameter(70)
    bound = recovery_s * 2 + 10.0
    if expect_trip:
        m.check("flag reported", obs.flag, at, f"{_SHORT_FLAG} not reported")
        m.check(
            "current stopped",
            not obs.discharge_fet and obs.load_a < STOPPED_A,
            at,
            f"the discharge FET stayed closed: {_discharge(obs)}",
        )
        if not obs.flag:
            return
        back = rig.wait_until(_flowing, bound, poll_interval(rig, recovery_s))
        last = back or rig.observe(_SHORT_FLAG)
        m.check(
            "recovers by itself",
            back is not None,
            f"output back {back.t_s - obs.t_s:.1f} s after the short (P70 {recovery_s:g} s)"
            if back
            else f"{bound:g} s after the short: {last.describe(_SHORT_FLAG)}",
            f"the output did not come back within {bound:g} s (P70 {recovery_s:g} s)",
        )
        return
    others = _other_protections(obs)
    m.check("no short-circuit protection (S38 off)", not obs.flag, at, f"{_SHORT_FLAG} reported")
    m.check(
        "discharge FET not opened by the short-circuit protection",
        obs.discharge_fet or bool(others),
        at + (f"; acting instead: {', '.join(others)}" if others else ""),
        "the discharge FET opened with no protection reported",
    )
    if others:
        m.note = f"with S38 off the short was stopped by {', '.join(others)}"
        rig.wait_until(_flowing, bound, poll_interval(rig, recovery_s))


def short_circuit_lockout(rig: Rig, m: Measurement, expect_lock: bool) -> None:
    """S40: a short held on the output trips, recovers after P70 into the short, trips again;
    on, the P71-th trip in a row locks the output (output_short_circuit_lockout, no more
    recovery) until the BMS is power-cycled, which the case then does; off, it keeps
    recovering. ``measured`` is 1 when the output locked."""
    count = int(rig.parameter(71))
    recovery_s = rig.parameter(70)
    step = poll_interval(rig, recovery_s)
    bound = recovery_s * 2 + 10.0
    rig.condition("discharging")
    rig.settle()
    trips = 0
    locked = False
    rig.hands.activate("short_circuit", "held: a persisting short")
    try:
        for _ in range(count + 2):
            tripped = rig.wait_until(
                lambda o: o.flag and not o.discharge_fet, bound, min(step, 0.2), _SHORT_FLAG
            )
            if tripped is None:
                break
            trips += 1
            with rig.rec.step(f"short trip #{trips}: wait for the output to retry"):
                back = rig.wait_until(
                    lambda o: o.discharge_fet or bool(o.flags.get(_LOCK_FLAG)),
                    bound,
                    min(step, 0.2),
                    _SHORT_FLAG,
                )
            if back is None or not back.discharge_fet:
                locked = True
                break
    finally:
        rig.hands.release("short_circuit", "short removed")
    m.measured = 1.0 if locked else 0.0
    rig.wait(1.0)
    after = rig.observe(_LOCK_FLAG)
    lock_seen = f"after {trips} trips and the short removed: {after.describe(_LOCK_FLAG)}"
    if expect_lock:
        m.check(
            "locks out",
            locked and trips == count,
            f"{'locked' if locked else 'still recovering'} after {trips} trips "
            f"(P71 {count}); {lock_seen}",
            f"{'locked after ' + str(trips) if locked else 'no lock-out after ' + str(trips)} "
            f"trips, P71 is {count}",
        )
        m.check("lock-out flag", after.flag, lock_seen, f"{_LOCK_FLAG} not reported")
        if locked:
            rig.wait(bound)
            still = rig.observe(_LOCK_FLAG)
            m.check(
                "stays off without the short",
                not _flowing(still),
                f"{bound:g} s after the short was removed: {_discharge(still)}",
                f"the output came back after the lock-out: {_discharge(still)}",
            )
            from harness.procedures.power import power_cycle_by_hands

            power_cycle_by_hands(rig, "the short-circuit lock-out clears only by a power-cycle")
            rig.condition("discharging")
            again = rig.wait_until(_flowing, 10.0, 0.2, _LOCK_FLAG)
            seen_again = again or rig.observe(_LOCK_FLAG)
            m.check(
                "power-cycle clears the lock-out",
                again is not None and not seen_again.flag,
                f"after the power-cycle: {seen_again.describe(_LOCK_FLAG)}",
                f"still locked after the power-cycle: {seen_again.describe(_LOCK_FLAG)}",
            )
    else:
        m.check(
            "keeps recovering (S40 off)",
            not locked and trips >= count,
            f"{trips} trips, {'locked' if locked else 'no lock-out'}; {lock_seen}",
            f"{'locked' if locked else 'stopped tripping'} after {trips} trips with S40 off",
        )
        m.check("no lock-out flag", not after.flag, lock_seen, f"{_LOCK_FLAG} reported")
        rig.wait_until(_flowing, bound, step)
    m.note = f"{trips} short trips; recovery delay P70 {recovery_s:g} s, count P71 {count}"


def connection_fault(rig: Rig, m: Measurement) -> None:
    """P83 / S47: a known series resistance (the connection_fault relay's ``ohm`` in cell
    ``cell``'s sense lead) above P83 raises output_connection_fault at the next current step
    (a notice: the current keeps flowing); with P83 configured above that resistance it does
    not; without the resistor it does not. The impedance is estimated at current steps, so
    each observation follows a step from standby to the discharge current.

    ``measured`` is 1 when the fault followed P83 (above: reported, below: not)."""
    flag = "output_connection_fault"
    mohm, cell = rig.hands.values["mohm"], rig.hands.values["cell"]
    amps = abs(float(rig.params.get("current_a", 20.0)))
    p83 = rig.parameter(83)
    if mohm <= p83:
        raise CaseNotTestable(
            f"the connection-fault resistor ({mohm:g} mΩ in cell {cell}'s lead) does not "
            f"exceed P83 ({p83:g} mΩ)"
        )

    def stepped(what: str) -> Observation:
        with rig.rec.step(f"{what}: standby, then a {amps:g} A discharge step"):
            rig.condition("standby")
            rig.wait(1.0)
            rig.condition("discharging", current_a=amps)
            rig.settle()
            rig.wait(1.0)
            return rig.observe(flag)

    before = stepped("without the resistor")
    m.check(
        "no fault without the resistor",
        not before.flag,
        f"no resistor, {amps:g} A step: {before.describe(flag)}",
        f"{flag} reported with no resistor in any lead",
    )
    rig.condition("standby")
    rig.hands.activate("connection_fault", f"{mohm:g} mΩ in cell {cell}'s lead")
    above = stepped(f"{mohm:g} mΩ in cell {cell}'s lead, P83 {p83:g} mΩ")
    m.check(
        "fault reported above P83",
        above.flag,
        f"{mohm:g} mΩ in cell {cell}'s lead, P83 {p83:g} mΩ: {above.describe(flag)}",
        f"{flag} not reported with {mohm:g} mΩ in a lead (P83 {p83:g} mΩ)",
    )
    m.check(
        "current keeps flowing",
        _flowing(above),
        f"with the fault judged: {_discharge(above)}",
        f"the discharge current stopped ({_discharge(above)}); a connection fault is a notice",
    )
    top = rig.spec.param(83).range[1] if rig.spec.param(83).range else p83
    higher = round(min(top, mohm * 1.25), 1)
    below = None
    if higher > mohm:
        rig.condition("standby")
        rig.configure({83: higher}, {})
        below = stepped(f"P83 raised to {higher:g} mΩ, above the {mohm:g} mΩ resistor")
        m.check(
            "no fault below P83",
            not below.flag,
            f"P83 {higher:g} mΩ, {mohm:g} mΩ in the lead: {below.describe(flag)}",
            f"{flag} reported with P83 {higher:g} mΩ above the {mohm:g} mΩ in the lead",
        )
        rig.condition("standby")
        rig.configure({83: p83}, {})
    rig.condition("standby")
    rig.hands.release("connection_fault", "resistor out")
    m.measured = 1.0 if above.flag and (below is None or not below.flag) else 0.0
    m.note = f"{mohm:g} mΩ in cell {cell}'s sense lead, {amps:g} A steps"


def auto_activation(rig: Rig, m: Measurement, expect: bool) -> None:
    """S53 / P74: after undervoltage protection the output is forced on after P74 hours for
    60 s to wake a charger."""
    rig.condition("discharging")
    low = rig.parameter(7) - 0.050
    obs = rig.probe("cell", low, "cell_undervoltage_protection", 1.5)
    if not obs.flag:
        m.check(
            "undervoltage protection",
            False,
            f"cell 1 at {low:.3f} V: {obs.describe('cell_undervoltage_protection')}",
            "did not trip",
        )
        return
    rig.condition("standby")
    expected_s = rig.parameter(74) * 3600
    if expect:
        timed_until(
            rig,
            m,
            expected_s,
            lambda o: o.discharge_fet,
            "waiting_auto_activation",
            "output forced on",
        )
    else:
        rig.wait(expected_s * 1.5)
        o = rig.observe(None)
        m.measured = 1.0 if o.discharge_fet else 0.0
        m.check(
            "output stays off",
            not o.discharge_fet,
            f"discharge FET {fet_state(o.discharge_fet)} {expected_s * 1.5 / 3600:g} h after "
            f"the protection (P74 {rig.parameter(74):g} h)",
            "output forced on with S53 off",
        )


def history_interval(rig: Rig, m: Measurement, working: bool, expect_records: bool = True) -> None:
    """P76 / P77 / S59: history records every P76 minutes working, P77 in standby."""
    item = 76 if working else 77
    interval_s = rig.parameter(item) * 60
    if working:
        rig.condition("charging")
    else:
        rig.condition("standby")
    start = initial = n = rig.history_count()
    step = poll_interval(rig, interval_s)
    t0 = rig.now()
    first = None
    deadline = t0 + interval_s * 2.5
    while rig.now() < deadline:
        rig.wait(step)
        n = rig.history_count()
        if n > start and first is None:
            first, start = rig.now(), n
        elif first is not None and n > start:
            m.measured = to_unit(rig.now() - first, m.unit)
            m.uncertainty = to_unit(step, m.unit)
            rig.condition("standby")
            return
    rig.condition("standby")
    seen = (
        f"history records {initial} -> {n} in {(rig.now() - t0) / 60:g} min "
        f"({'working' if working else 'standby'}, P{item} {interval_s / 60:g} min)"
    )
    if expect_records:
        m.check(
            "records written",
            False,
            seen,
            f"fewer than two records in {interval_s * 2.5 / 60:g} min",
        )
    else:
        m.measured = 0.0 if first is None else 1.0
        m.check("no records (S59 off)", first is None, seen, "a history record was written")


def standby_shutdown(rig: Rig, m: Measurement, expect: bool) -> None:
    """P78 / S58: with no current for P78 hours the BMS shuts down (system state 'shutdown')."""
    expected_s = rig.parameter(78) * 3600
    rig.restart_idle()

    def asleep(o) -> bool:
        return bool(o.flags.get("shutdown"))

    if expect:
        timed_until(rig, m, expected_s, asleep, "shutdown", "standby shutdown")
        rig.condition("charger")  # a charger wakes it
        rig.wait(2.0)
        rig.condition("standby")
    else:
        rig.wait(expected_s * 1.5)
        o = rig.observe("shutdown")
        m.measured = 1.0 if o.flag else 0.0
        m.check(
            "stays awake (S58 off)",
            not o.flag,
            f"system state {'shutdown' if o.flag else 'awake'} after "
            f"{expected_s * 1.5 / 3600:g} h idle (P78 {rig.parameter(78):g} h)",
            "shut down with S58 off",
        )
