"""Seplos V2 framing on the simulator's side: the ASCII-hex frame, its LENGTH and CHKSUM
fields, encoding and decoding, the reader that finds frames in a byte stream, error replies.
(The harness has its own codec, ``instruments.bms.seplos_codec``, on purpose.)"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

SOI = b"~"

EOI = b"\r"

VER = 0x20  # protocol 2.0

CID1_LFP = 0x46  # LiFePO4 BMS

MAX_LENID = 0xFFF

#: Longest possible frame: SOI + 12 header chars + 4095 INFO chars + CHKSUM + EOI.
MAX_FRAME_CHARS = 1 + 12 + MAX_LENID + 4 + 1


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
