"""Cases a row lists in its ``recipe.cases`` (delays, functions, read-back variants)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bmsspec import Parameter, Spec
from bmsspec.recipes import CaseRecipe
from harness.plan.common import hands_reason, isolation, missing, params, value, with_absent


def listed(spec: Spec, kind: str) -> list[tuple[Parameter, CaseRecipe]]:
    """(row, case recipe) of every listed case of ``kind``, in table order."""
    return [
        (p, c)
        for p in spec.parameters
        if p.recipe is not None
        for c in p.recipe.cases
        if c.kind == kind
    ]


def setup(
    spec: Spec, c: CaseRecipe, caps: Mapping[str, bool], overrides: Mapping[int, float]
) -> tuple[dict[str, Any], str | None]:
    """(params, reason) of a listed case: its params computed (overrides in force), the
    bench's missing capabilities and hand-steps applied."""
    out = with_absent(params(spec, c.params, overrides), c.without, caps)
    if c.hand_steps:
        out["hand_steps"] = list(c.hand_steps)
        out["hand_prompts"] = dict(c.hand_prompts)
    reason = c.reason or missing(c.needs, caps) or hands_reason(c.hand_steps, caps)
    return out, reason


def overrides_of(spec: Spec, c: CaseRecipe) -> tuple[dict[int, float], dict[int, bool]]:
    return isolation(spec, c)


def number(spec: Spec, raw: Any, overrides: Mapping[int, float] | None = None) -> float | None:
    out = value(spec, raw, overrides)
    return None if out is None else float(out)
