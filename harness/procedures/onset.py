"""Onsets: where a function starts acting, located on the bench instead of assumed.

Passive current limiting (S56) starts at the charge overcurrent alarm's current (P51) and
holds for P72 minutes whatever the current does then (BEHAVIOUR.md, P72), so a bisection
would have to wait P72 after every probe that acted. The onset is found instead by a rising
ramp from the recovery value (P52, where nothing may act) in steps of half the tolerance
band, each step dwelling past the confirmation time: one probe acts, at the end. The
measured value is the first charge current offered at which the current at the terminals
was held to the limit; its uncertainty is the step.
"""

from __future__ import annotations

from harness.procedures.record import Measurement
from harness.procedures.rig import Observation, Rig, on_off

FLAG = "current_limit_fet"


def _limited(obs: Observation, limit_a: float) -> bool:
    return obs.charge_fet and obs.supply_a <= limit_a + 0.5


def current_limit_onset(rig: Rig, m: Measurement) -> None:
    """S56 / P51: ramp the charge current the charger offers from ``start`` up to ``stop``
    in ``step`` A, dwelling ``dwell_s`` at each; the onset is the first offer at which the
    terminals carry no more than ``limit_a`` (+0.5 A) with the charge FET closed. Afterwards
    the charger goes off and the limit must let go within ``release_s`` (P72), so no later
    case inherits it."""
    start = rig.setup.num("start")
    stop = rig.setup.num("stop")
    step = rig.setup.num("step")
    dwell = rig.setup.num("dwell_s")
    limit_a = rig.setup.num("limit_a")
    release_s = rig.setup.num("release_s")
    rig.apply("charge_current", start)
    rig.condition("charging", current_a=start)
    quiet: Observation | None = None
    onset: Observation | None = None
    level = start
    with rig.rec.step(f"charge current offered {start:g} -> {stop:g} A in {step:g} A steps"):
        n = 0
        while level <= stop + 1e-9:
            obs = rig.probe("charge_current", round(level, 3), FLAG, dwell)
            if _limited(obs, limit_a):
                onset = obs
                break
            quiet = obs
            n += 1
            level = start + n * step
    if onset is None:
        last = quiet
        m.check(
            "limiting starts",
            False,
            f"charger offering {stop:g} A (the ramp's end): "
            + (last.describe(FLAG) if last else "nothing observed"),
            f"charge current not limited to {limit_a:g} A up to {stop:g} A offered",
        )
    else:
        m.measured = round(level, 3)
        m.bracket(step, "ramp step (last unlimited offer to the onset)")
        m.check(
            "limit flag at the onset",
            onset.flag,
            f"{FLAG} {on_off(onset.flag)} with {onset.supply_a:.2f} A flowing of {level:g} A "
            "offered",
            f"{FLAG} not reported although the charge current was held to {onset.supply_a:.2f} A",
        )
        if quiet is None:
            m.note = f"limited at the first offer, {start:g} A: the onset is at or below it"
        else:
            m.note = (
                f"{quiet.supply_a:.2f} A flowed unlimited at {quiet.stimulus:g} A offered; "
                f"limited to {onset.supply_a:.2f} A at {level:g} A"
            )
    rig.condition("standby")
    if onset is None:
        return
    with rig.rec.step("charger off: the limit lets go (P72)"):
        released = rig.wait_until(lambda o: not o.flag, release_s, 1.0, FLAG)
    last = released or rig.observe(FLAG)
    m.check(
        "limit released",
        released is not None,
        f"{FLAG} {on_off(last.flag)} {release_s:g} s or less after the charger went off",
        f"{FLAG} still on {release_s:g} s after the charger went off",
    )
