"""Procedures that need bench hardware beyond supply, load and cells: the button, the power
switch, the secondary-trip input, an output short, a series resistance in a sense lead."""

from __future__ import annotations

from harness.procedures.delay import poll_interval
from harness.procedures.record import CaseNotTestable, Measurement
from harness.procedures.rig import (
    STOPPED_A,
    Observation,
    Rig,
    fet_state,
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
    recovery_s = rig.setup.num("recovery_s")
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
            f"output back {back.t_s - obs.t_s:.1f} s after the short (recovery {recovery_s:g} s)"
            if back
            else f"{bound:g} s after the short: {last.describe(_SHORT_FLAG)}",
            f"the output did not come back within {bound:g} s (recovery {recovery_s:g} s)",
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
    count = rig.setup.count("count")
    recovery_s = rig.setup.num("recovery_s")
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
            f"(count {count}); {lock_seen}",
            f"{'locked after ' + str(trips) if locked else 'no lock-out after ' + str(trips)} "
            f"trips, the count is {count}",
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
    m.note = f"{trips} short trips; recovery delay {recovery_s:g} s, count {count}"


def connection_fault(rig: Rig, m: Measurement, case_row: int) -> None:
    """P83 / S47: a known series resistance (the connection_fault relay's ``ohm`` in cell
    ``cell``'s sense lead) above P83 raises output_connection_fault at the next current step
    (a notice: the current keeps flowing); with P83 configured above that resistance it does
    not; without the resistor it does not. The impedance is estimated at current steps, so
    each observation follows a step from standby to the discharge current. ``case_row`` is
    the row the case tests (its threshold, ``acts_above_mohm``, raised up to ``max_mohm``).

    ``measured`` is 1 when the fault followed P83 (above: reported, below: not)."""
    flag = "output_connection_fault"
    mohm, cell = rig.hands.values["mohm"], rig.hands.values["cell"]
    amps = abs(float(rig.params.get("current_a", 20.0)))
    p83 = rig.setup.num("acts_above_mohm")
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
    top = rig.setup.num("max_mohm")
    higher = round(min(top, mohm * 1.25), 1)
    below = None
    if higher > mohm:
        rig.condition("standby")
        rig.configure({case_row: higher}, {})
        below = stepped(f"P83 raised to {higher:g} mΩ, above the {mohm:g} mΩ resistor")
        m.check(
            "no fault below P83",
            not below.flag,
            f"P83 {higher:g} mΩ, {mohm:g} mΩ in the lead: {below.describe(flag)}",
            f"{flag} reported with P83 {higher:g} mΩ above the {mohm:g} mΩ in the lead",
        )
        rig.condition("standby")
        rig.configure({case_row: p83}, {})
    rig.condition("standby")
    rig.hands.release("connection_fault", "resistor out")
    m.measured = 1.0 if above.flag and (below is None or not below.flag) else 0.0
    m.note = f"{mohm:g} mΩ in cell {cell}'s sense lead, {amps:g} A steps"
