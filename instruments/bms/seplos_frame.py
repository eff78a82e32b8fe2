"""Seplos V2 framing on the harness's side: the ASCII-hex frame with its LENGTH and CHKSUM
fields, encoding and decoding, and the byte reader the payload decoders share. (The simulator
has its own codec, ``bmssim.seplos_frame``, on purpose.)"""

from __future__ import annotations

from dataclasses import dataclass

SOI = b"~"

EOI = b"\r"

VERSION = 0x20

CID1_LIFEPO4 = 0x46


class FrameError(ValueError):
    """A frame that must not be acted on; the message says why."""


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
