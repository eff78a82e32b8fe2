"""Function cases: each listed ``kind: function`` case of a row's recipe (SOC, cell count,
compensation, cycle count, connection fault...): the recipe gives the expected value, the
tolerance and the procedure."""

from __future__ import annotations

from collections.abc import Mapping

from bmsspec import Spec
from harness.plan.common import SETUP_S, Case, cid
from harness.plan.listed import listed, number, overrides_of, setup

#: Bench seconds of a function case beyond the setup when its recipe gives none.
DEFAULT_EST_S = 30.0


def function_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    cases = []
    for p, c in listed(spec, "function"):
        overrides, switch_overrides = overrides_of(spec, c)
        params, reason = setup(spec, c, caps, overrides)
        est = SETUP_S + (DEFAULT_EST_S if c.est_s is None else float(number(spec, c.est_s)))
        cases.append(
            Case(
                id=cid(p, c.suffix or "function"),
                item=p.item,
                number=p.number,
                kind="function",
                category=c.category or p.kind,
                quantity=c.quantity or p.quantity,
                condition=c.condition or p.bench_condition,
                flag=c.flag if c.flag is not None else p.flag,
                expected=number(spec, c.expected, overrides),
                tolerance=number(spec, c.tolerance, overrides),
                unit=c.unit if c.unit is not None else p.unit,
                overrides=overrides,
                switch_overrides=switch_overrides,
                procedure=c.procedure,
                params=params,
                suites=list(c.suites),
                est_bench_s=0.0 if reason else est,
                testable=reason is None,
                reason=reason,
            )
        )
    return cases
