"""Charge activation: manual (the button) and automatic (P73-P75), after the protection
that starts the wait (a cell or pack undervoltage, or the remaining-capacity protection)."""

from __future__ import annotations

from harness.procedures.delay import poll_interval, timed_until
from harness.procedures.record import Measurement
from harness.procedures.rig import (
    NOMINAL_CELL_V,
    STOPPED_A,
    Observation,
    Rig,
    fet_state,
)


def _trigger(rig: Rig) -> tuple[str, str, str, float]:
    """(stimulus, what it moves, protection flag, level back to) of the undervoltage that
    starts the wait: the case's ``stimulus`` (default ``cell``: cell 1) with its
    ``trigger_flag`` (default the cell undervoltage protection) and ``nominal_level``
    (default the nominal cell voltage; the pack stimulus gives the nominal pack)."""
    stimulus = str(rig.params.get("stimulus", "cell"))
    flag = str(rig.params.get("trigger_flag", "cell_undervoltage_protection"))
    back = rig.setup.num("nominal_level") if "nominal_level" in rig.params else NOMINAL_CELL_V
    what = "cell 1" if stimulus == "cell" else stimulus
    return stimulus, what, flag, back


def _undervoltage_then_nominal(rig: Rig, m: Measurement) -> Observation | None:
    """The case's stimulus at its ``level`` (below the undervoltage protection it names)
    while discharging (the protection trips), then back to nominal; the observation 2 s
    later, or None (with a failed check) when the protection did not trip."""
    rig.condition("discharging")
    stimulus, what, flag, back = _trigger(rig)
    low = rig.setup.level(stimulus)
    with rig.rec.step(f"{what} to {low:.3f} V: {flag.replace('_', ' ')}"):
        obs = rig.probe(stimulus, low, flag, 1.5)
    if not obs.flag:
        m.check(
            "undervoltage protection",
            False,
            f"{what} at {low:.3f} V: {obs.describe(flag)}",
            f"{flag} did not trip",
        )
        return None
    with rig.rec.step(f"{what} back to {back:.3f} V"):
        rig.apply(stimulus, back)
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
    _, what, trigger_flag, back = _trigger(rig)
    m.check(
        "waits for manual activation",
        waiting.flag and not waiting.discharge_fet,
        f"2 s after {what} returned to {back:.3f} V: "
        + waiting.describe("waiting_manual_activation"),
        "discharge FET closed again without the button"
        if waiting.discharge_fet
        else "waiting flag not reported",
    )
    rig.hands.pulse("button", _press_s(rig), "manual activation")
    timed_until(
        rig, m, rig.setup.num("release_s"), lambda o: o.discharge_fet, None, "output released"
    )
    if m.measured is None:
        return
    # The full discharge current once the soft start is over.
    soft_s = rig.setup.num("flowing_within_s")
    full = rig.wait_until(rig.condition_flowing, soft_s, 0.2, "waiting_manual_activation")
    after = full or rig.observe("waiting_manual_activation")
    m.check(
        "protection released, current flows",
        full is not None and not after.flag and not after.flags.get(trigger_flag),
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
    release_s = rig.setup.num("release_s")
    bound = release_s * 1.5 + 10.0
    pressed = rig.now()
    back = rig.wait_until(
        lambda o: o.discharge_fet, bound, poll_interval(rig, bound), "waiting_manual_activation"
    )
    last = back or rig.observe("waiting_manual_activation")
    m.check(
        "released after the press",
        back is not None,
        (
            f"released {back.t_s - pressed:.1f} s after the press (configured "
            f"{release_s / 60:g} min): "
            if back
            else f"not released within {bound:g} s of the press: "
        )
        + last.describe("waiting_manual_activation"),
        f"output still off {bound:g} s after the press",
    )


def _protection_before_the_wait(rig: Rig, m: Measurement) -> str | None:
    """Trips the protection the case names while discharging, then rests (standby): its
    flag, or None after a failed check when it did not trip."""
    rig.condition("discharging")
    stimulus, what, flag, _ = _trigger(rig)
    low = rig.setup.level(stimulus)
    obs = rig.probe(stimulus, low, flag, 1.5)
    if not obs.flag:
        m.check(
            "protection before the wait",
            False,
            f"{what} at {low:g}: {obs.describe(flag)}",
            f"{flag} did not trip",
        )
        return None
    rig.condition("standby")
    return flag


def auto_activation(rig: Rig, m: Measurement, expect: bool) -> None:
    """S53 / P74: after the protection the case names (``stimulus`` at its ``level``,
    ``trigger_flag``; default cell 1 and the cell undervoltage protection; the spec names
    undervoltage and remaining-capacity protection) the output is forced on after the
    configured interval (``interval_s``) for 60 s to wake a charger."""
    flag = _protection_before_the_wait(rig, m)
    if flag is None:
        return
    expected_s = rig.setup.num("interval_s")
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
        # Watched until past the latest forcing the delay case accepts, polled finer than
        # the pulse (the output is forced on for ``pulse_s`` only, then off again).
        watch_s = expected_s + rig.setup.num("band_s") + rig.setup.num("confirm_s")
        step = min(poll_interval(rig, expected_s), rig.setup.num("pulse_s") / 3.0)
        t0 = rig.now()
        o = rig.wait_until(lambda ob: ob.discharge_fet, watch_s, step)
        after_h = (rig.now() - t0) / 3600
        if o is None:
            o = rig.observe(None)
        m.measured = 1.0 if o.discharge_fet else 0.0
        m.check(
            "output stays off",
            not o.discharge_fet,
            f"discharge FET {fet_state(o.discharge_fet)} {after_h:.3f} h after the protection "
            f"(configured {expected_s / 3600:g} h; watched every {step:g} s until "
            f"{watch_s / 3600:.3f} h)",
            f"output forced on {after_h:.3f} h after the protection with S53 off",
        )


def auto_activation_waiting(rig: Rig, m: Measurement) -> None:
    """S53 after the protection the case names (``stimulus`` at its ``level``,
    ``trigger_flag``): the wait for the automatic activation starts at once, the output held
    off (``hold_s`` later: ``waiting_auto_activation`` set, discharge FET open). The end of
    the wait, P74 later, is the delay case's (``auto_activation``)."""
    flag = _protection_before_the_wait(rig, m)
    if flag is None:
        return
    hold = rig.setup.num("hold_s")
    rig.wait(hold)
    o = rig.observe("waiting_auto_activation")
    m.measured = 1.0 if o.flag else 0.0
    m.check(
        "waiting for automatic activation",
        o.flag,
        f"{hold:g} s after {flag}: {o.describe('waiting_auto_activation')}",
        f"waiting_auto_activation not set after {flag}: no automatic activation follows",
    )
    m.check(
        "output held off while waiting",
        not o.discharge_fet,
        f"discharge FET {fet_state(o.discharge_fet)} {hold:g} s after {flag}",
        "output on while waiting for the automatic activation",
    )
