"""Trip and recovery cases: one search per threshold row with a ``recipe.threshold``.

A trip search runs from a value where nothing acts (the stimulus's quiet value, or the
recipe's ``start``) to beyond the trip (the recipe's ``stop``, or the stimulus's margin); a
recovery search starts beyond the trip (so it trips first) and runs back past the recovery.
``start``/``stop`` are in the spec unit and sign (discharge currents negative).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from bmsspec import Parameter, Spec
from bmsspec.recipes import ThresholdRecipe
from harness.plan import couplings
from harness.plan.common import (
    DWELL_S,
    SETUP_S,
    Case,
    band,
    capable,
    cid,
    delay_s,
    grid,
    hardware_reason,
    isolation,
    missing,
    probes,
    value,
    with_absent,
)


def threshold_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    cases: list[Case] = []
    for p in spec.parameters:
        if p.recipe is None or p.recipe.threshold is None:
            continue
        cases.append(threshold_case(spec, p, p, "trip", caps))
        if p.partner is not None:
            cases.append(threshold_case(spec, p, spec.param(p.partner), "recovery", caps))
    return cases


def search_setup(
    spec: Spec,
    trip: Parameter,
    overrides: Mapping[int, float],
    switches: Mapping[int, bool] | None = None,
) -> dict[str, Any]:
    """What a probe of ``trip``'s stimulus needs (the threshold and switch procedures'
    setup): stimulus, search direction and sign, flag, FETs, condition, the couplings in
    force (``switches``: the case's switch overrides), dwell, reset wait."""
    assert trip.recipe is not None and trip.recipe.threshold is not None
    r = trip.recipe.threshold
    negative = r.stimulus.negative
    fets = None if r.acts.fets == "none" else r.acts.fets
    return {
        "stimulus": r.stimulus.name,
        # searched in magnitude when the spec value is negative: a trip is a larger current
        "direction": "high" if negative else (trip.direction or "high"),
        "sign": -1 if negative else 1,
        "flag": r.acts.flag,
        "fet": fets,
        "condition": r.condition,
        "couplings": couplings.declared(spec, r, switches or {}),
        "cell": r.cell,
        "dwell_s": r.dwell_s if r.dwell_s is not None else DWELL_S + delay_s(spec, trip, overrides),
        "reset_timeout_s": float(value(spec, r.reset_timeout_s, overrides)),
    }


#: Each edge of a search is decided this often from a clean approach, and moved at most
#: this many resolution steps while it chatters (harness/procedures/stability.py): a noisy
#: device's decision near its threshold is repeated until stable, or reported unstable.
STABLE_REPEATS = 2
CHATTER_STEPS = 10


def threshold_case(
    spec: Spec,
    trip: Parameter,
    row: Parameter,
    kind: Literal["trip", "recovery"],
    caps: Mapping[str, bool],
) -> Case:
    assert trip.recipe is not None and trip.recipe.threshold is not None
    r: ThresholdRecipe = trip.recipe.threshold
    stim = r.stimulus
    resolution = stim.resolution
    margin = max(stim.beyond, stim.beyond_rel * abs(trip.default))
    high = trip.direction == "high"
    overrides, switch_overrides = isolation(spec, r)
    beyond = trip.default + margin if high else trip.default - margin
    if r.stop is not None:
        beyond = float(value(spec, r.stop, overrides))
    calm = stim.quiet_fraction * trip.default if stim.quiet_fraction else float(stim.quiet or 0.0)
    if r.start is not None:
        calm = float(value(spec, r.start, overrides))
    params: dict[str, Any] = {
        "resolution": resolution,
        "trip": trip.number,
        "repeats": STABLE_REPEATS,
        "chatter_steps": CHATTER_STEPS,
    }
    params.update(search_setup(spec, trip, overrides, switch_overrides))
    dwell = params["dwell_s"]
    if r.base_v is not None:
        params["base_v"] = round(float(value(spec, r.base_v, overrides)), 3)
        params["moving_cell"] = "down"
    if kind == "trip":
        start, stop = calm, beyond
        expected = trip.default
        if trip.partner is not None:
            params["partner"] = trip.partner
            params["partner_expected"] = spec.param(trip.partner).default
        if trip.recovery_offset is not None:
            sign = -1.0 if high else 1.0
            params["recovery_expected"] = round(trip.default - sign * trip.recovery_offset, 6)
        # the stable edges: each repeated (its first decision is the search's), one reset
        est = SETUP_S + (probes(start, expected, resolution) + 2 * STABLE_REPEATS - 1) * dwell
    else:
        recovery = row.default
        past = recovery - margin if high else recovery + margin
        if r.recovery_stop_at_least is not None:
            past = max(r.recovery_stop_at_least, past)
        start, stop = beyond, past
        expected = recovery
        params["partner"] = trip.number
        params["partner_expected"] = trip.default
        # the stable edges: each repeated (a clearing one after a trip at the drive value)
        est = SETUP_S + (probes(start, expected, resolution) + 3 * STABLE_REPEATS - 2) * dwell
    params["start"] = grid(start, resolution)
    params["stop"] = grid(stop, resolution)
    lo, hi = sorted((params["start"], params["stop"]))
    for flag in couplings.implied(spec, trip, lo, hi, overrides, switch_overrides):
        if flag not in params["couplings"]:
            params["couplings"].append(flag)
    if kind == "trip":
        est += every_channel(r, params)
    elif stim.every_channel is not None:
        params["channel"] = stim.every_channel.name(stim.reference(r.cell) or r.cell)
    params = with_absent(params, r.without, caps)
    reason = missing(stim.needs, caps)
    for cap in r.needs:
        if not capable(caps, cap):
            reason = hardware_reason(cap, f"S{trip.switch}" if trip.switch else None)
    suites = list(trip.recipe.suites.get(kind, ["regression"]))
    return Case(
        id=cid(row, kind),
        item=row.item,
        number=row.number,
        kind=kind,
        category=r.category or stim.category,
        quantity=trip.quantity,
        direction=trip.direction,
        condition=r.condition,
        flag=r.acts.flag,
        expected=expected,
        tolerance=round(band(spec, row, expected), 6),
        unit=row.unit,
        overrides=overrides,
        switch_overrides=switch_overrides,
        procedure="threshold",
        params=params,
        suites=suites,
        est_bench_s=round(est, 1) if reason is None else 0.0,
        testable=reason is None,
        reason=reason,
    )


def every_channel(r: ThresholdRecipe, params: dict[str, Any]) -> float:
    """The channel data of a trip case on a per-channel stimulus (``stimulus.every_channel``):
    the reference channel the search drives (``channel``), the other channels a go/no-go pair
    proves the measured trip on (``channels``, how each is named and driven) and the pair's
    ``channel_margin``. Returns the bench seconds the pairs add: per channel two probes and a
    reset (back to the quiet value, one dwell to clear, one held), and one reset of the
    reference channel before them."""
    sweep = r.stimulus.every_channel
    if sweep is None:
        return 0.0
    params["channel"] = sweep.name(r.stimulus.reference(r.cell) or r.cell)
    channels = r.swept_channels()
    if not channels:
        return 0.0
    params["channels"] = channels
    params["channel_label"] = sweep.label
    params["channel_margin"] = sweep.margin
    if sweep.stimulus is not None:
        params["channel_stimulus"] = sweep.stimulus
    dwell = float(params["dwell_s"])
    return 2 * dwell + len(channels) * 4 * dwell
