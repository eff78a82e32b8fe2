"""Encoding of one history record (0x4B answer INFO).

The record layout is not captured (protocol §10); Battery Monitor's configuration describes
15 status bytes and 31 two-byte values, and this module follows it:

- bytes 0-5: alarm events 1-6 (0x44 offsets 29-34)
- byte 6: on/off state (0x44 offset 35), byte 7: system state (offset 38)   [Choice]
- byte 8: alarm event 7 (offset 41), byte 9: alarm event 8 (offset 42), bytes 10-14: 0
- then big-endian 2-byte values: 16 cell voltages (1 mV), T1-T4, ambient, power (0.1 K,
  +2731), current (signed, 0.01 A), pack voltage (0.01 V), remaining capacity (0.01 Ah),
  full capacity (0.01 Ah), SOC (0.1 %), rated capacity (0.01 Ah), cycles, SOH (0.1 %),
  port voltage (0.01 V).

77 bytes in all. Cells beyond the configured count (P66) are sent as 0.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from bmssim.twin.flags import flag_bytes

if TYPE_CHECKING:
    from bmssim.twin.core import BmsTwin

STATUS_OFFSETS = (29, 30, 31, 32, 33, 34, 35, 38, 41, 42)
RECORD_SIZE = 15 + 31 * 2


def _u16(value: float) -> int:
    return max(0, min(0xFFFF, int(round(value))))


def _s16(value: float) -> int:
    return max(-0x8000, min(0x7FFF, int(round(value))))


def encode_record(twin: BmsTwin, layout: dict[str, tuple[int, int]]) -> bytes:
    """The record of ``twin``'s state now."""
    status = flag_bytes(twin.flags(), layout)
    head = bytes(status.get(o, 0) for o in STATUS_OFFSETS) + bytes(5)
    m = twin.measurements()
    cells = list(m.cell_v) + [0.0] * (16 - len(m.cell_v))
    words = [_u16(v * 1000) for v in cells[:16]]
    words += [_u16(t * 10 + 2731) for t in m.temps_c]
    body = struct.pack(">16H6H", *words)
    body += struct.pack(">h", _s16(m.current_a * 100))
    body += struct.pack(
        ">8H",
        _u16(m.pack_v * 100),
        _u16(m.remaining_ah * 100),
        _u16(m.full_ah * 100),
        _u16(m.soc_permille),
        _u16(m.rated_ah * 100),
        _u16(m.cycles),
        _u16(m.soh_permille),
        _u16(m.port_v * 100),
    )
    return head + body


def decode_record(data: bytes) -> dict[str, object]:
    """Inverse of :func:`encode_record` (for tests and reports)."""
    if len(data) != RECORD_SIZE:
        raise ValueError(f"history record of {len(data)} bytes, expected {RECORD_SIZE}")
    status = dict(zip(STATUS_OFFSETS, data[:10], strict=True))
    v = struct.unpack(">16H6Hh8H", data[15:])
    return {
        "status": status,
        "cell_v": [x / 1000 for x in v[:16]],
        "temps_c": [round((x - 2731) / 10, 1) for x in v[16:22]],
        "current_a": v[22] / 100,
        "pack_v": v[23] / 100,
        "remaining_ah": v[24] / 100,
        "full_ah": v[25] / 100,
        "soc_permille": v[26],
        "rated_ah": v[27] / 100,
        "cycles": v[28],
        "soh_permille": v[29],
        "port_v": v[30] / 100,
    }
