"""Client side of the Seplos V2 ASCII-hex protocol (protocols/seplos-v2.md §2, §5-§10).

The harness's own codec; the simulator has a separate one on purpose (ARCHITECTURE.md), and
both are checked against the captured frames of the protocol document.

Layers:

* framing (§2): ``encode_frame`` / ``decode_frame`` with LENGTH checksum and CHKSUM;
  ``decode_frame`` raises ``FrameError`` naming what is wrong, so a corrupt frame can never
  be parsed by accident;
* INFO layouts: telemetry 0x42, status 0x44, parameter block 0x47/0xA1 (raw words; values
  through the spec's encodings), device info 0x51, requests 0x45, 0x49, 0x4B.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from instruments.bms.seplos_block import BLOCK_BYTES as BLOCK_BYTES
from instruments.bms.seplos_block import BYTE_PARAMETERS as BYTE_PARAMETERS
from instruments.bms.seplos_block import MODEL_NAME_BYTES as MODEL_NAME_BYTES
from instruments.bms.seplos_block import REMAINING_CAPACITY_INDEX as REMAINING_CAPACITY_INDEX
from instruments.bms.seplos_block import SWITCH_BYTES as SWITCH_BYTES
from instruments.bms.seplos_block import WORD_PARAMETERS as WORD_PARAMETERS
from instruments.bms.seplos_block import ParameterDef as ParameterDef
from instruments.bms.seplos_block import RawBlock as RawBlock
from instruments.bms.seplos_block import SwitchDef as SwitchDef
from instruments.bms.seplos_block import block_raw as block_raw
from instruments.bms.seplos_block import block_values as block_values
from instruments.bms.seplos_block import decode_block as decode_block
from instruments.bms.seplos_block import encode_block as encode_block
from instruments.bms.seplos_block import remaining_capacity_info as remaining_capacity_info
from instruments.bms.seplos_frame import CID1_LIFEPO4 as CID1_LIFEPO4
from instruments.bms.seplos_frame import EOI as EOI
from instruments.bms.seplos_frame import SOI as SOI
from instruments.bms.seplos_frame import VERSION as VERSION
from instruments.bms.seplos_frame import Frame as Frame
from instruments.bms.seplos_frame import FrameError, _Reader
from instruments.bms.seplos_frame import _hex_int as _hex_int
from instruments.bms.seplos_frame import chksum as chksum
from instruments.bms.seplos_frame import decode_frame as decode_frame
from instruments.bms.seplos_frame import encode_frame as encode_frame
from instruments.bms.seplos_frame import lchksum as lchksum
from instruments.bms.seplos_frame import lenid_of_header as lenid_of_header
from instruments.bms.types import DeviceInfo, Status, Telemetry

CID2_TELEMETRY = 0x42
CID2_STATUS = 0x44
CID2_CONTROL = 0x45
CID2_READ_PARAMETERS = 0x47
CID2_SET_PARAMETER = 0x49
CID2_HISTORY = 0x4B
CID2_PROTOCOL_VERSION = 0x4F
CID2_DEVICE_INFO = 0x51
CID2_WRITE_PARAMETERS = 0xA1

RETURN_CODES: dict[int, str] = {
    0x00: "normal",
    0x01: "VER not supported",
    0x02: "CHKSUM wrong",
    0x03: "LCHKSUM wrong",
    0x04: "CID2 not supported",
    0x05: "command format error",
    0x06: "invalid data",
    0x07: "no data",
    0xE1: "CID1 not supported",
    0xE2: "command execution failed",
    0xE3: "device fault",
    0xE4: "no permission",
}

TEMPERATURE_OFFSET = 2731  # 0.1 K; the protocol's offset, not 2730


# -- INFO readers ------------------------------------------------------------------------


def _kelvin(raw: int) -> float:
    return round((raw - TEMPERATURE_OFFSET) / 10.0, 1)


def _raw_kelvin(celsius: float) -> int:
    return round(celsius * 10) + TEMPERATURE_OFFSET


# -- 0x42 telemetry ----------------------------------------------------------------------


@dataclass(frozen=True)
class TelemetryExtras:
    """Fields of the 0x42 answer that carry no documented meaning, kept for round trips."""

    data_flag: int = 0
    group: int = 0
    reserved: tuple[int, ...] = (0, 0, 0, 0)


def decode_telemetry(info: bytes) -> tuple[Telemetry, TelemetryExtras]:
    """0x42 answer INFO (§5), parsed by its count bytes."""
    r = _Reader(info, "0x42")
    data_flag, group, cells = r.u8(), r.u8(), r.u8()
    cell_v = [r.u16() / 1000.0 for _ in range(cells)]
    temps = r.u8()
    if temps < 6:
        raise FrameError(f"0x42 reports {temps} temperatures, needs 6")
    temps_c = [_kelvin(r.u16()) for _ in range(temps)]
    current = r.s16() / 100.0
    pack = r.u16() / 100.0
    remaining = r.u16() / 100.0
    count = r.u8()
    if count < 6:
        raise FrameError(f"0x42 has {count} trailing values, needs 6")
    words = [r.u16() for _ in range(count)]
    r.done()
    telemetry = Telemetry(
        cell_v=cell_v,
        cell_temp_c=temps_c[:4],
        ambient_c=temps_c[4],
        power_c=temps_c[5],
        current_a=current,
        pack_v=pack,
        port_v=words[5] / 100.0,
        remaining_ah=remaining,
        full_ah=words[0] / 100.0,
        rated_ah=words[2] / 100.0,
        soc_pct=words[1] / 10.0,
        cycles=words[3],
        soh_pct=words[4] / 10.0,
    )
    return telemetry, TelemetryExtras(data_flag, group, tuple(words[6:]))


def encode_telemetry(t: Telemetry, extras: TelemetryExtras = TelemetryExtras()) -> bytes:
    """0x42 answer INFO from a Telemetry (the inverse of ``decode_telemetry``)."""
    out = bytearray([extras.data_flag, extras.group, len(t.cell_v)])
    for v in t.cell_v:
        out += round(v * 1000).to_bytes(2, "big")
    temps = [*t.cell_temp_c, t.ambient_c, t.power_c]
    out.append(len(temps))
    for c in temps:
        out += _raw_kelvin(c).to_bytes(2, "big")
    out += round(t.current_a * 100).to_bytes(2, "big", signed=True)
    out += round(t.pack_v * 100).to_bytes(2, "big")
    out += round(t.remaining_ah * 100).to_bytes(2, "big")
    words = [
        round(t.full_ah * 100),
        round(t.soc_pct * 10),
        round(t.rated_ah * 100),
        t.cycles,
        round(t.soh_pct * 10),
        round(t.port_v * 100),
        *extras.reserved,
    ]
    out.append(len(words))
    for w in words:
        out += w.to_bytes(2, "big")
    return bytes(out)


# -- 0x44 status -------------------------------------------------------------------------


class FlagDef(Protocol):
    """A status flag of ``test_plans/status_flags.yaml`` (spec.flags items)."""

    name: str
    offset: int
    bit: int


#: Layout offsets for M = 16 cells, N = 6 temperatures (the flags table's reference layout).
_FLAG_BASE_16_6 = 29
_ONOFF, _BAL1, _SYSTEM, _DISC1, _MODE = 35, 36, 38, 39, 48


def _bits(byte_a: int, byte_b: int, count: int) -> list[bool]:
    word = byte_a | (byte_b << 8)
    return [bool(word >> k & 1) for k in range(count)]


def decode_status(info: bytes, flags: Iterable[FlagDef]) -> Status:
    """0x44 answer INFO (§6) with every flag of ``flags`` named."""
    r = _Reader(info, "0x44")
    r.u8(), r.u8()
    cells = r.u8()
    cell_levels = list(r.take(cells))
    temps = r.u8()
    temp_levels = list(r.take(temps))
    current_level, voltage_level = r.u8(), r.u8()
    count = r.u8()
    base = r.pos
    r.take(count)
    r.done()
    if count < _MODE - _FLAG_BASE_16_6 + 1:
        raise FrameError(f"0x44 has {count} flag bytes, needs 20")
    shift = base - _FLAG_BASE_16_6

    def byte(offset: int) -> int:
        return info[offset + shift]

    named = {f.name: bool(byte(f.offset) >> f.bit & 1) for f in flags}
    system = [f.name for f in flags if f.offset == _SYSTEM and named[f.name]]
    onoff = byte(_ONOFF)
    return Status(
        flags=named,
        discharge_fet=bool(onoff & 1),
        charge_fet=bool(onoff & 2),
        current_limit_fet=bool(onoff & 4),
        heater=bool(onoff & 8),
        balancing=_bits(byte(_BAL1), byte(_BAL1 + 1), cells),
        disconnected=_bits(byte(_DISC1), byte(_DISC1 + 1), cells),
        system_states=system,
        cell_levels=cell_levels,
        temperature_levels=temp_levels,
        current_level=current_level,
        voltage_level=voltage_level,
    )


def encode_status(status: Status, flags: Iterable[FlagDef], group: int = 0) -> bytes:
    """0x44 answer INFO for M=16, N=6 (the inverse of ``decode_status``); the last byte
    mirrors the system state as Battery Monitor expects (§6.4)."""
    cells, temps = len(status.cell_levels), len(status.temperature_levels)
    if (cells, temps) != (16, 6):
        raise ValueError("encode_status writes the 16-cell, 6-temperature layout only")
    out = bytearray([0, group, cells, *status.cell_levels, temps, *status.temperature_levels])
    out += bytes([status.current_level, status.voltage_level, 20])
    out += bytes(20)
    for f in flags:
        if status.flags.get(f.name):
            out[f.offset] |= 1 << f.bit
    onoff = (
        status.discharge_fet
        | status.charge_fet << 1
        | status.current_limit_fet << 2
        | status.heater << 3
    )
    out[_ONOFF] |= onoff
    for base, bits in ((_BAL1, status.balancing), (_DISC1, status.disconnected)):
        for k, on in enumerate(bits):
            if on:
                out[base + k // 8] |= 1 << (k % 8)
    out[_MODE] = out[_SYSTEM]
    return bytes(out)


# -- 0x51 device info, requests ----------------------------------------------------------


def decode_device_info(info: bytes) -> DeviceInfo:
    """0x51 answer INFO (§10): name, version major.minor, manufacturer."""
    r = _Reader(info, "0x51")
    name = r.take(10).decode("ascii", errors="replace")
    major, minor = r.u8(), r.u8()
    manufacturer = r.take(20).decode("ascii", errors="replace")
    r.done()
    return DeviceInfo(name=name, version=f"{major}.{minor}", manufacturer=manufacturer)


def encode_device_info(device: DeviceInfo) -> bytes:
    """0x51 answer INFO (the inverse of ``decode_device_info``)."""
    major, minor = (int(x) for x in device.version.split("."))
    return (
        device.name.encode("ascii").ljust(10, b" ")[:10]
        + bytes([major, minor])
        + device.manufacturer.encode("ascii").ljust(20, b" ")[:20]
    )


def control_info(group: int, item: int, action: int) -> bytes:
    """0x45 request INFO (§9)."""
    return bytes([group, item, action])


def history_info(index: int) -> bytes:
    """0x4B request INFO: a 2-byte record index (``0000`` = first record, §10)."""
    return index.to_bytes(2, "big")


def describe_rtn(code: int) -> str:
    return RETURN_CODES.get(code, "unknown return code")


def as_flag_list(flags: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
    """Accept spec.flags as a list of objects (name, offset, bit)."""
    return list(flags.values()) if isinstance(flags, Mapping) else list(flags)
