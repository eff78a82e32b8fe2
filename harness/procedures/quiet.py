"""Quiet procedure: outside its operating condition a row does not act.

The plan's quiet case (``harness/plan/conditions.py``) gives the stimulus, the value beyond
the row's trip (``level``: the trip search's far value, where the row certainly acts in its
own condition), the other condition the bench is put in, the row's flag and FETs, the dwell
and the flags the other condition's own rows set at that value (``expect``, recorded). The
value is held for the dwell, observed every ``POLL_S``: the row's flag must stay clear, its
FETs closed, and the other condition's current must keep flowing (else the row was not held
in that condition and the case says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.procedures.record import Measurement
from harness.procedures.rig import Observation, Rig, fet_state
from harness.procedures.threshold import ThresholdSetup, _acted

#: How often a held value is observed during its dwell (bench seconds).
POLL_S = 0.5
#: The FETs an action opens, with the observation's state of each (True: closed).
FETS: dict[str, tuple[tuple[str, Callable[[Observation], bool]], ...]] = {
    "charge": (("charge FET", lambda o: o.charge_fet),),
    "discharge": (("discharge FET", lambda o: o.discharge_fet),),
    "both": (("charge FET", lambda o: o.charge_fet), ("discharge FET", lambda o: o.discharge_fet)),
}


def enter_condition(rig: Rig, condition: str) -> None:
    """Put the bench in the case's operating condition (current flowing when it has one)."""
    if condition in ("charging", "discharging", "charger"):
        rig.condition(condition)
        rig.settle()
    else:
        rig.condition("standby")


def in_condition(condition: str) -> str:
    """The operating condition in a sentence ("while discharging")."""
    return {"charger": "with the charger on", "standby": "in standby", "any": "in standby"}.get(
        condition, f"while {condition}"
    )


def magnitude(setup: ThresholdSetup, value: float) -> float:
    """The value the rig applies for a spec value (searched in magnitude when negative)."""
    return abs(value) if setup.sign < 0 else value


def hold_value(
    rig: Rig, setup: ThresholdSetup, value: float, broken: Callable[[Observation], bool]
) -> Observation:
    """Apply ``value`` and hold it for the dwell, observing every ``POLL_S``: the first
    observation for which ``broken`` holds, else the one at the end of the dwell."""
    rig.apply(setup.stimulus, value, cell=setup.cell)
    end = rig.now() + setup.dwell_s
    rig.probes += 1
    while True:
        rig.wait(min(POLL_S, max(end - rig.now(), 0.0)))
        obs = rig.observe(setup.flag, stimulus=value)
        if broken(obs) or rig.now() >= end - 1e-6:
            return obs


def judge_state(
    m: Measurement, setup: ThresholdSetup, obs: Observation, *, active: bool, where: str, label: str
) -> None:
    """The row's flag and each FET it opens: set and open when ``active``, else clear and
    closed. ``where`` ends every sentence (the value and how it was reached)."""
    if setup.flag is not None:
        want = "set" if active else "clear"
        m.check(
            f"{setup.flag} {want} ({label})",
            obs.flag == active,
            f"{setup.flag} {'set' if obs.flag else 'clear'} {where}",
            f"{setup.flag} {'cleared' if active else 'set'} {where}",
        )
    for name, closed in FETS.get(setup.action or "", ()):
        m.check(
            f"{name} {'open' if active else 'closed'} ({label})",
            closed(obs) != active,
            f"{name} {fet_state(closed(obs))} {where}",
            f"{name} {'closed' if active else 'opened'} {where}",
        )


def clear_before(m: Measurement, setup: ThresholdSetup, obs: Observation, where: str) -> bool:
    """The function is quiet before the stimulus moves (else nothing after it is judged)."""
    ok = not _acted(obs, setup)
    m.check(
        "quiet before the stimulus",
        ok,
        f"{where}: {obs.describe(setup.flag)}",
        f"{setup.flag or 'the function'} already active {where}, before the stimulus moved",
    )
    return ok


def run(rig: Rig, case: Any, m: Measurement) -> None:
    """A quiet case: the far value held in the other condition; nothing of the row acts."""
    setup = ThresholdSetup.from_case(case)
    spec_level = rig.setup.num("level")
    level = magnitude(setup, spec_level)
    expect = [str(f) for f in case.params.get("expect") or []]
    if "base_v" in case.params:
        rig.difference_base_v = rig.setup.num("base_v")
    other = setup.condition
    enter_condition(rig, other)
    if not clear_before(m, setup, rig.observe(setup.flag), in_condition(other)):
        return
    where = f"at {spec_level:g} {m.unit} {in_condition(other)}"
    obs = hold_value(rig, setup, level, lambda o: _acted(o, setup) or not rig.condition_flowing(o))
    m.measured = spec_level
    judge_state(m, setup, obs, active=False, where=where, label=in_condition(other))
    if expect:
        seen = ", ".join(f"{f} {'set' if obs.flags.get(f) else 'clear'}" for f in expect)
        m.note = f"declared alongside {where}: {seen}"
    m.check(
        f"{other} held",
        rig.condition_flowing(obs),
        f"{where}: {obs.describe()}",
        f"the {other} current stopped {where} ({obs.describe()}): the row was not held beyond "
        f"its trip while {other} (a row not declared in the recipe acted)",
    )
