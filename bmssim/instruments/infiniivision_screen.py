"""The InfiniiVision simulator's screen: the graticule and traces drawn into pixels, written as
the BMP or PNG ``:DISPlay:DATA?`` returns."""

from __future__ import annotations

import struct
import zlib

from bmssim.instruments.infiniivision_setup import DIVISIONS_X, DIVISIONS_Y
from bmssim.scpi import Args, definite_block

SCREEN_W, SCREEN_H = 800, 480

# Palette of the screen picture: background, grid, centre lines, channel 1..4 (the
# InfiniiVision colours: yellow, green, blue, red).
_PALETTE = [
    (0, 0, 0),
    (64, 64, 64),
    (128, 128, 128),
    (255, 255, 0),
    (0, 255, 0),
    (64, 128, 255),
    (255, 64, 64),
]

_GRID, _AXIS, _TRACE0 = 1, 2, 3


def _png(width: int, height: int, pixels: bytes, palette: list[tuple[int, int, int]]) -> bytes:
    """An 8-bit palette PNG (colour type 3) of ``pixels`` (one palette index per pixel)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(
        b"\x00" + pixels[y * width : (y + 1) * width] for y in range(height)
    )  # filter type 0 (None) per row
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
        + chunk(b"PLTE", b"".join(bytes(c) for c in palette))
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def _bmp(
    width: int, height: int, pixels: bytes, palette: list[tuple[int, int, int]], indexed: bool
) -> bytes:
    """A Windows bitmap, bottom-up: 8-bit with a palette or 24-bit true colour."""
    bpp = 8 if indexed else 24
    row_bytes = (width * bpp // 8 + 3) & ~3
    table = b""
    if indexed:
        table = b"".join(bytes((b, g, r, 0)) for r, g, b in palette)
        table += b"\x00" * (4 * 256 - len(table))
    lookup = [bytes((b, g, r)) for r, g, b in palette]
    body = bytearray()
    for y in range(height - 1, -1, -1):
        row = pixels[y * width : (y + 1) * width]
        line = bytes(row) if indexed else b"".join(lookup[i] for i in row)
        body += line + b"\x00" * (row_bytes - len(line))
    offset = 14 + 40 + len(table)
    header = struct.pack("<2sIHHI", b"BM", offset + len(body), 0, 0, offset)
    info = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, bpp, 0, len(body), 3780, 3780,
        256 if indexed else 0, 0,
    )  # fmt: skip
    return header + info + table + bytes(body)


class ScopeScreen:
    """The screen of :class:`KeysightInfiniiVision`: pixels, images, ``:DISPlay:DATA?``."""

    # Screen --------------------------------------------------------------------------------
    def screen_pixels(self) -> bytes:
        """The screen as palette indices (graticule, then the displayed channels' traces)."""
        w, h = SCREEN_W, SCREEN_H
        buf = bytearray(w * h)
        dx, dy = w / DIVISIONS_X, h / DIVISIONS_Y
        for i in range(DIVISIONS_Y + 1):
            y = min(h - 1, round(i * dy))
            colour = _AXIS if i == DIVISIONS_Y // 2 else _GRID
            buf[y * w : (y + 1) * w] = bytes([colour]) * w
        for i in range(DIVISIONS_X + 1):
            x = min(w - 1, round(i * dx))
            colour = _AXIS if i == DIVISIONS_X // 2 else _GRID
            buf[x::w] = bytes([colour]) * h
        for n, ch in enumerate(self.setup.channels, start=1):
            if not ch.display:
                continue
            colour = _TRACE0 + n - 1
            previous: int | None = None
            for x, value in enumerate(self.channel_values(n, w)):
                divisions = (value - ch.offset) / ch.scale
                y = round(h / 2 - divisions * dy)
                y = min(h - 1, max(0, y))
                lo, hi = (y, y) if previous is None else (min(y, previous), max(y, previous))
                for yy in range(lo, hi + 1):
                    buf[yy * w + x] = colour
                previous = y
        return bytes(buf)

    def screen_image(self, fmt: str = "BMP", palette: str = "COL") -> bytes:
        colours = list(_PALETTE)
        if palette == "GRAY":
            colours = [(g, g, g) for g in (round(0.299 * r + 0.587 * gg + 0.114 * b)
                                           for r, gg, b in colours)]  # fmt: skip
        pixels = self.screen_pixels()
        if fmt == "PNG":
            return _png(SCREEN_W, SCREEN_H, pixels, colours)
        return _bmp(SCREEN_W, SCREEN_H, pixels, colours, indexed=fmt == "BMP8")

    def _display_data(self, args: Args) -> bytes:
        fmt = args.keyword(0, ("BMP", "BMP8bit", "PNG")) if args.has(0) else "BMP"
        palette = args.keyword(1, ("COLor", "GRAYscale")) if args.has(1) else "COL"
        return definite_block(self.screen_image(fmt, palette))
