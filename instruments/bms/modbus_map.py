"""What the harness's Modbus link knows of the wire besides pymodbus: the register map file
(``test_plans/modbus_registers.yaml``: where each quantity lives), how addresses group into
reads, the function codes and exception texts, and whether an answer fits its request."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bmsspec import TEST_PLANS_DIR

REGISTER_MAP = TEST_PLANS_DIR / "modbus_registers.yaml"


@dataclass(frozen=True)
class Register:
    """One 16-bit register: value = (raw - offset) * scale, raw two's complement if signed."""

    address: int
    name: str
    source: str
    scale: float = 1.0
    offset: int = 0
    signed: bool = False

    def decode(self, raw: int) -> float:
        if self.signed and raw >= 0x8000:
            raw -= 0x10000
        return (raw - self.offset) * self.scale


@dataclass(frozen=True)
class Bit:
    """One coil or discrete input."""

    address: int
    name: str
    source: str


@dataclass(frozen=True)
class RegisterMap:
    """The four tables of a register map file."""

    input_registers: list[Register]
    discrete_inputs: list[Bit]
    holding_registers: list[Register]
    coils: list[Bit]
    device_id: int = 1

    def by_source(self, table: Iterable[Any]) -> dict[str, Any]:
        return {entry.source: entry for entry in table}


def load_register_map(path: Path | str = REGISTER_MAP) -> RegisterMap:
    """Read a register map file; raise ``ValueError`` naming file, table, row and key."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def rows(table: str, kind: type) -> list[Any]:
        out = []
        for i, row in enumerate(data.get(table) or []):
            fields = {k: row[k] for k in ("address", "name", "source") if k in row}
            if kind is Register:
                fields |= {k: row[k] for k in ("scale", "offset", "signed") if k in row}
            try:
                out.append(kind(**fields))
            except TypeError as exc:
                raise ValueError(f"{path}: {table}[{i}] {row!r}: {exc}") from None
        return out

    return RegisterMap(
        input_registers=rows("input_registers", Register),
        discrete_inputs=rows("discrete_inputs", Bit),
        holding_registers=rows("holding_registers", Register),
        coils=rows("coils", Bit),
        device_id=int(data.get("device_id", 1)),
    )


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
}


#: Function code of each pymodbus client method the link calls.
FUNCTION_CODES = {
    "read_coils": 0x01,
    "read_discrete_inputs": 0x02,
    "read_holding_registers": 0x03,
    "read_input_registers": 0x04,
    "write_register": 0x06,
    "write_coils": 0x0F,
    "write_registers": 0x10,
}


def bytes_of_bits(count: int) -> int:
    return (count + 7) // 8


def answer_problem(
    response: Any,
    function_code: int,
    *,
    registers: int | list[int] | None = None,
    bits: int | None = None,
    address: int | None = None,
    count: int | None = None,
) -> str | None:
    """Why ``response`` is not the answer to the request described (None when it fits):
    another function's answer, another register or bit count, another echoed address or
    count (``registers`` as a list: the echoed values of a single-register write)."""
    got = getattr(response, "function_code", None)
    if got != function_code:
        return f"function code {got}, expected {function_code}"
    if isinstance(registers, list):
        if list(getattr(response, "registers", [])) != registers:
            return f"echoed {getattr(response, 'registers', None)}, expected {registers}"
    elif registers is not None and len(getattr(response, "registers", [])) != registers:
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
