"""Keysight N5700 series DC supply (e.g. N5767A) as the charger: ``Supply`` over SCPI.

Commands from the N5700 programming guide (INSTRUMENTS.md); bounded by ``envelope.supply``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from instruments.scpi_instrument import ScpiInstrument, format_number
from instruments.supply import Supply


class KeysightN5700(ScpiInstrument, Supply):
    """N5700 supply. Voltage and current limit are checked against the bench envelope."""

    ENVELOPE: ClassVar[str] = "supply"
    SET_VOLTAGE = "VOLT {}"
    SET_CURRENT = "CURR {}"
    OUTPUT = "OUTP {}"
    MEASURE_VOLTAGE = "MEAS:VOLT?"
    MEASURE_CURRENT = "MEAS:CURR?"
    SET_OVP = "VOLT:PROT:LEV {}"
    #: The manual requires the over-voltage protection at least 1.05 x the setpoint.
    OVP_RATIO: ClassVar[float] = 1.05

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The supply's own over-voltage protection sits just above the bench envelope, so
        # every setpoint the envelope admits is accepted, and nothing above it can appear at
        # the BMS's port even if the harness misbehaves.
        top = self.envelope.get("max_voltage_v")
        if top is not None:
            self.send(self.SET_OVP.format(format_number(round(top * self.OVP_RATIO, 3))))

    def set_voltage_v(self, volts: float) -> None:
        self.within("voltage setpoint", volts, "V", low=0.0, high_key="max_voltage_v")
        self.send(self.SET_VOLTAGE.format(format_number(volts)))

    def set_current_limit_a(self, amps: float) -> None:
        self.within("current limit", amps, "A", low=0.0, high_key="max_current_a")
        self.send(self.SET_CURRENT.format(format_number(amps)))

    def output(self, on: bool) -> None:
        self.send(self.OUTPUT.format(1 if on else 0))

    def measure_voltage_v(self) -> float:
        return self.ask_float(self.MEASURE_VOLTAGE)

    def measure_current_a(self) -> float:
        return self.ask_float(self.MEASURE_CURRENT)

    def safe_state(self) -> None:
        self.output(False)
