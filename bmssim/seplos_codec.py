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

from bmssim.seplos_block import ACTION_OFF as ACTION_OFF
from bmssim.seplos_block import ACTION_ON as ACTION_ON
from bmssim.seplos_block import (
    BLOCK_SIZE,
    BlockFormatError,
    Control,
    ControlItem,
    DeviceInfo,
    HistoryRequest,
    ParameterBlockWire,
    SetParameter,
)
from bmssim.seplos_block import BYTE_PARAMETERS as BYTE_PARAMETERS
from bmssim.seplos_block import MODEL_NAME_BYTES as MODEL_NAME_BYTES
from bmssim.seplos_block import PARAMETER_COUNT as PARAMETER_COUNT
from bmssim.seplos_block import REMAINING_CAPACITY_INDEX as REMAINING_CAPACITY_INDEX
from bmssim.seplos_block import SWITCH_BYTES as SWITCH_BYTES
from bmssim.seplos_block import SWITCH_COUNT as SWITCH_COUNT
from bmssim.seplos_block import WORD_PARAMETERS as WORD_PARAMETERS
from bmssim.seplos_block import EncodingLike as EncodingLike
from bmssim.seplos_block import ParameterLike as ParameterLike
from bmssim.seplos_block import SpecLike as SpecLike
from bmssim.seplos_block import SwitchLike as SwitchLike
from bmssim.seplos_block import decode_parameter as decode_parameter
from bmssim.seplos_block import encode_parameter as encode_parameter
from bmssim.seplos_block import parameter_offset as parameter_offset
from bmssim.seplos_frame import CID1_LFP as CID1_LFP
from bmssim.seplos_frame import EOI as EOI
from bmssim.seplos_frame import MAX_FRAME_CHARS as MAX_FRAME_CHARS
from bmssim.seplos_frame import MAX_LENID as MAX_LENID
from bmssim.seplos_frame import SOI as SOI
from bmssim.seplos_frame import VER as VER
from bmssim.seplos_frame import (
    Cid2,
    Frame,
    FrameError,
    FrameReader,
    Rtn,
    chksum,
    decode_frame,
    encode_frame,
    error_frame,
    lchksum,
    length_field,
)
from bmssim.seplos_frame import _hex_byte as _hex_byte
from bmssim.seplos_telemetry import CELLS as CELLS
from bmssim.seplos_telemetry import STATUS_FLAG_BYTES as STATUS_FLAG_BYTES
from bmssim.seplos_telemetry import STATUS_SIZE as STATUS_SIZE
from bmssim.seplos_telemetry import SYSTEM_STATE_OFFSET as SYSTEM_STATE_OFFSET
from bmssim.seplos_telemetry import TEMP_OFFSET as TEMP_OFFSET
from bmssim.seplos_telemetry import TEMPERATURES as TEMPERATURES
from bmssim.seplos_telemetry import FlagLike as FlagLike
from bmssim.seplos_telemetry import StatusAnswer, Telemetry, decode_group, encode_group
from bmssim.seplos_telemetry import _bits as _bits
from bmssim.seplos_telemetry import _flag_index as _flag_index
from bmssim.seplos_telemetry import _raw as _raw
from bmssim.seplos_telemetry import _Reader as _Reader
from bmssim.seplos_telemetry import _s16 as _s16
from bmssim.seplos_telemetry import _u16 as _u16
from bmssim.seplos_telemetry import _unbits as _unbits

# --------------------------------------------------------------------------- 0x51 (§10)


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
