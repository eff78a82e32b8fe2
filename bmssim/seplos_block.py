"""Seplos V2 parameter block (CID2 0x47/0x49) and commands on the simulator's side: the block
layout from the spec tables, one parameter written (0xA1), control (0xA3), history and
device information."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from bmssim.seplos_telemetry import _u16


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
