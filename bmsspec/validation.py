"""The spec tables' validation: each table's rows checked against its model, then across rows
and tables (numbering, encodings that fit their registers, ranges and pairs, switches,
recipes), every problem one :class:`SpecError` naming the file, the row and the value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from bmsspec.models import (
    FLAGS_FILE,
    PARAMETERS_FILE,
    SECONDS_PER_UNIT,
    SWITCHES_FILE,
    Parameter,
    SpecError,
    StatusFlag,
    Switch,
    _bound_problems,
    _Model,
    _ToleranceRow,
)
from bmsspec.recipes import (
    OBSERVED_STATES,
    capabilities_named,
    flags_named,
    known_capability,
    references,
)


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
            # a tagged union's tag (``<gated>``) is not a key of the row
            parts = [str(part) for part in err["loc"] if not str(part).startswith("<")]
            loc = ".".join(parts) or "(row)"
            value = err.get("input")
            if err["type"] == "missing":
                value = None
            raise _fail(file, raw, position, loc, value, err["msg"]) from None
    return out


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
