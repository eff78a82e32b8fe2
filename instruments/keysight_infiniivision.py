"""Keysight InfiniiVision 2000X/3000X scope: ``Scope`` over SCPI.

Edge timing uses the scope's own measurements (``:MEAS:DEF DEL`` + ``:MEAS:DEL?``,
``:MEAS:TEDG?``), which answer 9.9E+37 when an edge is not in the capture; that becomes
None so a missing trip reads as "no edge", never as a 1e37 s delay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from instruments.scope import Edge, Scope
from instruments.scpi_instrument import NOT_A_MEASUREMENT, ScpiInstrument, format_number


class KeysightInfiniiVision(ScpiInstrument, Scope):
    """Sources are logical names mapped to analog channels by the bench's ``channels.scope``."""

    ENVELOPE: ClassVar[str] = "scope"
    TIMEBASE = ":TIM:RANG {}"
    SINGLE = ":SING"
    RUN = ":RUN"
    DELAY_EDGES = ":MEAS:DEF DEL,{},{}"
    DELAY = ":MEAS:DEL? {},{}"
    EDGE_TIME = ":MEAS:TEDG? {},{}"
    WAVEFORM_SOURCE = ":WAV:SOUR {}"
    WAVEFORM_FORMAT = ":WAV:FORM BYTE"
    WAVEFORM_POINTS = ":WAV:POIN:MODE RAW"
    PREAMBLE = ":WAV:PRE?"
    DATA = ":WAV:DATA?"
    SLOPES: ClassVar[dict[str, str]] = {"rise": "+", "fall": "-"}

    def __init__(self, resource: Any, *, channel_map: Mapping[str, int], **kwargs: Any) -> None:
        self.channel_map = dict(channel_map)
        super().__init__(resource, **kwargs)

    def _source(self, name: str) -> str:
        try:
            return f"CHAN{self.channel_map[name]}"
        except KeyError:
            raise KeyError(
                f"{self.name}: no scope channel {name!r}; the bench maps {sorted(self.channel_map)}"
            ) from None

    def _edge(self, edge: Edge, occurrence: int = 1) -> str:
        if edge not in self.SLOPES:
            raise ValueError(f"edge {edge!r} is not 'rise' or 'fall'")
        return f"{self.SLOPES[edge]}{occurrence}"

    def arm_single(self, timebase_s: float) -> None:
        self.within("timebase range", timebase_s, "s", low=0.0)
        self.send(self.TIMEBASE.format(format_number(timebase_s)))
        self.send(self.SINGLE)

    def delay_between_edges_s(self, src1: str, edge1: Edge, src2: str, edge2: Edge) -> float | None:
        self.send(self.DELAY_EDGES.format(self._edge(edge1), self._edge(edge2)))
        value = self.ask_float(self.DELAY.format(self._source(src1), self._source(src2)))
        return None if abs(value) >= NOT_A_MEASUREMENT else value

    def edge_time_s(self, src: str, edge: Edge, occurrence: int = 1) -> float | None:
        value = self.ask_float(
            self.EDGE_TIME.format(self._edge(edge, occurrence), self._source(src))
        )
        return None if abs(value) >= NOT_A_MEASUREMENT else value

    def waveform(self, channel: str) -> tuple[list[float], list[float]]:
        self.send(self.WAVEFORM_SOURCE.format(self._source(channel)))
        self.send(self.WAVEFORM_FORMAT)
        self.send(self.WAVEFORM_POINTS)
        preamble = [float(x) for x in self.ask(self.PREAMBLE).split(",")]
        if len(preamble) < 10:
            raise ValueError(f"{self.name}: waveform preamble has {len(preamble)} fields, not 10")
        x_inc, x_origin, x_ref = preamble[4:7]
        y_inc, y_origin, y_ref = preamble[7:10]
        codes = self.ask_block(self.DATA)
        times = [(i - x_ref) * x_inc + x_origin for i in range(len(codes))]
        values = [(code - y_ref) * y_inc + y_origin for code in codes]
        return times, values

    def safe_state(self) -> None:
        self.send(self.RUN)
