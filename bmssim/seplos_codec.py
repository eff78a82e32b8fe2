"""Device side of the Seplos V2 ASCII-hex protocol (docs: /work/shared/protocols/seplos-v2.md).

This is the simulator's own codec. The harness has another one
(``instruments/bms/seplos_codec.py``); the two share nothing but the spec tables on purpose,
so that both can be checked against the captured frames of the protocol document and a bug
in one cannot hide a bug in the other.

Layers:

* framing (§2): :func:`encode_frame`, :func:`decode_frame` and :class:`FrameReader`, which
  turns a byte stream with partial frames and garbage into frames and framing errors;
* INFO payloads (§5-§10): one small dataclass per answer or request, each with
  ``encode() -> bytes`` and ``decode(bytes)``. Values are in spec units (V, °C, A, Ah) so the
  server can fill them straight from the twin; raw fields the device does not model (DATA
  FLAG, reserved words) are kept so that a captured frame decodes and re-encodes to the
  same bytes.

Multi-byte numbers are big-endian throughout; hex is emitted upper-case and accepted in
either case.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

SOI = b"~"
EOI = b"\r"
VER = 0x20  # protocol 2.0
CID1_LFP = 0x46  # LiFePO4 BMS
MAX_LENID = 0xFFF
#: Longest possible frame: SOI + 12 header chars + 4095 INFO chars + CHKSUM + EOI.
MAX_FRAME_CHARS = 1 + 12 + MAX_LENID + 4 + 1

CELLS = 16
TEMPERATURES = 6
TEMP_OFFSET = 2731  # 0.1 K; the protocol uses 2731, not 2730 (§5)


class Cid2(IntEnum):
    """Command codes (§4) the simulator knows."""

    TELEMETRY = 0x42
    STATUS = 0x44
    CONTROL = 0x45
    PARAMETERS = 0x47
    SET_PARAMETER = 0x49
    HISTORY = 0x4B
    PROTOCOL_VERSION = 0x4F
    DEVICE_INFO = 0x51
    WRITE_PARAMETERS = 0xA1


class Rtn(IntEnum):
    """Return codes (§3), sent in the CID2 position of an answer."""

    OK = 0x00
    VER_ERROR = 0x01
    CHKSUM_ERROR = 0x02
    LCHKSUM_ERROR = 0x03
    CID2_INVALID = 0x04
    FORMAT_ERROR = 0x05
    INVALID_DATA = 0x06
    NO_DATA = 0x07
    CID1_INVALID = 0xE1
    EXECUTION_FAILED = 0xE2
    DEVICE_FAULT = 0xE3
    NO_PERMISSION = 0xE4


# --------------------------------------------------------------------------- framing (§2)


def lchksum(lenid: int) -> int:
    """4-bit two's complement of the nibble sum of LENID (§2.2)."""
    if not 0 <= lenid <= MAX_LENID:
        raise ValueError(f"LENID {lenid} outside 0..{MAX_LENID}")
    return -((lenid & 0xF) + ((lenid >> 4) & 0xF) + ((lenid >> 8) & 0xF)) % 16


def length_field(lenid: int) -> int:
    """The 16-bit LENGTH field: LCHKSUM in the top nibble, LENID below."""
    return (lchksum(lenid) << 12) | lenid


def chksum(body: bytes) -> int:
    """16-bit two's complement of the sum of the characters between SOI and CHKSUM (§2.3)."""
    return -sum(body) % 0x10000


@dataclass(frozen=True)
class Frame:
    """One decoded frame. ``cid2`` is the command in a request and the RTN in an answer."""

    adr: int
    cid2: int
    info: bytes = b""
    ver: int = VER
    cid1: int = CID1_LFP

    def encode(self) -> bytes:
        """The frame on the wire, SOI to EOI included."""
        return encode_frame(self.adr, self.cid2, self.info, ver=self.ver, cid1=self.cid1)


def encode_frame(
    adr: int, cid2: int, info: bytes = b"", *, ver: int = VER, cid1: int = CID1_LFP
) -> bytes:
    """Build a frame (ASCII bytes from ``~`` to CR) around a decoded INFO payload."""
    info_hex = info.hex().upper().encode("ascii")
    lenid = len(info_hex)
    if lenid > MAX_LENID:
        raise ValueError(f"INFO of {len(info)} bytes does not fit LENID (max {MAX_LENID // 2})")
    body = b"%02X%02X%02X%02X%04X" % (ver, adr, cid1, cid2, length_field(lenid)) + info_hex
    return SOI + body + b"%04X" % chksum(body) + EOI


class FrameError(Exception):
    """A frame that arrived but cannot be served; ``rtn`` is the code to answer with.

    ``adr``/``ver``/``cid1`` are those of the received header when they could be read, so
    the server can answer (or stay silent for another address); None when the header
    itself is not hex.
    """

    def __init__(
        self,
        rtn: Rtn,
        reason: str,
        *,
        adr: int | None = None,
        ver: int | None = None,
        cid1: int | None = None,
    ) -> None:
        super().__init__(f"{reason} (RTN 0x{int(rtn):02X})")
        self.rtn = rtn
        self.reason = reason
        self.adr = adr
        self.ver = ver
        self.cid1 = cid1


def _hex_byte(text: bytes, at: int) -> int:
    return int(text[at : at + 2], 16)


def decode_frame(raw: bytes) -> Frame:
    """Parse one complete frame (``~`` ... optional CR) and verify LCHKSUM and CHKSUM.

    Raises :class:`FrameError` carrying the RTN the device answers with: 0x03 for a bad
    LCHKSUM or a LENID that disagrees with the INFO present, 0x02 for a bad CHKSUM, 0x05
    for characters that are not hex. VER/CID1/CID2 are not judged here (that is the
    server's business, §11).
    """
    text = raw.strip()
    if not text.startswith(SOI):
        raise FrameError(Rtn.FORMAT_ERROR, "frame does not start with '~'")
    text = text[1:]
    if len(text) < 16:
        raise FrameError(Rtn.FORMAT_ERROR, f"frame too short ({len(text) + 1} chars)")
    try:
        ver, adr, cid1, cid2 = (_hex_byte(text, i) for i in (0, 2, 4, 6))
        length = int(text[8:12], 16)
    except ValueError:
        raise FrameError(Rtn.FORMAT_ERROR, "header is not hex") from None
    where = {"adr": adr, "ver": ver, "cid1": cid1}
    lenid = length & 0xFFF
    if length >> 12 != lchksum(lenid):
        raise FrameError(Rtn.LCHKSUM_ERROR, f"LENGTH {length:04X}: bad LCHKSUM", **where)
    if len(text) != 12 + lenid + 4:
        raise FrameError(
            Rtn.LCHKSUM_ERROR,
            f"LENID says {lenid} INFO chars, frame carries {len(text) - 16}",
            **where,
        )
    body, check = text[:-4], text[-4:]
    try:
        received = int(check, 16)
    except ValueError:
        raise FrameError(Rtn.CHKSUM_ERROR, f"CHKSUM {check!r} is not hex", **where) from None
    if received != chksum(body):
        raise FrameError(
            Rtn.CHKSUM_ERROR, f"CHKSUM {received:04X}, expected {chksum(body):04X}", **where
        )
    try:
        info = bytes.fromhex(body[12:].decode("ascii"))
    except ValueError:
        raise FrameError(Rtn.FORMAT_ERROR, "INFO is not hex", **where) from None
    return Frame(adr=adr, cid2=cid2, info=info, ver=ver, cid1=cid1)


class FrameReader:
    """Incremental receiver: bytes in, frames (or framing errors) out.

    Synchronises on ``~`` and takes the CR as the end of a frame, so a frame may arrive in
    any number of pieces. Bytes before a ``~`` are line noise and dropped; a ``~`` inside an
    unfinished frame means the earlier frame was cut and a new one starts there. A frame
    that grows past the longest legal frame without a CR is dropped.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Add received bytes; return every frame completed by them, in order."""
        self._buffer += data
        out: list[Frame | FrameError] = []
        while True:
            start = self._buffer.find(SOI)
            if start < 0:
                self._buffer.clear()
                return out
            del self._buffer[:start]
            end = self._buffer.find(EOI)
            restart = self._buffer.find(SOI, 1, end if end >= 0 else len(self._buffer))
            if restart > 0:
                del self._buffer[:restart]  # a new SOI before the CR: the old frame was cut
                continue
            if end < 0:
                if len(self._buffer) > MAX_FRAME_CHARS:
                    self._buffer.clear()
                return out
            raw = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            try:
                out.append(decode_frame(raw))
            except FrameError as exc:
                out.append(exc)


def error_frame(adr: int, rtn: int, *, ver: int = VER, cid1: int = CID1_LFP) -> bytes:
    """An answer with an empty INFO (acknowledge, or any error code)."""
    return encode_frame(adr, rtn, b"", ver=ver, cid1=cid1)


# --------------------------------------------------------------------------- small helpers


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


# --------------------------------------------------------------------------- 0x42 (§5)


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


# --------------------------------------------------------------------------- 0x44 (§6)


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


# --------------------------------------------------------------------------- 0x47 / 0xA1 (§7)


class EncodingLike(Protocol):
    index: int
    bytes: int
    signed: bool


class ParameterLike(Protocol):
    """What the codec needs of ``bmsspec`` parameters."""

    number: int
    encoding: Any

    def encode(self, value: float) -> int: ...

    def decode(self, raw: int) -> float: ...


class SwitchLike(Protocol):
    number: int
    byte: int
    bit_in_byte: int


class SpecLike(Protocol):
    """The part of ``bmsspec.Spec`` the codec uses."""

    def param(self, key: Any) -> Any: ...

    def switch(self, key: Any) -> Any: ...


PARAMETER_COUNT = 87
SWITCH_COUNT = 64
WORD_PARAMETERS = 0x3C  # 60 two-byte parameters, indexes 0x00..0x3B
BYTE_PARAMETERS = 0x1B  # 27 one-byte parameters, indexes 0x3C..0x56
SWITCH_BYTES = 8
MODEL_NAME_BYTES = 10
BLOCK_SIZE = 2 + 2 * WORD_PARAMETERS + 1 + BYTE_PARAMETERS + 1 + SWITCH_BYTES + MODEL_NAME_BYTES
REMAINING_CAPACITY_INDEX = 0x3B


def parameter_offset(index: int) -> tuple[int, int]:
    """(offset in the block INFO, size) of parameter ``index`` (§7.1)."""
    if 0 <= index < WORD_PARAMETERS:
        return 2 + 2 * index, 2
    if WORD_PARAMETERS <= index < WORD_PARAMETERS + BYTE_PARAMETERS:
        return 3 + 2 * WORD_PARAMETERS + (index - WORD_PARAMETERS), 1
    raise ValueError(f"parameter index 0x{index:02X} outside 0x00..0x56")


def encode_parameter(p: ParameterLike, value: float) -> bytes:
    """One parameter's raw bytes through its spec encoding.

    ``p.encode`` returns the unsigned field content (two's complement for signed fields)
    and raises ValueError when the value does not fit, so nothing wraps silently here.
    """
    return int(p.encode(value)).to_bytes(p.encoding.bytes, "big")


def decode_parameter(p: ParameterLike, data: bytes) -> float:
    """One parameter's value in spec units from its raw bytes (``p.decode`` takes the
    unsigned field content and applies the sign, scale and offset)."""
    return p.decode(int.from_bytes(data, "big"))


@dataclass
class ParameterBlockWire:
    """The 169-byte block of a 0x47 answer or an 0xA1 request (§7.1).

    ``values`` and ``switches`` are keyed by spec number (P1..P87, S1..S64), as in the twin
    contract's ``ParameterBlock``; switch True = enabled (bit set).
    """

    values: dict[int, float]
    switches: dict[int, bool]
    model_name: str
    group: int = 0

    def encode(self, spec: SpecLike) -> bytes:
        """Raise ValueError for a missing item or a value the encoding cannot carry."""
        out = bytearray(BLOCK_SIZE)
        out[0] = self.group
        out[1] = WORD_PARAMETERS
        out[2 + 2 * WORD_PARAMETERS] = BYTE_PARAMETERS
        switch_at = 3 + 2 * WORD_PARAMETERS + BYTE_PARAMETERS
        out[switch_at] = SWITCH_BYTES
        for number in range(1, PARAMETER_COUNT + 1):
            p = spec.param(number)
            if number not in self.values:
                raise ValueError(f"P{number} missing from the parameter block")
            at, size = parameter_offset(p.encoding.index)
            if size != p.encoding.bytes:
                raise ValueError(
                    f"P{number}: spec says {p.encoding.bytes} bytes, the block has {size}"
                )
            out[at : at + size] = encode_parameter(p, self.values[number])
        for number in range(1, SWITCH_COUNT + 1):
            s = spec.switch(number)
            if self.switches.get(number, False):
                out[switch_at + 1 + s.byte] |= 1 << s.bit_in_byte
        name = self.model_name.encode("ascii")
        if len(name) > MODEL_NAME_BYTES:
            raise ValueError(f"model name {self.model_name!r} longer than {MODEL_NAME_BYTES}")
        out[BLOCK_SIZE - MODEL_NAME_BYTES :] = name.ljust(MODEL_NAME_BYTES, b" ")
        return bytes(out)

    @classmethod
    def decode(cls, info: bytes, spec: SpecLike) -> ParameterBlockWire:
        """Parse and check the layout; a format problem raises :class:`BlockFormatError`."""
        if len(info) != BLOCK_SIZE:
            raise BlockFormatError(f"parameter block is {len(info)} bytes, expected {BLOCK_SIZE}")
        switch_at = 3 + 2 * WORD_PARAMETERS + BYTE_PARAMETERS
        counts = (info[1], info[2 + 2 * WORD_PARAMETERS], info[switch_at])
        if counts != (WORD_PARAMETERS, BYTE_PARAMETERS, SWITCH_BYTES):
            raise BlockFormatError(
                "block counts %02X/%02X/%02X, expected 3C/1B/08" % counts  # noqa: UP031
            )
        values: dict[int, float] = {}
        for number in range(1, PARAMETER_COUNT + 1):
            p = spec.param(number)
            at, size = parameter_offset(p.encoding.index)
            values[number] = decode_parameter(p, info[at : at + size])
        switches: dict[int, bool] = {}
        for number in range(1, SWITCH_COUNT + 1):
            s = spec.switch(number)
            switches[number] = bool(info[switch_at + 1 + s.byte] >> s.bit_in_byte & 1)
        try:
            name = info[BLOCK_SIZE - MODEL_NAME_BYTES :].decode("ascii")
        except UnicodeDecodeError:
            raise BlockFormatError("model name is not ASCII") from None
        return cls(values=values, switches=switches, model_name=name, group=info[0])


class BlockFormatError(ValueError):
    """The 0xA1 block's shape is wrong (RTN 0x05), as opposed to its values (RTN 0x06)."""


# --------------------------------------------------------------------------- 0x49 (§8)


@dataclass
class SetParameter:
    """0x49 request [inf]: group, parameter index, value bytes as in the 0x47 block."""

    group: int
    index: int
    raw: bytes

    def encode(self) -> bytes:
        return bytes([self.group, self.index]) + self.raw

    @classmethod
    def decode(cls, info: bytes) -> SetParameter:
        if len(info) < 3:
            raise ValueError(f"0x49 INFO of {len(info)} bytes; needs group, index, value")
        return cls(group=info[0], index=info[1], raw=bytes(info[2:]))

    def value_raw(self) -> int:
        """The unsigned raw value; ValueError if its size disagrees with the index (§7.1)."""
        _at, size = parameter_offset(self.index)
        if len(self.raw) != size:
            raise ValueError(f"index 0x{self.index:02X} takes {size} byte(s), got {len(self.raw)}")
        return int.from_bytes(self.raw, "big")


# --------------------------------------------------------------------------- 0x45 (§9)


class ControlItem(IntEnum):
    DISCHARGE_FET = 0x00
    CHARGE_FET = 0x01
    CURRENT_LIMIT_FET = 0x02
    HEATER = 0x03
    SHUTDOWN = 0x04
    FACTORY_RESET = 0x05


ACTION_ON = 0x10
ACTION_OFF = 0x1F


@dataclass
class Control:
    """0x45 request: group, control item, action (0x10 on, 0x1F off, 0x00 one-shot)."""

    group: int
    item: int
    action: int

    def encode(self) -> bytes:
        return bytes([self.group, self.item, self.action])

    @classmethod
    def decode(cls, info: bytes) -> Control:
        if len(info) != 3:
            raise ValueError(f"0x45 INFO of {len(info)} bytes, expected 3")
        return cls(group=info[0], item=info[1], action=info[2])


# --------------------------------------------------------------------------- 0x4B (§10)


@dataclass
class HistoryRequest:
    """0x4B request: a 2-byte record selector (``0000`` = "get first")."""

    index: int

    def encode(self) -> bytes:
        return _u16(self.index)

    @classmethod
    def decode(cls, info: bytes) -> HistoryRequest:
        if len(info) != 2:
            raise ValueError(f"0x4B INFO of {len(info)} bytes, expected 2")
        return cls(index=int.from_bytes(info, "big"))


# --------------------------------------------------------------------------- 0x51 (§10)


@dataclass
class DeviceInfo:
    """0x51 answer: 10-char device name, (major, minor) version, 20-char manufacturer."""

    name: str
    version: tuple[int, int]
    manufacturer: str

    def encode(self) -> bytes:
        name = self.name.encode("ascii")
        maker = self.manufacturer.encode("ascii")
        if len(name) > 10 or len(maker) > 20:
            raise ValueError("device name max 10 chars, manufacturer max 20 chars")
        return name.ljust(10, b" ") + bytes(self.version) + maker.ljust(20, b" ")

    @classmethod
    def decode(cls, info: bytes) -> DeviceInfo:
        if len(info) != 32:
            raise ValueError(f"0x51 INFO of {len(info)} bytes, expected 32")
        return cls(
            name=info[:10].decode("ascii"),
            version=(info[10], info[11]),
            manufacturer=info[12:].decode("ascii"),
        )


__all__ = [
    "BLOCK_SIZE",
    "BlockFormatError",
    "Cid2",
    "Control",
    "ControlItem",
    "DeviceInfo",
    "Frame",
    "FrameError",
    "FrameReader",
    "HistoryRequest",
    "ParameterBlockWire",
    "Rtn",
    "SetParameter",
    "StatusAnswer",
    "Telemetry",
    "chksum",
    "decode_frame",
    "decode_group",
    "encode_frame",
    "encode_group",
    "error_frame",
    "lchksum",
    "length_field",
]
