"""ITECH IT8500+ electronic load (BK Precision 8600 speaks the same set): ``Load`` over SCPI.

Transient widths are in seconds in the IT8500+ programming guide. Bounded by
``envelope.load``; the transient levels are setpoints too and are checked the same way.
"""

from __future__ import annotations

from typing import ClassVar

from instruments.load import Load, TransientMode
from instruments.scpi_instrument import ScpiInstrument, format_number


class ItechIt8500(ScpiInstrument, Load):
    """IT8500+ load in constant-current mode, transients started by a bus trigger."""

    ENVELOPE: ClassVar[str] = "load"
    # Remote mode first (the front panel otherwise keeps control), then CC mode, bus trigger.
    CONFIGURE: ClassVar[tuple[str, ...]] = ("SYST:REM", "FUNC CURR", "TRIG:SOUR BUS")
    SET_CURRENT = "CURR {}"
    INPUT = "INP {}"
    TRANSIENT_MODE = "CURR:TRAN:MODE {}"
    TRANSIENT_A = "CURR:TRAN:ALEV {}"
    TRANSIENT_B = "CURR:TRAN:BLEV {}"
    TRANSIENT_A_WIDTH = "CURR:TRAN:AWID {}"
    TRANSIENT_B_WIDTH = "CURR:TRAN:BWID {}"
    TRANSIENT = "TRAN {}"
    TRIGGER = "*TRG"
    MEASURE_VOLTAGE = "MEAS:VOLT?"
    MEASURE_CURRENT = "MEAS:CURR?"
    MODES: ClassVar[dict[str, str]] = {"continuous": "CONT", "pulse": "PULS", "toggle": "TOGG"}

    def _current(self, what: str, amps: float) -> str:
        return format_number(self.within(what, amps, "A", low=0.0, high_key="max_current_a"))

    def set_current_a(self, amps: float) -> None:
        self.send(self.SET_CURRENT.format(self._current("current setpoint", amps)))

    def input(self, on: bool) -> None:
        self.send(self.INPUT.format("ON" if on else "OFF"))

    def configure_transient(
        self, a_a: float, b_a: float, a_width_s: float, b_width_s: float, mode: TransientMode
    ) -> None:
        if mode not in self.MODES:
            raise ValueError(f"transient mode {mode!r} is not one of {sorted(self.MODES)}")
        # Every value is checked before the first line goes out: half a transient is worse
        # than none.
        level_a = self._current("transient level A", a_a)
        level_b = self._current("transient level B", b_a)
        width_a = format_number(self.within("transient width A", a_width_s, "s", low=0.0))
        width_b = format_number(self.within("transient width B", b_width_s, "s", low=0.0))
        self.send(self.TRANSIENT_MODE.format(self.MODES[mode]))
        self.send(self.TRANSIENT_A.format(level_a))
        self.send(self.TRANSIENT_B.format(level_b))
        self.send(self.TRANSIENT_A_WIDTH.format(width_a))
        self.send(self.TRANSIENT_B_WIDTH.format(width_b))

    def transient(self, on: bool) -> None:
        self.send(self.TRANSIENT.format("ON" if on else "OFF"))

    def trigger(self) -> None:
        self.send(self.TRIGGER)

    def measure_current_a(self) -> float:
        return self.ask_float(self.MEASURE_CURRENT)

    def measure_voltage_v(self) -> float:
        return self.ask_float(self.MEASURE_VOLTAGE)

    def safe_state(self) -> None:
        errors: list[Exception] = []
        for step in (lambda: self.transient(False), lambda: self.input(False)):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - the input must go off even if TRAN fails
                errors.append(exc)
        if errors:
            raise errors[0]
