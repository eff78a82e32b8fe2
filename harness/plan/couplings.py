"""The flags a case may see beside its own: declared in the recipe, implied by the configuration.

A row's recipe declares the flags its stimulus raises beside its target
(``recipe.threshold.couplings``): a name, or a flag gated on a switch
(``{flag: waiting_auto_activation, when: S53}``: the activation wait an undervoltage raises
depends on which activation switch is on). A gated coupling is in force when its switch is,
in the device configuration under test with the case's switch overrides.

The configuration also moves the other rows of the same stimulus: the captured 160 Ah pack
sets the cell high-voltage alarm P1 to 3.500 V, so the balancing search (P9 at 3.400 V, up to
3.500 V) reaches it. A conforming device raises that alarm there, so every row on the same
stimulus (same quantity, same kind of drive) whose trip, as configured and with the case's
overrides, lies inside the range the case drives, whose operating condition is the case's
(or any) and whose switch is on, adds its flag. This is computed from the Spec the plan is
given, never written per row; the whole-state check (``harness/procedures/expect.py``)
allows exactly these flags.
"""

from __future__ import annotations

from collections.abc import Mapping

from bmsspec import Parameter, Spec
from bmsspec.recipes import ThresholdRecipe


def switch_on(spec: Spec, item: str, switches: Mapping[int, bool]) -> bool:
    """A switch's state in force: the case's override, else the configured value."""
    n = int(item[1:])
    return bool(switches.get(n, spec.switch(n).default))


def declared(spec: Spec, r: ThresholdRecipe, switches: Mapping[int, bool]) -> list[str]:
    """The recipe's couplings in force (gated ones whose switch is on)."""
    return [
        c if isinstance(c, str) else c.flag
        for c in r.couplings
        if isinstance(c, str) or switch_on(spec, c.when, switches)
    ]


def implied(
    spec: Spec,
    trip: Parameter,
    low: float,
    high: float,
    overrides: Mapping[int, float],
    switches: Mapping[int, bool],
) -> list[str]:
    """Flags of the other rows on ``trip``'s stimulus that act somewhere in ``[low, high]``
    (spec unit and sign) in the case's condition, with the configuration and overrides in
    force."""
    assert trip.recipe is not None and trip.recipe.threshold is not None
    r = trip.recipe.threshold
    out: list[str] = []
    for q in spec.parameters:
        t = q.recipe.threshold if q.recipe is not None else None
        if q.number == trip.number or t is None or t.acts.flag is None:
            continue
        same_drive = (
            t.stimulus.name == r.stimulus.name
            and q.quantity == trip.quantity
            and (t.base_v is None) == (r.base_v is None)
        )
        if not same_drive or q.condition not in (r.condition, "any"):
            continue
        if q.switch is not None and not switch_on(spec, f"S{q.switch}", switches):
            continue
        at = float(overrides.get(q.number, q.default))
        reaches = high >= at if q.direction == "high" else low <= at
        if q.direction is not None and reaches and t.acts.flag not in out:
            out.append(t.acts.flag)
    return out
