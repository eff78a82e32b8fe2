"""``Resistors``: the programmable resistors that stand in for the BMS's NTC sensors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext

from instruments.ntc import BetaNtc, NtcModel

NOMINAL_TEMPERATURE_C = 25.0


class Resistors(ABC):
    """One channel per NTC input, addressed by the logical names of the bench's ``ntc`` map
    (``cell1``..``cell4``, ``ambient``, ``power``).

    Temperatures go through the sensor model (``ntc``), so a test speaks °C and the bench
    file decides what resistance that means.
    """

    ntc: NtcModel = BetaNtc()

    @property
    @abstractmethod
    def channels(self) -> list[str]:
        """Logical channel names, in the bench file's order."""

    @abstractmethod
    def set_ohm(self, channel: str, ohm: float) -> None:
        """Set a channel's resistance (and leave OPEN/SHORT)."""

    def set_temperature_c(self, channel: str, celsius: float) -> None:
        """Set the resistance the NTC would have at ``celsius``."""
        self.set_ohm(channel, self.ntc.ohm_at(celsius))

    @abstractmethod
    def read_ohm(self, channel: str) -> float:
        """The channel's resistance setpoint as the module reports it."""

    @abstractmethod
    def open(self, channel: str) -> None:
        """Open circuit: the BMS sees a broken sensor."""

    @abstractmethod
    def short(self, channel: str) -> None:
        """Short circuit: the BMS sees a shorted sensor."""

    @abstractmethod
    def normal(self, channel: str) -> None:
        """Back to the programmed resistance after open() or short()."""

    def batch(self) -> AbstractContextManager[None]:
        """Several settings, their errors checked once at the end (a driver that can says
        how; otherwise each setting is checked as it is sent)."""
        return nullcontext()

    def safe_state(self) -> None:
        """Every channel normal at 25 °C; each channel attempted even if one fails."""
        errors: list[Exception] = []
        for name in self.channels:
            try:
                self.normal(name)
                self.set_temperature_c(name, NOMINAL_TEMPERATURE_C)
            except Exception as exc:  # noqa: BLE001 - collect, then report them all
                errors.append(exc)
        if errors:
            raise errors[0]
