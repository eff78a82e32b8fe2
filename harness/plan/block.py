"""Parameter-block cases: every parameter written and read back, plus the read-back
variants a row lists (``kind: readback``: a refused out-of-range write, the single
remaining-capacity write)."""

from __future__ import annotations

from bmsspec import Parameter, Spec
from harness.plan.common import SETUP_S, Case, cid
from harness.plan.listed import listed, number

#: Bench seconds of a write and read-back beyond the setup.
READBACK_EST_S = 10.0


def readback_value(spec: Spec, p: Parameter) -> float:
    """A value to write for P's read-back: one step (or a few) away from the default, so a
    write that did not take is seen, and such that the whole default block stays acceptable
    (ranges, parameter bounds, trip/recovery order): the device must accept it."""
    values = spec.defaults()
    step = p.resolution
    if p.quantity in ("count", "position"):
        step = 1.0
    for k in (1, -1, 2, -2, 5, -5, 10, -10):
        candidate = round(p.default + k * step, p.encoding.decimals)
        values[p.number] = candidate
        if not spec.block_violations(values):
            return candidate
    raise ValueError(f"{p.item}: no acceptable read-back value near {p.default}")


def out_of_range_value(spec: Spec, p: Parameter) -> float:
    """A value just beyond the parameter's numeric maximum (or minimum) that still fits the
    wire field, so refusing it is the device's range check, not the codec's."""
    r = p.range_spec
    lo_enc, hi_enc = p.encodable_range
    if r is not None and r.max is not None and r.max + 10 * p.resolution <= hi_enc:
        return round(r.max + 10 * p.resolution, p.encoding.decimals)
    if r is not None and r.min is not None and r.min - 10 * p.resolution >= lo_enc:
        return round(r.min - 10 * p.resolution, p.encoding.decimals)
    raise ValueError(f"{p.item} has no numeric bound to exceed")


def block_cases(spec: Spec) -> list[Case]:
    live = [p.number for p in spec.parameters if p.recipe is not None and p.recipe.live]
    cases = []
    for p in spec.parameters:
        value = readback_value(spec, p)
        recipe = p.recipe
        cases.append(
            Case(
                id=cid(p, "readback"),
                item=p.item,
                number=p.number,
                kind="readback",
                category="parameter block",
                quantity=p.quantity,
                unit=p.unit,
                expected=value,
                tolerance=round(p.resolution / 2, 6),
                procedure="readback.write",
                params={"value": value, "default": p.default, "live": live},
                suites=list(recipe.suites.get("readback", ["regression"]))
                if recipe
                else ["regression"],
                est_bench_s=SETUP_S + READBACK_EST_S,
                reason=recipe.readback_only if recipe else None,
            )
        )
    for p, c in listed(spec, "readback"):
        params = {**c.params, "live": live}
        if params.get("value") == "out_of_range":
            params["value"] = out_of_range_value(spec, p)
        else:
            params["value"] = number(spec, params.get("value"))
        cases.append(
            Case(
                id=cid(p, c.suffix or "readback"),
                item=p.item,
                number=p.number,
                kind="readback",
                category=c.category or "parameter block",
                quantity=p.quantity,
                unit=p.unit,
                expected=number(spec, c.expected),
                tolerance=round(p.resolution / 2, 6)
                if c.tolerance is None
                else number(spec, c.tolerance),
                procedure=c.procedure,
                params=params,
                suites=list(c.suites),
                est_bench_s=SETUP_S
                + (READBACK_EST_S if c.est_s is None else number(spec, c.est_s)),
            )
        )
    return cases
