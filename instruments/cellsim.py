"""``CellSimulator``: the 16 cell voltages the BMS senses, as procedures see them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from enum import StrEnum

NOMINAL_CELL_V = 3.300
CELL_COUNT = 16


class CellFault(StrEnum):
    """Sense-lead faults a cell channel can emulate."""

    NONE = "NONE"
    OPEN = "OPEN"
    SHORT = "SHORT"


class CellSimulator(ABC):
    """Sixteen cell channels numbered 1..16 in pack order (cell 1 at the pack's negative end).

    How the cells map onto physical units is the bench file's business, not the caller's.
    """

    @abstractmethod
    def set_cell_v(self, cell: int, volts: float) -> None:
        """Set one cell (1..16)."""

    @abstractmethod
    def set_all_v(self, volts: float | Sequence[float]) -> None:
        """Set every cell to one value, or to 16 values in cell order."""

    @abstractmethod
    def read_cell_v(self, cell: int) -> float:
        """Measured voltage of one cell (1..16)."""

    @abstractmethod
    def enable(self, on: bool = True) -> None:
        """Enable or disable every channel's output."""

    @abstractmethod
    def fault(self, cell: int, kind: CellFault | str) -> None:
        """Apply a sense-lead fault (OPEN, SHORT) to one cell, or clear it (NONE)."""

    @abstractmethod
    def safe_state(self) -> None:
        """Faults cleared, outputs on, every cell at the nominal 3.300 V."""
