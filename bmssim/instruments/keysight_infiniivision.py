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
  ``[armed, armed + :TIMebase:RANGe]``. Edges exactly at the arm instant count (the harness
  arms and then triggers the load at the same virtual instant). The acquisition completes
  when the clock reaches the end of the window (``:OPERegister:CONDition?`` bit 3 "Run"
  clears, ``:TER?`` answers ``+1`` once).
* ``:RUN``: the window is the last ``RANGe`` up to now, time 0 at its start. ``:STOP``
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
"""

from __future__ import annotations

import bisect
import math
import re
import struct

from bmssim.instruments import WorldInstrument, WorldLike, reset_in_place
from bmssim.scpi import (
    Args,
    Command,
    definite_block,
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


class KeysightInfiniiVision(WorldInstrument):
    """InfiniiVision-dialect scope reading ``world.bench.trace`` into ``world.bench.scope``."""

    def __init__(self, world: WorldLike, idn: str = IDN) -> None:
        self.idn = idn
        self.waveform_points = DEFAULT_POINTS
        self.byte_order_msb = True
        self._ter_pending = False
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

    def window_ms(self) -> tuple[float, float, float]:
        """(start, end, time-zero) of the capture window, in virtual ms."""
        if self.state.armed_ms is not None:
            start = float(self.state.armed_ms)
            return start, start + self.range_ms, start
        end = float(self.now_ms)
        start = end - self.range_ms
        return start, end, start

    def _update_acquired(self) -> None:
        s = self.state
        if s.armed_ms is not None and not s.acquired and self.now_ms >= s.armed_ms + self.range_ms:
            s.acquired = True
            self._ter_pending = True

    def _arm(self, _: Args) -> None:
        s = self.state
        s.running = False
        s.armed_ms = self.now_ms
        s.acquired = False
        self._ter_pending = False
        self._update_acquired()  # a zero-length window is complete at once

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
            s.armed_ms = int(self.now_ms - self.range_ms)
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

    def samples(self) -> tuple[list[float], float, float]:
        """Sampled values of the waveform source, x increment (s) and x origin (s)."""
        start, _end, zero = self.window_ms()
        n = self._points()
        step_ms = self.range_ms / n
        times, values = self._events(self.state.waveform_source)
        now = float(self.now_ms)
        out: list[float] = []
        idx = 0
        value = 0.0
        for k in range(n):
            t = min(start + k * step_ms, now)
            while idx < len(times) and times[idx] <= t:
                value = values[idx]
                idx += 1
            out.append(value)
        return out, step_ms / 1000.0, (start - zero) / 1000.0

    def _scaling(self, values: list[float]) -> tuple[float, float, int]:
        """(yincrement, yorigin, yreference) for the current format."""
        fmt = self.state.waveform_format
        lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
        yref = 128 if fmt == "BYTE" else 32768
        span_codes = 250 if fmt == "BYTE" else 65000
        if hi > lo:
            return (hi - lo) / span_codes, (hi + lo) / 2.0, yref
        return max(abs(lo), 1.0) / 100.0, lo, yref

    def preamble(self) -> list[str]:
        self._update_acquired()
        values, xinc, xorigin = self.samples()
        yinc, yorigin, yref = self._scaling(values)
        fmt = _FORMAT_CODES[self.state.waveform_format]
        return [
            f"{fmt:+d}",
            "+0",  # type NORMal
            f"{len(values):+d}",
            "+1",  # count
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

    def commands(self) -> list[Command]:
        s = self.state_proxy
        return [
            Command(":SINGle", self._arm),
            Command(":DIGitize", self._digitize, params=(0, ANALOG_CHANNELS)),
            Command(":RUN", self._run),
            Command(":STOP", self._stop),
            Command(":TER?", self._ter),
            Command(":OPERegister:CONDition?", self._operation_condition),
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
            *(self._preamble_field(i) for i in range(4, 10)),
        ]

    def state_proxy(self, name: str, value: object) -> None:
        """Assign one ScopeState field (lets the table's one-line handlers stay lambdas)."""
        setattr(self.state, name, value)

    def _timebase(self, args: Args, factor: float) -> float:
        low, high = TIMEBASE_MIN_S / factor, TIMEBASE_MAX_S / factor
        return args.number(0, "S", low=low, high=high, minimum=low, maximum=high) * factor

    def reset(self) -> None:
        reset_in_place(self.state)
        self.waveform_points = DEFAULT_POINTS
        self.byte_order_msb = True
        self._ter_pending = False
