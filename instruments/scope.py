"""``Scope``: timing of fast events (the transient trip) that polling cannot resolve."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

Edge = Literal["rise", "fall"]


class Scope(ABC):
    """A triggered digitizer; sources are the logical names of the bench's scope channel map
    (``current``, ``discharge_fet``, ``charge_fet``)."""

    @abstractmethod
    def arm_single(self, timebase_s: float) -> None:
        """Set the capture window and arm one acquisition."""

    @abstractmethod
    def delay_between_edges_s(self, src1: str, edge1: Edge, src2: str, edge2: Edge) -> float | None:
        """Time from the first ``edge1`` on ``src1`` to the first ``edge2`` on ``src2``;
        None when either edge is missing from the capture."""

    @abstractmethod
    def edge_time_s(self, src: str, edge: Edge, occurrence: int = 1) -> float | None:
        """Time of an edge relative to the trigger; None when it is not in the capture."""

    @abstractmethod
    def waveform(self, channel: str) -> tuple[list[float], list[float]]:
        """The captured waveform of one source: (times in s, values in the probe's unit)."""

    @abstractmethod
    def safe_state(self) -> None:
        """Leave the scope running free; it sources nothing, so this only tidies up."""
