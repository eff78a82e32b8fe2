"""What the harness's Modbus link knows of the wire besides pymodbus: the register map file
(``test_plans/modbus_registers.yaml``, the Seplos V3 layout: where each quantity lives, in
which unit), how addresses group into reads, the function codes and exception texts,
whether an answer fits its request, and what the map lets the link report
(:func:`coverage`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bmsspec import TEST_PLANS_DIR
from instruments.bms.coverage import LinkCoverage

REGISTER_MAP = TEST_PLANS_DIR / "modbus_registers.yaml"

#: Register unit -> spec unit factors where the board keeps a spec row in another unit
#: (value in the spec unit = value in the register unit x factor). Equal units: 1.
UNIT_FACTORS: dict[tuple[str, str], float] = {("s", "minute"): 1.0 / 60.0}

_INDEXED = re.compile(r"^(?P<base>[\w.]+)\[(?P<index>\d+)\]$")

#: Each ``Telemetry`` field and the map sources (``measurements.<name>``, list names for
#: the indexed ones) it is decoded from; ``rated_ah`` is the parameter P59 on this layout.
TELEMETRY_FIELDS: dict[str, set[str]] = {
    "cell_v": {"cell_v"},
    "cell_temp_c": {"temps_c[0]", "temps_c[1]", "temps_c[2]", "temps_c[3]"},
    "ambient_c": {"temps_c[4]"},
    "power_c": {"temps_c[5]"},
    "current_a": {"current_a"},
    "pack_v": {"pack_v"},
    "port_v": {"port_v"},
    "remaining_ah": {"remaining_ah"},
    "full_ah": {"full_ah"},
    "soc_pct": {"soc_pct"},
    "cycles": {"cycles"},
    "soh_pct": {"soh_pct"},
}


@dataclass(frozen=True)
class Register:
    """One 16-bit input register: value = (raw - offset) * scale in ``unit``, raw two's
    complement if signed. ``writable``: FC 16 writes it (the SPA parameters)."""

    address: int
    name: str
    source: str
    unit: str = ""
    scale: float = 1.0
    offset: int = 0
    signed: bool = False
    writable: bool = False

    def decode(self, raw: int) -> float:
        if self.signed and raw >= 0x8000:
            raw -= 0x10000
        return (raw - self.offset) * self.scale

    def encode(self, value: float) -> int:
        """The register content of ``value`` (in ``unit``); ValueError when it is off the
        register's grid or does not fit 16 bits (the board would keep another value)."""
        counts = value / self.scale
        raw = round(counts)
        if abs(counts - raw) > 1e-6:
            raise ValueError(
                f"{self.name}: {value:g} {self.unit} is not a multiple of the register's "
                f"step {self.scale:g} {self.unit}"
            )
        raw += self.offset
        low, high = (-0x8000, 0x7FFF) if self.signed else (0, 0xFFFF)
        if not low <= raw <= high:
            raise ValueError(f"{self.name}: {value:g} {self.unit} does not fit the register")
        return raw & 0xFFFF


@dataclass(frozen=True)
class Bit:
    """One coil. ``writable``: FC 15 writes it (the SFA switches)."""

    address: int
    name: str
    source: str
    writable: bool = False


@dataclass(frozen=True)
class Text:
    """ASCII over ``registers`` registers, two characters each, high byte first (VIA)."""

    address: int
    registers: int
    name: str
    source: str


@dataclass(frozen=True)
class Block:
    """An address range the board serves as a whole (PIA, PIB, ..., SFA)."""

    name: str
    table: str
    start: int
    count: int


@dataclass(frozen=True)
class RegisterMap:
    """The tables of a register map file."""

    registers: list[Register]
    coils: list[Bit]
    text: list[Text]
    blocks: list[Block]
    device_id: int = 1

    def parameters(self) -> dict[int, Register]:
        """Spec parameter number -> its register."""
        return {_number(r.source, "parameter.P"): r for r in self.registers if _is_param(r)}

    def telemetry(self) -> list[Register]:
        return [r for r in self.registers if r.source.startswith("measurements.")]

    def switches(self) -> dict[int, Bit]:
        return {
            _number(b.source, "switch.S"): b for b in self.coils if b.source.startswith("switch.")
        }

    def flags(self) -> dict[str, Bit]:
        return {b.source[5:]: b for b in self.coils if b.source.startswith("flag.")}

    def status_bits(self) -> list[Bit]:
        """The coils the link reads for a status: flags and per-cell bits."""
        return [b for b in self.coils if not b.source.startswith("switch.")]


def _is_param(reg: Register) -> bool:
    return reg.source.startswith("parameter.P")


def _number(source: str, prefix: str) -> int:
    return int(source[len(prefix) :])


def load_register_map(path: Path | str = REGISTER_MAP, spec: Any = None) -> RegisterMap:
    """Read a register map file; raise ``ValueError`` naming file, table, row, key and value.
    With ``spec``: every parameter/switch/flag source names a spec row, and a parameter's
    unit is the spec's (or converts to it, :data:`UNIT_FACTORS`)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def where(table: str, i: int, row: Any) -> str:
        name = row.get("name") if isinstance(row, dict) else None
        return f"{path.name}: {table}[{i}] ({name!r})"

    def rows(table: str, kind: type, keys: tuple[str, ...]) -> list[Any]:
        out = []
        for i, row in enumerate(data.get(table) or []):
            if not isinstance(row, dict):
                raise ValueError(f"{where(table, i, row)}: a row is a mapping, got {row!r}")
            unknown = set(row) - set(keys) - {"note"}
            if unknown:
                key = sorted(unknown)[0]
                raise ValueError(f"{where(table, i, row)}: unknown key {key!r} = {row[key]!r}")
            try:
                out.append(kind(**{k: row[k] for k in keys if k in row}))
            except TypeError as exc:
                raise ValueError(f"{where(table, i, row)}: {exc}") from None
        return out

    regmap = RegisterMap(
        registers=rows(
            "registers",
            Register,
            ("address", "name", "source", "unit", "scale", "offset", "signed", "writable"),
        ),
        coils=rows("coils", Bit, ("address", "name", "source", "writable")),
        text=rows("text", Text, ("address", "registers", "name", "source")),
        blocks=rows("blocks", Block, ("name", "table", "start", "count")),
        device_id=int(data.get("device_id", 1)),
    )
    for table in ("registers", "coils"):
        seen: set[int] = set()
        for i, entry in enumerate(getattr(regmap, table)):
            if entry.address in seen:
                raise ValueError(
                    f"{where(table, i, {'name': entry.name})}: address {entry.address:#06x} twice"
                )
            seen.add(entry.address)
    if spec is not None:
        _check_against(regmap, spec, path.name)
    return regmap


def _check_against(regmap: RegisterMap, spec: Any, filename: str) -> None:
    flag_names = set(spec.flag_names)
    for i, reg in enumerate(regmap.registers):
        if not _is_param(reg):
            continue
        p = spec.param(_number(reg.source, "parameter.P"))
        if reg.unit != p.unit and (reg.unit, p.unit) not in UNIT_FACTORS:
            raise ValueError(
                f"{filename}: registers[{i}] ({reg.name!r}): unit {reg.unit!r} for "
                f"{p.item} whose spec unit is {p.unit!r}"
            )
        if not reg.writable:
            raise ValueError(f"{filename}: registers[{i}] ({reg.name!r}): a parameter is writable")
    for i, bit in enumerate(regmap.coils):
        if bit.source.startswith("switch.S"):
            spec.switch(_number(bit.source, "switch.S"))
        elif bit.source.startswith("flag.") and bit.source[5:] not in flag_names:
            raise ValueError(
                f"{filename}: coils[{i}] ({bit.name!r}): source {bit.source!r} is not a spec flag"
            )


def to_spec_unit(reg: Register, value: float, spec_unit: str) -> float:
    """A register's value (its unit) in the spec's unit."""
    return value * UNIT_FACTORS.get((reg.unit, spec_unit), 1.0)


def from_spec_unit(reg: Register, value: float, spec_unit: str) -> float:
    return value / UNIT_FACTORS.get((reg.unit, spec_unit), 1.0)


def coverage(regmap: RegisterMap, spec: Any, link: str) -> LinkCoverage:
    """What a link on this map reports and sets: the flags, parameters (with the step the
    register keeps, in the spec's unit), switches and telemetry fields it carries."""
    steps = {
        n: to_spec_unit(r, r.scale, spec.param(n).unit) for n, r in regmap.parameters().items()
    }
    sources = {r.source.removeprefix("measurements.") for r in regmap.telemetry()}
    fields = {name for name, needs in TELEMETRY_FIELDS.items() if needs <= _bases(sources)}
    if 59 in steps:
        fields.add("rated_ah")  # the rated capacity is the parameter P59 on this layout
    return LinkCoverage(
        link=link,
        flags=frozenset(regmap.flags()),
        parameters=steps,
        switches=frozenset(regmap.switches()),
        telemetry=frozenset(fields),
        operations=frozenset({"device_info"} if regmap.text else set()),
    )


def _bases(sources: set[str]) -> set[str]:
    """``cell_v[3]`` -> ``cell_v[3]`` and ``cell_v``; plain names as they are."""
    out = set(sources)
    for s in sources:
        if m := _INDEXED.match(s):
            out.add(m["base"])
    return out


def runs(addresses: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """Contiguous (start, count) runs covering ``addresses``, each at most ``limit`` long."""
    out: list[tuple[int, int]] = []
    for address in sorted(set(addresses)):
        if out and address == out[-1][0] + out[-1][1] and out[-1][1] < limit:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((address, 1))
    return out


MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000
#: An RTU exception answer: address, function | 0x80, code, CRC (2).
RTU_EXCEPTION_BYTES = 5

EXCEPTIONS = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target failed to respond",
    0x81: "no history record",
}


#: Function code of each pymodbus client method the link calls (the four the V3 board
#: supports).
FUNCTION_CODES = {
    "read_coils": 0x01,
    "read_input_registers": 0x04,
    "write_coils": 0x0F,
    "write_registers": 0x10,
}


def bytes_of_bits(count: int) -> int:
    return (count + 7) // 8


def answer_problem(
    response: Any,
    function_code: int,
    *,
    registers: int | None = None,
    bits: int | None = None,
    address: int | None = None,
    count: int | None = None,
) -> str | None:
    """Why ``response`` is not the answer to the request described (None when it fits):
    another function's answer, another register or bit count, another echoed address or
    count."""
    got = getattr(response, "function_code", None)
    if got != function_code:
        return f"function code {got}, expected {function_code}"
    if registers is not None and len(getattr(response, "registers", [])) != registers:
        return f"{len(getattr(response, 'registers', []))} registers, expected {registers}"
    # bits come back padded to whole bytes
    if bits is not None and not bits <= len(getattr(response, "bits", [])) < bits + 8:
        return f"{len(getattr(response, 'bits', []))} bits, expected {bits}"
    if address is not None and getattr(response, "address", None) != address:
        return f"echoed address {getattr(response, 'address', None)}, expected {address}"
    if count is not None and getattr(response, "count", None) != count:
        return f"echoed count {getattr(response, 'count', None)}, expected {count}"
    return None


def rtu_answer_complete(data: bytes | bytearray, answer_bytes: int) -> bool:
    """A whole RTU answer is in ``data``: the expected size, or an exception answer."""
    if len(data) >= answer_bytes:
        return True
    return len(data) >= RTU_EXCEPTION_BYTES and bool(data[1] & 0x80)
