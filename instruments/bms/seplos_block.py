"""Seplos V2 parameter block on the harness's side (CID2 0x47 read, 0xA1/0x49 write): the raw
block, its values by spec row, and the block written back from values. (The simulator has its
own codec, ``bmssim.seplos_block``, on purpose.)"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from instruments.bms.seplos_frame import FrameError, _Reader
from instruments.bms.types import ParameterBlock

WORD_PARAMETERS = 0x3C

BYTE_PARAMETERS = 0x1B

SWITCH_BYTES = 8

MODEL_NAME_BYTES = 10

BLOCK_BYTES = (
    1 + 1 + 2 * WORD_PARAMETERS + 1 + BYTE_PARAMETERS + 1 + SWITCH_BYTES + MODEL_NAME_BYTES
)


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


REMAINING_CAPACITY_INDEX = 0x3B


def remaining_capacity_info(group: int, ah: float) -> bytes:
    """0x49 request INFO for index 0x3B (§8): value in 0.01 Ah, 2 bytes."""
    raw = round(ah * 100)
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"remaining capacity {ah} Ah does not fit 0..655.35 Ah")
    return bytes([group, REMAINING_CAPACITY_INDEX]) + raw.to_bytes(2, "big")
