"""Quiet cases: a row the BMS evaluates in one operating condition does not act in the other.

Every threshold row whose spec ``condition`` is charging or discharging (docs/BEHAVIOUR.md
"Operating condition") gets a case that drives its stimulus to the trip search's far value
(the trip case's ``stop``: where it certainly acts in its own condition) in the other
condition and holds it for the dwell (confirmation + the row's delay): the row's flag must
stay clear and its FET must not open. What the other condition's own rows do at that value
is data in the row's ``recipe.threshold.quiet`` (``bmsspec/recipes.py`` ``QuietRecipe``): the
flags they set (``expect``), overrides moving a row out of the way so the other condition's
current keeps flowing, or a ``reason`` the row gets no quiet case. Rows whose condition is
``any`` get none.
"""

from __future__ import annotations

from collections.abc import Mapping

from bmsspec import Parameter, Spec
from bmsspec.recipes import QuietRecipe
from harness.plan.common import SETUP_S, Case, cid, isolation
from harness.plan.thresholds import threshold_case

#: The other operating condition of a row evaluated only while charging or discharging.
OTHER_CONDITION = {"charging": "discharging", "discharging": "charging"}
#: Trip-case params that belong to the search, not to a quiet case.
SEARCH_ONLY = ("partner", "partner_expected", "recovery_expected")


def quiet_recipe(p: Parameter) -> QuietRecipe | None:
    """The row's quiet recipe (the default one when it gives none), or None when the row
    gets no quiet case: no threshold recipe, a condition of ``any``, or a ``reason``.

    Raises ValueError naming the row when a row without an operating condition gives one."""
    if p.recipe is None or p.recipe.threshold is None:
        return None
    given = p.recipe.threshold.quiet
    if p.condition not in OTHER_CONDITION:
        if given is not None:
            raise ValueError(
                f"parameters.yaml row {p.number} ({p.id}): key 'recipe.threshold.quiet': the "
                f"row's condition is {p.condition}, it has no other condition to be quiet in"
            )
        return None
    q = given or QuietRecipe()
    return None if q.reason is not None else q


def quiet_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    cases: list[Case] = []
    for p in spec.parameters:
        q = quiet_recipe(p)
        if q is not None:
            cases.append(quiet_case(spec, p, q, caps))
    return cases


def quiet_case(spec: Spec, p: Parameter, q: QuietRecipe, caps: Mapping[str, bool]) -> Case:
    """The trip case's far value held in the other condition (its bounds, dwell, flag, FETs
    and testability are the trip case's: ``harness/plan/thresholds.py``)."""
    trip = threshold_case(spec, p, p, "trip", caps)
    other = OTHER_CONDITION[str(p.condition)]
    extra, extra_switches = isolation(spec, q)
    params = {k: v for k, v in trip.params.items() if k not in SEARCH_ONLY}
    params.update(
        condition=other,
        row_condition=p.condition,
        level=params["stop"],
        expect=list(q.expect),
    )
    # Entering the condition, then the far value held for one dwell.
    est = SETUP_S + float(params["dwell_s"])
    suites = [s for s in trip.suites if s != "smoke"] or ["regression"]
    return trip.model_copy(
        update={
            "id": cid(p, "quiet"),
            "kind": "quiet",
            "condition": other,
            "expected": None,
            "tolerance": None,
            "overrides": {**trip.overrides, **extra},
            "switch_overrides": {**trip.switch_overrides, **extra_switches},
            "procedure": "quiet",
            "params": params,
            "suites": suites,
            "est_bench_s": round(est, 1) if trip.testable else 0.0,
        }
    )
