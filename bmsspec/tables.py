"""The spec tables (``test_plans/*.yaml``) as typed, validated objects.

Everything downstream (the test plan, the procedures, the BMS twin, the protocol codecs)
reads the 87 parameters and 64 switches through :func:`load_spec`, so a table error must be
caught here, once, with a message that says where it is: file, row (number and id), key and
value. The loader is cached per directory because several components load it at start-up.

Units are the spec's; ``raw = round(value / scale) + offset`` (two's complement when signed).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from bmsspec.capabilities import SWITCH_HARDWARE
from bmsspec.paths import PROJECT_ROOT, TEST_PLANS_DIR
from bmsspec.recipes import (
    OBSERVED_STATES,
    ParameterRecipe,
    SwitchRecipe,
    capabilities_named,
    flags_named,
    known_capability,
    references,
)

PARAMETERS_FILE = "parameters.yaml"
SWITCHES_FILE = "switches.yaml"
TOLERANCES_FILE = "tolerances.yaml"
FLAGS_FILE = "status_flags.yaml"
TABLE_FILES = (PARAMETERS_FILE, SWITCHES_FILE, TOLERANCES_FILE, FLAGS_FILE)

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


# --------------------------------------------------------------------------- models


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


# --------------------------------------------------------------------------- the spec


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
    ) -> None:
        self.directory = directory
        self.source = source
        self.parameters = parameters
        self.switches = switches
        self.flags = flags
        self._tolerances = tolerances
        self.sha256 = sha256
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


# --------------------------------------------------------------------------- loading

#: libyaml's loader when present (ten times faster than the pure-Python one; same result).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CACHE: dict[tuple[Any, ...], Spec] = {}
_CACHE_LOCK = threading.Lock()


def load_spec(directory: Path | str = TEST_PLANS_DIR) -> Spec:
    """Load and validate the four tables of ``directory`` (default: the repo's test_plans/).

    Cached per directory and file stamp (mtime, size), so repeated calls are free and an
    edited table is re-read. Raises :class:`SpecError` naming file, row, key and value.
    """
    directory = Path(directory).resolve()
    key = (str(directory), *(_stamp(directory / name) for name in TABLE_FILES))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    spec = _load(directory)
    with _CACHE_LOCK:
        _CACHE[key] = spec
    return spec


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise SpecError(f"{path.name}: file missing in {path.parent}")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path.name}: not valid YAML: {exc}") from exc


def _row_label(file: str, raw: Any, position: int) -> str:
    if isinstance(raw, dict):
        number = raw.get("number", "?")
        ident = raw.get("id", raw.get("name", "?"))
        return f"{file} row {number} ({ident})"
    return f"{file} row at position {position}"


def _fail(file: str, raw: Any, position: int, key: str, value: Any, why: str) -> SpecError:
    return SpecError(f"{_row_label(file, raw, position)}: key '{key}' value {value!r}: {why}")


def _validate_rows(file: str, rows: Any, model: type[_Model], top_key: str) -> list[Any]:
    if not isinstance(rows, list):
        raise SpecError(
            f"{file}: key '{top_key}' value {type(rows).__name__}: expected a list of rows"
        )
    out = []
    for position, raw in enumerate(rows, start=1):
        if not isinstance(raw, dict):
            raise _fail(file, raw, position, "(row)", raw, "a row must be a mapping")
        try:
            out.append(model.model_validate(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(part) for part in err["loc"]) or "(row)"
            value = err.get("input")
            if err["type"] == "missing":
                value = None
            raise _fail(file, raw, position, loc, value, err["msg"]) from None
    return out


def _load(directory: Path) -> Spec:
    p_doc = _read_yaml(directory / PARAMETERS_FILE)
    s_doc = _read_yaml(directory / SWITCHES_FILE)
    t_doc = _read_yaml(directory / TOLERANCES_FILE)
    f_doc = _read_yaml(directory / FLAGS_FILE)
    for name, doc, top in (
        (PARAMETERS_FILE, p_doc, "parameters"),
        (SWITCHES_FILE, s_doc, "switches"),
        (TOLERANCES_FILE, t_doc, "quantities"),
        (FLAGS_FILE, f_doc, "flags"),
    ):
        if not isinstance(doc, dict) or top not in doc:
            raise SpecError(f"{name}: key '{top}' value None: the file must map '{top}' to rows")

    flags = _validate_rows(FLAGS_FILE, f_doc["flags"], StatusFlag, "flags")
    params = _validate_rows(PARAMETERS_FILE, p_doc["parameters"], Parameter, "parameters")
    switches = _validate_rows(SWITCHES_FILE, s_doc["switches"], Switch, "switches")

    tol_doc = t_doc["quantities"]
    if not isinstance(tol_doc, dict):
        raise SpecError(f"{TOLERANCES_FILE}: key 'quantities' value {tol_doc!r}: not a mapping")
    tolerances: dict[str, _ToleranceRow] = {}
    for q, raw in tol_doc.items():
        try:
            tolerances[q] = _ToleranceRow.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(part) for part in err["loc"])
            raise SpecError(
                f"{TOLERANCES_FILE} row {q}: key '{loc}' value {err.get('input')!r}: {err['msg']}"
            ) from None

    _check_flags(flags)
    _check_numbering(PARAMETERS_FILE, params, N_PARAMETERS, p_doc["parameters"])
    _check_numbering(SWITCHES_FILE, switches, N_SWITCHES, s_doc["switches"])
    _check_parameters(params, {s.number for s in switches}, {f.name for f in flags}, tolerances)
    _check_switches(switches, {p.number for p in params}, {f.name for f in flags})
    governed = {s.number: set(s.governs) for s in switches}
    for p in params:
        if p.switch is not None and p.number not in governed[p.switch]:
            raise _p_fail(p, "switch", p.switch, f"S{p.switch} does not govern P{p.number}")
    _check_recipes(params, switches, {f.name for f in flags})

    source_text = p_doc.get("source")
    source = (PROJECT_ROOT / source_text).resolve() if isinstance(source_text, str) else None
    digest = hashlib.sha256()
    for name in TABLE_FILES:
        digest.update(name.encode() + b"\0" + (directory / name).read_bytes() + b"\0")
    if source is not None and source.is_file():
        digest.update(b"source\0" + source.read_bytes())
    return Spec(directory, source, params, switches, flags, tolerances, digest.hexdigest())


def _check_flags(flags: list[StatusFlag]) -> None:
    seen: dict[str, StatusFlag] = {}
    bits: dict[tuple[int, int], str] = {}
    for i, f in enumerate(flags, start=1):
        if f.name in seen:
            raise SpecError(f"{FLAGS_FILE} row {i} ({f.name}): key 'name' value {f.name!r}: twice")
        if (f.offset, f.bit) in bits:
            raise SpecError(
                f"{FLAGS_FILE} row {i} ({f.name}): key 'bit' value {f.bit}: offset {f.offset} "
                f"bit {f.bit} already named {bits[(f.offset, f.bit)]!r}"
            )
        seen[f.name] = f
        bits[(f.offset, f.bit)] = f.name


def _check_numbering(file: str, rows: list[Any], count: int, raw_rows: list[Any]) -> None:
    """Numbers 1..count, each once, in spec order; ids unique. A doubled number is reported
    before the gap it leaves, and a gap before the order, so the message names the cause."""
    seen: dict[int, Any] = {}
    ids: dict[str, Any] = {}
    for position, row in enumerate(rows, start=1):
        raw = raw_rows[position - 1]
        if row.number in seen:
            other = seen[row.number]
            why = f"doubled number (also row {other.number} ({other.id}))"
            raise _fail(file, raw, position, "number", row.number, why)
        if row.number > count:
            raise _fail(file, raw, position, "number", row.number, f"numbers run 1..{count}")
        if row.id in ids:
            why = f"id already used by row {ids[row.id].number}"
            raise _fail(file, raw, position, "id", row.id, why)
        seen[row.number] = row
        ids[row.id] = row
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        n = missing[0]
        after = seen.get(n - 1)
        where = f" (after row {after.number} ({after.id}))" if after is not None else ""
        raise SpecError(f"{file} row {n} (missing): key 'number' value {n}: row missing{where}")
    for position, row in enumerate(rows, start=1):
        if row.number != position:
            why = f"out of spec order (position {position})"
            raise _fail(file, raw_rows[position - 1], position, "number", row.number, why)


def _p_fail(p: Parameter, key: str, value: Any, why: str) -> SpecError:
    label = f"{PARAMETERS_FILE} row {p.number} ({p.id})"
    return SpecError(f"{label}: key '{key}' value {value!r}: {why}")


def _check_parameters(
    params: list[Parameter],
    switch_numbers: set[int],
    flag_names: set[str],
    tolerances: Mapping[str, _ToleranceRow],
) -> None:
    by_number = {p.number: p for p in params}
    indexes: dict[int, int] = {}
    for p in params:
        e = p.encoding
        if e.index in indexes:
            raise _p_fail(p, "encoding.index", e.index, f"already used by P{indexes[e.index]}")
        indexes[e.index] = p.number
        if e.index != p.number - 1:
            why = f"parameter {p.number} sits at index {p.number - 1}"
            raise _p_fail(p, "encoding.index", e.index, why)
        if float(p.default_text) != p.default:
            raise _p_fail(p, "default", p.default, f"differs from default_text {p.default_text!r}")
        for key, ref in (("partner", p.partner), ("delay", p.delay)):
            if ref is not None and ref not in by_number:
                raise _p_fail(p, key, ref, "no such parameter")
        if p.switch is not None and p.switch not in switch_numbers:
            raise _p_fail(p, "switch", p.switch, "no such switch")
        if p.flag is not None and p.flag not in flag_names:
            raise _p_fail(p, "flag", p.flag, "not a name in status_flags.yaml")
        if p.delay is not None and by_number[p.delay].kind != "delay":
            raise _p_fail(p, "delay", p.delay, f"P{p.delay} is not a delay parameter")
        if p.quantity not in tolerances:
            raise _p_fail(p, "quantity", p.quantity, "no default tolerance in tolerances.yaml")
        tol_unit = tolerances[p.quantity].unit
        if tol_unit is not None and tol_unit != p.unit:
            raise _p_fail(p, "unit", p.unit, f"tolerances.yaml gives {p.quantity} in {tol_unit!r}")
        if p.quantity == "time" and p.unit not in SECONDS_PER_UNIT:
            raise _p_fail(p, "unit", p.unit, "a time must be in mS, second, minute or hours")
        _check_encoding_fits(p, "default", p.default)
        if abs(p.decode(p.encode(p.default)) - p.default) > p.resolution / 2:
            raise _p_fail(p, "default", p.default, f"not a multiple of the scale {e.scale}")
        _check_pair(p, by_number)
    for p in params:  # after every pair: a wrong-side recovery is named as such, not as a range
        _check_range(p, by_number)
    for p in params:
        p._range = _resolve_range(p, by_number, set())


def _check_encoding_fits(p: Parameter, key: str, value: float) -> None:
    try:
        p.encode(value)
    except ValueError as exc:
        raise _p_fail(p, key, value, str(exc)) from None


def _check_pair(p: Parameter, by_number: Mapping[int, Parameter]) -> None:
    if p.partner is None:
        if p.kind == "recovery":
            raise _p_fail(p, "partner", None, "a recovery row needs the trip it belongs to")
        return
    other = by_number[p.partner]
    if other.partner != p.number:
        why = f"P{p.partner} names partner {other.partner}, not {p.number}"
        raise _p_fail(p, "partner", p.partner, why)
    if (p.kind == "recovery") == (other.kind == "recovery"):
        raise _p_fail(p, "partner", p.partner, "a pair is one trip row and one recovery row")
    if p.direction is None or p.direction != other.direction:
        why = f"a pair needs the same direction as P{p.partner}"
        raise _p_fail(p, "direction", p.direction, why)
    if p.kind == "recovery":
        trip = other.default
        if p.direction == "high" and not p.default < trip:
            why = f"high-side recovery must be below its trip {trip}"
            raise _p_fail(p, "default", p.default, why)
        if p.direction == "low" and not p.default > trip:
            why = f"low-side recovery must be above its trip {trip}"
            raise _p_fail(p, "default", p.default, why)


def _check_range(p: Parameter, by_number: Mapping[int, Parameter]) -> None:
    r = p.range_spec
    if r is None:
        return
    for key in ("min", "max"):
        bound = getattr(r, key)
        if bound is not None:
            _check_encoding_fits(p, f"range.{key}", bound)
    if r.min is not None and r.max is not None and r.min > r.max:
        raise _p_fail(p, "range.min", r.min, f"above range.max {r.max}")
    for key in ("min_param", "max_param"):
        ref = getattr(r, key)
        if ref is None:
            continue
        if ref not in by_number:
            raise _p_fail(p, f"range.{key}", ref, "no such parameter")
        if ref == p.number:
            raise _p_fail(p, f"range.{key}", ref, "a parameter cannot bound itself")
        if by_number[ref].unit != p.unit:
            why = f"P{ref} is in {by_number[ref].unit}, not {p.unit}"
            raise _p_fail(p, f"range.{key}", ref, why)
    problems = _bound_problems(p, p.default, r, {n: q.default for n, q in by_number.items()})
    if problems:
        raise _p_fail(p, "default", p.default, "outside its range: " + "; ".join(problems))


def _resolve_range(
    p: Parameter, by_number: Mapping[int, Parameter], visiting: set[int]
) -> tuple[float, float] | None:
    r = p.range_spec
    if r is None:
        return None
    lo_enc, hi_enc = p.encodable_range
    visiting = visiting | {p.number}

    def side(bound: float | None, ref: int | None, index: int, fallback: float) -> float:
        if bound is not None:
            return bound
        if ref is not None and ref not in visiting:
            other = _resolve_range(by_number[ref], by_number, visiting)
            if other is not None:
                return other[index]
        return fallback

    return (side(r.min, r.min_param, 0, lo_enc), side(r.max, r.max_param, 1, hi_enc))


def _check_switches(switches: list[Switch], param_numbers: set[int], flag_names: set[str]) -> None:
    for s in switches:

        def fail(key: str, value: Any, why: str, s: Switch = s) -> SpecError:
            label = f"{SWITCHES_FILE} row {s.number} ({s.id})"
            return SpecError(f"{label}: key '{key}' value {value!r}: {why}")

        if s.bit != s.number - 1:
            raise fail("bit", s.bit, f"switch {s.number} is bit {s.number - 1}")
        if (s.byte, s.bit_in_byte) != divmod(s.bit, 8):
            raise fail("byte", s.byte, f"bit {s.bit} is byte {s.bit // 8} bit {s.bit % 8}")
        if s.default != (s.default_text == "Open"):
            raise fail("default", s.default, f"differs from default_text {s.default_text!r}")
        for ref in s.governs:
            if ref not in param_numbers:
                raise fail("governs", ref, "no such parameter")
        if len(set(s.governs)) != len(s.governs):
            raise fail("governs", s.governs, "a parameter is listed twice")
        if s.flag is not None and s.flag not in flag_names:
            raise fail("flag", s.flag, "not a name in status_flags.yaml")


def _check_recipes(params: list[Parameter], switches: list[Switch], flag_names: set[str]) -> None:
    """Every row, flag and capability a recipe names exists (file, row, key, value)."""
    p_numbers = {p.number for p in params}
    s_numbers = {s.number for s in switches}

    def exists(item: str) -> bool:
        return int(item[1:]) in (p_numbers if item[0] == "P" else s_numbers)

    rows: list[tuple[str, Parameter | Switch]] = [(PARAMETERS_FILE, p) for p in params]
    rows += [(SWITCHES_FILE, s) for s in switches]
    for file, row in rows:
        recipe = row.recipe
        if recipe is None:
            continue
        label = f"{file} row {row.number} ({row.id})"
        for key, item in references(recipe):
            if not isinstance(item, str) or not exists(item):
                raise SpecError(f"{label}: key '{key}' value {item!r}: no such row")
        for key, flag in flags_named(recipe):
            if flag not in flag_names and flag not in OBSERVED_STATES:
                raise SpecError(
                    f"{label}: key '{key}' value {flag!r}: not a name in status_flags.yaml"
                )
        for key, cap in capabilities_named(recipe):
            if not known_capability(cap):
                raise SpecError(
                    f"{label}: key '{key}' value {cap!r}: not a bench capability "
                    "(bmsspec/capabilities.py)"
                )


def iter_items(spec: Spec) -> Iterable[str]:
    """Every item of the spec: P1..P87 then S1..S64 (for coverage checks)."""
    yield from (p.item for p in spec.parameters)
    yield from (s.item for s in spec.switches)


__all__ = [
    "Encoding",
    "Parameter",
    "Range",
    "Spec",
    "SpecError",
    "StatusFlag",
    "Switch",
    "Tolerance",
    "ToleranceOverride",
    "iter_items",
    "load_spec",
    "SECONDS_PER_UNIT",
]
