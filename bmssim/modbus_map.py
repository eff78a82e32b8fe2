"""The simulator's own reader of the register map file (``test_plans/modbus_registers.yaml``,
the Seplos V3 layout; kept apart from the harness's ``instruments/bms/modbus_map.py`` so a
mistake in one cannot hide in the other) and the device side of it: what each address holds
for the live twin (:class:`TwinRegisters`).

Sources: ``measurements.<field>[i]`` (``soc_pct``/``soh_pct`` are the twin's per-mille
figures / 10), ``mean|max|min(measurements.<list>[a:b])``, ``parameter.P<n>``,
``switch.S<n>``, ``flag.<name>``, per-cell ``cell_low[i]``/``cell_high[i]`` (the 0x44 cell
levels 1/2), ``temperature_low[i]``/``temperature_high[i]``, ``balancing[i]``,
``any(balancing)``/``any(disconnected)``, ``device_info.<field>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_MAP = Path(__file__).resolve().parent.parent / "test_plans" / "modbus_registers.yaml"

#: Register unit -> spec unit (value in spec unit = value in register unit x factor).
UNIT_FACTORS = {("s", "minute"): 1.0 / 60.0}

_INDEXED = re.compile(r"^(?P<name>[a-z_.]+)\[(?P<index>\d+)\]$")
_REDUCED = re.compile(r"^(?P<fn>mean|max|min|any)\((?P<arg>[^)]*)\)$")
_SLICE = re.compile(r"^(?P<name>[a-z_.]+)(\[(?P<a>\d+):(?P<b>\d+)\])?$")
_PER_MILLE = {"soc_pct": "soc_permille", "soh_pct": "soh_permille"}
_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "mean": lambda v: sum(v) / len(v),
    "max": max,
    "min": min,
    "any": lambda v: float(any(v)),
}


@dataclass(frozen=True)
class Register:
    """One 16-bit register: raw = round(value / scale) + offset (value in ``unit``)."""

    address: int
    name: str
    source: str
    unit: str = ""
    scale: float = 1.0
    offset: int = 0
    signed: bool = False
    writable: bool = False

    def to_raw(self, value: float) -> int:
        """The register content; ValueError if the value does not fit 16 bits."""
        raw = round(value / self.scale) + self.offset
        low, high = (-0x8000, 0x7FFF) if self.signed else (0, 0xFFFF)
        if not low <= raw <= high:
            raise ValueError(f"{self.name} = {value} {self.unit}: raw {raw} outside 16 bits")
        return raw & 0xFFFF

    def from_raw(self, raw: int) -> float:
        if self.signed and raw >= 0x8000:
            raw -= 0x10000
        return (raw - self.offset) * self.scale


@dataclass(frozen=True)
class Bit:
    address: int
    name: str
    source: str
    writable: bool = False


@dataclass
class RegisterMap:
    """Registers (FC 4/16), coils (FC 1/15), ASCII text registers and the blocks."""

    device_id: int
    registers: dict[int, Register] = field(default_factory=dict)
    coils: dict[int, Bit] = field(default_factory=dict)
    #: address -> (source, byte index of its first character)
    text: dict[int, tuple[str, int]] = field(default_factory=dict)
    #: (table, start, count) of every block
    blocks: list[tuple[str, int, int]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_MAP, spec: Any = None) -> RegisterMap:
        """Read and check the map (with ``spec``: every parameter, switch and flag source is
        a spec row, a parameter's unit is its spec unit or converts to it)."""
        path = Path(path)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        regmap = cls(device_id=int(data["device_id"]))

        def where(table: str, i: int, row: dict[str, Any]) -> str:
            return f"{path.name}: {table}[{i}] ({row.get('name')!r})"

        for i, row in enumerate(data.get("registers") or []):
            try:
                reg = Register(
                    int(row["address"]),
                    str(row["name"]),
                    str(row["source"]),
                    str(row.get("unit", "")),
                    float(row.get("scale", 1)),
                    int(row.get("offset", 0)),
                    bool(row.get("signed", False)),
                    bool(row.get("writable", False)),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{where('registers', i, row)}: {exc}") from None
            if reg.address in regmap.registers:
                raise ValueError(f"{where('registers', i, row)}: address {reg.address:#06x} twice")
            regmap.registers[reg.address] = reg
        for i, row in enumerate(data.get("coils") or []):
            try:
                bit = Bit(
                    int(row["address"]),
                    str(row["name"]),
                    str(row["source"]),
                    bool(row.get("writable", False)),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{where('coils', i, row)}: {exc}") from None
            if bit.address in regmap.coils:
                raise ValueError(f"{where('coils', i, row)}: address {bit.address:#06x} twice")
            regmap.coils[bit.address] = bit
        for row in data.get("text") or []:
            for k in range(int(row["registers"])):
                regmap.text[int(row["address"]) + k] = (str(row["source"]), 2 * k)
        for row in data.get("blocks") or []:
            regmap.blocks.append((str(row["table"]), int(row["start"]), int(row["count"])))
        if spec is not None:
            regmap.check_against(spec, path.name)
        return regmap

    def check_against(self, spec: Any, filename: str = "modbus_registers.yaml") -> None:
        """Refuse a map that disagrees with the spec tables."""
        flag_names = {f.name for f in spec.flags}
        for reg in self.registers.values():
            if reg.source.startswith("parameter.P"):
                p = spec.param(_number(reg.source, "parameter.P"))
                if reg.unit != p.unit and (reg.unit, p.unit) not in UNIT_FACTORS:
                    raise ValueError(
                        f"{filename}: {reg.name}: unit {reg.unit!r}, the spec's is {p.unit!r}"
                    )
        for bit in self.coils.values():
            if bit.source.startswith("switch.S"):
                spec.switch(_number(bit.source, "switch.S"))
            elif bit.source.startswith("flag.") and bit.source[5:] not in flag_names:
                raise ValueError(f"{filename}: {bit.name}: {bit.source[5:]!r} is not a spec flag")

    def in_block(self, table: str, address: int) -> bool:
        return any(t == table and s <= address < s + n for t, s, n in self.blocks)

    def in_writable_block(self, table: str, address: int) -> bool:
        """``address`` lies in a block that holds a writable row (SPA, SFA)."""
        rows: dict[int, Any] = self.registers if table == "registers" else self.coils
        return any(
            t == table
            and s <= address < s + n
            and any(r.writable for a, r in rows.items() if s <= a < s + n)
            for t, s, n in self.blocks
        )


def _number(source: str, prefix: str) -> int:
    if not source.startswith(prefix):
        raise ValueError(f"source {source!r} should start with {prefix!r}")
    return int(source[len(prefix) :])


def _field(obj: Any, name: str) -> Any:
    if name in _PER_MILLE:
        return getattr(obj, _PER_MILLE[name]) / 10.0
    return getattr(obj, name)


def _values(obj: Any, path: str) -> list[float]:
    """``cell_v`` or ``temps_c[0:4]`` -> the list (of what the twin has)."""
    m = _SLICE.match(path)
    if m is None:
        raise ValueError(f"source {path!r} is no list")
    items = list(getattr(obj, m["name"]))
    if m["a"] is not None:
        items = items[int(m["a"]) : int(m["b"])]
    return [float(v) for v in items]


def resolve(obj: Any, path: str) -> float:
    """``cell_v[3]``, ``pack_v``, ``max(cell_v)``, ``mean(temps_c[0:4])`` of ``obj``.

    An index past the end reads 0: with fewer cells in series (P66 < 16) the registers of
    the missing cells stay mapped and read zero, as a fixed map should."""
    if m := _REDUCED.match(path):
        return _REDUCERS[m["fn"]](_values(obj, m["arg"]))
    if m := _INDEXED.match(path):
        items = _field(obj, m["name"])
        index = int(m["index"])
        return float(items[index]) if index < len(items) else 0.0
    return float(_field(obj, path))


class TwinRegisters:
    """What each address of the map holds for the twin of ``world``; reads and writes.

    KeyError: an address outside every block (exception 02); ValueError: a value refused
    (exception 03). An address inside a block that no row lists reads 0, and a write must
    leave it 0 (a V3 setting this spec lacks: the twin keeps none)."""

    def __init__(self, world: Any, spec: Any, regmap: RegisterMap):
        self.world = world
        self.spec = spec
        self.regmap = regmap

    # -- reads ---------------------------------------------------------------------------
    def registers(self, address: int, count: int) -> list[int]:
        twin = self.world.twin
        m, values, info = twin.measurements(), twin.read_block().values, twin.device_info()
        out = []
        for a in range(address, address + count):
            reg = self.regmap.registers.get(a)
            if reg is None:
                out.append(self._text(a, info) if a in self.regmap.text else self._gap(a))
            elif reg.source.startswith("parameter.P"):
                p = self.spec.param(_number(reg.source, "parameter.P"))
                out.append(reg.to_raw(values[p.number] / UNIT_FACTORS.get((reg.unit, p.unit), 1)))
            else:
                path = reg.source.replace("measurements.", "")
                out.append(reg.to_raw(resolve(m, path)))
        return out

    def _gap(self, address: int) -> int:
        if not self.regmap.in_block("registers", address):
            raise KeyError(address)
        return 0

    def _text(self, address: int, info: Any) -> int:
        source, at = self.regmap.text[address]
        name = source.removeprefix("device_info.")
        if name == "version":  # two bytes: major, minor
            data = bytes(int(v) & 0xFF for v in info.version)
        else:
            data = str(getattr(info, name)).encode("ascii", "replace")
        data = data[at : at + 2].ljust(2, b"\0")
        return data[0] << 8 | data[1]

    def coils(self, address: int, count: int) -> list[bool]:
        twin = self.world.twin
        status, switches = twin.status(), twin.read_block().switches
        out = []
        for a in range(address, address + count):
            bit = self.regmap.coils.get(a)
            if bit is None:
                if not self.regmap.in_block("coils", a):
                    raise KeyError(a)
                out.append(False)
            elif bit.source.startswith("switch.S"):
                out.append(bool(switches[_number(bit.source, "switch.S")]))
            else:
                out.append(self._status_bit(status, bit.source))
        return out

    @staticmethod
    def _status_bit(status: Any, source: str) -> bool:
        if source.startswith("flag."):
            return source[5:] in status.flags
        if m := _REDUCED.match(source):
            return bool(_REDUCERS[m["fn"]](_values(status, m["arg"])))
        m = _INDEXED.match(source)
        if m is None:
            raise ValueError(f"coil source {source!r}")
        i, name = int(m["index"]), m["name"]
        levels = {"cell": status.cell_levels, "temperature": status.temp_levels}
        kind, _, side = name.rpartition("_")
        if kind in levels and side in ("low", "high"):
            row = levels[kind]
            return i < len(row) and row[i] == (1 if side == "low" else 2)
        items = getattr(status, name)
        return bool(items[i]) if i < len(items) else False

    # -- writes --------------------------------------------------------------------------
    def write_registers(self, address: int, raws: list[int]) -> tuple[dict[int, float], bool]:
        """The parameter values (spec units) a write sets, by number; the P60 flag says the
        write is the remaining capacity alone (0x49's single write)."""
        values: dict[int, float] = {}
        for a, raw in zip(range(address, address + len(raws)), raws, strict=True):
            reg = self.regmap.registers.get(a)
            if reg is None or not reg.writable:
                if not self.regmap.in_writable_block("registers", a):
                    raise KeyError(a)
                # inside SPA: a V3 setting the twin keeps none of (reads 0), or a reported
                # value (full capacity): a block write may only leave it as it reads
                if int(raw) != self.registers(a, 1)[0]:
                    raise ValueError(f"{a:#06x} holds nothing this board can set")
                continue
            p = self.spec.param(_number(reg.source, "parameter.P"))
            values[p.number] = reg.from_raw(int(raw)) * UNIT_FACTORS.get((reg.unit, p.unit), 1)
        return values, set(values) == {60}

    def write_coils(self, address: int, bits: list[bool]) -> dict[int, bool]:
        switches: dict[int, bool] = {}
        for a, on in zip(range(address, address + len(bits)), bits, strict=True):
            bit = self.regmap.coils.get(a)
            if bit is None or not bit.writable:
                if bit is None and self.regmap.in_writable_block("coils", a):
                    if on:
                        raise ValueError(f"coil {a:#06x} holds nothing this board keeps")
                    continue
                raise KeyError(a)
            switches[_number(bit.source, "switch.S")] = bool(on)
        return switches
