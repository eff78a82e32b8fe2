"""``Supply``: the charger on P+/P-, as procedures see it."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Supply(ABC):
    """A current-limited DC supply that makes the BMS see a charger.

    Setpoints outside the bench envelope raise ``EnvelopeError`` before anything is sent.
    """

    @abstractmethod
    def set_voltage_v(self, volts: float) -> None:
        """Set the output voltage setpoint (the port voltage the BMS sees with output on)."""

    @abstractmethod
    def set_current_limit_a(self, amps: float) -> None:
        """Set the current limit (the charge current in CC mode)."""

    @abstractmethod
    def output(self, on: bool) -> None:
        """Switch the output on or off (off: no charger present)."""

    @abstractmethod
    def measure_voltage_v(self) -> float:
        """Measured output voltage."""

    @abstractmethod
    def measure_current_a(self) -> float:
        """Measured output current (what flows into the pack)."""

    @abstractmethod
    def safe_state(self) -> None:
        """Output off: after this the supply delivers no energy."""
