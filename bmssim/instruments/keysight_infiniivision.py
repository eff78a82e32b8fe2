"""Simulated Keysight InfiniiVision 3000T X-series scope (DSOX3024T) timing the BMS's FETs.

The scope does not sample anything itself: the World appends every change of the probed
signals to ``world.bench.trace`` (``(t_ms, signal, value)``), and the scope derives edges,
timings and waveforms from that record. Probe wiring of the simulated bench:

* ``CHANnel1`` = ``current`` (pack current in A, + = charging, - = discharging),
* ``CHANnel2`` = ``discharge_fet`` (1 = closed/conducting, 0 = open),
* ``CHANnel3`` = ``charge_fet``, ``CHANnel4`` = not connected (reads 0, no edges).

Edges (the simulator's definition, needed because a discharge current is negative): an edge
is a change of the recorded value; it is **rising** when the magnitude ``|value|`` increases
and **falling** when it decreases. So a discharge step from 0 to -250 A is a rising edge and
its interruption by the discharge FET (back to 0 A) is a falling edge; for the FET channels
(0/1) this is the usual sense. Several changes recorded in the same millisecond count as one
edge (the net change), like a glitch a scope cannot resolve. Timing resolution is 1 ms, the
resolution of the virtual clock.

Acquisition and time reference:

* ``:SINGle`` (and ``:DIGitize [CHANnel<n>[,...]]``) arms at ``world.clock.now_ms``; that
  instant is the trigger point (time 0) and the capture window is
  ``[armed - pre, armed - pre + :TIMebase:RANGe]`` with the pre-trigger time
  ``pre = f x RANGe - :TIMebase:POSition`` (``f`` = 0, 0.5, 1 for ``:TIMebase:REFerence``
  LEFT, CENTer, RIGHt). The simulator's reset state is ``REFerence LEFT``, ``POSition 0``:
  no pre-trigger, the window starts at the arm instant (a real 3000T resets to CENTer, and
  its LEFT reference sits one division in from the edge; the simulator puts it at the edge
  so that the harness, which only sets the range, captures what follows its trigger).
  Edges exactly at the arm instant count (the harness arms and then triggers the load at
  the same virtual instant). The acquisition completes
  when the clock reaches the end of the window (``:OPERegister:CONDition?`` bit 3 "Run"
  clears, ``:TER?`` answers ``+1`` once).
* ``:RUN``: the window is the last ``RANGe`` up to now, time 0 at ``pre`` into it. ``:STOP``
  freezes the current window.

Commands:

=================================================  ==============================================
``:SINGle``, ``:RUN``, ``:STOP``, ``:DIGitize``     acquisition control
``:TIMebase:RANGe <s>`` / ``:TIMebase:SCALe <s>``   full-scale window (10 divisions) / per division
``:MEASure:DEFine DELay,<[+|-]n>,<[+|-]m>``         edges used by ``:MEASure:DELay?`` (+ rising)
``:MEASure:DELay? [<src1>[,<src2>]]``               t(edge m on src2) - t(edge n on src1), seconds
``:MEASure:TEDGe? <[+|-]n>[,<src>]``                time of the nth edge from the trigger point
``:WAVeform:SOURce CHANnel<n>``                     waveform source
``:WAVeform:FORMat BYTE|WORD|ASCii``                data format (WORD: unsigned, MSB first unless
                                                    ``:WAVeform:BYTeorder LSBFirst``)
``:WAVeform:POINts:MODE NORMal|MAXimum|RAW``        stored, all modes return the same record
``:WAVeform:POINts <n>``                            requested points (100 .. 8 000 000)
``:WAVeform:PREamble?``                             format,type,points,count,xincrement,xorigin,
                                                    xreference,yincrement,yorigin,yreference
``:WAVeform:DATA?``                                 ``#8nnnnnnnn`` definite-length block; ASCii
                                                    data is comma-separated NR3 inside the block,
                                                    as on the real scopes
``:WAVeform:X|Y INCrement|ORigin|REFerence?``       single preamble fields
``:TER?``, ``:OPERegister:CONDition?``              acquisition done / running
=================================================  ==============================================

Missing edges answer ``+9.90000000E+37`` (the InfiniiVision "no measurement" value).
Waveforms: ``points = max(requested, ceil(range in ms))`` (at most 1 000 000) so the sample
spacing is 1 ms or finer; sample k is the value in force at ``xorigin + k * xincrement``;
``value = (code - yreference) * yincrement + yorigin``. Samples of an incomplete window beyond
the present instant hold the present value.

What a generic driver sends (PyMeasure's ``KeysightDSOX1102G``, the InfiniiVision class
PyMeasure has, and the 3000T X-Series Programmer's Guide) beyond the harness's set; state
the sim has no model for (trigger conditions, bandwidth limit, coupling, acquisition type)
is stored, reported and saved in the setup, without effect on the traces:

=================================================  ==============================================
``:TIMebase?``                                      ``:TIM:MODE MAIN;REF LEFT;MAIN:RANG <r>;``
                                                    ``POS <p>``
``:TIMebase:MODE MAIN|WINDow|XY|ROLL``              stored; query
``:TIMebase:REFerence LEFT|CENTer|RIGHt``           moves the window (above); query
``:TIMebase:POSition <s>``                          trigger to reference (above); query
``:TIMebase:VERNier ON|OFF``                        stored; query
``:CHANnel<n>?``                                    ``:CHAN1:RANG <r>;OFFS <o>;COUP DC;IMP ONEM;
                                                    DISP 1;BWL 0;INV 0;LAB "1";UNIT AMP;PROB <p>;
                                                    PROB:SKEW <s>;STYP SING``
``:CHANnel<n>:SCALe|RANGe <v>``                     per division / full scale (8 div); kept
                                                    within 1 mV..5 V/div x probe; queries
``:CHANnel<n>:OFFSet <v>``                          centre of screen; kept within +-2 V (below
                                                    200 mV/div) or +-40 V, x probe; query
``:CHANnel<n>:DISPlay|BWLimit|INVert|VERNier``      booleans; ``INVert`` inverts the waveform
``:CHANnel<n>:COUPling AC|DC``, ``:IMPedance``      ``ONEMeg|FIFTy``; queries
``ONEMeg|FIFTy``, ``:UNITs VOLT|AMPere``
``:CHANnel<n>:LABel "<text>"``                      upper case, at most 10 characters; query
``:CHANnel<n>:PROBe <0.1..10000>``                  probe ratio; scale and offset follow it
``:CHANnel<n>:PROBe:SKEW <s>``, ``:PROBe:STYPe?``   skew (+-100 ns); ``SING``
``:ACQuire:TYPE NORMal|AVERage|HRESolution|PEAK``   stored; the preamble's type field follows
``:ACQuire:MODE RTIMe|SEGMented``, ``:COUNt <n>``   stored (count 2..65536); queries
``:ACQuire:SRATe?``, ``:ACQuire:POINts?``           record points / range; record points
``:TRIGger:MODE EDGE|GLITch|...|SBUS<n>``           stored; query
``:TRIGger:SWEep AUTO|NORMal``                      stored; query
``:TRIGger[:EDGE]:SOURce CHANnel<n>|EXTernal|``     stored; query (``CHAN1``, ``EXT``, ...)
``LINE|WGEN``
``:TRIGger[:EDGE]:LEVel <v>[,<source>]``            per source; ``:TRIGger:LEVel:ASETup`` puts
                                                    it half way up the source's recorded range
``:TRIGger[:EDGE]:SLOPe POSitive|NEGative|``        stored; ``:COUPling AC|DC|LFReject`` too
``EITHer|ALTernate``
``:TRIGger:HOLDoff <s>``, ``:NREJect``,             stored; ``:TRIGger:FORCe`` is accepted (the
``:HFReject``, ``:FORCe``                           sim triggers at the arm instant anyway)
``:WAVeform:TYPE?``, ``:WAVeform:COUNt?``           acquisition type, 1 (average count)
``:SYSTem:SETup?`` / ``:SYSTem:SETup <block>``      the whole setup as a ``#8`` definite-length
                                                    block (a JSON text here, opaque binary on the
                                                    real scope); a block it gave restores it;
                                                    anything else is -161 / -224, nothing changes
``*LRN?``                                           ``:SYST:SET <block>``
``:SYSTem:PRESet``, ``*RST``                        default setup
``:AUToscale``                                      displays the wired channels scaled to their
                                                    recorded range, ``POSition 0``, ``MAIN``, runs
``:DISPlay:DATA? [PNG|BMP|BMP8bit][,COLor|``        a screen picture (800 x 480, graticule and
``GRAYscale]``                                      the displayed channels' traces with their
                                                    scale, offset and inversion) in a ``#8`` block;
                                                    default BMP, COLor
=================================================  ==============================================

``*OPT?`` (IEEE 488.2 part from :mod:`bmssim.scpi`): the InfiniiVision X-Series programmer's
guides give the return format ``0,0,<license info>``, one comma-separated field per licence,
``0`` when the licence is not installed or the licence's name when it is. The simulated
DSOX3024T has no licence installed, so it answers ``0,0`` and a ``0`` per field of
:data:`LICENSE_FIELDS`. The field list follows our reading of the 3000T X-Series
Programmer's Guide; the page could not be retrieved while writing this, so the number of
fields is unverified (a driver that parses names rather than positions is unaffected).
``*TST?`` answers ``0`` (self-test passed).
"""

from __future__ import annotations

import bisect
import json
import math
import re
import struct
import zlib
from dataclasses import asdict, dataclass, field, fields

from bmssim.instruments import WorldInstrument, WorldLike, reset_in_place
from bmssim.scpi import (
    Args,
    Command,
    ScpiError,
    data_type_error,
    definite_block,
    format_bool,
    format_float,
    illegal_parameter,
)
from bmssim.state import ScopeState

MANUFACTURER = "KEYSIGHT TECHNOLOGIES"
MODEL = "DSOX3024T"
IDN = f"{MANUFACTURER},{MODEL},MY00000001,07.50.2021102830"
SIGNALS = {1: "current", 2: "discharge_fet", 3: "charge_fet"}
ANALOG_CHANNELS = 4
NO_MEASUREMENT = 9.9e37
TIMEBASE_MIN_S = 50e-9
TIMEBASE_MAX_S = 500.0
POINTS_MIN = 100
POINTS_MAX = 8_000_000
POINTS_RETURNED_MAX = 1_000_000
DEFAULT_POINTS = 1000
_FORMAT_CODES = {"BYTE": 0, "WORD": 1, "ASC": 4}
_SOURCE_RE = re.compile(r"^CHAN(?:NEL)?(\d+)$", re.IGNORECASE)
_EDGE_RE = re.compile(r"^([+-]?)(\d+)$")

#: Licence fields of the ``*OPT?`` answer after its leading ``0,0`` (see the docstring).
LICENSE_FIELDS = (
    "all", "reserved", "MSO", "memory", "low-speed serial", "automotive serial",
    "FlexRay serial", "power measurements", "RS-232/UART serial", "segmented memory",
    "mask test", "reserved", "audio serial", "educator's kit", "WaveGen",
    "MIL-STD 1553/ARINC 429", "DVM", "remote command logging", "advanced math", "bandwidth",
)  # fmt: skip
OPTIONS = ",".join(["0", "0", *("0" for _ in LICENSE_FIELDS)])

DIVISIONS_X = 10
DIVISIONS_Y = 8
SCALE_MIN_V = 1e-3  # per division, 1:1 probe
SCALE_MAX_V = 5.0
OFFSET_SMALL_V = 2.0  # offset range below 200 mV/div (1:1)
OFFSET_LARGE_V = 40.0
PROBE_MIN = 0.1
PROBE_MAX = 10000.0
LABEL_MAX = 10
REFERENCE_FRACTION = {"LEFT": 0.0, "CENT": 0.5, "RIGH": 1.0}
ACQUIRE_TYPE_CODES = {"NORM": 0, "PEAK": 1, "AVER": 2, "HRES": 3}
TRIGGER_MODES = (
    "EDGE", "GLITch", "PATTern", "TV", "DELay", "EBURst", "OR", "RUNT", "SHOLd",
    "TRANsition", "SBUS1", "SBUS2", "SBUS3", "SBUS4",
)  # fmt: skip
TRIGGER_OTHER_SOURCES = ("EXTernal", "LINE", "WGEN")
SETUP_VERSION = "bms-hil DSOX3024T setup 1"
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


def parse_source(text: str) -> int:
    """``CHAN1``/``CHANnel1`` -> 1; anything else is -224."""
    m = _SOURCE_RE.match(text.strip())
    if not m or not 1 <= int(m.group(1)) <= ANALOG_CHANNELS:
        raise illegal_parameter(text)
    return int(m.group(1))


def parse_edge(text: str) -> int:
    """``+1`` (first rising), ``-2`` (second falling), ``1`` (rising): signed occurrence."""
    m = _EDGE_RE.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 1000:
        raise illegal_parameter(text)
    n = int(m.group(2))
    return -n if m.group(1) == "-" else n


def format_edge(edge: int) -> str:
    return f"{edge:+d}"


def parse_string(text: str) -> str:
    """SCPI string program data: ``"abc"`` or ``'abc'``, a doubled quote stands for one."""
    text = text.strip()
    if len(text) < 2 or text[0] not in "\"'" or text[-1] != text[0]:
        raise data_type_error(f"string expected: {text}")
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def parse_block(text: str) -> bytes:
    """The data of a definite-length block ``#<n><length><data>``; -161 when malformed."""
    raw = text.strip().encode("latin-1")
    if len(raw) < 2 or raw[:1] != b"#" or not raw[1:2].isdigit() or raw[1:2] == b"0":
        raise ScpiError(-161, "Invalid block data", "definite-length block expected")
    digits = int(raw[1:2])
    count = raw[2 : 2 + digits]
    if len(count) != digits or not count.isdigit() or len(raw) != 2 + digits + int(count):
        raise ScpiError(-161, "Invalid block data", "block length does not match")
    return raw[2 + digits :]


def nice_scale(span: float) -> float:
    """The smallest 1-2-5 step at or above ``span``."""
    if span <= 0:
        return 1.0
    exponent = math.floor(math.log10(span))
    for mantissa in (1.0, 2.0, 5.0, 10.0):
        step = mantissa * 10.0**exponent
        if step >= span * (1 - 1e-9):
            return step
    return 10.0 ** (exponent + 1)


# --------------------------------------------------------------------------------------------
# Setup state the World does not need (ScopeState holds what the harness path uses)


@dataclass
class ChannelSetup:
    """One analog channel's vertical setup (values in the channel's units, probe-referred)."""

    scale: float = 5.0  # per division (8 divisions full scale): RANGe 40 with a 10:1 probe
    offset: float = 0.0
    probe: float = 10.0
    coupling: str = "DC"
    impedance: str = "ONEM"
    display: bool = False
    bwlimit: bool = False
    invert: bool = False
    vernier: bool = False
    label: str = ""
    units: str = "VOLT"
    skew_s: float = 0.0


def _default_channels() -> list[ChannelSetup]:
    channels = [ChannelSetup(label=str(n)) for n in range(1, ANALOG_CHANNELS + 1)]
    channels[0].display = True  # *RST: channel 1 on, the others off
    channels[0].units = "AMP"  # the bench's current probe on channel 1
    return channels


def _default_levels() -> dict[str, float]:
    return {**{f"CHAN{n}": 0.0 for n in range(1, ANALOG_CHANNELS + 1)}, "EXT": 0.0}


@dataclass
class ScopeSetup:
    """Everything ``:SYSTem:SETup?`` saves besides ``ScopeState`` (reset: ``ScopeSetup()``)."""

    timebase_mode: str = "MAIN"
    timebase_reference: str = "LEFT"
    timebase_position_s: float = 0.0
    timebase_vernier: bool = False
    acquire_type: str = "NORM"
    acquire_mode: str = "RTIM"
    acquire_count: int = 8
    trigger_mode: str = "EDGE"
    trigger_sweep: str = "AUTO"
    trigger_source: str = "CHAN1"
    trigger_slope: str = "POS"
    trigger_coupling: str = "DC"
    trigger_holdoff_s: float = 40e-9
    trigger_nreject: bool = False
    trigger_hfreject: bool = False
    trigger_levels: dict[str, float] = field(default_factory=_default_levels)
    channels: list[ChannelSetup] = field(default_factory=_default_channels)


# --------------------------------------------------------------------------------------------
# Screen pictures


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


# --------------------------------------------------------------------------------------------


class KeysightInfiniiVision(WorldInstrument):
    """InfiniiVision-dialect scope reading ``world.bench.trace`` into ``world.bench.scope``."""

    options = OPTIONS

    def __init__(self, world: WorldLike, idn: str = IDN) -> None:
        self.idn = idn
        self.waveform_points = DEFAULT_POINTS
        self.byte_order_msb = True
        self._ter_pending = False
        self.setup = ScopeSetup()
        super().__init__(world)

    @property
    def state(self) -> ScopeState:
        return self.world.bench.scope

    @property
    def now_ms(self) -> int:
        return self.world.clock.now_ms

    # Acquisition ---------------------------------------------------------------------------
    @property
    def range_ms(self) -> float:
        return self.state.timebase_range_s * 1000.0

    @property
    def pretrigger_ms(self) -> float:
        """Capture time before the trigger point: reference fraction x range - position."""
        fraction = REFERENCE_FRACTION[self.setup.timebase_reference]
        return fraction * self.range_ms - self.setup.timebase_position_s * 1000.0

    def window_ms(self) -> tuple[float, float, float]:
        """(start, end, time-zero) of the capture window, in virtual ms."""
        pre = self.pretrigger_ms
        if self.state.armed_ms is not None:
            zero = float(self.state.armed_ms)
            return zero - pre, zero - pre + self.range_ms, zero
        end = float(self.now_ms)
        start = end - self.range_ms
        return start, end, start + pre

    def _update_acquired(self) -> None:
        s = self.state
        if s.armed_ms is not None and not s.acquired:
            _start, end, _zero = self.window_ms()
            if self.now_ms >= end:
                s.acquired = True
                self._ter_pending = True

    def _arm(self, _: Args) -> None:
        s = self.state
        s.running = False
        s.armed_ms = self.now_ms
        s.acquired = False
        self._ter_pending = False
        self._update_acquired()  # a window that ends by now is complete at once

    def _digitize(self, args: Args) -> None:
        for i in range(len(args.params)):
            parse_source(args.raw(i))
        self._arm(args)

    def _run(self, _: Args) -> None:
        s = self.state
        s.running = True
        s.armed_ms = None
        s.acquired = False

    def _stop(self, _: Args) -> None:
        s = self.state
        if s.running:
            s.armed_ms = round(self.now_ms - self.range_ms + self.pretrigger_ms)
            s.acquired = True
        s.running = False

    def _ter(self, _: Args) -> str:
        self._update_acquired()
        done, self._ter_pending = self._ter_pending, False
        return "+1" if done else "+0"

    def _operation_condition(self, _: Args) -> str:
        self._update_acquired()
        s = self.state
        running = s.running or (s.armed_ms is not None and not s.acquired)
        return f"+{8 if running else 0}"

    # Edges ---------------------------------------------------------------------------------
    def _events(self, channel: int) -> tuple[list[int], list[float]]:
        """Times and values recorded for a channel's signal, in time order."""
        signal = SIGNALS.get(channel)
        times: list[int] = []
        values: list[float] = []
        if signal is None:
            return times, values
        for t, sig, v in self.world.bench.trace.events:
            if sig == signal:
                times.append(t)
                values.append(v)
        return times, values

    def edges(self, channel: int) -> list[tuple[int, int]]:
        """Edges of a channel inside the capture window: (t_ms, +1 rising / -1 falling)."""
        start, end, _zero = self.window_ms()
        end = min(end, float(self.now_ms))
        times, values = self._events(channel)
        first = bisect.bisect_left(times, math.ceil(start))
        previous = abs(values[first - 1]) if first > 0 else 0.0
        result: list[tuple[int, int]] = []
        i = first
        while i < len(times) and times[i] <= end:
            t = times[i]
            while i + 1 < len(times) and times[i + 1] == t:
                i += 1  # same-millisecond changes collapse into their net change
            current = abs(values[i])
            if current > previous:
                result.append((t, +1))
            elif current < previous:
                result.append((t, -1))
            previous = current
            i += 1
        return result

    def edge_time_ms(self, channel: int, edge: int) -> int | None:
        """Time of the ``|edge|``-th edge of the slope ``sign(edge)``; None if absent."""
        slope = 1 if edge > 0 else -1
        matching = [t for t, s in self.edges(channel) if s == slope]
        n = abs(edge)
        return matching[n - 1] if n <= len(matching) else None

    def _define(self, args: Args) -> None:
        args.keyword(0, ("DELay",))
        self.state.delay_edges = (parse_edge(args.raw(1)), parse_edge(args.raw(2)))

    def _define_query(self, args: Args) -> str:
        args.keyword(0, ("DELay",))
        first, second = self.state.delay_edges
        return f"{format_edge(first)},{format_edge(second)}"

    def _delay(self, args: Args) -> str:
        self._update_acquired()
        src1 = parse_source(args.raw(0)) if args.has(0) else 1
        src2 = parse_source(args.raw(1)) if args.has(1) else 2
        first, second = self.state.delay_edges
        t1 = self.edge_time_ms(src1, first)
        t2 = self.edge_time_ms(src2, second)
        if t1 is None or t2 is None:
            return format_float(NO_MEASUREMENT)
        return format_float((t2 - t1) / 1000.0)

    def _tedge(self, args: Args) -> str:
        self._update_acquired()
        edge = parse_edge(args.raw(0))
        source = parse_source(args.raw(1)) if args.has(1) else self.state.waveform_source
        t = self.edge_time_ms(source, edge)
        if t is None:
            return format_float(NO_MEASUREMENT)
        _start, _end, zero = self.window_ms()
        return format_float((t - zero) / 1000.0)

    # Waveform ------------------------------------------------------------------------------
    def _points(self) -> int:
        needed = math.ceil(self.range_ms - 1e-9)
        return max(1, min(POINTS_RETURNED_MAX, max(self.waveform_points, needed)))

    def channel_values(self, channel: int, n: int) -> list[float]:
        """``n`` samples of a channel across the capture window (as displayed: inverted when
        ``:CHANnel<n>:INVert`` is on); the present value beyond the present instant."""
        start, _end, _zero = self.window_ms()
        step_ms = self.range_ms / n
        times, values = self._events(channel)
        now = float(self.now_ms)
        sign = -1.0 if self.setup.channels[channel - 1].invert else 1.0
        idx = bisect.bisect_right(times, min(start, now))
        value = values[idx - 1] if idx > 0 else 0.0
        out: list[float] = []
        for k in range(n):
            t = min(start + k * step_ms, now)
            while idx < len(times) and times[idx] <= t:
                value = values[idx]
                idx += 1
            out.append(value * sign + 0.0)
        return out

    def samples(self) -> tuple[list[float], float, float]:
        """Sampled values of the waveform source, x increment (s) and x origin (s)."""
        start, _end, zero = self.window_ms()
        n = self._points()
        out = self.channel_values(self.state.waveform_source, n)
        return out, self.range_ms / n / 1000.0, (start - zero) / 1000.0

    def _scaling(self, values: list[float]) -> tuple[float, float, int]:
        """(yincrement, yorigin, yreference) for the current format."""
        fmt = self.state.waveform_format
        lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
        yref = 128 if fmt == "BYTE" else 32768
        span_codes = 250 if fmt == "BYTE" else 65000
        if hi > lo:
            return (hi - lo) / span_codes, (hi + lo) / 2.0, yref
        return max(abs(lo), 1.0) / 100.0, lo, yref

    def _waveform_count(self) -> int:
        return self.setup.acquire_count if self.setup.acquire_type == "AVER" else 1

    def preamble(self) -> list[str]:
        self._update_acquired()
        values, xinc, xorigin = self.samples()
        yinc, yorigin, yref = self._scaling(values)
        fmt = _FORMAT_CODES[self.state.waveform_format]
        return [
            f"{fmt:+d}",
            f"{ACQUIRE_TYPE_CODES[self.setup.acquire_type]:+d}",
            f"{len(values):+d}",
            f"{self._waveform_count():+d}",
            format_float(xinc),
            format_float(xorigin),
            "+0",  # xreference
            format_float(yinc),
            format_float(yorigin),
            f"{yref:+d}",
        ]

    def _data(self, _: Args) -> bytes:
        self._update_acquired()
        values, _xinc, _xorigin = self.samples()
        fmt = self.state.waveform_format
        if fmt == "ASC":
            return definite_block(",".join(f"{v:+.6E}" for v in values).encode("ascii"))
        yinc, yorigin, yref = self._scaling(values)
        top = 255 if fmt == "BYTE" else 65535
        codes = [max(0, min(top, round((v - yorigin) / yinc + yref))) for v in values]
        if fmt == "BYTE":
            return definite_block(bytes(codes))
        order = ">" if self.byte_order_msb else "<"
        return definite_block(struct.pack(f"{order}{len(codes)}H", *codes))

    def _preamble_field(self, index: int) -> Command:
        names = {4: "XINCrement", 5: "XORigin", 6: "XREFerence"}
        names |= {7: "YINCrement", 8: "YORigin", 9: "YREFerence"}
        return Command(f":WAVeform:{names[index]}?", lambda _: self.preamble()[index])

    def _set_points(self, args: Args) -> None:
        word = args.raw(0).upper()
        if word in ("MAX", "MAXIMUM"):
            self.waveform_points = POINTS_MAX
            return
        self.waveform_points = args.integer(0, POINTS_MIN, POINTS_MAX)

    # Channels ------------------------------------------------------------------------------
    def channel(self, args: Args) -> ChannelSetup:
        n = args.suffix(0, 1)
        if not 1 <= n <= ANALOG_CHANNELS:
            raise ScpiError(-114, "Header suffix out of range", f"channel {n}")
        return self.setup.channels[n - 1]

    @staticmethod
    def _clamp(value: float, low: float, high: float) -> float:
        return min(high, max(low, value))

    def _limit_scale(self, ch: ChannelSetup, scale: float) -> float:
        """Out-of-range values go to the nearest legal one, as on the real scope."""
        return self._clamp(scale, SCALE_MIN_V * ch.probe, SCALE_MAX_V * ch.probe)

    def _limit_offset(self, ch: ChannelSetup, offset: float) -> float:
        small = ch.scale / ch.probe < 0.2
        limit = (OFFSET_SMALL_V if small else OFFSET_LARGE_V) * ch.probe
        return self._clamp(offset, -limit, limit)

    def _set_scale(self, args: Args) -> None:
        ch = self.channel(args)
        ch.scale = self._limit_scale(ch, args.number(0, "V", low=0.0))
        ch.offset = self._limit_offset(ch, ch.offset)

    def _set_range(self, args: Args) -> None:
        ch = self.channel(args)
        ch.scale = self._limit_scale(ch, args.number(0, "V", low=0.0) / DIVISIONS_Y)
        ch.offset = self._limit_offset(ch, ch.offset)

    def _set_offset(self, args: Args) -> None:
        ch = self.channel(args)
        ch.offset = self._limit_offset(ch, args.number(0, "V"))

    def _set_probe(self, args: Args) -> None:
        ch = self.channel(args)
        probe = args.number(0, None, low=PROBE_MIN, high=PROBE_MAX)
        factor = probe / ch.probe
        ch.probe = probe
        ch.scale = self._limit_scale(ch, ch.scale * factor)  # the screen stays the same
        ch.offset = self._limit_offset(ch, ch.offset * factor)

    def _set_label(self, args: Args) -> None:
        self.channel(args).label = parse_string(args.raw(0)).upper()[:LABEL_MAX]

    def channel_setup(self, n: int) -> str:
        """``:CHANnel<n>?``: the channel's setup as the InfiniiVision scopes answer it."""
        ch = self.setup.channels[n - 1]
        label = ch.label.replace('"', '""')
        return (
            f":CHAN{n}:RANG {format_float(ch.scale * DIVISIONS_Y)};"
            f"OFFS {format_float(ch.offset)};COUP {ch.coupling};IMP {ch.impedance};"
            f"DISP {format_bool(ch.display)};BWL {format_bool(ch.bwlimit)};"
            f'INV {format_bool(ch.invert)};LAB "{label}";UNIT {ch.units};'
            f"PROB {format_float(ch.probe)};PROB:SKEW {format_float(ch.skew_s)};STYP SING"
        )

    def _channel_commands(self) -> list[Command]:
        chan = ":CHANnel#"

        def flag(attr: str) -> list[Command]:
            def setter(args: Args) -> None:
                setattr(self.channel(args), attr, args.boolean(0))

            node = {"display": "DISPlay", "bwlimit": "BWLimit", "invert": "INVert"}
            node["vernier"] = "VERNier"
            return [
                Command(f"{chan}:{node[attr]}", setter, params=(1, 1)),
                Command(
                    f"{chan}:{node[attr]}?",
                    lambda a: format_bool(getattr(self.channel(a), attr)),
                ),
            ]

        def choice(node: str, attr: str, options: tuple[str, ...]) -> list[Command]:
            def setter(args: Args) -> None:
                setattr(self.channel(args), attr, args.keyword(0, options))

            return [
                Command(f"{chan}:{node}", setter, params=(1, 1)),
                Command(f"{chan}:{node}?", lambda a: getattr(self.channel(a), attr)),
            ]

        def skew(args: Args) -> None:
            self.channel(args).skew_s = args.number(0, "S", low=-100e-9, high=100e-9)

        return [
            Command(f"{chan}?", lambda a: self.channel_setup(self._n(a))),
            Command(f"{chan}:SCALe", self._set_scale, params=(1, 1)),
            Command(f"{chan}:SCALe?", lambda a: format_float(self.channel(a).scale)),
            Command(f"{chan}:RANGe", self._set_range, params=(1, 1)),
            Command(f"{chan}:RANGe?", lambda a: format_float(self.channel(a).scale * DIVISIONS_Y)),
            Command(f"{chan}:OFFSet", self._set_offset, params=(1, 1)),
            Command(f"{chan}:OFFSet?", lambda a: format_float(self.channel(a).offset)),
            Command(f"{chan}:PROBe", self._set_probe, params=(1, 1)),
            Command(f"{chan}:PROBe?", lambda a: format_float(self.channel(a).probe)),
            Command(f"{chan}:PROBe:SKEW", skew, params=(1, 1)),
            Command(f"{chan}:PROBe:SKEW?", lambda a: format_float(self.channel(a).skew_s)),
            Command(f"{chan}:PROBe:STYPe?", self._probe_type),
            Command(f"{chan}:LABel", self._set_label, params=(1, 1)),
            Command(f"{chan}:LABel?", lambda a: f'"{self.channel(a).label}"'),
            *flag("display"),
            *flag("bwlimit"),
            *flag("invert"),
            *flag("vernier"),
            *choice("COUPling", "coupling", ("AC", "DC")),
            *choice("IMPedance", "impedance", ("ONEMeg", "FIFTy")),
            *choice("UNITs", "units", ("VOLT", "AMPere")),
        ]

    def _probe_type(self, args: Args) -> str:
        self.channel(args)  # validates the suffix
        return "SING"  # single-ended probes only

    def _n(self, args: Args) -> int:
        self.channel(args)  # validates the suffix
        return args.suffix(0, 1)

    # Timebase, acquisition, trigger ------------------------------------------------------------
    def timebase_setup(self) -> str:
        t = self.setup
        return (
            f":TIM:MODE {t.timebase_mode};REF {t.timebase_reference};"
            f"MAIN:RANG {format_float(self.state.timebase_range_s)};"
            f"POS {format_float(t.timebase_position_s)}"
        )

    def _set_position(self, args: Args) -> None:
        pos = args.number(0, "S")
        fraction = REFERENCE_FRACTION[self.setup.timebase_reference]
        low = (fraction - 1.0) * self.state.timebase_range_s  # at most a screen of pre-trigger
        self.setup.timebase_position_s = self._clamp(pos, low, TIMEBASE_MAX_S)

    def _trigger_source(self, text: str) -> str:
        word = text.strip().upper()
        if word.startswith("CHAN"):
            return f"CHAN{parse_source(word)}"
        return {"EXT": "EXT", "LINE": "LINE", "WGEN": "WGEN"}[
            self._keyword(word, TRIGGER_OTHER_SOURCES)
        ]

    @staticmethod
    def _keyword(text: str, options: tuple[str, ...]) -> str:
        return Args([text]).keyword(0, options)

    def _set_level(self, args: Args) -> None:
        source = self._trigger_source(args.raw(1)) if args.has(1) else self.setup.trigger_source
        if source in ("LINE", "WGEN"):
            raise ScpiError(-221, "Settings conflict", f"{source} has no level")
        self.setup.trigger_levels[source] = args.number(0, "V")

    def _get_level(self, args: Args) -> str:
        source = self._trigger_source(args.raw(0)) if args.has(0) else self.setup.trigger_source
        if source in ("LINE", "WGEN"):
            raise ScpiError(-221, "Settings conflict", f"{source} has no level")
        return format_float(self.setup.trigger_levels[source])

    def recorded_range(self, channel: int) -> tuple[float, float]:
        """(min, max) of everything recorded for a channel, 0 included."""
        _times, values = self._events(channel)
        return min([0.0, *values]), max([0.0, *values])

    def _level_autosetup(self, _: Args) -> None:
        source = self.setup.trigger_source
        if source.startswith("CHAN"):
            lo, hi = self.recorded_range(int(source[4:]))
            self.setup.trigger_levels[source] = (lo + hi) / 2.0

    def _setting(self, node: str, attr: str, options: tuple[str, ...]) -> list[Command]:
        def setter(args: Args) -> None:
            setattr(self.setup, attr, args.keyword(0, options))

        return [
            Command(node, setter, params=(1, 1)),
            Command(node + "?", lambda _: getattr(self.setup, attr)),
        ]

    def _boolean(self, node: str, attr: str) -> list[Command]:
        def setter(args: Args) -> None:
            setattr(self.setup, attr, args.boolean(0))

        return [
            Command(node, setter, params=(1, 1)),
            Command(node + "?", lambda _: format_bool(getattr(self.setup, attr))),
        ]

    def _set_count(self, args: Args) -> None:
        self.setup.acquire_count = args.integer(0, 2, 65536)

    def _set_holdoff(self, args: Args) -> None:
        self.setup.trigger_holdoff_s = args.number(
            0, "S", low=40e-9, high=10.0, minimum=40e-9, maximum=10.0
        )

    def _sample_rate(self, _: Args) -> str:
        return format_float(self._points() / self.state.timebase_range_s)

    def _autoscale(self, _: Args) -> None:
        """Show every wired channel scaled to its recorded range; channel 4 off."""
        for n, ch in enumerate(self.setup.channels, start=1):
            if n not in SIGNALS:
                ch.display = False
                continue
            lo, hi = self.recorded_range(n)
            ch.display = True
            ch.invert = False
            if hi - lo > 1e-9:  # a flat signal keeps its scale and is centred
                ch.scale = self._limit_scale(ch, nice_scale((hi - lo) / 6.0))
            ch.offset = self._limit_offset(ch, (hi + lo) / 2.0)
        self.setup.timebase_mode = "MAIN"
        self.setup.timebase_position_s = 0.0
        self._run(Args([]))

    # Setup save / restore -------------------------------------------------------------------
    _STATE_FIELDS = ("timebase_range_s", "delay_edges", "waveform_source", "waveform_format")
    _STATE_FIELDS += ("waveform_points_mode",)

    def setup_data(self) -> bytes:
        """The setup ``:SYSTem:SETup?`` returns (inside its block): a JSON text."""
        data = {
            "version": SETUP_VERSION,
            "setup": asdict(self.setup),
            "state": {name: getattr(self.state, name) for name in self._STATE_FIELDS},
            "waveform": {"points": self.waveform_points, "msb_first": self.byte_order_msb},
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("ascii")

    def _restore_setup(self, args: Args) -> None:
        raw = parse_block(args.raw(0))
        try:
            data = json.loads(raw)
            if data["version"] != SETUP_VERSION:
                raise ValueError("not a setup of this scope")
            setup = self._decode_setup(data["setup"])
            state = data["state"]
            if set(state) != set(self._STATE_FIELDS):
                raise ValueError("state fields")
            range_s = float(state["timebase_range_s"])
            if not TIMEBASE_MIN_S <= range_s <= TIMEBASE_MAX_S:
                raise ValueError("timebase range")
            first, second = (int(e) for e in state["delay_edges"])
            source = int(state["waveform_source"])
            if not 1 <= source <= ANALOG_CHANNELS or not first or not second:
                raise ValueError("waveform source or delay edges")
            fmt, points_mode = str(state["waveform_format"]), str(state["waveform_points_mode"])
            if fmt not in _FORMAT_CODES or points_mode not in ("NORM", "MAX", "RAW"):
                raise ValueError("waveform format")
            points = int(data["waveform"]["points"])
            if not POINTS_MIN <= points <= POINTS_MAX:
                raise ValueError("waveform points")
            msb_first = bool(data["waveform"]["msb_first"])
        except (ValueError, KeyError, TypeError) as exc:
            raise illegal_parameter(f"setup block: {exc}") from None
        # Valid as a whole: apply (nothing above changed any state).
        self.setup = setup
        s = self.state
        s.timebase_range_s, s.delay_edges = range_s, (first, second)
        s.waveform_source, s.waveform_format, s.waveform_points_mode = source, fmt, points_mode
        self.waveform_points, self.byte_order_msb = points, msb_first

    @staticmethod
    def _decode_setup(raw: object) -> ScopeSetup:
        """A ScopeSetup from its asdict() form; ValueError/KeyError/TypeError if it is not."""
        if not isinstance(raw, dict):
            raise TypeError("setup is not an object")
        default = ScopeSetup()
        values: dict[str, object] = {}
        for f in fields(ScopeSetup):
            if f.name == "channels":
                chans = raw[f.name]
                if not isinstance(chans, list) or len(chans) != ANALOG_CHANNELS:
                    raise ValueError("channels")
                values[f.name] = [
                    ChannelSetup(**{c.name: type(getattr(ChannelSetup(), c.name))(ch[c.name])
                                    for c in fields(ChannelSetup)})
                    for ch in chans
                ]  # fmt: skip
            elif f.name == "trigger_levels":
                levels = {str(k): float(v) for k, v in dict(raw[f.name]).items()}
                if set(levels) != set(default.trigger_levels):
                    raise ValueError("trigger levels")
                values[f.name] = levels
            else:
                values[f.name] = type(getattr(default, f.name))(raw[f.name])
        setup = ScopeSetup(**values)  # type: ignore[arg-type]
        if setup.timebase_reference not in REFERENCE_FRACTION:
            raise ValueError("timebase reference")
        if setup.acquire_type not in ACQUIRE_TYPE_CODES:
            raise ValueError("acquisition type")
        return setup

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

    # Table ---------------------------------------------------------------------------------
    def commands(self) -> list[Command]:
        s = self.state_proxy
        trig = ":TRIGger[:EDGE]"
        return [
            Command(":SINGle", self._arm),
            Command(":DIGitize", self._digitize, params=(0, ANALOG_CHANNELS)),
            Command(":RUN", self._run),
            Command(":STOP", self._stop),
            Command(":TER?", self._ter),
            Command(":OPERegister:CONDition?", self._operation_condition),
            Command(":AUToscale", self._autoscale, params=(0, ANALOG_CHANNELS)),
            Command(":TIMebase?", lambda _: self.timebase_setup()),
            Command(
                ":TIMebase:RANGe",
                lambda a: s("timebase_range_s", self._timebase(a, 1.0)),
                params=(1, 1),
            ),
            Command(":TIMebase:RANGe?", lambda _: format_float(self.state.timebase_range_s)),
            Command(
                ":TIMebase:SCALe",
                lambda a: s("timebase_range_s", self._timebase(a, 10.0)),
                params=(1, 1),
            ),
            Command(":TIMebase:SCALe?", lambda _: format_float(self.state.timebase_range_s / 10.0)),
            *self._setting(":TIMebase:MODE", "timebase_mode", ("MAIN", "WINDow", "XY", "ROLL")),
            *self._setting(
                ":TIMebase:REFerence", "timebase_reference", ("LEFT", "CENTer", "RIGHt")
            ),
            Command(":TIMebase:POSition", self._set_position, params=(1, 1)),
            Command(":TIMebase:POSition?", lambda _: format_float(self.setup.timebase_position_s)),
            *self._boolean(":TIMebase:VERNier", "timebase_vernier"),
            *self._channel_commands(),
            *self._setting(
                ":ACQuire:TYPE", "acquire_type", ("NORMal", "AVERage", "HRESolution", "PEAK")
            ),
            *self._setting(":ACQuire:MODE", "acquire_mode", ("RTIMe", "SEGMented")),
            Command(":ACQuire:COUNt", self._set_count, params=(1, 1)),
            Command(":ACQuire:COUNt?", lambda _: f"{self.setup.acquire_count:+d}"),
            Command(":ACQuire:SRATe?", self._sample_rate),
            Command(":ACQuire:POINts?", lambda _: f"{self._points():+d}"),
            *self._setting(":TRIGger:MODE", "trigger_mode", TRIGGER_MODES),
            *self._setting(":TRIGger:SWEep", "trigger_sweep", ("AUTO", "NORMal")),
            Command(
                trig + ":SOURce",
                lambda a: setattr(self.setup, "trigger_source", self._trigger_source(a.raw(0))),
                params=(1, 1),
            ),
            Command(trig + ":SOURce?", lambda _: self.setup.trigger_source),
            Command(trig + ":LEVel", self._set_level, params=(1, 2)),
            Command(trig + ":LEVel?", self._get_level, params=(0, 1)),
            Command(":TRIGger:LEVel:ASETup", self._level_autosetup),
            *self._setting(
                trig + ":SLOPe", "trigger_slope", ("POSitive", "NEGative", "EITHer", "ALTernate")
            ),
            *self._setting(trig + ":COUPling", "trigger_coupling", ("AC", "DC", "LFReject")),
            Command(":TRIGger:HOLDoff", self._set_holdoff, params=(1, 1)),
            Command(":TRIGger:HOLDoff?", lambda _: format_float(self.setup.trigger_holdoff_s)),
            *self._boolean(":TRIGger:NREJect", "trigger_nreject"),
            *self._boolean(":TRIGger:HFReject", "trigger_hfreject"),
            Command(":TRIGger:FORCe", lambda _: None),
            Command(":MEASure:DEFine", self._define, params=(3, 3)),
            Command(":MEASure:DEFine?", self._define_query, params=(1, 1)),
            Command(":MEASure:DELay?", self._delay, params=(0, 2)),
            Command(":MEASure:TEDGe?", self._tedge, params=(1, 2)),
            Command(
                ":WAVeform:SOURce",
                lambda a: s("waveform_source", parse_source(a.raw(0))),
                params=(1, 1),
            ),
            Command(":WAVeform:SOURce?", lambda _: f"CHAN{self.state.waveform_source}"),
            Command(
                ":WAVeform:FORMat",
                lambda a: s("waveform_format", a.keyword(0, ("BYTE", "WORD", "ASCii"))),
                params=(1, 1),
            ),
            Command(":WAVeform:FORMat?", lambda _: self.state.waveform_format),
            Command(
                ":WAVeform:POINts:MODE",
                lambda a: s("waveform_points_mode", a.keyword(0, ("NORMal", "MAXimum", "RAW"))),
                params=(1, 1),
            ),
            Command(":WAVeform:POINts:MODE?", lambda _: self.state.waveform_points_mode),
            Command(":WAVeform:POINts", self._set_points, params=(1, 1)),
            Command(":WAVeform:POINts?", lambda _: f"{self._points():+d}"),
            Command(
                ":WAVeform:BYTeorder",
                lambda a: setattr(
                    self, "byte_order_msb", a.keyword(0, ("MSBFirst", "LSBFirst")) == "MSBF"
                ),
                params=(1, 1),
            ),
            Command(":WAVeform:BYTeorder?", lambda _: "MSBF" if self.byte_order_msb else "LSBF"),
            Command(":WAVeform:PREamble?", lambda _: ",".join(self.preamble())),
            Command(":WAVeform:DATA?", self._data),
            Command(":WAVeform:TYPE?", lambda _: self.setup.acquire_type),
            Command(":WAVeform:COUNt?", lambda _: f"{self._waveform_count():+d}"),
            *(self._preamble_field(i) for i in range(4, 10)),
            Command(":SYSTem:SETup?", lambda _: definite_block(self.setup_data())),
            Command(":SYSTem:SETup", self._restore_setup, params=(1, 1)),
            Command("*LRN?", lambda _: b":SYST:SET " + definite_block(self.setup_data())),
            Command(":SYSTem:PRESet", lambda _: self.reset()),
            Command(":DISPlay:DATA?", self._display_data, params=(0, 2)),
        ]

    def state_proxy(self, name: str, value: object) -> None:
        """Assign one ScopeState field (lets the table's one-line handlers stay lambdas)."""
        setattr(self.state, name, value)

    def _timebase(self, args: Args, factor: float) -> float:
        low, high = TIMEBASE_MIN_S / factor, TIMEBASE_MAX_S / factor
        return args.number(0, "S", low=low, high=high, minimum=low, maximum=high) * factor

    def reset(self) -> None:
        reset_in_place(self.state)
        self.setup = ScopeSetup()
        self.waveform_points = DEFAULT_POINTS
        self.byte_order_msb = True
        self._ter_pending = False
