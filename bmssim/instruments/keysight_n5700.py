"""Simulated Keysight (Agilent) N5700-series DC supply: the charger on P+/P-.

Dialect: the N5700 User's Guide language reference (and PyMeasure's ``keysightN5767A``):

==========================================================  ===================================
``[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude] <V>``    setpoint, MIN/MAX; ``VOLT? [MIN|MAX]``
``[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude] <A>``    current limit, MIN/MAX; ``CURR?``
``[SOURce:]VOLTage:PROTection:LEVel <V>``                   OVP level, MIN/MAX; ``VOLT:PROT:LEV?``
``[SOURce:]CURRent:PROTection:STATe ON|OFF``                OCP (foldback) on/off; query
``OUTPut[:STATe] ON|OFF``                                   output; ``OUTP?``
``OUTPut:PROTection:CLEar``                                 clear a latched OVP/OCP
``MEASure[:SCALar]:VOLTage[:DC]?`` / ``...:CURRent[:DC]?``  readback (``FETCh`` is the same)
``STATus:QUEStionable:CONDition?``                          bit 0 OV, bit 1 OC (when latched)
==========================================================  ===================================

IEEE 488.2 common commands and the status model (``*ESE``, ``*SRE``, ``*STB?``, ``*TST?``,
...) come from :class:`bmssim.scpi.ScpiInstrument`. ``*OPT?`` answers ``0``: the N5700
User's Guide (Language Reference, common commands, ``*OPT?``) says the query identifies any
installed options and that a 0 indicates none; the simulated unit has none. That is what
PyMeasure's ``keysightN5767A`` driver reads as ``options``.

The manual couples setpoint and OVP: the OVP level must stay at or above 1.05 x the voltage
setpoint, so a ``VOLT`` above ``OVP/1.05`` and a ``VOLT:PROT:LEV`` below ``1.05 x VOLT`` are
refused with -222 and not executed. The OVP range is ``5 V .. 1.1 x rating`` (66 V for the
60 V models), the setpoint and the current limit range ``0 .. 1.05 x rating``.

Ratings (honest declaration): the bench needs up to 65 V (charger-overvoltage tests sit at
61-63 V) and 120 A of charging current. No N5700 model has that: the family tops out at
1500 W (the N5767A is 60 V / 25 A). The simulated unit therefore keeps the N5700 dialect and
the N5767A identity of the bench contract (the harness checks manufacturer and model), but is
rated **65 V / 150 A** (``rated_voltage_v``/``rated_current_a``, both configurable). A real
bench needs a larger supply of the same dialect family (e.g. an N8900 unit) or a different
driver. ``*RST`` returns the state of ``SupplyState()`` (output off, 0 V, 0 A, OVP 66 V); note
that with OVP at 66 V the highest accepted setpoint is 62.857 V, so a charger-overvoltage test
raises ``VOLT:PROT:LEV`` first, as on the real instrument.
"""

from __future__ import annotations

from bmssim.instruments import WorldInstrument, WorldLike, reset_in_place
from bmssim.scpi import (
    Args,
    Command,
    data_out_of_range,
    format_bool,
    format_float,
    settings_conflict,
)
from bmssim.state import SupplyState

IDN = "Agilent Technologies,N5767A,US00000001,D.01.09"
OPTIONS = "0"  # *OPT?: no options installed (N5700 User's Guide)
OVP_COUPLING = 1.05  # OVP >= 1.05 x setpoint (N5700 User's Guide, VOLT:PROT:LEV)
OVP_MIN_V = 5.0  # minimum OVP of the 60 V-and-up models
_EPS = 1e-9


class KeysightN5700(WorldInstrument):
    """N5700-dialect charger supply acting on ``world.bench.supply``."""

    options = OPTIONS

    def __init__(
        self,
        world: WorldLike,
        idn: str = IDN,
        rated_voltage_v: float = 65.0,
        rated_current_a: float = 150.0,
    ) -> None:
        self.idn = idn
        self.rated_voltage_v = rated_voltage_v
        self.rated_current_a = rated_current_a
        super().__init__(world)

    @property
    def state(self) -> SupplyState:
        return self.world.bench.supply

    # Limits --------------------------------------------------------------------------------
    @property
    def voltage_max_v(self) -> float:
        """Highest setpoint accepted now: the rating margin and the OVP coupling."""
        return min(self.rated_voltage_v * 1.05, self.state.ovp_level_v / OVP_COUPLING)

    @property
    def current_max_a(self) -> float:
        return self.rated_current_a * 1.05

    @property
    def ovp_max_v(self) -> float:
        return self.rated_voltage_v * 1.1

    @property
    def ovp_min_v(self) -> float:
        return max(OVP_MIN_V, self.state.voltage_set_v * OVP_COUPLING)

    # Handlers ------------------------------------------------------------------------------
    def _set_voltage(self, args: Args) -> None:
        value = args.number(0, "V", minimum=0.0, maximum=self.voltage_max_v, default=0.0)
        if value < 0 or value > self.voltage_max_v + _EPS:
            raise data_out_of_range(f"{value} V above OVP/1.05 or rating")
        self.state.voltage_set_v = value

    def _get_voltage(self, args: Args) -> str:
        which = args.min_max(0)
        if which == "MIN":
            return format_float(0.0)
        if which == "MAX":
            return format_float(self.voltage_max_v)
        return format_float(self.state.voltage_set_v)

    def _set_current(self, args: Args) -> None:
        self.state.current_limit_a = args.number(
            0, "A", low=0.0, high=self.current_max_a, minimum=0.0, maximum=self.current_max_a
        )

    def _get_current(self, args: Args) -> str:
        which = args.min_max(0)
        if which == "MIN":
            return format_float(0.0)
        if which == "MAX":
            return format_float(self.current_max_a)
        return format_float(self.state.current_limit_a)

    def _set_ovp(self, args: Args) -> None:
        value = args.number(0, "V", minimum=self.ovp_min_v, maximum=self.ovp_max_v)
        if value < self.ovp_min_v - _EPS or value > self.ovp_max_v + _EPS:
            raise data_out_of_range(f"OVP {value} V outside {self.ovp_min_v}..{self.ovp_max_v}")
        self.state.ovp_level_v = value

    def _get_ovp(self, args: Args) -> str:
        which = args.min_max(0)
        if which == "MIN":
            return format_float(self.ovp_min_v)
        if which == "MAX":
            return format_float(self.ovp_max_v)
        return format_float(self.state.ovp_level_v)

    def _set_ocp(self, args: Args) -> None:
        self.state.ocp_enabled = args.boolean(0)

    def _set_output(self, args: Args) -> None:
        on = args.boolean(0)
        if on and self.state.protection_tripped:
            # Simulator choice: a latched protection keeps the output off until
            # OUTP:PROT:CLE; saying so in the queue beats silently staying off.
            raise settings_conflict("protection latched; send OUTP:PROT:CLE")
        self.state.output = on

    def _clear_protection(self, _: Args) -> None:
        self.state.protection_tripped = False

    def _questionable(self, _: Args) -> str:
        if not self.state.protection_tripped:
            return "0"
        over_voltage = self.world.port_voltage_v() >= self.state.ovp_level_v
        return "1" if over_voltage or not self.state.ocp_enabled else "2"

    def commands(self) -> list[Command]:
        volt = "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]"
        curr = "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]"
        return [
            Command(volt, self._set_voltage, params=(1, 1)),
            Command(volt + "?", self._get_voltage, params=(0, 1)),
            Command(curr, self._set_current, params=(1, 1)),
            Command(curr + "?", self._get_current, params=(0, 1)),
            Command("[SOURce:]VOLTage:PROTection[:LEVel]", self._set_ovp, params=(1, 1)),
            Command("[SOURce:]VOLTage:PROTection[:LEVel]?", self._get_ovp, params=(0, 1)),
            Command("[SOURce:]CURRent:PROTection:STATe", self._set_ocp, params=(1, 1)),
            Command(
                "[SOURce:]CURRent:PROTection:STATe?",
                lambda _: format_bool(self.state.ocp_enabled),
            ),
            Command("OUTPut[:STATe]", self._set_output, params=(1, 1)),
            Command("OUTPut[:STATe]?", lambda _: format_bool(self.state.output)),
            Command("OUTPut:PROTection:CLEar", self._clear_protection),
            Command(
                "MEASure[:SCALar]:VOLTage[:DC]?",
                lambda _: format_float(self.world.port_voltage_v()),
            ),
            Command(
                "MEASure[:SCALar]:CURRent[:DC]?",
                lambda _: format_float(self.world.supply_current_a()),
            ),
            Command(
                "FETCh[:SCALar]:VOLTage[:DC]?",
                lambda _: format_float(self.world.port_voltage_v()),
            ),
            Command(
                "FETCh[:SCALar]:CURRent[:DC]?",
                lambda _: format_float(self.world.supply_current_a()),
            ),
            Command("STATus:QUEStionable:CONDition?", self._questionable),
        ]

    def reset(self) -> None:
        reset_in_place(self.state)
