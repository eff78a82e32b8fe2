"""The spec tables as typed models: parameters, switches, status flags and tolerances, with
their encodings and ranges, and the :class:`Spec` that holds one loaded set of tables.
Loading and validating the YAML is ``bmsspec.tables``; these models only hold what passed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from bmsspec.capabilities import SWITCH_HARDWARE
from bmsspec.recipes import ParameterRecipe, SwitchRecipe

N_PARAMETERS = 87

N_SWITCHES = 64

Kind = Literal["alarm", "protection", "recovery", "delay", "count", "capacity", "configuration"]

Quantity = Literal[
    "cell_voltage",
    "pack_voltage",
    "port_voltage",
    "cell_temperature",
    "ambient_temperature",
    "power_temperature",
    "charge_current",
    "discharge_current",
    "soc",
    "cell_voltage_difference",
    "time",
    "capacity",
    "count",
    "impedance",
    "position",
]

Direction = Literal["high", "low"]

Condition = Literal["charging", "discharging", "standby", "any"]

Unit = Literal["V", "°C", "A", "mS", "Ah", "hours", "count", "second", "minute", "%", "mΩ"]

#: Seconds per unit of the time units the spec uses (to convert delays and tolerance floors).
SECONDS_PER_UNIT: dict[str, float] = {"mS": 0.001, "second": 1.0, "minute": 60.0, "hours": 3600.0}

#: A switch's ``needs``: nothing, or the bench hardware (``bmsspec.capabilities``) it needs.
_NEEDS_RE = re.compile(
    r"^(none|unused|notification|inverter|"
    rf"hardware:({'|'.join(map(re.escape, SWITCH_HARDWARE))}))$"
)


class SpecError(ValueError):
    """A spec table is malformed or inconsistent; the message names file, row, key and value."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Encoding(_Model):
    """Wire encoding of one parameter in the 0x47/0xA1 block (protocol doc 7.1-7.2)."""

    index: int = Field(ge=0, le=0x56)
    bytes: Literal[1, 2]
    scale: float = Field(gt=0)
    signed: bool = False
    offset: int = 0

    @property
    def raw_min(self) -> int:
        """Smallest raw integer the field can hold (as a signed number when signed)."""
        return -(1 << (8 * self.bytes - 1)) if self.signed else 0

    @property
    def raw_max(self) -> int:
        """Largest raw integer the field can hold."""
        return (1 << (8 * self.bytes - 1)) - 1 if self.signed else (1 << (8 * self.bytes)) - 1

    @property
    def decimals(self) -> int:
        """Decimal places of the scale: decoded values are rounded to it (no 3.5500000001)."""
        exponent = Decimal(repr(self.scale)).normalize().as_tuple().exponent
        return max(0, -int(exponent))


class Range(_Model):
    """Allowed values: numeric bounds and/or bounds given by another parameter's value."""

    min: float | None = None
    max: float | None = None
    min_param: int | None = None
    max_param: int | None = None


class ToleranceOverride(_Model):
    """Per-row tolerance in the row's own unit; either field may be left to the default."""

    abs: float | None = Field(default=None, ge=0)
    rel: float | None = Field(default=None, ge=0)


class Parameter(_Model):
    """One of the 87 parameters (a row of parameters.yaml)."""

    number: int = Field(ge=1)
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    name: str = Field(min_length=1)
    alias: str
    default: float
    default_text: str = Field(pattern=r"^-?\d+\.\d+$")
    unit: Unit
    explanation: str
    encoding: Encoding
    range_spec: Range | None = Field(default=None, alias="range")
    range_note: str | None = None
    kind: Kind
    quantity: Quantity
    direction: Direction | None = None
    condition: Condition
    test_condition: Condition | None = None
    partner: int | None = None
    switch: int | None = None
    delay: int | None = None
    flag: str | None = None
    recovery_offset: float | None = None
    tolerance: ToleranceOverride | None = None
    #: How the plan tests this row (bmsspec/recipes.py); None: read-back only.
    recipe: ParameterRecipe | None = None

    _range: tuple[float, float] | None = PrivateAttr(default=None)

    @property
    def item(self) -> str:
        """The short name used in plans, faults files and reports: ``P5``."""
        return f"P{self.number}"

    @property
    def range(self) -> tuple[float, float] | None:
        """(min, max) in the spec unit; a bound given only as another parameter is resolved
        to that parameter's own static bound, else to the encoding's limit. None: no range."""
        return self._range

    @property
    def resolution(self) -> float:
        """One raw count in the spec unit."""
        return self.encoding.scale

    @property
    def bench_condition(self) -> Condition:
        """The state a test puts the bench in to exercise this row."""
        return self.test_condition or self.condition

    @property
    def encodable_range(self) -> tuple[float, float]:
        """(min, max) that the wire field can carry, in the spec unit."""
        e = self.encoding
        return ((e.raw_min - e.offset) * e.scale, (e.raw_max - e.offset) * e.scale)

    def encode(self, value: float) -> int:
        """Value in the spec unit -> the unsigned integer on the wire (two's complement if signed).

        Raises ValueError when the value does not fit the field, so a codec never silently
        wraps a threshold into another one.
        """
        e = self.encoding
        raw = round(value / e.scale) + e.offset
        if not e.raw_min <= raw <= e.raw_max:
            raise ValueError(
                f"{self.item} ({self.id}): {value} {self.unit} -> raw {raw} does not fit "
                f"{e.bytes} byte(s) {'signed' if e.signed else 'unsigned'}"
            )
        return raw & ((1 << (8 * e.bytes)) - 1)

    def decode(self, raw: int) -> float:
        """Unsigned integer from the wire -> value in the spec unit."""
        e = self.encoding
        if not 0 <= raw < (1 << (8 * e.bytes)):
            raise ValueError(f"{self.item} ({self.id}): raw {raw} is not a {e.bytes}-byte field")
        if e.signed and raw >= 1 << (8 * e.bytes - 1):
            raw -= 1 << (8 * e.bytes)
        return round((raw - e.offset) * e.scale, e.decimals)


class Switch(_Model):
    """One of the 64 function switches (a row of switches.yaml)."""

    number: int = Field(ge=1)
    bit: int = Field(ge=0, le=63)
    byte: int = Field(ge=0, le=7)
    bit_in_byte: int = Field(ge=0, le=7)
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    name: str = Field(min_length=1)
    alias: str
    default: bool
    default_text: Literal["Open", "Close"]
    explanation: str
    needs: str = Field(pattern=_NEEDS_RE.pattern)
    governs: list[int] = Field(default_factory=list)
    flag: str | None = None
    #: How the plan tests this switch (bmsspec/recipes.py); None: the generic rule.
    recipe: SwitchRecipe = Field(default_factory=SwitchRecipe)

    @property
    def item(self) -> str:
        """The short name used in plans, faults files and reports: ``S10``."""
        return f"S{self.number}"

    @property
    def hardware(self) -> str | None:
        """The bench capability the function needs (``heater``...), or None."""
        return self.needs.split(":", 1)[1] if self.needs.startswith("hardware:") else None


class StatusFlag(_Model):
    """One named bit of the 0x44 answer."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    offset: int = Field(ge=0, le=48)
    bit: int = Field(ge=0, le=7)
    group: str | None = None


class _ToleranceRow(_Model):
    abs: float | None = Field(default=None, ge=0)
    rel: float = Field(default=0.0, ge=0)
    floor_s: float | None = Field(default=None, ge=0)
    unit: str | None = None
    why: str | None = None


@dataclass(frozen=True)
class Tolerance:
    """Acceptance band: ``|measured - expected| <= max(abs, rel * |expected|)``, in ``unit``."""

    abs: float
    rel: float
    unit: str

    def band(self, expected: float) -> float:
        """Half-width of the acceptance band around ``expected``."""
        return max(self.abs, self.rel * abs(expected))

    def accepts(self, measured: float, expected: float) -> bool:
        """True when ``measured`` is inside the band around ``expected``."""
        return abs(measured - expected) <= self.band(expected) + 1e-12


class Spec:
    """The loaded tables. Build with :func:`load_spec`; treat as read-only."""

    #: The device configuration this Spec's defaults hold (``bmsspec.config``); None: the
    #: tables' own defaults.
    configuration: Any = None

    def __init__(
        self,
        directory: Path,
        source: Path | None,
        parameters: list[Parameter],
        switches: list[Switch],
        flags: list[StatusFlag],
        tolerances: dict[str, _ToleranceRow],
        sha256: str,
        reported: list[Any] | None = None,
    ) -> None:
        self.directory = directory
        self.source = source
        self.parameters = parameters
        self.switches = switches
        self.flags = flags
        self._tolerances = tolerances
        self.sha256 = sha256
        #: What the BMS reports, compared with the bench (``reported.yaml``,
        #: ``bmsspec.reported.ReportRecipe``).
        self.reported = list(reported or [])
        self._p_by_number = {p.number: p for p in parameters}
        self._p_by_id = {p.id: p for p in parameters}
        self._s_by_number = {s.number: s for s in switches}
        self._s_by_id = {s.id: s for s in switches}
        self._flag_by_name = {f.name: f for f in flags}

    # lookups ----------------------------------------------------------------
    def param(self, key: int | str) -> Parameter:
        """A parameter by number (5), item ("P5", "P05") or slug ("cell-overvoltage-protection")."""
        number = _item_number(key, "P")
        if number is not None:
            if number in self._p_by_number:
                return self._p_by_number[number]
        elif isinstance(key, str) and key in self._p_by_id:
            return self._p_by_id[key]
        raise KeyError(f"no parameter {key!r} (numbers 1..{N_PARAMETERS}, 'P5' or a slug)")

    def switch(self, key: int | str) -> Switch:
        """A switch by number (10), item ("S10") or slug."""
        number = _item_number(key, "S")
        if number is not None:
            if number in self._s_by_number:
                return self._s_by_number[number]
        elif isinstance(key, str) and key in self._s_by_id:
            return self._s_by_id[key]
        raise KeyError(f"no switch {key!r} (numbers 1..{N_SWITCHES}, 'S10' or a slug)")

    def item(self, key: str) -> Parameter | Switch:
        """``"P5"`` or ``"S10"`` -> the row."""
        if key[:1].upper() == "S":
            return self.switch(key)
        return self.param(key)

    def flag(self, name: str) -> StatusFlag:
        """A 0x44 flag by name."""
        try:
            return self._flag_by_name[name]
        except KeyError:
            raise KeyError(f"no status flag {name!r}") from None

    @property
    def flag_names(self) -> list[str]:
        """Every 0x44 flag name, in table order."""
        return [f.name for f in self.flags]

    # values -----------------------------------------------------------------
    def defaults(self) -> dict[int, float]:
        """{parameter number: spec default} - the factory block."""
        return {p.number: p.default for p in self.parameters}

    def default_switches(self) -> dict[int, bool]:
        """{switch number: spec default} (Open = True)."""
        return {s.number: s.default for s in self.switches}

    def tolerance_for(self, param: Parameter | int | str) -> Tolerance:
        """Default tolerance of the parameter's quantity, with the row's override applied,
        in the parameter's unit (time floors converted from seconds)."""
        p = param if isinstance(param, Parameter) else self.param(param)
        row = self._tolerances[p.quantity]
        if row.floor_s is not None:
            absolute = row.floor_s / SECONDS_PER_UNIT.get(p.unit, 1.0)
        else:
            absolute = row.abs or 0.0
        rel = row.rel
        if p.tolerance is not None:
            absolute = p.tolerance.abs if p.tolerance.abs is not None else absolute
            rel = p.tolerance.rel if p.tolerance.rel is not None else rel
        return Tolerance(abs=absolute, rel=rel, unit=p.unit)

    def accuracy(self, quantity: str) -> Tolerance:
        """The stated accuracy of a reported quantity: its ``tolerances.yaml`` row."""
        row = self._tolerances[quantity]
        return Tolerance(abs=row.abs or 0.0, rel=row.rel, unit=row.unit or "")

    def block_violations(
        self, values: Mapping[int, float], *, allow_missing: bool = False
    ) -> list[str]:
        """Why a whole parameter block would be refused (empty list: acceptable).

        Checks every value against its encoding, its numeric range, the parameters named as
        bounds, and the trip/recovery order of each pair. The twin refuses a 0xA1 write with
        any violation and the plan uses it to choose write-back values, so both agree.
        """
        problems: list[str] = []
        for p in self.parameters:
            if p.number not in values:
                if not allow_missing:
                    problems.append(f"{p.item} ({p.id}) missing")
                continue
            v = float(values[p.number])
            lo, hi = p.encodable_range
            if not lo - 1e-9 <= v <= hi + 1e-9:
                problems.append(f"{p.item} ({p.id}) = {v} does not fit the wire field")
                continue
            r = p.range_spec
            if r is not None:
                problems += _bound_problems(p, v, r, values)
            if p.kind == "recovery" and p.partner is not None and p.partner in values:
                trip = float(values[p.partner])
                if p.direction == "high" and not v < trip:
                    problems.append(f"{p.item} ({p.id}) = {v} not below trip P{p.partner} = {trip}")
                if p.direction == "low" and not v > trip:
                    problems.append(f"{p.item} ({p.id}) = {v} not above trip P{p.partner} = {trip}")
        return problems


def _bound_problems(p: Parameter, v: float, r: Range, values: Mapping[int, float]) -> list[str]:
    eps = p.resolution / 2
    out = []
    if r.min is not None and v < r.min - eps:
        out.append(f"{p.item} ({p.id}) = {v} below min {r.min}")
    if r.max is not None and v > r.max + eps:
        out.append(f"{p.item} ({p.id}) = {v} above max {r.max}")
    if r.min_param is not None and r.min_param in values and v < float(values[r.min_param]) - eps:
        out.append(f"{p.item} ({p.id}) = {v} below P{r.min_param} = {values[r.min_param]}")
    if r.max_param is not None and r.max_param in values and v > float(values[r.max_param]) + eps:
        out.append(f"{p.item} ({p.id}) = {v} above P{r.max_param} = {values[r.max_param]}")
    return out


def _item_number(key: int | str, prefix: str) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    m = re.fullmatch(rf"[{prefix}{prefix.lower()}]?0*(\d+)", key.strip())
    return int(m.group(1)) if m else None


def iter_items(spec: Spec) -> Iterable[str]:
    """Every item of the spec: P1..P87 then S1..S64 (for coverage checks)."""
    yield from (p.item for p in spec.parameters)
    yield from (s.item for s in spec.switches)


PARAMETERS_FILE = "parameters.yaml"

SWITCHES_FILE = "switches.yaml"

TOLERANCES_FILE = "tolerances.yaml"

FLAGS_FILE = "status_flags.yaml"

REPORTED_FILE = "reported.yaml"

TABLE_FILES = (PARAMETERS_FILE, SWITCHES_FILE, TOLERANCES_FILE, FLAGS_FILE, REPORTED_FILE)
