"""The plan's case model and what every builder shares: ids, rounding, recipe values,
bench capabilities, hand-steps, estimates.

Nothing here knows a parameter or switch by number: the rows' recipes
(``bmsspec/recipes.py``) say how each is tested.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bmsspec import SECONDS_PER_UNIT, Parameter, Spec, Switch
from bmsspec import capabilities as _caps
from bmsspec.recipes import Isolation, Ref, is_ref, item_number

SUITES = ("smoke", "regression", "soak")

CaseKind = Literal[
    "trip",
    "recovery",
    "quiet",
    "hold",
    "delay",
    "switch-on",
    "switch-off",
    "readback",
    "function",
    "report",
]

#: Capabilities a bench file may declare (bmsspec/capabilities.py).
CAPABILITIES = _caps.CAPABILITIES
#: The simulated bench (``fixtures/sim.yaml`` absent): the declared defaults plus the heater
#: and the scope the simulator emulates.
DEFAULT_CAPABILITIES: dict[str, bool] = {**_caps.DEFAULTS, "heater": True, "scope": True}

#: Hand-steps a case may need (``params["hand_steps"]``) and the capability that says the
#: bench has the hardware for each; a ``relays`` entry of the same name works it without a
#: person (``harness/procedures/hands.py``).
HAND_STEP_CAPABILITY = {
    "button": "button",
    "bms_power": "bms_power",
    "power_switch": "switch",
    "secondary_trip": "secondary_trip",
    "short_circuit": "short_circuit",
    "connection_fault": "connection_fault",
}
#: How long a case waits for each operator answer (seconds; ``params["operator_timeout_s"]``).
OPERATOR_TIMEOUT_S = 300.0
#: Bounded waits of the hand-step procedures (bench seconds): a stuck button is reported
#: within ``STUCK_TIMEOUT_S`` of being held (the firmware's stuck time is not a spec row).
STUCK_TIMEOUT_S = 30.0

#: Confirmation time of a voltage/temperature/SOC condition is ~1 s; a probe dwells longer.
DWELL_S = 1.5
#: Fixed cost of preparing a case on a real bench (nominal state, block write, settle).
SETUP_S = 20.0
#: A working day on the bench (est_bench_s sum): what the soak suite exceeds.
WORKING_DAY_S = 8 * 3600.0
#: The regression's bench time before issue 10's new cases, and its budget: at most 20 %
#: more (issue 10 item 11: 9.18 h), what the suite's estimate must fit.
REGRESSION_BASELINE_S = 7.65 * 3600.0
REGRESSION_BUDGET_S = 1.2 * REGRESSION_BASELINE_S


class Case(BaseModel):
    """One test case of the plan. JSON-able through :meth:`to_dict`.

    ``procedure`` names the function that runs it (``harness/procedures/registry.py``);
    ``params`` is the setup the plan produced for it: the procedure re-derives nothing.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    item: str
    number: int
    kind: CaseKind
    category: str
    quantity: str | None = None
    direction: str | None = None
    condition: str | None = None
    flag: str | None = None
    expected: float | None = None
    tolerance: float | None = None
    unit: str = ""
    overrides: dict[int, float] = Field(default_factory=dict)
    switch_overrides: dict[int, bool] = Field(default_factory=dict)
    procedure: str
    params: dict[str, Any] = Field(default_factory=dict)
    suites: list[str] = Field(default_factory=list)
    est_bench_s: float = 0.0
    testable: bool = True
    reason: str | None = None
    #: A person must act in this case (a hand-step the bench wires no relay for); None when
    #: the plan was built without knowing the bench's relays.
    needs_operator: bool | None = False
    #: The longest the case waits for that person: its prompts x the prompt timeout.
    operator_wait_s: float | None = None
    #: Cases of one group run on one bench in plan order (``harness/xdist_hooks.py``): a
    #: case proven by another's verdict and that case (``harness/plan/evidence.py``).
    sequence_group: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (override keys become strings in JSON, ints here)."""
        return self.model_dump(mode="json")


def cid(row: Parameter | Switch, suffix: str) -> str:
    """Stable case id ``P05-cell-overvoltage-protection-trip``: item (two digits), slug,
    suffix; the suffix's first word is not repeated when the slug already ends with it
    (``P06-cell-overvoltage-recovery``, ``P78-standby-shutdown-delay-shortened``)."""
    prefix = "P" if isinstance(row, Parameter) else "S"
    head = suffix.split("-", 1)
    if row.id.endswith("-" + head[0]):
        suffix = head[1] if len(head) > 1 else ""
    return f"{prefix}{row.number:02d}-{row.id}" + (f"-{suffix}" if suffix else "")


def switch_state_case(
    s: Switch,
    on: bool,
    overrides: dict[int, float],
    switch_overrides: dict[int, bool],
    **fields: Any,
) -> Case:
    """The case proving switch ``s`` in state ``on`` (``switch-on``/``switch-off``): what
    every switch case shares (id, item, flag, expected state, no tolerance, the state under
    test in ``switch_overrides``); ``fields`` are the rest (procedure, params, estimate)."""
    kind: CaseKind = "switch-on" if on else "switch-off"
    return Case(
        id=cid(s, kind),
        item=s.item,
        number=s.number,
        kind=kind,
        category="function switch",
        flag=s.flag,
        expected=1.0 if on else 0.0,
        tolerance=0.0,
        unit="",
        overrides=overrides,
        switch_overrides=switch_overrides,
        **fields,
    )


def grid(value: float, step: float) -> float:
    """Round to the grid of ``step`` (and to clean decimals)."""
    decimals = max(0, -math.floor(math.log10(step))) + 1 if step < 1 else 3
    return round(value, decimals)


def to_seconds(value: float, unit: str) -> float:
    return value * SECONDS_PER_UNIT.get(unit, 1.0)


def probes(start: float, target: float, resolution: float) -> int:
    """Probes of a coarse-then-fine (or bisection) search: coarse steps of 10 x resolution
    up to the threshold, then ten fine ones."""
    return math.ceil(abs(target - start) / (10 * resolution)) + 10


def band(spec: Spec, row: Parameter | int | str, expected: float) -> float:
    """The one tolerance band: half-width of the acceptance band of ``row`` at ``expected``
    (``tolerances.yaml`` and the row's override). Procedures never compute one."""
    return spec.tolerance_for(row).band(expected)


def value(spec: Spec, raw: Any, overrides: Mapping[int, float] | None = None) -> Any:
    """A recipe value: a number as written, a :class:`Ref` (or a mapping that is one)
    computed from the spec's (configured) values, with the case's overrides in force."""
    if is_ref(raw):
        raw = Ref.model_validate(raw)
    if not isinstance(raw, Ref):
        return raw
    over = overrides or {}

    def value_of(item: str) -> float:
        n = item_number(item)
        return float(over.get(n, spec.param(n).default))

    return raw.evaluate(value_of, lambda item, at: band(spec, item, at))


def params(spec: Spec, raw: Mapping[str, Any], overrides: Mapping[int, float]) -> dict[str, Any]:
    """A recipe's ``params`` with every relative value computed (also inside a list of
    mappings, e.g. ``stimuli: [{stimulus, level}]``)."""

    def computed(v: Any) -> Any:
        if isinstance(v, list):
            return [computed(e) for e in v]
        if isinstance(v, Mapping) and not is_ref(v):
            return {k: computed(e) for k, e in v.items()}
        return value(spec, v, overrides)

    return {k: computed(v) for k, v in raw.items()}


def nominal(spec: Spec, overrides: Mapping[int, float]) -> dict[str, float]:
    """What a case's nominal state uses (every row's ``recipe.nominal``), computed with the
    case's overrides in force; a live row the case overrides gives none (its override is
    written instead)."""
    out: dict[str, float] = {}
    for p in spec.parameters:
        r = p.recipe
        if r is None or not r.nominal or (r.live and p.number in overrides):
            continue
        for name, raw in r.nominal.items():
            if name in out:
                raise ValueError(f"nominal value {name!r} given by two rows (second: {p.item})")
            out[name] = float(value(spec, raw, overrides))
    return out


def isolation(spec: Spec, recipe: Isolation) -> tuple[dict[int, float], dict[int, bool]]:
    """(parameter overrides, switch overrides) of a recipe, keyed by number."""
    overrides = {item_number(k): float(value(spec, v)) for k, v in recipe.overrides.items()}
    switches = {item_number(k): bool(v) for k, v in recipe.switch_overrides.items()}
    return overrides, switches


def delay_s(spec: Spec, p: Parameter, overrides: Mapping[int, float]) -> float:
    """Seconds of the delay row that confirms ``p`` (0 when none), overrides in force."""
    if p.delay is None:
        return 0.0
    d = spec.param(p.delay)
    return to_seconds(overrides.get(d.number, d.default), d.unit)


def capable(caps: Mapping[str, bool], name: str) -> bool:
    return bool(caps.get(name, False))


def missing(needs: Mapping[str, str], caps: Mapping[str, bool]) -> str | None:
    """The reason of the first capability in ``needs`` (capability -> reason) the bench lacks."""
    for cap, why in needs.items():
        if not capable(caps, cap):
            return why
    return None


def hardware_reason(cap: str, switch: str | None = None) -> str:
    what = cap.replace("_", " ")
    via = f"{switch}; " if switch else ""
    return f"needs {what} hardware ({via}bench capability {cap} is false)"


def hands_reason(steps: Collection[str], caps: Mapping[str, bool]) -> str | None:
    """Why a case's hand-steps cannot be done on this bench (each needs its hardware)."""
    for step in steps:
        cap = HAND_STEP_CAPABILITY[step]
        if not capable(caps, cap):
            return hardware_reason(cap)
    return None


def with_absent(
    raw: Mapping[str, Any], without: Mapping[str, Mapping[str, Any]], caps: Mapping[str, bool]
) -> dict[str, Any]:
    """``raw`` with the extra params of every capability the bench lacks."""
    out = dict(raw)
    for cap, extra in without.items():
        if not capable(caps, cap):
            out.update(extra)
    return out


def operator_fields(case: Case, relays: Collection[str] | None) -> None:
    """``needs_operator``/``operator_wait_s`` of a case from the bench's relays."""
    steps = case.params.get("hand_steps") or []
    if not steps:
        return
    case.params.setdefault("operator_timeout_s", OPERATOR_TIMEOUT_S)
    timeout = float(case.params["operator_timeout_s"])
    prompts = case.params.get("hand_prompts") or {}
    if relays is None:
        case.needs_operator = None
        manual = list(steps)
    else:
        manual = [s for s in steps if s not in relays]
        case.needs_operator = bool(manual)
    if not case.testable:
        case.needs_operator, case.operator_wait_s = False, None
        return
    waits = sum(int(prompts.get(s, 2)) for s in manual) * timeout
    case.operator_wait_s = waits if manual else None
