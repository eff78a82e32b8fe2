"""The test plan: spec tables + bench capabilities -> a flat list of :class:`Case`.

The plan is data, not code that runs: every case says what it tests (item, kind), what it
expects (expected, tolerance, unit), how the bench must be configured for it (overrides of
parameters and switches that isolate it or shorten a long delay), which procedure runs it
(by name, ``harness/procedures/registry.py``) with which setup, which suites it belongs to,
what it costs on a real bench, and - when the bench cannot run it - why. How each row is
tested is its recipe in ``test_plans/`` (``bmsspec/recipes.py``); the builders here (one
module per kind) hold no per-row table. Building it is pure and fast, so the CLI, the pytest
plugin and the report all call :func:`build_plan` and agree.

Read values only from the Spec given: a device configuration (``--parameters``) is a Spec
whose defaults are the configured values, and every bound, level and expectation follows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, get_args

from bmsspec import Spec
from harness.plan import evidence
from harness.plan import link as link_pass
from harness.plan.bands import hold_cases
from harness.plan.block import block_cases, out_of_range_value, readback_value
from harness.plan.common import (
    CAPABILITIES,
    DEFAULT_CAPABILITIES,
    DWELL_S,
    HAND_STEP_CAPABILITY,
    OPERATOR_TIMEOUT_S,
    REGRESSION_BASELINE_S,
    REGRESSION_BUDGET_S,
    SETUP_S,
    STUCK_TIMEOUT_S,
    SUITES,
    WORKING_DAY_S,
    Case,
    CaseKind,
    nominal,
    operator_fields,
)
from harness.plan.conditions import quiet_cases
from harness.plan.delays import delay_cases
from harness.plan.functions import function_cases
from harness.plan.reported import report_cases
from harness.plan.switches import switch_cases
from harness.plan.thresholds import threshold_cases

if TYPE_CHECKING:
    from harness.reach import Reach
    from instruments.bms.coverage import LinkCoverage

__all__ = [
    "CAPABILITIES",
    "DEFAULT_CAPABILITIES",
    "DWELL_S",
    "HAND_STEP_CAPABILITY",
    "OPERATOR_TIMEOUT_S",
    "REGRESSION_BASELINE_S",
    "REGRESSION_BUDGET_S",
    "SETUP_S",
    "STUCK_TIMEOUT_S",
    "SUITES",
    "WORKING_DAY_S",
    "Case",
    "CaseKind",
    "beyond_reach",
    "build_plan",
    "covered_items",
    "kind_counts",
    "out_of_range_value",
    "readback_value",
    "suite_estimates",
]


#: The setup keys whose values are stimulus values the bench must apply.
STIMULUS_VALUE_KEYS = ("start", "stop", "level")


def beyond_reach(case: Case, reach: Reach) -> str | None:
    """Why the bench cannot apply what ``case`` needs (the first value beyond it), or None.

    A case's stimulus is ``params.stimulus`` with ``start``/``stop``/``level``; a case that
    applies more than one lists the others in ``params.stimuli`` (``[{stimulus, level}]``)."""
    setups = [case.params, *(case.params.get("stimuli") or [])]
    for setup in setups:
        stimulus = setup.get("stimulus")
        if not isinstance(stimulus, str):
            continue
        for key in STIMULUS_VALUE_KEYS:
            value = setup.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                why = reach.reason(stimulus, float(value))
                if why is not None:
                    return why
    return None


def block_refused(spec: Spec, case: Case) -> str | None:
    """Why the block a case writes (the configuration with its overrides) would be refused
    (a configuration that moves a row the override is relative to can push it out of its
    range), or None. The device refuses such a block (``Spec.block_violations``); the case
    cannot isolate its row and is untestable with the numbers."""
    if not case.overrides:
        return None
    values = {p.number: float(p.default) for p in spec.parameters} | dict(case.overrides)
    problems = spec.block_violations(values)
    if not problems:
        return None
    moved = ", ".join(
        f"P{n} = {v:g} {spec.param(n).unit}".rstrip() for n, v in sorted(case.overrides.items())
    )
    return f"its isolation ({moved}) breaks the parameter block: {problems[0]}"


def build_plan(
    spec: Spec,
    capabilities: Mapping[str, bool] | None = None,
    suite: str | None = None,
    *,
    relays: Collection[str] | None = None,
    reach: Reach | None = None,
    link: LinkCoverage | None = None,
) -> list[Case]:
    """Every case for this spec on a bench with these capabilities; ``suite`` filters.

    ``reach``: what the bench can apply (``harness.reach.reach_of``); a case whose stimulus
    (its search window or its level) lies beyond it is untestable with the numbers. None:
    not known (nothing is judged beyond reach).

    ``relays``: the hand-steps the bench wires to relays (``harness.benchfile.bench_relays``);
    a case with a hand-step outside it ``needs_operator``. None: not known (then
    ``needs_operator`` is None for every case with hand-steps).

    ``link``: what the bench's BMS link carries (``harness.link_coverage.coverage_of``); a
    case that needs what it does not carry is untestable, naming it. None: the whole spec.

    Raises ValueError for an unknown suite name (the CLI turns it into exit code 2).
    """
    if suite is not None and suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    caps = dict(DEFAULT_CAPABILITIES if capabilities is None else capabilities)
    cases = (
        threshold_cases(spec, caps)
        + quiet_cases(spec, caps)
        + hold_cases(spec, caps)
        + delay_cases(spec, caps)
        + function_cases(spec, caps)
        + report_cases(spec, caps)
        + block_cases(spec)
        + switch_cases(spec, caps)
    )
    for case in cases:
        case.params["nominal"] = nominal(spec, case.overrides)
        refused = block_refused(spec, case)
        if refused is not None and case.testable:
            case.testable, case.reason, case.est_bench_s = False, refused, 0.0
        if reach is not None and case.testable:
            beyond = beyond_reach(case, reach)
            if beyond is not None:
                case.testable, case.reason, case.est_bench_s = False, beyond, 0.0
        if not case.testable and case.reason is None:
            case.reason = "not testable on this bench"
    link_pass.apply(spec, cases, link)
    for case in cases:
        operator_fields(case, relays)
    evidence.resolve(spec, cases)
    ids = [c.id for c in cases]
    if len(ids) != len(set(ids)):
        doubled = sorted({i for i in ids if ids.count(i) > 1})
        raise AssertionError(f"plan has doubled case ids: {doubled}")
    if suite is None:
        return cases
    selected = [c for c in cases if suite in c.suites]
    if suite == "regression":
        # A kind of test of a spec row the regression does not run (S51's switch-off)
        # still appears in it, as a case that says where it runs, so a regression report
        # (and the release gate) covers every row and every state of a switch.
        covered = {(c.item, c.kind) for c in selected}
        for c in cases:
            if (c.item, c.kind) not in covered and "soak" in c.suites and c.testable:
                selected.append(
                    c.model_copy(
                        update={
                            "testable": False,
                            "reason": "runs in the soak suite: its wait does not fit a working "
                            "day (the block cannot hold this delay below one hour)",
                            "est_bench_s": 0.0,
                            "suites": ["regression"],
                        }
                    )
                )
    return selected


def suite_estimates(cases: Iterable[Case]) -> dict[str, float]:
    """Estimated real-bench seconds per suite (testable cases only)."""
    totals = {name: 0.0 for name in SUITES}
    for c in cases:
        if c.testable:
            for name in c.suites:
                totals[name] = totals.get(name, 0.0) + c.est_bench_s
    return totals


def kind_counts(cases: Iterable[Case]) -> dict[str, int]:
    """Number of cases per kind (in a fixed order)."""
    counts = dict.fromkeys(get_args(CaseKind), 0)  # the kinds in the order the model lists
    for c in cases:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    return counts


def covered_items(cases: Iterable[Case]) -> set[str]:
    """Items ("P5", "S10") that at least one case exercises or reports on."""
    return {c.item for c in cases}
