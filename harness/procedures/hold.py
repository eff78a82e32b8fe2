"""Hold procedure: between its trip and its recovery a function keeps the state it is in.

The plan's hold case (``harness/plan/bands.py``) gives the value inside the band
(``level``, between ``trip_value`` and ``recovery_value``), the search's far value
(``stop``: where the function certainly acts), the condition, flag, FETs and dwell. From
the quiet side the stimulus goes to the band value and dwells: the function stays clear.
Then it trips at the far value and comes back to the band value: the function stays active
(flag set, its FETs open) for the dwell. Observed every ``quiet.POLL_S`` while held.
"""

from __future__ import annotations

from typing import Any

from harness.procedures.quiet import (
    FETS,
    clear_before,
    enter_condition,
    hold_value,
    in_condition,
    judge_state,
    magnitude,
)
from harness.procedures.record import Measurement
from harness.procedures.rig import Observation, Rig
from harness.procedures.threshold import ThresholdSetup, _acted


def fully_active(setup: ThresholdSetup, obs: Observation) -> bool:
    """The acting state: the row's flag set and every FET it opens open."""
    flag_ok = obs.flag if setup.flag is not None else True
    return flag_ok and all(not closed(obs) for _, closed in FETS.get(setup.action or "", ()))


def run(rig: Rig, case: Any, m: Measurement) -> None:
    """A hold case: the band value from the quiet side, then from the acting side."""
    setup = ThresholdSetup.from_case(case)
    s = rig.setup
    spec_level, u = s.num("level"), m.unit
    level = magnitude(setup, spec_level)
    trip_v, recovery_v = s.num("trip_value"), s.num("recovery_value")
    band = f"inside its band (trip {trip_v:g} {u}, recovery {recovery_v:g} {u})"
    if "base_v" in case.params:
        rig.difference_base_v = s.num("base_v")
    enter_condition(rig, setup.condition)
    if not clear_before(m, setup, rig.observe(setup.flag), in_condition(setup.condition)):
        return
    m.measured = spec_level
    # From the quiet side: straight to the band value; it must not act.
    where = f"at {spec_level:g} {u} {band}, approached from the quiet side"
    quiet = hold_value(rig, setup, level, lambda o: _acted(o, setup))
    judge_state(m, setup, quiet, active=False, where=where, label="from the quiet side")
    # From the acting side: trip at the far value, then back to the band value.
    far = float(s.num("stop"))
    tripped = rig.probe(setup.stimulus, setup.far, setup.flag, setup.dwell_s, cell=setup.cell)
    if not m.check(
        "acts at the far value",
        fully_active(setup, tripped),
        f"at {far:g} {u}: {tripped.describe(setup.flag)}",
        f"{setup.flag or 'the function'} not fully acting at {far:g} {u} (the trip side of "
        f"the band): {tripped.describe(setup.flag)}",
    ):
        return
    where = f"at {spec_level:g} {u} {band}, after the trip at {far:g} {u}"
    back = hold_value(rig, setup, level, lambda o: not fully_active(setup, o))
    judge_state(m, setup, back, active=True, where=where, label="from the acting side")
