"""Simulated ITECH IT8500+ electronic load (BK Precision 8600 speaks the same set).

Dialect: the IT8500+ SCPI programming guide, constant-current subset:

=============================================================  ================================
``SYSTem:REMote`` / ``SYSTem:LOCal``                            remote control on/off
``[SOURce:]FUNCtion CURRent|VOLTage|POWer|RESistance``          mode (the World models CC)
``[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude] <A>``        CC setpoint, MIN/MAX; query
``[SOURce:]INPut[:STATe] ON|OFF``                               input; ``INP?``
``[SOURce:]CURRent:SLEW[:BOTH] <A/us>``, ``:POSitive``,          slew rate; queries
``:NEGative``
``[SOURce:]CURRent:TRANsient:MODE CONTinuous|PULSe|TOGGle``     transient mode; query
``[SOURce:]CURRent:TRANsient:ALEVel|BLEVel <A>``                levels A and B; queries
``[SOURce:]CURRent:TRANsient:AWIDth|BWIDth <s>``                widths in seconds (``ms`` etc.
                                                                accepted); queries
``[SOURce:]TRANsient[:STATe] ON|OFF``                           transient operation; query
``TRIGger:SOURce BUS|EXTernal|IMMediate``                       trigger source; query
``TRIGger[:IMMediate]`` and ``*TRG``                            bus trigger
``MEASure[:SCALar]:VOLTage|CURRent|POWer[:DC]?``                readback
=============================================================  ================================

Triggering: with the transient on and the source ``BUS`` (or ``IMMediate``), ``TRIG``/``*TRG``
calls ``world.trigger_load()``, which starts the A/B sequence at the current virtual instant.
With the transient off or the source ``EXTernal`` a bus trigger is refused with
-211 "Trigger ignored" (a driver then knows its transient never started). With source
``IMMediate``, ``TRAN ON`` starts the transient at once. ``TRAN OFF`` ends a running
transient. The one slew field of ``LoadState`` holds both slopes, so ``:POS`` and ``:NEG``
set the same value.

Ratings (honest declaration): the transient-overcurrent test needs 300 A; the largest
IT8500+ model (IT8516C+) is rated 120 V / 240 A. The simulated unit keeps the dialect and the
IT8512+ identity of the bench contract but is rated **120 V / 300 A** (configurable). Slew
0.001..10 A/us and transient widths 20 us..3600 s are the simulator's ranges.

IEEE 488.2 common commands and the status model (``*ESE``, ``*SRE``, ``*STB?``, ``*TST?``
-> 0, ...) come from :class:`bmssim.scpi.ScpiInstrument`. ``*OPT?`` answers ``0`` (IEEE
488.2's "no reportable options"): the IT8500+ programming guide this dialect follows gives
no option string for the IT8512+, so this is the simulator's choice, not a quoted answer.
"""

from __future__ import annotations

from collections.abc import Callable

from bmssim.instruments import WorldInstrument, WorldLike, reset_in_place
from bmssim.scpi import Args, Command, format_bool, format_float, trigger_ignored
from bmssim.state import LoadState

MANUFACTURER = "ITECH Ltd."
MODEL = "IT8512+"
IDN = f"{MANUFACTURER},{MODEL},800000000000000001,1.20-1.19"
SLEW_MIN = 0.001
SLEW_MAX = 10.0
WIDTH_MIN_S = 20e-6
WIDTH_MAX_S = 3600.0
_FUNCTIONS = ("CURRent", "VOLTage", "POWer", "RESistance")
_TRANSIENT_MODES = ("CONTinuous", "PULSe", "TOGGle")
_TRIGGER_SOURCES = ("BUS", "EXTernal", "IMMediate")


class ItechIt8500(WorldInstrument):
    """IT8500+-dialect load acting on ``world.bench.load``."""

    def __init__(
        self,
        world: WorldLike,
        idn: str = IDN,
        rated_voltage_v: float = 120.0,
        rated_current_a: float = 300.0,
    ) -> None:
        self.idn = idn
        self.rated_voltage_v = rated_voltage_v
        self.rated_current_a = rated_current_a
        super().__init__(world)

    @property
    def state(self) -> LoadState:
        return self.world.bench.load

    def _current(self, args: Args) -> float:
        return args.number(
            0, "A", low=0.0, high=self.rated_current_a, minimum=0.0, maximum=self.rated_current_a
        )

    def _width(self, args: Args) -> float:
        return args.number(
            0, "S", low=WIDTH_MIN_S, high=WIDTH_MAX_S, minimum=WIDTH_MIN_S, maximum=WIDTH_MAX_S
        )

    def _slew(self, args: Args) -> float:
        return args.number(
            0, "A/US", low=SLEW_MIN, high=SLEW_MAX, minimum=SLEW_MIN, maximum=SLEW_MAX
        )

    def _query_current(self, value: float, args: Args) -> str:
        which = args.min_max(0)
        if which == "MIN":
            return format_float(0.0)
        if which == "MAX":
            return format_float(self.rated_current_a)
        return format_float(value)

    # Handlers that need more than one assignment ---------------------------------------
    def _set_remote(self, on: bool) -> None:
        self.state.remote = on

    def _set_function(self, args: Args) -> None:
        self.state.function = args.keyword(0, _FUNCTIONS)

    def _set_transient(self, args: Args) -> None:
        on = args.boolean(0)
        self.state.transient_on = on
        if not on:
            self.state.transient_started_ms = None
            self.state.transient_toggled_to_b = False
        elif self.state.trigger_source == "IMM":
            self.world.trigger_load()

    def _set_trigger_source(self, args: Args) -> None:
        self.state.trigger_source = args.keyword(0, _TRIGGER_SOURCES)

    def trigger(self) -> None:
        if not self.state.transient_on:
            raise trigger_ignored("transient operation is off")
        if self.state.trigger_source not in ("BUS", "IMM"):
            raise trigger_ignored(f"trigger source is {self.state.trigger_source}")
        self.world.trigger_load()

    def _trigger(self, _: Args) -> None:
        self.trigger()

    def _measure_power(self, _: Args) -> str:
        return format_float(self.world.port_voltage_v() * self.world.load_current_a())

    def commands(self) -> list[Command]:
        curr = "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]"
        tran = "[SOURce:]CURRent:TRANsient"

        def setter(attr: str, parse: Callable[[Args], object]) -> Callable[[Args], None]:
            """A handler that parses one parameter into one LoadState field."""

            def handler(args: Args) -> None:
                setattr(self.state, attr, parse(args))

            return handler

        return [
            Command("SYSTem:REMote", lambda _: self._set_remote(True)),
            Command("SYSTem:LOCal", lambda _: self._set_remote(False)),
            Command("SYSTem:RWLock", lambda _: self._set_remote(True)),
            Command("[SOURce:]FUNCtion", self._set_function, params=(1, 1)),
            Command("[SOURce:]FUNCtion?", lambda _: self.state.function),
            Command(curr, setter("current_set_a", self._current), params=(1, 1)),
            Command(
                curr + "?",
                lambda a: self._query_current(self.state.current_set_a, a),
                params=(0, 1),
            ),
            Command("[SOURce:]INPut[:STATe]", setter("input_on", Args.boolean), params=(1, 1)),
            Command("[SOURce:]INPut[:STATe]?", lambda _: format_bool(self.state.input_on)),
            Command(
                "[SOURce:]CURRent:SLEW[:BOTH]", setter("slew_a_per_us", self._slew), params=(1, 1)
            ),
            Command(
                "[SOURce:]CURRent:SLEW:POSitive",
                setter("slew_a_per_us", self._slew),
                params=(1, 1),
            ),
            Command(
                "[SOURce:]CURRent:SLEW:NEGative",
                setter("slew_a_per_us", self._slew),
                params=(1, 1),
            ),
            Command(
                "[SOURce:]CURRent:SLEW[:BOTH]?", lambda _: format_float(self.state.slew_a_per_us)
            ),
            Command(
                "[SOURce:]CURRent:SLEW:POSitive?",
                lambda _: format_float(self.state.slew_a_per_us),
            ),
            Command(
                "[SOURce:]CURRent:SLEW:NEGative?",
                lambda _: format_float(self.state.slew_a_per_us),
            ),
            Command(
                tran + ":MODE",
                setter("transient_mode", lambda a: a.keyword(0, _TRANSIENT_MODES)),
                params=(1, 1),
            ),
            Command(tran + ":MODE?", lambda _: self.state.transient_mode),
            Command(tran + ":ALEVel", setter("transient_a_a", self._current), params=(1, 1)),
            Command(
                tran + ":ALEVel?",
                lambda a: self._query_current(self.state.transient_a_a, a),
                params=(0, 1),
            ),
            Command(tran + ":BLEVel", setter("transient_b_a", self._current), params=(1, 1)),
            Command(
                tran + ":BLEVel?",
                lambda a: self._query_current(self.state.transient_b_a, a),
                params=(0, 1),
            ),
            Command(tran + ":AWIDth", setter("transient_a_width_s", self._width), params=(1, 1)),
            Command(tran + ":AWIDth?", lambda _: format_float(self.state.transient_a_width_s)),
            Command(tran + ":BWIDth", setter("transient_b_width_s", self._width), params=(1, 1)),
            Command(tran + ":BWIDth?", lambda _: format_float(self.state.transient_b_width_s)),
            Command("[SOURce:]TRANsient[:STATe]", self._set_transient, params=(1, 1)),
            Command("[SOURce:]TRANsient[:STATe]?", lambda _: format_bool(self.state.transient_on)),
            Command("TRIGger:SOURce", self._set_trigger_source, params=(1, 1)),
            Command("TRIGger:SOURce?", lambda _: self.state.trigger_source),
            Command("TRIGger[:IMMediate]", self._trigger),
            Command(
                "MEASure[:SCALar]:VOLTage[:DC]?",
                lambda _: format_float(self.world.port_voltage_v()),
            ),
            Command(
                "MEASure[:SCALar]:CURRent[:DC]?",
                lambda _: format_float(self.world.load_current_a()),
            ),
            Command("MEASure[:SCALar]:POWer[:DC]?", self._measure_power),
        ]

    def reset(self) -> None:
        reset_in_place(self.state)
