"""The parameter block as the board stores it: spec semantics pulled once from the spec
tables (``bmsspec``), values quantised to what the wire carries, and the checks a write
must pass before the board accepts it (0xA1 -> RTN 0x06 on refusal)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PARAMS = 87
SWITCHES = 64
MODEL_NAME_LEN = 10


@dataclass(frozen=True)
class ParamInfo:
    """What the twin needs of one spec parameter row."""

    number: int
    id: str
    unit: str
    default: float
    scale: float
    bytes: int
    signed: bool
    offset: int
    kind: str | None
    direction: str | None
    condition: str | None
    partner: int | None
    range_min: float | None
    range_max: float | None
    range_min_param: int | None
    range_max_param: int | None

    @property
    def label(self) -> str:
        return f"P{self.number} ({self.id})"

    def raw_limits(self) -> tuple[int, int]:
        bits = 8 * self.bytes
        if self.signed:
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1

    def to_raw(self, value: float) -> int:
        return int(round(value / self.scale)) + self.offset

    def from_raw(self, raw: int) -> float:
        # round away the binary noise of scale multiplication (3.5500000000000003 -> 3.55)
        return round((raw - self.offset) * self.scale, 6)

    def quantise(self, value: float) -> float:
        return self.from_raw(self.to_raw(value))


@dataclass(frozen=True)
class SwitchInfo:
    number: int
    id: str
    default: bool


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _range_of(p: Any) -> tuple[float | None, float | None, int | None, int | None]:
    """Bounds of a spec row, whatever shape the loader gives them: ``None``, a ``(min, max)``
    pair, or an object/mapping with ``min``/``max``/``min_param``/``max_param``."""
    r = _attr(p, "range_spec") if _attr(p, "range_spec") is not None else _attr(p, "range")
    if r is None:
        return None, None, None, None
    if isinstance(r, tuple | list) and len(r) == 2:
        lo, hi = r
        return (
            None if lo is None else float(lo),
            None if hi is None else float(hi),
            _attr(p, "range_min_param"),
            _attr(p, "range_max_param"),
        )
    lo, hi = _attr(r, "min"), _attr(r, "max")
    lo_p, hi_p = _attr(r, "min_param"), _attr(r, "max_param")
    return (
        None if lo is None else float(lo),
        None if hi is None else float(hi),
        None if lo_p is None else int(lo_p),
        None if hi_p is None else int(hi_p),
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


class ParamTable:
    """Spec rows of the 87 parameters and 64 switches, read once from ``spec``."""

    def __init__(self, spec: Any) -> None:
        #: bmsspec's whole-block check, shared with the plan so both refuse the same
        #: blocks; the twin falls back to its own checks when a spec object lacks it.
        self._block_violations = getattr(spec, "block_violations", None)
        self.params: dict[int, ParamInfo] = {}
        for n in range(1, PARAMS + 1):
            p = spec.param(n)
            enc = p.encoding
            lo, hi, lo_p, hi_p = _range_of(p)
            partner = _attr(p, "partner")
            self.params[n] = ParamInfo(
                number=n,
                id=str(_attr(p, "id", f"p{n}")),
                unit=str(_attr(p, "unit", "")),
                default=float(p.default),
                scale=float(_attr(enc, "scale", 1.0)),
                bytes=int(_attr(enc, "bytes", 2)),
                signed=bool(_attr(enc, "signed", False)),
                offset=int(_attr(enc, "offset", 0)),
                kind=_text(_attr(p, "kind")),
                direction=_text(_attr(p, "direction")),
                condition=_text(_attr(p, "condition")),
                partner=None if partner is None else int(partner),
                range_min=lo,
                range_max=hi,
                range_min_param=lo_p,
                range_max_param=hi_p,
            )
        self.switches: dict[int, SwitchInfo] = {}
        for n in range(1, SWITCHES + 1):
            s = spec.switch(n)
            self.switches[n] = SwitchInfo(
                number=n, id=str(_attr(s, "id", f"s{n}")), default=bool(s.default)
            )

    def factory_values(self) -> dict[int, float]:
        return {n: p.quantise(p.default) for n, p in self.params.items()}

    def factory_switches(self) -> dict[int, bool]:
        return {n: s.default for n, s in self.switches.items()}

    # ------------------------------------------------------------------ validation

    def validate(
        self, values: Mapping[int, Any], switches: Mapping[int, Any], model_name: Any
    ) -> tuple[dict[int, float], dict[int, bool], str]:
        """Check a whole block; return it quantised. Raises ValueError naming the item and
        value on the first problem, so RTN 0x06 comes with a reason in the log."""
        missing = [n for n in self.params if n not in values]
        if missing:
            raise ValueError(f"parameter block incomplete: missing P{missing[0]}")
        extra = [k for k in values if k not in self.params]
        if extra:
            raise ValueError(f"parameter block has unknown item {extra[0]!r}")
        q: dict[int, float] = {}
        for n, p in self.params.items():
            v = values[n]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"{p.label} = {v!r}: not a finite number")
            raw = p.to_raw(float(v))
            lo, hi = p.raw_limits()
            if not lo <= raw <= hi:
                raise ValueError(
                    f"{p.label} = {v} {p.unit}: outside what {p.bytes} byte(s) carry "
                    f"({p.from_raw(lo)} .. {p.from_raw(hi)} {p.unit})"
                )
            q[n] = p.from_raw(raw)
        if self._block_violations is not None:
            problems = self._block_violations(q)
            if problems:
                raise ValueError("; ".join(problems))
        else:
            self._check_bounds(q)
        sw = self._validate_switches(switches)
        name = self._validate_name(model_name)
        return q, sw, name

    def _check_bounds(self, q: dict[int, float]) -> None:
        eps = 1e-9
        for n, p in self.params.items():
            v = q[n]
            if p.range_min is not None and v < p.range_min - eps:
                raise ValueError(f"{p.label} = {v} {p.unit}: below its minimum {p.range_min}")
            if p.range_max is not None and v > p.range_max + eps:
                raise ValueError(f"{p.label} = {v} {p.unit}: above its maximum {p.range_max}")
            if p.range_min_param is not None and v < q[p.range_min_param] - eps:
                m = p.range_min_param
                raise ValueError(
                    f"{p.label} = {v} {p.unit}: below P{m} ({self.params[m].id}) = {q[m]}"
                )
            if p.range_max_param is not None and v > q[p.range_max_param] + eps:
                m = p.range_max_param
                raise ValueError(
                    f"{p.label} = {v} {p.unit}: above P{m} ({self.params[m].id}) = {q[m]}"
                )
        # A recovery must lie strictly on the safe side of its trip (as bmsspec rules).
        for n, p in self.params.items():
            if p.kind != "recovery" or p.partner is None or p.direction is None:
                continue
            trip = q[p.partner]
            wrong = q[n] >= trip - eps if p.direction == "high" else q[n] <= trip + eps
            if wrong:
                side = "below" if p.direction == "high" else "above"
                raise ValueError(
                    f"{p.label} = {q[n]} {p.unit}: recovery not {side} its trip "
                    f"P{p.partner} ({self.params[p.partner].id}) = {trip}"
                )

    def _validate_switches(self, switches: Mapping[int, Any]) -> dict[int, bool]:
        out: dict[int, bool] = {}
        for n in self.switches:
            if n not in switches:
                raise ValueError(f"parameter block incomplete: missing S{n}")
            v = switches[n]
            if not isinstance(v, bool | int) or v not in (0, 1):
                raise ValueError(f"S{n} ({self.switches[n].id}) = {v!r}: not a switch state")
            out[n] = bool(v)
        extra = [k for k in switches if k not in self.switches]
        if extra:
            raise ValueError(f"parameter block has unknown switch {extra[0]!r}")
        return out

    @staticmethod
    def _validate_name(name: Any) -> str:
        if not isinstance(name, str) or len(name) > MODEL_NAME_LEN or not name.isascii():
            raise ValueError(f"model name {name!r}: needs at most {MODEL_NAME_LEN} ASCII chars")
        return name.ljust(MODEL_NAME_LEN)
