"""Hold cases: between its trip and its recovery a function keeps the state it is in.

For every trip/recovery pair (a threshold row with a ``partner``: the alarms and protections,
balancing's start/stop difference P63/P64, heating P37/P38) one case, approached from both
sides: from the quiet side the stimulus goes straight to a value inside the band (the
midpoint of trip and recovery, on the stimulus's resolution grid) and dwells: the function
stays clear; then from the acting side it trips at the search's far value (the trip case's
``stop``) and moves back to the same value: the function stays active (its flag set, its
FETs open). Both approaches share one case's setup (a real bench pays ``SETUP_S`` per case).
A pair opts out with ``recipe.threshold.hold: {reason: ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping

from bmsspec import Parameter, Spec
from harness.plan.common import SETUP_S, Case, band, cid, grid
from harness.plan.conditions import SEARCH_ONLY
from harness.plan.thresholds import threshold_case


def hold_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    cases: list[Case] = []
    for p in spec.parameters:
        if p.recipe is None or p.recipe.threshold is None or p.partner is None:
            continue
        if p.recipe.threshold.hold is not None:
            continue  # opted out, with its reason in the recipe
        cases.append(hold_case(spec, p, caps))
    return cases


def on_grid(value: float, resolution: float) -> float:
    """The grid point of ``resolution`` nearest ``value``."""
    return grid(round(value / resolution) * resolution, resolution)


def hold_case(spec: Spec, p: Parameter, caps: Mapping[str, bool]) -> Case:
    """The trip case's bounds (``harness/plan/thresholds.py``) plus the value inside the band."""
    assert p.partner is not None
    trip = threshold_case(spec, p, p, "trip", caps)
    params = {k: v for k, v in trip.params.items() if k not in SEARCH_ONLY}
    recovery_row = spec.param(p.partner)
    at_trip = float(trip.overrides.get(p.number, p.default))
    at_recovery = float(trip.overrides.get(recovery_row.number, recovery_row.default))
    resolution = float(params["resolution"])
    level = on_grid((at_trip + at_recovery) / 2, resolution)
    params.update(
        level=level,
        trip_value=at_trip,
        recovery_value=at_recovery,
        # The acceptance bands of the pair at their values (what a conforming device may
        # deviate by): the record shows how far inside them the band value lies.
        trip_band=round(band(spec, p, at_trip), 6),
        recovery_band=round(band(spec, recovery_row, at_recovery), 6),
    )
    reason = trip.reason
    low, high = sorted((at_trip, at_recovery))
    if trip.testable and not low + resolution / 2 < level < high - resolution / 2:
        reason = (
            f"the band between trip {at_trip:g} and recovery {at_recovery:g} {p.unit} holds no "
            f"value of the {resolution:g} {p.unit} grid"
        )
    dwell = float(params["dwell_s"])
    # Quiet side: the band value, one dwell; acting side: the far value, then the band value.
    est = SETUP_S + 3 * dwell
    suites = [s for s in trip.suites if s != "smoke"] or ["regression"]
    return trip.model_copy(
        update={
            "id": cid(p, "hold"),
            "kind": "hold",
            "expected": None,
            "tolerance": None,
            "procedure": "hold",
            "params": params,
            "suites": suites,
            "testable": reason is None,
            "reason": reason,
            "est_bench_s": round(est, 1) if reason is None else 0.0,
        }
    )
