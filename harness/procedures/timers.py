"""Timers that restart as the spec says.

- An overcurrent that falls back before its delay does not trip, and the next excursion
  trips only after the full delay again (the delay timer restarts with each excursion).
- Static balancing time (P65, S51) counts a rest period: after it ran out, a charge starts
  it again, so balancing resumes and keeps going. The same rest can prove S58 off
  (``awake_watch``): it goes on past the standby shutdown delay, and the BMS stays awake.
"""

from __future__ import annotations

from harness.procedures.delay import bracket_polled, poll_interval, to_unit
from harness.procedures.function import asleep, static_balancing_time, stays_awake
from harness.procedures.record import BenchFault, Measurement
from harness.procedures.rig import STOPPED_A, Observation, Rig, fet_state, on_off
from harness.procedures.setup import Setup


def _side(rig: Rig) -> str:
    side = rig.setup.text("side")
    if side not in ("charge", "discharge"):
        raise BenchFault(f"{rig.setup.case_id}: params 'side' {side!r}: charge or discharge")
    return side


def _opened(obs: Observation, side: str) -> bool:
    if side == "charge":
        return not obs.charge_fet and obs.supply_a < STOPPED_A
    return not obs.discharge_fet and obs.load_a < STOPPED_A


def _fet(obs: Observation, side: str) -> str:
    return f"{side} FET {fet_state(obs.charge_fet if side == 'charge' else obs.discharge_fet)}"


def overcurrent_restart(rig: Rig, m: Measurement) -> None:
    """P67 / P68: an excursion beyond the overcurrent protection (the case's ``level``) for
    ``first_s`` (shorter than the delay ``delay_s``) must not trip; the current falls back
    to ``return_a`` for ``gap_s``; a second excursion must trip only ``delay_s`` after it
    started. The measured value is the second excursion's time to trip; a timer that kept
    counting from the first excursion measures short. Afterwards the output must come back
    within ``recovery_s`` (P70) with the current back at ``return_a``."""
    side = _side(rig)
    flag = rig.setup.text("flag")
    amps = abs(rig.setup.level())
    delay_s = rig.setup.num("delay_s")
    first_s = rig.setup.num("first_s")
    gap_s = rig.setup.num("gap_s")
    back_a = rig.setup.num("return_a")
    recovery_s = rig.setup.num("recovery_s")
    stimulus = "charge_current" if side == "charge" else "discharge_current"
    condition = "charging" if side == "charge" else "discharging"
    step = poll_interval(rig, delay_s)
    with rig.rec.step(f"{side} {amps:g} A for {first_s:g} s (delay {delay_s:g} s)"):
        rig.apply(stimulus, amps)
        rig.condition(condition, current_a=amps)
        # Timed from when the full current flows (a soft start after a FET closed holds it).
        flowing = rig.wait_until(
            lambda o: rig.condition_flowing(o) or _opened(o, side), 10.0, step, flag
        )
        if flowing is None or not rig.condition_flowing(flowing):
            last = flowing or rig.observe(flag)
            m.check(
                "current flows",
                False,
                f"10 s after the {amps:g} A step: {last.describe(flag)}",
                f"the first excursion's {amps:g} A did not flow",
            )
            return
        t_first = flowing.t_s
        early = rig.wait_until(lambda o: _opened(o, side), first_s, step, flag)
    if early is not None and early.t_s - t_first > first_s:
        # Seen only after the excursion's planned end: the poll before it came late (lost
        # link replies cost bench time), so the current flowed longer than planned.
        raise BenchFault(
            f"the first {amps:g} A excursion lasted at least {early.t_s - t_first:.2f} s, not "
            f"{first_s:g} s (the poll before the last came {early.gap_s or 0:.3g} s earlier: "
            "the BMS link lost replies); the trip it then saw proves nothing about the delay"
        )
    if early is not None:
        m.check(
            "no trip before the delay",
            False,
            f"{early.describe(flag)} {early.t_s - t_first:.2f} s into the first {amps:g} A "
            "excursion",
            f"tripped within {first_s:g} s of the first excursion (delay {delay_s:g} s)",
        )
        return
    with rig.rec.step(f"{side} current back to {back_a:g} A for {gap_s:g} s"):
        rig.apply(stimulus, back_a)
        during = rig.wait_until(lambda o: _opened(o, side), gap_s, step, flag)
        fell_back = rig.observe(flag)
    m.check(
        "no trip after falling back",
        during is None and not fell_back.flag,
        f"{gap_s:g} s at {back_a:g} A after {first_s:g} s at {amps:g} A: "
        + fell_back.describe(flag),
        f"{flag} set or {side} FET opened after the current fell back before the delay",
    )
    if during is not None:
        return
    with rig.rec.step(f"{side} {amps:g} A again: the delay starts again"):
        rig.apply(stimulus, amps)
        t0 = rig.now()
        end = rig.wait_until(lambda o: _opened(o, side), delay_s * 2 + 5, step, flag)
    if end is None:
        last = rig.observe(flag)
        m.check(
            "FET opens",
            False,
            f"{delay_s * 2 + 5:g} s into the second excursion: {last.describe(flag)}",
            f"{side} current still flowing {delay_s * 2 + 5:g} s into the second excursion",
        )
        return
    m.measured = to_unit(end.t_s - t0, m.unit)
    bracket_polled(rig, m, end, step, f"polling period {step:g} s", t0)
    m.note = (
        f"first excursion {first_s:g} s, {gap_s:g} s back at {back_a:g} A; timed by polling "
        f"every {step:g} s"
    )
    m.check(
        "flag reported",
        end.flag,
        f"{flag} {'reported' if end.flag else 'not reported'}, {_fet(end, side)}, "
        f"{m.measured:g} {m.unit} into the second excursion",
        f"{flag} not reported after the {side} FET opened",
    )
    with rig.rec.step(f"{side} current back to {back_a:g} A: the output returns (P70)"):
        rig.apply(stimulus, back_a)
        back = rig.wait_until(
            lambda o: not _opened(o, side) and not o.flag, recovery_s, step * 4, flag
        )
    last = back or rig.observe(flag)
    m.check(
        "output returns",
        back is not None,
        f"{recovery_s:g} s or less after the trip at {back_a:g} A: {last.describe(flag)}",
        f"{side} output still off {recovery_s:g} s after the trip",
    )


def static_balancing_restart(rig: Rig, m: Measurement) -> None:
    """P65 / S51: static balancing stops after the configured time (``duration_s``: the
    measured value, as ``delay.static_balancing_time``); then a brief charge starts the
    rest period again: balancing must resume within ``resume_within_s`` and still run
    ``hold_s`` later. A timer the charge did not restart stops it again at once (or never
    lets it resume)."""
    hold_s = rig.setup.num("hold_s")
    resume_s = rig.setup.num("resume_within_s")
    idle_from = static_balancing_time(rig, m, expect_stop=True)
    if "awake_watch" in rig.setup.params:
        _awake_watch(rig, m, idle_from)
    if m.measured is None:
        return
    rig.restart_idle()
    resumed = rig.wait_until(lambda o: o.flag, resume_s, 0.5, "balancing")
    last = resumed or rig.observe("balancing")
    m.check(
        "balancing resumes after a charge",
        resumed is not None,
        f"balancing {on_off(last.flag)} {resume_s:g} s or less after a brief charge",
        f"static balancing did not resume within {resume_s:g} s of a charge (the rest period "
        "was not restarted)",
    )
    if resumed is None:
        return
    rig.wait(hold_s)
    still = rig.observe("balancing")
    m.check(
        "static balancing time restarted",
        still.flag,
        f"balancing {on_off(still.flag)} {hold_s:g} s after it resumed (the configured "
        f"time is {rig.setup.num('duration_s'):g} s)",
        f"balancing stopped within {hold_s:g} s of resuming after a charge, configured "
        f"{rig.setup.num('duration_s'):g} s: the charge did not restart the static "
        "balancing time",
    )


def _awake_watch(rig: Rig, m: Measurement, idle_from: float) -> None:
    """S58 off in the rest that began at ``idle_from`` (params ``awake_watch``: the standby
    shutdown delay ``idle_s`` in force, its tolerance ``band_s``, ``confirm_s``; the case
    runs with S58 off): the BMS stays awake until past the latest shutdown P78's delay case
    accepts (:func:`function.stays_awake`). It must also have been awake when balancing was
    seen to stop, or that stop may have been the shutdown's."""
    watch = Setup(rig.setup.case_id, rig.setup.params["awake_watch"])
    first = rig.observe("shutdown")
    if m.measured is not None:
        m.check(
            "awake when balancing stopped",
            not asleep(first),
            f"system state {'shutdown' if asleep(first) else 'awake'} when the stop was seen",
            "the BMS was shut down when balancing was seen to stop: the stop cannot be told "
            "from a standby shutdown (S58 off)",
        )
    idle_s, band_s, confirm_s = (watch.num(k) for k in ("idle_s", "band_s", "confirm_s"))
    stays_awake(rig, m, idle_from, idle_s, band_s, confirm_s, first)
