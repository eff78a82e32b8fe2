"""Cases proven by another case's verdict (``evidence:`` of a switch state's recipe).

A switch whose function is a long wait (S58's standby shutdown after P78, S51's static
balancing stop after P65) is, in its ``on`` state, exactly what the shortened delay case of
the row it governs measures: the same switch state, the same shortened value. Repeating the
hour would double the cost, so the switch's case reads that case's verdict in the same run
(``harness/procedures/evidence.py``): it passes only when that case passed, fails when it
failed, and has no verdict of its own when that case has none. It costs no bench time.

A state can also be proven by one named check of another case (``evidence_check``): S58 off
is the "stays awake (S58 off)" check of P65's restart case, whose hour of rest runs with S58
off and P78 at 1 h. That check's outcome decides, not the case's verdict.

:func:`resolve` ties each such case to its evidence once the whole plan is built: the
evidence must be a case of the plan in every suite the case belongs to (else the tables are
wrong: ValueError naming file, row, key and value); where a configuration makes the two
disagree (the evidence runs with the switch off, or another value of the shortened row) the
case is not testable and says why. Both get one ``sequence_group`` so a run on several
benches keeps them on one bench, the evidence first.
"""

from __future__ import annotations

from bmsspec import Spec, Switch
from harness.plan.common import Case, switch_state_case

#: Procedure of a case proven by another's verdict (``harness/procedures/registry.py``).
PROCEDURE = "evidence"


def evidence_case(
    s: Switch,
    on: bool,
    evidence: str,
    overrides: dict[int, float],
    switch_overrides: dict[int, bool],
    suites: list[str],
    check: str | None = None,
) -> Case:
    params = {"switch": s.number, "state": on, "evidence": evidence}
    if check is not None:
        params["evidence_check"] = check
    return switch_state_case(
        s,
        on,
        overrides,
        switch_overrides,
        procedure=PROCEDURE,
        params=params,
        suites=suites,
        est_bench_s=0.0,
    )


def _state_text(spec: Spec, overrides: dict[int, float], switches: dict[int, bool]) -> str:
    parts = [f"S{n} {'on' if v else 'off'}" for n, v in sorted(switches.items())]
    parts += [f"P{n}={v:g} {spec.param(n).unit}" for n, v in sorted(overrides.items())]
    return ", ".join(parts)


def resolve(spec: Spec, cases: list[Case]) -> None:
    """Tie every case proven by another's verdict to that case (in place)."""
    by_id = {c.id: c for c in cases}
    for case in cases:
        ref = case.params.get("evidence") if case.procedure == PROCEDURE else None
        if ref is None:
            continue
        state = "on" if case.params.get("state") else "off"
        where = (
            f"switches.yaml row {case.number} ({spec.switch(case.number).id}): "
            f"key 'recipe.{state}.evidence' value {ref!r}"
        )
        evidence = by_id.get(ref)
        if evidence is None:
            raise ValueError(f"{where}: no such case in the plan")
        if missing := [s for s in case.suites if s not in evidence.suites]:
            raise ValueError(f"{where}: that case is not in suite {missing[0]!r}")
        wanted = _state_text(spec, case.overrides, case.switch_overrides)
        case.params["evidence_state"] = wanted
        group = f"evidence {ref}"
        case.sequence_group = evidence.sequence_group = group
        differs = [
            n
            for n, v in case.overrides.items()
            if evidence.overrides.get(n, spec.param(n).default) != v
        ]
        sw_differs = [
            n
            for n, v in case.switch_overrides.items()
            if evidence.switch_overrides.get(n, spec.switch(n).default) != v
        ]
        if differs or sw_differs:
            theirs = _state_text(
                spec,
                {n: evidence.overrides.get(n, spec.param(n).default) for n in differs},
                {n: evidence.switch_overrides.get(n, spec.switch(n).default) for n in sw_differs},
            )
            case.testable = False
            case.reason = f"its evidence {ref} runs with {theirs} here, this case needs {wanted}"
        elif not evidence.testable:
            case.testable = False
            case.reason = f"its evidence {ref} is not testable here: {evidence.reason}"
