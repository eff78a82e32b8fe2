"""The InfiniiVision simulator's captured signals: edges found in the bench trace, the
``:MEASure`` delays between them, and the waveform with its preamble (``:WAVeform``)."""

from __future__ import annotations

import bisect
import math
import struct

from bmssim.instruments.infiniivision_setup import (
    _FORMAT_CODES,
    ACQUIRE_TYPE_CODES,
    NO_MEASUREMENT,
    POINTS_MAX,
    POINTS_MIN,
    POINTS_RETURNED_MAX,
    SIGNALS,
    format_edge,
    parse_edge,
    parse_source,
)
from bmssim.scpi import Args, Command, definite_block, format_float


class ScopeWaveform:
    """Edges, measurements and waveform transfer of :class:`KeysightInfiniiVision`."""

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
