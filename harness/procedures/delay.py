"""Delay procedures: from a clean state, step the stimulus beyond the threshold and time the
response.

Timing source: the scope when the bench has one (required for the 30 ms transient trip:
polling the BMS over RS485 costs tens of ms per request and cannot resolve it), otherwise
polling the BMS and the instrument read-backs, with the poll interval stated as the
resolution. Times are taken on the bench's clock, so on the simulated bench they are virtual
and exact, and on a real bench they are wall time.
"""

from __future__ import annotations

from bmsspec import SECONDS_PER_UNIT
from harness.procedures import expect
from harness.procedures.record import CaseNotTestable, Measurement
from harness.procedures.rig import STOPPED_A, Observation, Rig, fet_state

#: The time resolution of a scope capture as the scope driver reads edges (1 ms).
SCOPE_RESOLUTION_S = 0.001


def to_unit(seconds: float, unit: str) -> float:
    return seconds / SECONDS_PER_UNIT[unit]


#: A poll later than twice the polling period plus this lost its resolution to the link
#: (a lost reply costs its timeout plus the late guard; line time and a corrupt answer's
#: retry stay below it).
LOST_POLL_MARGIN_S = 0.25


def poll_interval(rig: Rig, expected_s: float) -> float:
    """Resolution of a polled delay: 1/200 of the delay, not finer than the bench allows."""
    floor = float(getattr(rig.bench, "poll_interval_s", 0.05))
    return max(floor, expected_s / 200.0)


def poll_resolution(
    rig: Rig, end: Observation, step: float, source: str, since: float | None = None
) -> tuple[float, str]:
    """The timing resolution a polled delay achieved at its deciding poll ``end``: the
    polling period ``step``, unless the link lost replies just before it (each lost reply
    costs its timeout and the late guard on the bench clock), in which case the time since
    the poll before it (or since ``since``, when the timed window began). A lost resolution
    is noted on the rig and in the record's note (``runner.run_case``); the wider bracket
    makes a value near a limit conditional. Returns the width and the budget's source."""
    gap = end.gap_s
    if gap is not None and since is not None:
        gap = min(gap, end.t_s - since)
    if gap is None or gap <= 2 * step + LOST_POLL_MARGIN_S:
        return step, source
    rig.resolution_lost.append(
        f"the deciding poll came {gap:.3g} s after the one before it (polling every {step:g} "
        "s): the BMS link lost replies in between"
    )
    return gap, f"{source}, stretched to {gap:.3g} s by lost link replies"


def bracket_polled(
    rig: Rig,
    m: Measurement,
    end: Observation,
    step: float,
    source: str,
    since: float | None = None,
) -> None:
    """``m``'s bracket for a delay decided at poll ``end``: the resolution the polls achieved
    (``poll_resolution``), in the measurement's unit."""
    width, text = poll_resolution(rig, end, step, source, since)
    m.bracket(to_unit(width, m.unit), text)


def _edges_seen(scope) -> str:
    """What the capture holds on the current channel: its first rising and falling edges."""

    def at(edge: str) -> str:
        t = scope.edge_time_s("current", edge)
        return "none captured" if t is None else f"at {t * 1000:.1f} ms"

    return f"scope current channel: first rise {at('rise')}, first fall {at('fall')}"


def _opened(obs: Observation, side: str) -> bool:
    if side == "charge":
        return not obs.charge_fet and obs.supply_a < STOPPED_A
    return not obs.discharge_fet and obs.load_a < STOPPED_A


def overcurrent_delay(rig: Rig, m: Measurement, side: str, flag: str) -> None:
    """P67 / P68: hold a current just beyond the overcurrent protection (the case's
    ``level``) and time until the FET opens (the case's ``delay_s``)."""
    expected_s = rig.setup.num("delay_s")
    amps = abs(rig.setup.level())
    timeout = expected_s * 2 + 5
    scope = rig.bench.scope
    with rig.rec.step(f"{side} {amps:g} A, beyond the {side} overcurrent protection"):
        if side == "charge":
            rig.apply("charge_current", amps)
        else:
            rig.apply("discharge_current", amps)
        if scope is not None:
            scope.arm_single(timebase_s=timeout)
        rig.condition("charging" if side == "charge" else "discharging", current_a=amps)
        t0 = rig.now()
        step = poll_interval(rig, expected_s)
        end = rig.wait_until(lambda o: _opened(o, side), timeout_s=timeout, poll_s=step, flag=flag)
    if end is None:
        last = rig.observe(flag)
        m.check(
            "FET opens",
            False,
            f"{timeout:g} s after the {amps:g} A step: {last.describe(flag)}",
            f"{side} current still flowing {timeout:g} s after the step",
        )
        return
    if scope is not None:
        delay = scope.delay_between_edges_s("current", "rise", "current", "fall")
        m.note = "timed on the scope (current edge to current edge)"
        m.bracket(to_unit(SCOPE_RESOLUTION_S, m.unit), "scope edge timing resolution (1 ms)")
        m.timed_on_scope = True
        if delay is None:
            m.check(
                "scope saw both edges",
                False,
                _edges_seen(scope),
                "no rising/falling current edge pair captured",
            )
            return
    else:
        delay = end.t_s - t0
        m.note = f"timed by polling every {step:g} s"
        bracket_polled(rig, m, end, step, f"polling period {step:g} s", t0)
    m.measured = to_unit(delay, m.unit)
    m.check(
        "flag reported",
        end.flag,
        f"{flag} {'reported' if end.flag else 'not reported'}, {side} FET "
        f"{fet_state(end.charge_fet if side == 'charge' else end.discharge_fet)}, "
        f"{m.measured:g} {m.unit} after the step",
        f"{flag} not reported after the FET opened",
    )
    # The whole state where the FET opened: the other FET closed, only declared flags.
    condition = "charging" if side == "charge" else "discharging"
    expect.judge_at(
        m,
        rig.params,
        end,
        acted=True,
        condition=condition,
        place=f"when the {side} FET opened",
        spec=rig.spec,
    )


def transient_delay(rig: Rig, m: Measurement, flag: str) -> None:
    """P69: a load step beyond the transient overcurrent protection (the case's ``level``),
    timed on the scope."""
    scope = rig.bench.scope
    if scope is None:
        raise CaseNotTestable(
            "the 30 ms transient trip needs a scope: RS485 polling cannot resolve it"
        )
    amps = abs(rig.setup.level())
    base = 5.0
    rig.condition("discharging", current_a=base)
    rig.settle()
    with rig.rec.step(f"transient {base:g} A -> {amps:g} A (pulse 200 ms), scope armed"):
        rig.bench.load.configure_transient(
            a_a=base, b_a=amps, a_width_s=0.5, b_width_s=0.2, mode="pulse"
        )
        rig.bench.load.transient(True)
        scope.arm_single(timebase_s=0.5)
        rig.bench.load.trigger()
        rig.wait(0.4)
    end = rig.observe(flag)
    rig.bench.load.transient(False)
    delay = scope.delay_between_edges_s("current", "rise", "current", "fall")
    m.note = "timed on the scope: current step to current interruption"
    m.bracket(to_unit(SCOPE_RESOLUTION_S, m.unit), "scope edge timing resolution (1 ms)")
    m.timed_on_scope = True
    if delay is None:
        m.check(
            "scope saw the interruption",
            False,
            _edges_seen(scope),
            "no falling current edge after the step",
        )
        return
    m.measured = to_unit(delay, m.unit)
    m.check(
        "flag reported",
        end.flag,
        f"{flag} {'reported' if end.flag else 'not reported'} 0.4 s after the trigger",
        f"{flag} not reported",
    )
    m.check(
        "discharge FET open",
        not end.discharge_fet,
        f"discharge FET {fet_state(end.discharge_fet)} 0.4 s after the trigger, discharge "
        f"current {end.load_a:.2f} A",
        "discharge FET still closed after the transient",
    )
    expect.judge_at(
        m,
        rig.params,
        end,
        acted=end.flag or not end.discharge_fet,
        condition="discharging",
        place="0.4 s after the transient",
        spec=rig.spec,
    )


def overcurrent_recovery(rig: Rig, m: Measurement) -> None:
    """P70: after a discharge overcurrent trip (the case's ``level``, tripping within
    ``trip_within_s``), the output comes back after ``recovery_s`` with the load back at
    ``return_a``."""
    amps = abs(rig.setup.level())
    trip_timeout = rig.setup.num("trip_within_s")
    expected_s = rig.setup.num("recovery_s")
    back_a = rig.setup.num("return_a")
    rig.apply("discharge_current", amps)
    rig.condition("discharging", current_a=amps)
    step = poll_interval(rig, expected_s)
    tripped = rig.wait_until(
        lambda o: _opened(o, "discharge"), trip_timeout, step, "discharge_overcurrent_protection"
    )
    if tripped is None:
        flag = "discharge_overcurrent_protection"
        last = rig.observe(flag)
        m.check(
            "overcurrent trips",
            False,
            f"{trip_timeout:g} s at {amps:g} A: {last.describe(flag)}",
            f"no trip within {trip_timeout:g} s at {amps:g} A",
        )
        return
    with rig.rec.step("load back to a normal current; wait for the output to return"):
        rig.apply("discharge_current", back_a)
        back = rig.wait_until(
            lambda o: o.discharge_fet and o.load_a >= STOPPED_A, expected_s * 2 + 5, step
        )
    if back is None:
        last = rig.observe(None)
        m.check(
            "output returns",
            False,
            f"{expected_s * 2 + 5:g} s after the trip, load back at {back_a:g} A: "
            + last.describe(),
            f"output still off {expected_s * 2 + 5:g} s after the trip",
        )
        return
    m.measured = to_unit(back.t_s - tripped.t_s, m.unit)
    for seen, what, since in ((tripped, "trip", None), (back, "return", tripped.t_s)):
        text = f"{what} seen by polling every {step:g} s"
        bracket_polled(rig, m, seen, step, text, since)
    m.note = f"timed by polling every {step:g} s (trip and return both polled)"


def lockout(rig: Rig, m: Measurement, kind: str = "discharge") -> None:
    """P71: keep the overcurrent; count trips until the output stays off.

    ``kind`` is ``discharge`` (overcurrent held by the load) or ``transient`` (a pulse after
    every return; the lock-out needs S39). The measured value is the number of trips after
    which the output no longer returns within twice the recovery delay. The case gives the
    level, the lock-out ``count``, the ``recovery_s`` and how soon a trip comes
    (``trip_within_s``).
    """
    limit = rig.setup.count("count")
    recovery_s = rig.setup.num("recovery_s")
    trip_timeout = rig.setup.num("trip_within_s")
    step = poll_interval(rig, recovery_s)
    trips = 0
    amps = abs(rig.setup.level())
    flag = (
        "discharge_overcurrent_protection"
        if kind == "discharge"
        else "transient_overcurrent_protection"
    )
    if kind == "discharge":
        rig.apply("discharge_current", amps)
        rig.condition("discharging", current_a=amps)
    else:
        base_a = rig.setup.num("base_a")
        rig.condition("discharging", current_a=base_a)
        rig.bench.load.configure_transient(
            a_a=base_a, b_a=amps, a_width_s=0.5, b_width_s=0.2, mode="pulse"
        )
        rig.bench.load.transient(True)
    locked = False
    for _ in range(limit + 2):
        if kind == "transient":
            rig.settle(timeout_s=recovery_s + 10)  # past the soft start after a return
            rig.bench.load.trigger()
            rig.wait(0.3)
        tripped = rig.wait_until(
            lambda o: _opened(o, "discharge") or (o.flag and not o.discharge_fet),
            trip_timeout,
            min(step, 0.1),
            flag,
        )
        if tripped is None:
            last = rig.observe(flag)
            m.check(
                "overcurrent trips",
                False,
                f"{trip_timeout:g} s into trip attempt #{trips + 1} at {amps:g} A: "
                + last.describe(flag),
                f"no trip #{trips + 1}",
            )
            break
        trips += 1
        with rig.rec.step(f"trip #{trips}: wait for the output to return"):
            back = rig.wait_until(lambda o: o.discharge_fet, recovery_s * 2 + 5, step, flag)
        if back is None:
            locked = True
            break
    if kind == "transient":
        rig.bench.load.transient(False)
    rig.condition("standby")
    m.measured = float(trips) if locked else None
    if not locked:
        m.check(
            "locks out",
            False,
            f"output returned within {recovery_s * 2 + 5:g} s after each of {trips} trips "
            f"(lock-out count {limit})",
            f"output still returned after {trips} trips (lock-out count {limit})",
        )
    else:
        status = rig.observe(None)
        lock_flag = "transient_overcurrent_lockout" if kind == "transient" else None
        if lock_flag:
            shown = bool(status.flags.get(lock_flag, False))
            m.check(
                "lock-out flag",
                shown,
                f"{lock_flag} {'set' if shown else 'clear'} after {trips} trips, discharge FET "
                f"{fet_state(status.discharge_fet)}",
                f"{lock_flag} not reported",
            )
    m.note = f"{trips} trips counted; recovery delay {recovery_s:g} s"


def soft_start(rig: Rig, m: Measurement) -> None:
    """P58: with the load on (the case's ``level``), switch the discharge FET on and time
    until the full current flows (the pre-charge phase holds it back ``soft_start_ms``)."""
    amps = abs(rig.setup.level())
    expected_s = rig.setup.num("soft_start_ms") / 1000.0
    rig.bench.bms.control(0, 0x1F)  # discharge FET off
    rig.apply("discharge_current", amps)
    rig.condition("discharging", current_a=amps)
    rig.wait(0.2)
    step = max(0.001, expected_s / 200.0)
    with rig.rec.step(f"discharge FET on with the load at {amps:g} A"):
        rig.bench.bms.control(0, 0x10)
        t0 = rig.now()
        full = rig.wait_until(lambda o: o.load_a >= 0.9 * amps, expected_s * 2 + 2, step)
    if full is None:
        last = rig.observe(None)
        m.check(
            "full current flows",
            False,
            f"{expected_s * 2 + 2:g} s after the discharge FET on command: {last.describe()}",
            f"load current below {0.9 * amps:g} A after {expected_s * 2 + 2:g} s",
        )
        return
    m.measured = to_unit(full.t_s - t0, m.unit)
    bracket_polled(rig, m, full, step, f"polling period {step * 1000:g} ms", t0)
    m.note = f"timed by polling every {step * 1000:g} ms"


def timed_until(
    rig: Rig, m: Measurement, expected_s: float, predicate, flag: str | None, what: str
) -> None:
    """Generic long delay: the condition is already set; poll until ``predicate`` holds."""
    step = poll_interval(rig, expected_s)
    t0 = rig.now()
    end = rig.wait_until(predicate, expected_s * 1.5 + step * 2, step, flag)
    if end is None:
        last = rig.observe(flag)
        waited = to_unit(rig.now() - t0, m.unit)
        m.check(
            what,
            False,
            f"after {waited:g} {m.unit}: {last.describe(flag)}",
            f"not seen within {to_unit(expected_s * 1.5, m.unit):g} {m.unit}",
        )
        return
    m.measured = to_unit(end.t_s - t0, m.unit)
    bracket_polled(rig, m, end, step, f"polling period {step:g} s", t0)
    m.note = f"timed by polling every {step:g} s"
