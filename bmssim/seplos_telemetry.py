"""Seplos V2 telemetry (CID2 0x42) and status (0x44) payloads on the simulator's side: the
data groups, cell voltages and temperatures, and the status flags as bytes."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

CELLS = 16

TEMPERATURES = 6

TEMP_OFFSET = 2731  # 0.1 K; the protocol uses 2731, not 2730 (§5)


class _Reader:
    """Cursor over a decoded INFO that raises ValueError on a short payload."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ValueError(f"INFO ends at byte {len(self.data)}, needed {self.at + n}")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def s16(self) -> int:
        return int.from_bytes(self.take(2), "big", signed=True)

    def end(self) -> None:
        if self.at != len(self.data):
            raise ValueError(f"{len(self.data) - self.at} unexpected bytes after byte {self.at}")


def _u16(value: int) -> bytes:
    return struct.pack(">H", value)


def _s16(value: int) -> bytes:
    return struct.pack(">h", value)


def _raw(value: float, scale: float, offset: int = 0) -> int:
    return round(value / scale) + offset


def _bits(flags: Sequence[bool]) -> bytes:
    """Bit k of byte k // 8 = flags[k] (LSB first), as the balancing/disconnection bytes."""
    out = bytearray((len(flags) + 7) // 8)
    for k, on in enumerate(flags):
        if on:
            out[k // 8] |= 1 << (k % 8)
    return bytes(out)


def _unbits(data: bytes, count: int) -> list[bool]:
    return [bool(data[k // 8] >> (k % 8) & 1) for k in range(count)]


def decode_group(info: bytes, *, optional: bool = False) -> int | None:
    """The one-byte command-group request INFO of 0x42/0x44/0x47 (empty allowed if optional).

    §13.8: 0x47/0x4F/0x51 are seen both with and without the group byte.
    """
    if not info and optional:
        return None
    if len(info) != 1:
        raise ValueError(f"expected a 1-byte command group, got {len(info)} bytes")
    return info[0]


def encode_group(group: int | None) -> bytes:
    """Request INFO for the commands that carry only a command group."""
    return b"" if group is None else bytes([group])


@dataclass
class Telemetry:
    """The 0x42 answer. Units: V, °C, A (+ = charging), Ah, per-mille for SOC/SOH."""

    cell_v: list[float]
    temps_c: list[float]  # T1..T4, ambient, power
    current_a: float
    pack_v: float
    remaining_ah: float
    full_ah: float
    soc_permille: int
    rated_ah: float
    cycles: int
    soh_permille: int
    port_v: float
    group: int = 0
    data_flag: int = 0
    #: Four firmware-dependent words after the port voltage; the twin sends zeros (§5).
    reserved: tuple[int, int, int, int] = (0, 0, 0, 0)

    def encode(self) -> bytes:
        """75 bytes for 16 cells and 6 temperatures; other counts follow the count bytes."""
        out = bytearray([self.data_flag, self.group, len(self.cell_v)])
        for v in self.cell_v:
            out += _u16(_raw(v, 0.001))
        out.append(len(self.temps_c))
        for t in self.temps_c:
            out += _u16(_raw(t, 0.1, TEMP_OFFSET))
        out += _s16(_raw(self.current_a, 0.01))
        out += _u16(_raw(self.pack_v, 0.01))
        out += _u16(_raw(self.remaining_ah, 0.01))
        out.append(6 + len(self.reserved))
        out += _u16(_raw(self.full_ah, 0.01))
        out += _u16(self.soc_permille)
        out += _u16(_raw(self.rated_ah, 0.01))
        out += _u16(self.cycles)
        out += _u16(self.soh_permille)
        out += _u16(_raw(self.port_v, 0.01))
        for word in self.reserved:
            out += _u16(word)
        return bytes(out)

    @classmethod
    def decode(cls, info: bytes) -> Telemetry:
        """Parse by the count bytes (M cells, N temperatures, P words), never fixed offsets."""
        r = _Reader(info)
        data_flag, group, m = r.u8(), r.u8(), r.u8()
        cell_v = [r.u16() / 1000 for _ in range(m)]
        n = r.u8()
        temps_c = [(r.u16() - TEMP_OFFSET) / 10 for _ in range(n)]
        current_a = r.s16() / 100
        pack_v = r.u16() / 100
        remaining_ah = r.u16() / 100
        p = r.u8()
        if p < 6:
            raise ValueError(f"P = {p}: fewer than the 6 documented words")
        full_ah, soc, rated_ah, cycles, soh, port_v = (r.u16() for _ in range(6))
        reserved = tuple(r.u16() for _ in range(p - 6))
        r.end()
        return cls(
            cell_v=cell_v,
            temps_c=temps_c,
            current_a=current_a,
            pack_v=pack_v,
            remaining_ah=remaining_ah,
            full_ah=full_ah / 100,
            soc_permille=soc,
            rated_ah=rated_ah / 100,
            cycles=cycles,
            soh_permille=soh,
            port_v=port_v / 100,
            group=group,
            data_flag=data_flag,
            reserved=reserved,  # type: ignore[arg-type]
        )


class FlagLike(Protocol):
    """One row of ``test_plans/status_flags.yaml`` (``spec.flags``)."""

    name: str
    offset: int
    bit: int


SYSTEM_STATE_OFFSET = 38

STATUS_FLAG_BYTES = 20  # offsets 29..48

STATUS_SIZE = 49


@dataclass
class StatusAnswer:
    """The 0x44 answer: alarm levels, named flag bits, balancing and disconnection bits.

    Flags are names from the spec's status flag table, so the twin, this codec and the
    harness agree on every bit by name. Bits without a name in the table are not
    represented (they are reserved/internal in the protocol).
    """

    cell_levels: list[int]
    temp_levels: list[int]
    current_level: int
    voltage_level: int
    flags: set[str]
    balancing: list[bool]
    disconnected: list[bool]
    group: int = 0
    data_flag: int = 0
    reserved: bytes = bytes(5)  # offsets 43..47
    #: Last byte (Battery Monitor's "mode"): None = copy the system-state byte (§6.4).
    mode: int | None = None

    def encode(self, flag_table: Iterable[FlagLike]) -> bytes:
        """49 bytes for 16 cells and 6 temperatures. Unknown flag names raise ValueError."""
        m, n = len(self.cell_levels), len(self.temp_levels)
        out = bytearray([self.data_flag, self.group, m, *self.cell_levels, n, *self.temp_levels])
        out += bytes([self.current_level, self.voltage_level, STATUS_FLAG_BYTES])
        base = len(out)  # offset 29 for M=16, N=6
        flags = bytearray(STATUS_FLAG_BYTES)
        known: set[str] = set()
        for row in flag_table:
            known.add(row.name)
            if row.name in self.flags:
                flags[_flag_index(row.offset)] |= 1 << row.bit
        unknown = self.flags - known
        if unknown:
            raise ValueError(f"status flags not in the spec's flag table: {sorted(unknown)}")
        flags[36 - 29 : 38 - 29] = _bits(self.balancing)[:2].ljust(2, b"\0")
        flags[39 - 29 : 41 - 29] = _bits(self.disconnected)[:2].ljust(2, b"\0")
        flags[43 - 29 : 48 - 29] = self.reserved
        state = flags[SYSTEM_STATE_OFFSET - 29]
        flags[48 - 29] = state if self.mode is None else self.mode
        out += flags
        assert len(out) == base + STATUS_FLAG_BYTES
        return bytes(out)

    @classmethod
    def decode(cls, info: bytes, flag_table: Iterable[FlagLike]) -> StatusAnswer:
        """Parse a 0x44 answer; ``mode`` is kept only when it differs from the system state."""
        r = _Reader(info)
        data_flag, group, m = r.u8(), r.u8(), r.u8()
        cell_levels = list(r.take(m))
        n = r.u8()
        temp_levels = list(r.take(n))
        current_level, voltage_level, p = r.u8(), r.u8(), r.u8()
        if p != STATUS_FLAG_BYTES:
            raise ValueError(f"P = {p}, expected {STATUS_FLAG_BYTES} flag bytes")
        flags = r.take(p)
        r.end()
        names = {row.name for row in flag_table if flags[_flag_index(row.offset)] >> row.bit & 1}
        state = flags[SYSTEM_STATE_OFFSET - 29]
        mode = flags[48 - 29]
        return cls(
            cell_levels=cell_levels,
            temp_levels=temp_levels,
            current_level=current_level,
            voltage_level=voltage_level,
            flags=names,
            balancing=_unbits(flags[36 - 29 : 38 - 29], 16),
            disconnected=_unbits(flags[39 - 29 : 41 - 29], 16),
            group=group,
            data_flag=data_flag,
            reserved=bytes(flags[43 - 29 : 48 - 29]),
            mode=None if mode == state else mode,
        )


def _flag_index(offset: int) -> int:
    """Offsets in status_flags.yaml are INFO offsets for M=16, N=6 (flag bytes start at 29)."""
    index = offset - 29
    if not 0 <= index < STATUS_FLAG_BYTES:
        raise ValueError(f"flag offset {offset} outside the flag bytes 29..48")
    return index
