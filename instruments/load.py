"""``Load``: the electronic load on P+/P-, as procedures see it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

TransientMode = Literal["continuous", "pulse", "toggle"]


class Load(ABC):
    """A constant-current electronic load with a triggered A/B transient (for the 30 ms trip).

    Currents are positive magnitudes of discharge current (the load sinks).
    """

    @abstractmethod
    def set_current_a(self, amps: float) -> None:
        """Constant-current setpoint."""

    @abstractmethod
    def input(self, on: bool) -> None:
        """Switch the input on (sinking) or off."""

    @abstractmethod
    def configure_transient(
        self, a_a: float, b_a: float, a_width_s: float, b_width_s: float, mode: TransientMode
    ) -> None:
        """Prepare a transient between levels A and B, started by ``trigger()``."""

    @abstractmethod
    def transient(self, on: bool) -> None:
        """Enable or disable transient operation."""

    @abstractmethod
    def trigger(self) -> None:
        """Send a bus trigger: the transient starts now."""

    @abstractmethod
    def measure_current_a(self) -> float:
        """Measured sink current."""

    @abstractmethod
    def measure_voltage_v(self) -> float:
        """Measured voltage at the load terminals."""

    @abstractmethod
    def safe_state(self) -> None:
        """Transient off, input off: the load sinks nothing."""
