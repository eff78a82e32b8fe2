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
from dataclasses import dataclass, field
from typing import Any, Protocol

from instruments.bms.types import DeviceInfo, ParameterBlock, Status, Telemetry

SOI = b"~"
EOI = b"\r"
VERSION = 0x20
CID1_LIFEPO4 = 0x46

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
WORD_PARAMETERS = 0x3C
BYTE_PARAMETERS = 0x1B
SWITCH_BYTES = 8
MODEL_NAME_BYTES = 10
BLOCK_BYTES = (
    1 + 1 + 2 * WORD_PARAMETERS + 1 + BYTE_PARAMETERS + 1 + SWITCH_BYTES + MODEL_NAME_BYTES
)


class FrameError(ValueError):
    """A frame that must not be acted on; the message says why."""


# -- framing -----------------------------------------------------------------------------


def lchksum(lenid: int) -> int:
    """4-bit two's complement of the sum of LENID's three nibbles (§2.2)."""
    return -((lenid & 0xF) + ((lenid >> 4) & 0xF) + ((lenid >> 8) & 0xF)) % 16


def chksum(body: bytes) -> int:
    """16-bit two's complement of the sum of the characters between SOI and CHKSUM (§2.3)."""
    return -sum(body) % 0x10000


@dataclass(frozen=True)
class Frame:
    """A decoded frame. ``cid2`` is the command in requests and the RTN in responses."""

    adr: int
    cid2: int
    info: bytes = b""
    ver: int = VERSION
    cid1: int = CID1_LIFEPO4

    @property
    def rtn(self) -> int:
        return self.cid2


def encode_frame(frame: Frame) -> bytes:
    """The frame as it goes on the wire, ``~`` ... ``\\r``, upper-case hex."""
    info_hex = frame.info.hex().upper().encode()
    lenid = len(info_hex)
    if lenid > 0xFFF:
        raise ValueError(f"INFO of {len(frame.info)} bytes does not fit LENID")
    length = (lchksum(lenid) << 12) | lenid
    body = b"%02X%02X%02X%02X%04X" % (frame.ver, frame.adr, frame.cid1, frame.cid2, length)
    body += info_hex
    return SOI + body + b"%04X" % chksum(body) + EOI


def _hex_int(text: bytes, what: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise FrameError(f"{what} {text!r} is not hex") from None


def decode_frame(raw: bytes) -> Frame:
    """Check and decode one frame (with or without the trailing CR).

    Raises ``FrameError`` on a missing SOI, a wrong length, a LENGTH checksum or CHKSUM
    mismatch, or non-hex characters.
    """
    if not raw.startswith(SOI):
        raise FrameError(f"frame does not start with '~': {raw[:20]!r}")
    text = raw[1:]
    if text.endswith(EOI):
        text = text[:-1]
    if len(text) < 16:
        raise FrameError(f"frame too short ({len(raw)} characters)")
    length = _hex_int(text[8:12], "LENGTH")
    lenid = length & 0xFFF
    if length >> 12 != lchksum(lenid):
        raise FrameError(f"LENGTH checksum wrong in {text[8:12].decode(errors='replace')}")
    if len(text) != 16 + lenid:
        raise FrameError(f"frame has {len(text) - 16} INFO characters, LENID says {lenid}")
    if lenid % 2:
        raise FrameError(f"LENID {lenid} is odd")
    body, check = text[:-4], _hex_int(text[-4:], "CHKSUM")
    if (sum(body) + check) % 0x10000 != 0:
        raise FrameError(f"CHKSUM wrong: got {check:04X}, expected {chksum(body):04X}")
    info_hex = text[12:-4]
    try:
        info = bytes.fromhex(info_hex.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise FrameError(f"INFO is not hex: {info_hex[:20]!r}") from None
    return Frame(
        ver=_hex_int(text[0:2], "VER"),
        adr=_hex_int(text[2:4], "ADR"),
        cid1=_hex_int(text[4:6], "CID1"),
        cid2=_hex_int(text[6:8], "CID2/RTN"),
        info=info,
    )


def lenid_of_header(header: bytes) -> int:
    """LENID from the 12 header characters after ``~`` (to know how much more to read)."""
    return _hex_int(header[8:12], "LENGTH") & 0xFFF


# -- INFO readers ------------------------------------------------------------------------


class _Reader:
    """Sequential big-endian reader that raises FrameError when INFO is too short."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def s16(self) -> int:
        return int.from_bytes(self.take(2), "big", signed=True)

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise FrameError(
                f"{self.what} INFO ends at byte {len(self.data)}, needs {self.pos + n}"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def done(self) -> None:
        if self.pos != len(self.data):
            raise FrameError(f"{self.what} INFO has {len(self.data) - self.pos} extra bytes")


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


# -- 0x47 / 0xA1 parameter block ---------------------------------------------------------


@dataclass
class RawBlock:
    """The parameter block as it travels: raw words (0x00-0x3B), bytes (0x3C-0x56),
    switch bytes and model name (§7.1). Raw words are unsigned 16-bit."""

    group: int
    words: list[int]
    bytes_: list[int]
    switch_bytes: bytes
    model_name: bytes = field(default=b" " * MODEL_NAME_BYTES)

    def raw(self, index: int) -> int:
        """Raw value of parameter ``index`` (wire index, 0-based)."""
        if index < WORD_PARAMETERS:
            return self.words[index]
        return self.bytes_[index - WORD_PARAMETERS]

    def set_raw(self, index: int, value: int) -> None:
        if index < WORD_PARAMETERS:
            self.words[index] = value
        else:
            self.bytes_[index - WORD_PARAMETERS] = value


def decode_block(info: bytes) -> RawBlock:
    """0x47 answer / 0xA1 request INFO (§7.1), counts checked."""
    r = _Reader(info, "parameter block")
    group = r.u8()
    if (n := r.u8()) != WORD_PARAMETERS:
        raise FrameError(f"parameter block has {n} 2-byte parameters, expected 60")
    words = [r.u16() for _ in range(WORD_PARAMETERS)]
    if (n := r.u8()) != BYTE_PARAMETERS:
        raise FrameError(f"parameter block has {n} 1-byte parameters, expected 27")
    bytes_ = list(r.take(BYTE_PARAMETERS))
    if (n := r.u8()) != SWITCH_BYTES:
        raise FrameError(f"parameter block has {n} switch bytes, expected 8")
    switch_bytes = r.take(SWITCH_BYTES)
    model = r.take(MODEL_NAME_BYTES)
    r.done()
    return RawBlock(group, words, bytes_, switch_bytes, model)


def encode_block(block: RawBlock) -> bytes:
    """INFO of an 0xA1 write (the inverse of ``decode_block``)."""
    out = bytearray([block.group, WORD_PARAMETERS])
    for w in block.words:
        out += w.to_bytes(2, "big")
    out += bytes([BYTE_PARAMETERS, *block.bytes_, SWITCH_BYTES])
    out += block.switch_bytes
    out += block.model_name.ljust(MODEL_NAME_BYTES, b" ")[:MODEL_NAME_BYTES]
    return bytes(out)


class ParameterDef(Protocol):
    """What the codec needs of a spec parameter (``bmsspec`` rows)."""

    number: int
    encoding: Any

    def encode(self, value: float) -> int: ...
    def decode(self, raw: int) -> float: ...


class SwitchDef(Protocol):
    number: int
    bit: int


def block_values(raw: RawBlock, params: Iterable[Any], switches: Iterable[Any]) -> ParameterBlock:
    """Raw block -> values in spec units by number, switches by number."""
    values: dict[int, float] = {}
    for p in params:
        # The spec's decode takes the unsigned wire integer and applies the sign itself.
        values[p.number] = p.decode(raw.raw(p.encoding.index))
    states = {s.number: bool(raw.switch_bytes[s.bit // 8] >> (s.bit % 8) & 1) for s in switches}
    name = raw.model_name.decode("ascii", errors="replace")
    return ParameterBlock(values=values, switches=states, model_name=name, group=raw.group)


def block_raw(
    block: ParameterBlock,
    params: Iterable[Any],
    switches: Iterable[Any],
    template: RawBlock | None = None,
) -> RawBlock:
    """Values in spec units -> raw block. Indexes no parameter covers keep ``template``'s
    raw value, so a read-modify-write never changes what it did not mean to."""
    raw = (
        RawBlock(block.group, [0] * WORD_PARAMETERS, [0] * BYTE_PARAMETERS, bytes(SWITCH_BYTES))
        if template is None
        else RawBlock(
            template.group,
            list(template.words),
            list(template.bytes_),
            template.switch_bytes,
            template.model_name,
        )
    )
    raw.group = block.group
    for p in params:
        if p.number not in block.values:
            continue
        # encode() returns the unsigned wire integer and raises when the value does not fit.
        raw.set_raw(p.encoding.index, p.encode(block.values[p.number]))
    switch_bytes = bytearray(raw.switch_bytes)
    for s in switches:
        if s.number in block.switches:
            mask = 1 << (s.bit % 8)
            if block.switches[s.number]:
                switch_bytes[s.bit // 8] |= mask
            else:
                switch_bytes[s.bit // 8] &= ~mask & 0xFF
    raw.switch_bytes = bytes(switch_bytes)
    name = block.model_name.encode("ascii")
    if len(name) > MODEL_NAME_BYTES:
        raise ValueError(f"model name {block.model_name!r} is longer than 10 characters")
    raw.model_name = name.ljust(MODEL_NAME_BYTES, b" ")
    return raw


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


REMAINING_CAPACITY_INDEX = 0x3B


def remaining_capacity_info(group: int, ah: float) -> bytes:
    """0x49 request INFO for index 0x3B (§8): value in 0.01 Ah, 2 bytes."""
    raw = round(ah * 100)
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"remaining capacity {ah} Ah does not fit 0..655.35 Ah")
    return bytes([group, REMAINING_CAPACITY_INDEX]) + raw.to_bytes(2, "big")


def history_info(index: int) -> bytes:
    """0x4B request INFO: a 2-byte record index (``0000`` = first record, §10)."""
    return index.to_bytes(2, "big")


def describe_rtn(code: int) -> str:
    return RETURN_CODES.get(code, "unknown return code")


def as_flag_list(flags: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
    """Accept spec.flags as a list of objects (name, offset, bit)."""
    return list(flags.values()) if isinstance(flags, Mapping) else list(flags)
