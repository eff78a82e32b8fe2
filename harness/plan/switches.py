"""Switch cases: each switch enabled (the function must act) and disabled (it must not).

Without a recipe procedure, a switch that governs a threshold is tested by driving that
threshold's stimulus beyond the trip (three tolerances) and any other by writing and reading
back its bit. ``expected`` is 1.0 when the function must act and 0.0 when it must not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bmsspec import Parameter, Spec, Switch
from harness.plan import couplings
from harness.plan.common import (
    DWELL_S,
    SETUP_S,
    Case,
    band,
    capable,
    delay_s,
    hands_reason,
    hardware_reason,
    isolation,
    missing,
    switch_state_case,
)
from harness.plan.common import (
    params as computed,
)
from harness.plan.evidence import evidence_case
from harness.plan.thresholds import search_setup

#: Switches the harness can only read back, by what the spec says they need.
READBACK_ONLY = {
    "unused": "temporarily unused per the spec: read-back only",
    "inverter": "concerns the inverter link (requested current), not the bench: read-back only",
}
#: Hardware whose function the harness cannot observe.
READBACK_HARDWARE = ("lcd", "bluetooth", "parallel")
#: Bench seconds of a switch case beyond the setup: the default, a bit read-back, a
#: hand-step case whose recipe gives none, the aftermath of a beyond-trip probe.
DEFAULT_EST_S, BIT_EST_S, HANDS_EST_S, AFTER_S = 15.0, 5.0, 30.0, 10.0
UNSAFE = "disabling a protection is unsafe with real cells (no cell simulator)"


def switch_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    return [switch_case(spec, s, on, caps) for s in spec.switches for on in (True, False)]


def governed_trip(spec: Spec, s: Switch) -> Parameter | None:
    """The threshold a switch case drives: the recipe's ``trip``, else the first alarm or
    protection the switch governs that has a threshold recipe."""
    if s.recipe.trip is not None:
        return spec.param(s.recipe.trip)
    for n in s.governs:
        p = spec.param(n)
        if p.kind in ("alarm", "protection") and p.direction is not None:
            return p if p.recipe is not None and p.recipe.threshold is not None else None
    return None


def switch_case(spec: Spec, s: Switch, on: bool, caps: Mapping[str, bool]) -> Case:
    r = s.recipe
    state = r.on if on else r.off
    overrides, switch_overrides = isolation(spec, r)
    switch_overrides[s.number] = on
    if own := sorted({"switch", "state"} & set(r.params)):
        raise ValueError(
            f"switches.yaml row {s.number} ({s.id}): key 'recipe.params.{own[0]}' value "
            f"{r.params[own[0]]!r}: the plan sets it (the switch and its state under test)"
        )
    if state.evidence is not None:
        return evidence_case(
            s,
            on,
            state.evidence,
            overrides,
            switch_overrides,
            list(state.suites or r.suites),
            state.evidence_check,
        )
    trip = governed_trip(spec, s)
    procedure = r.procedure or ("switch.beyond_trip" if trip is not None else "switch.bit")
    params: dict[str, Any] = {"switch": s.number, "state": on}
    reason: str | None = None
    testable = True
    quantity = direction = condition = None
    est = SETUP_S + DEFAULT_EST_S
    hw = s.hardware
    readback = s.needs in READBACK_ONLY or hw in READBACK_HARDWARE
    if readback:
        procedure = "readback.bit"
        reason = READBACK_ONLY.get(
            s.needs, f"needs {hw} hardware the harness cannot observe: read-back only"
        )
        est = SETUP_S + BIT_EST_S
    elif hw is not None and not capable(caps, hw):
        testable, reason = False, hardware_reason(hw)
    hands_anywhere = bool(r.on.hand_steps or r.off.hand_steps)
    if not readback:
        params.update(computed(spec, r.params, overrides))
        if state.hand_steps:
            params["hand_steps"] = list(state.hand_steps)
            params["hand_prompts"] = dict(state.hand_prompts)
            if state.nominal_steps:
                params["nominal_steps"] = list(state.nominal_steps)
            if testable:
                reason = hands_reason(state.hand_steps, caps)
                testable = reason is None
            if r.protection and not on and testable and not capable(caps, "simulated_cells"):
                testable, reason = False, UNSAFE
            est = SETUP_S + (HANDS_EST_S if r.est_s is None else r.est_s)
        elif trip is not None:
            assert trip.recipe is not None and trip.recipe.threshold is not None
            t = trip.recipe.threshold
            width = band(spec, trip, trip.default)
            high = trip.direction == "high"
            level = trip.default + 3 * width if high else trip.default - 3 * width
            params.update(search_setup(spec, trip, overrides, switch_overrides))
            extra = couplings.implied(spec, trip, level, level, overrides, switch_overrides)
            params["couplings"] += [f for f in extra if f not in params["couplings"]]
            # one probe, dwelling past the confirmation and the row's delay
            params["dwell_s"] = DWELL_S + delay_s(spec, trip, overrides)
            params.update({"param": trip.number, "level": round(level, 4), "unit": trip.unit})
            quantity, direction, condition = trip.quantity, trip.direction, t.condition
            est = SETUP_S + DWELL_S + delay_s(spec, trip, overrides) + AFTER_S
            stim_reason = missing(t.stimulus.needs, caps)
            if stim_reason:
                testable, reason = False, stim_reason
            for cap in t.needs:
                if not capable(caps, cap):
                    testable, reason = False, hardware_reason(cap)
        if (
            not on
            and testable
            and not capable(caps, "simulated_cells")
            and trip is not None
            and trip.kind == "protection"
        ):
            testable, reason = False, UNSAFE
        if not hands_anywhere and r.est_s is not None:
            est = SETUP_S + r.est_s
    return switch_state_case(
        s,
        on,
        overrides,
        switch_overrides,
        quantity=quantity,
        direction=direction,
        condition=condition,
        procedure=procedure,
        params=params,
        suites=list(state.suites or r.suites),
        est_bench_s=round(est, 1) if testable else 0.0,
        testable=testable,
        reason=reason,
    )
