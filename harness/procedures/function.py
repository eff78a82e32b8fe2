"""Function procedures: behaviours that are neither a static threshold nor a single delay.

Each function returns through a ``Measurement``: a measured value against the spec's value
where the spec gives one (SOC, gap-compensation SOC, cycle share, compensation shift), and
checks for the observations that carry the verdict.
"""

from __future__ import annotations

from harness.procedures.delay import poll_interval, timed_until, to_unit
from harness.procedures.record import Measurement
from harness.procedures.rig import (
    NOMINAL_CELL_V,
    STOPPED_A,
    Observation,
    Rig,
)
from harness.procedures.rig import (
    charge_text as _charge,
)
from harness.procedures.rig import (
    on_off as _on,
)


def soc_reported(rig: Rig, m: Measurement, write_ah: float | None = None) -> None:
    """P59/P60: the reported SOC is remaining / full capacity (full = rated, P59), and
    coulomb counting moves the remaining capacity with the current.

    ``write_ah`` sets the remaining capacity first through the single write (0x49); the
    measured value is the SOC the BMS reports; the case gives the rated capacity in force
    (``rated_ah``) and the discharge that moves it (``discharge_a`` for ``discharge_s``)."""
    if write_ah is not None:
        with rig.rec.step(f"write remaining capacity {write_ah:g} Ah (0x49)"):
            rig.bench.bms.set_remaining_capacity(write_ah)
    rated = rig.setup.num("rated_ah")
    tele = rig.bench.bms.telemetry()
    m.measured = float(tele.soc_pct)
    m.check(
        "rated capacity reported",
        abs(tele.rated_ah - rated) <= 0.01,
        f"rated {tele.rated_ah:g} Ah reported, {rated:g} Ah configured",
        f"reported rated capacity {tele.rated_ah:g} Ah differs from the configured {rated:g} Ah",
    )
    amps, seconds = rig.setup.num("discharge_a"), rig.setup.num("discharge_s")
    hours = seconds / 3600.0
    with rig.rec.step(f"discharge {amps:g} A for {seconds:g} s: coulomb counting"):
        rig.condition("discharging", current_a=amps)
        rig.wait(seconds)
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


#: The SOC step of the P81 ramp. The first SOC that resumes is one step past the setting
#: (charging resumes below P81), so the value is at the step's edge: at 0.5 %-point against
#: the +-1 %-point tolerance the conforming twin read 95.5 % +- 0.58 (conditional).
GAP_STEP_PCT = 0.25


def gap_compensation(rig: Rig, m: Measurement, switch_on: bool = True) -> None:
    """P81 / S42: after a cell overvoltage protection, charging resumes only below P81 SOC.

    The SOC is stepped down in ``GAP_STEP_PCT`` steps from 98 %; the measured value is the
    first SOC at which charging resumed. The case gives the cell ``level`` beyond the cell
    overvoltage protection and the rated capacity (``rated_ah``)."""
    rated = rig.setup.num("rated_ah")
    rig.set_soc_pct(98.0)
    rig.condition("charging")
    trip_v = rig.setup.level("cell")
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
        pct -= GAP_STEP_PCT
        obs = rig.probe("soc", pct, "gap_compensation_waiting", 2.0)
        if obs.supply_a >= STOPPED_A and obs.charge_fet:
            m.measured = pct
            m.bracket(GAP_STEP_PCT, f"SOC step ({GAP_STEP_PCT:g} %-point)")
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
    through the remaining-capacity write in between, which moves no charge). The case gives
    the rated capacity in force (``rated_ah``)."""
    rated = rig.setup.num("rated_ah")
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
    m.bracket(share_step, "first increment seen at a poll (0.25 %-point of capacity)")
    m.bracket(share_step, "second increment seen at a poll (0.25 %-point of capacity)")


def impedance_compensation(
    rig: Rig, m: Measurement, position: int, measure: str, amps: float
) -> None:
    """P84-P87: the cell at the compensation ``position`` (configured) reads |I| x R higher
    while discharging.

    ``measure`` is ``impedance`` (the shift divided by the current, in mOhm, against the
    configured impedance) or ``position`` (the number of the cell whose reading moves)."""
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


def _balance_stimulus(rig: Rig) -> tuple[float, float]:
    """(top cell voltage, difference) of the case's balancing stimulus."""
    rig.balance_top_v = rig.setup.num("top_v")
    return rig.balance_top_v, rig.setup.level("balance_difference")


def balancing(rig: Rig, m: Measurement, condition: str, expect_on: bool) -> None:
    """S49 / S50: with an imbalance above the start difference (the case's ``level``, the
    top cell at ``top_v`` above the balancing voltage), balancing runs (or not)."""
    top, diff = _balance_stimulus(rig)
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
    """S52: balancing stops when the ambient is above its high-temperature alarm (the case's
    ``ntc:ambient`` level lies beyond it)."""
    _, diff = _balance_stimulus(rig)
    ambient = rig.setup.level("ntc:ambient")
    rig.condition("standby")
    rig.apply("balance_difference", diff)
    rig.apply("ntc:ambient", ambient)
    rig.wait(2.0)
    obs = rig.observe("balancing")
    m.measured = 0.0 if obs.flag else 1.0
    m.check(
        "balancing " + ("inhibited" if expect_inhibit else "continues"),
        (not obs.flag) == expect_inhibit,
        f"balancing {_on(obs.flag)} with ambient {ambient:g} C",
        f"balancing {'ran' if expect_inhibit else 'stopped'} with ambient {ambient:g} C "
        "(beyond the ambient high-temperature alarm)",
    )


def static_balancing_time(rig: Rig, m: Measurement, expect_stop: bool) -> float:
    """P65 / S51: static balancing stops after the configured time (the case's
    ``duration_s``; S51 on), or keeps going (off). Returns the bench time the rest began."""
    expected_s = rig.setup.num("duration_s")
    rig.restart_idle()
    idle_from = rig.now()
    _, diff = _balance_stimulus(rig)
    obs = rig.probe("balance_difference", diff, "balancing", 2.0)
    if not obs.flag:
        m.check(
            "balancing starts",
            False,
            f"balancing {_on(obs.flag)} 2 s after a {diff:.3f} V difference in standby",
            "static balancing did not start",
        )
        return idle_from
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
            f"(configured {expected_s / 3600:g} h)",
            "balancing stopped with S51 off",
        )
    return idle_from


def heating(rig: Rig, m: Measurement, expect_on: bool) -> None:
    """S31: with the charger present and a cold cell (the case's ``level``), the heater runs
    (or not)."""
    rig.condition("charger")
    cold = rig.setup.level("ntc:cell1")
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
    """S56 / P72: above the charge overcurrent alarm (the case's ``level``) the BMS limits
    the current, and re-checks after ``recheck_s``."""
    offered = rig.setup.level("charge_current")
    rig.apply("charge_current", offered)
    rig.condition("charging", current_a=offered)
    rig.wait(3.0)
    obs = rig.observe(None)
    limited = obs.supply_a <= 10.5
    if m.expected is not None and expect_limit and m.unit == "minute":
        timed_until(
            rig,
            m,
            rig.setup.num("recheck_s"),
            lambda o: o.supply_a > 10.5,
            None,
            "limit re-checked",
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


def history_interval(rig: Rig, m: Measurement, working: bool, expect_records: bool = True) -> None:
    """P76 / P77 / S59: history records every configured interval (the case's
    ``interval_s``), working or in standby. Two records are timed within 2.5 intervals;
    with S59 off (``expect_records`` False) 1.5 intervals without one prove none is due
    (a record comes at most one interval after any instant, plus its tolerance)."""
    interval_s = rig.setup.num("interval_s")
    if working:
        rig.condition("charging")
    else:
        rig.condition("standby")
    start = initial = n = rig.history_count()
    step = poll_interval(rig, interval_s)
    t0 = rig.now()
    first = None
    span = 2.5 if expect_records else 1.5
    deadline = t0 + interval_s * span
    while rig.now() < deadline:
        rig.wait(step)
        n = rig.history_count(n)
        if n > start and first is None:
            first, start = rig.now(), n
        elif first is not None and n > start:
            m.measured = to_unit(rig.now() - first, m.unit)
            m.bracket(to_unit(step, m.unit), f"polling period {step:g} s")
            rig.condition("standby")
            return
    rig.condition("standby")
    seen = (
        f"history records {initial} -> {n} in {(rig.now() - t0) / 60:g} min "
        f"({'working' if working else 'standby'}, interval {interval_s / 60:g} min)"
    )
    if expect_records:
        m.check(
            "records written",
            False,
            seen,
            f"fewer than two records in {interval_s * span / 60:g} min",
        )
    else:
        m.measured = 0.0 if first is None else 1.0
        m.check("no records (S59 off)", first is None, seen, "a history record was written")


def asleep(o: Observation) -> bool:
    """The BMS is in its standby shutdown (system state 'shutdown')."""
    return bool(o.flags.get("shutdown"))


def stays_awake(
    rig: Rig,
    m: Measurement,
    idle_from: float,
    idle_s: float,
    band_s: float,
    confirm_s: float,
    first: Observation | None = None,
) -> Observation:
    """S58 off: the rest that began at ``idle_from`` goes on until past the latest shutdown
    P78's delay case accepts (the delay ``idle_s`` in force + its tolerance ``band_s``) plus
    ``confirm_s``, and the BMS must stay awake all along (check "stays awake (S58 off)"; a
    shutdown holds until a charger wakes it, so the last poll tells). ``first``: an
    observation the caller already made now. Returns the last observation."""
    until = idle_from + idle_s + band_s + confirm_s
    end = first or rig.observe("shutdown")
    if not asleep(end) and rig.now() < until:
        step = poll_interval(rig, idle_s)
        end = rig.wait_until(asleep, until - rig.now(), step, "shutdown") or rig.observe("shutdown")
    idle_h = (end.t_s - idle_from) / 3600
    m.check(
        "stays awake (S58 off)",
        not asleep(end),
        f"system state {'shutdown' if asleep(end) else 'awake'} after {idle_h:.3f} h of rest "
        f"(P78 {idle_s / 3600:g} h; watched until {(until - idle_from) / 3600:.3f} h)",
        f"shut down after {idle_h:.3f} h of rest with S58 off",
    )
    return end


def standby_shutdown(rig: Rig, m: Measurement, expect: bool) -> None:
    """P78 / S58: with no current for the configured time (the case's ``idle_s``) the BMS
    shuts down (system state 'shutdown').

    With S58 off (``expect`` False) the BMS is watched, idle, until past the latest shutdown
    the delay case accepts (``idle_s`` + its tolerance ``band_s``) plus a confirmation
    (``confirm_s``): a shutdown at any time in that window fails the case (:func:`stays_awake`;
    the regression proves S58 off inside P65's rest instead, switches.yaml row 58)."""
    expected_s = rig.setup.num("idle_s")
    rig.restart_idle()
    if expect:
        timed_until(rig, m, expected_s, asleep, "shutdown", "standby shutdown")
        rig.condition("charger")  # a charger wakes it
        rig.wait(2.0)
        rig.condition("standby")
        return
    band_s, confirm_s = rig.setup.num("band_s"), rig.setup.num("confirm_s")
    end = stays_awake(rig, m, rig.now(), expected_s, band_s, confirm_s)
    m.measured = 1.0 if asleep(end) else 0.0
    if asleep(end):
        rig.condition("charger")  # wake it for the next case
        rig.wait(2.0)
        rig.condition("standby")
