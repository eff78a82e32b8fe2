"""Delay cases: each listed ``kind: delay`` case of a row's recipe.

A long delay is tested in ``regression`` with a shortened configured value
(``shortened_to``: an override; the case's expected value is the shortened value) and at
its configured value in ``soak``.
"""

from __future__ import annotations

from collections.abc import Mapping

from bmsspec import Spec
from harness.plan.common import SETUP_S, Case, band, cid, to_seconds
from harness.plan.listed import listed, number, overrides_of, setup

#: Bench seconds after the delay itself (the aftermath: recovery, read-out).
AFTER_S = 10.0


def delay_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    cases = []
    for p, c in listed(spec, "delay"):
        overrides, switch_overrides = overrides_of(spec, c)
        suffix = c.suffix or "delay"
        if c.shortened_to is not None:
            overrides[p.number] = c.shortened_to
            suffix = "delay-shortened"
        expected = number(spec, c.expected, overrides)
        value = overrides.get(p.number, p.default) if expected is None else expected
        params, reason = setup(spec, c, caps, overrides)
        wait_s = to_seconds(value, p.unit) if p.quantity == "time" else 0.0
        # prepare, the delay itself (+10 %), and the aftermath
        est = SETUP_S + 1.1 * wait_s + AFTER_S + float(params.pop("est_extra_s", 0.0))
        if c.shortened_to is not None:
            params["shortened_from"] = p.default
        cases.append(
            Case(
                id=cid(p, suffix),
                item=p.item,
                number=p.number,
                kind="delay",
                category=c.category or "timing",
                quantity=p.quantity,
                direction=None,
                condition=c.condition or p.bench_condition,
                flag=c.flag if c.flag is not None else p.flag,
                expected=value,
                tolerance=round(band(spec, p, value), 6),
                unit=p.unit,
                overrides=overrides,
                switch_overrides=switch_overrides,
                procedure=c.procedure,
                params=params,
                suites=list(c.suites),
                est_bench_s=round(est, 1) if reason is None else 0.0,
                testable=reason is None,
                reason=reason,
            )
        )
    return cases
