"""Simulated programmable resistor module (six channels) emulating the BMS's NTCs.

No SCPI standard covers resistor modules, so this module speaks the project's own small set,
and this docstring is its reference: a real module on a bench gets a driver (or a small
adapter) that speaks exactly this, or its own driver behind the same ``Resistors`` interface.

Identity: ``*IDN?`` -> ``bms-hil,RES6,0001,1.0``. Channels 1..6 (bench map: cell1..cell4,
ambient, power). Common commands: ``*IDN?``, ``*RST``, ``*CLS``, ``*OPC?``, ``SYST:ERR?``.

=================================================  ===========================================
``[SOURce:]RESistance[:LEVel] <ohm>,(@<list>)``    resistance 0 .. 1e6 Ohm; suffixes ``OHM``,
                                                   ``kOHM``, ``MOHM`` (mega); ``MIN``/``MAX``
``[SOURce:]RESistance[:LEVel]? (@<list>)``         programmed Ohm, comma-separated per channel
``OUTPut:STATe OPEN|SHORT|NORMal,(@<list>)``       OPEN: lead open (infinite), SHORT: 0 Ohm,
                                                   NORMal: the programmed resistance
``OUTPut:STATe? (@<list>)``                        ``OPEN``, ``SHORT`` or ``NORMAL`` per channel
=================================================  ===========================================

The channel list is mandatory (``(@1)``, ``(@1:6)``, ``(@1,3)``); a channel outside 1..6 is
-222, a missing list -109. Values outside 0..1 MOhm are -222 and not applied. ``*RST`` puts
every channel at 10 kOhm (25 degC on a 10 kOhm B=3435 NTC), state NORMAL. Setting a
resistance does not change the OPEN/SHORT state: a fault stays until ``OUTP:STAT NORM``.

The IEEE 488.2 mandatory common commands (``*CLS``, ``*ESE``/``*ESE?``, ``*ESR?``,
``*OPC``/``*OPC?``, ``*SRE``/``*SRE?``, ``*STB?``, ``*TST?`` -> ``0``, ``*WAI``) come from
:class:`bmssim.scpi.ScpiInstrument`; this module is the project's own, so its ``*OPT?`` is
defined here: ``0``, no options.
"""

from __future__ import annotations

from bmssim.instruments import WorldInstrument, WorldLike, reset_in_place
from bmssim.scpi import Args, Command, format_float
from bmssim.state import ResistorChannel

MANUFACTURER = "bms-hil"
MODEL = "RES6"
IDN = f"{MANUFACTURER},{MODEL},0001,1.0"
CHANNELS = 6
OHM_MAX = 1_000_000.0
_STATES = {"OPEN": "OPEN", "SHORT": "SHORT", "NORM": "NORMAL"}


class ResistorModule(WorldInstrument):
    """Six-channel resistor module acting on ``world.bench.ntc``."""

    def __init__(self, world: WorldLike, idn: str = IDN) -> None:
        if len(world.bench.ntc) < CHANNELS:
            raise ValueError(f"the bench has {len(world.bench.ntc)} NTC channels, not {CHANNELS}")
        self.idn = idn
        super().__init__(world)

    def channel(self, ch: int) -> ResistorChannel:
        return self.world.bench.ntc[ch - 1]

    def _set_resistance(self, args: Args) -> None:
        channels = args.channels(1, CHANNELS)
        ohms = args.number(0, "OHM", low=0.0, high=OHM_MAX, minimum=0.0, maximum=OHM_MAX)
        for ch in channels:
            self.channel(ch).ohms = ohms

    def _get_resistance(self, args: Args) -> str:
        return ",".join(format_float(self.channel(ch).ohms) for ch in args.channels(0, CHANNELS))

    def _set_state(self, args: Args) -> None:
        channels = args.channels(1, CHANNELS)
        state = _STATES[args.keyword(0, ("OPEN", "SHORT", "NORMal"))]
        for ch in channels:
            self.channel(ch).state = state

    def _get_state(self, args: Args) -> str:
        return ",".join(self.channel(ch).state for ch in args.channels(0, CHANNELS))

    def commands(self) -> list[Command]:
        res = "[SOURce:]RESistance[:LEVel][:IMMediate][:AMPLitude]"
        return [
            Command(res, self._set_resistance, params=(2, 2)),
            Command(res + "?", self._get_resistance, params=(1, 1)),
            Command("OUTPut:STATe", self._set_state, params=(2, 2)),
            Command("OUTPut:STATe?", self._get_state, params=(1, 1)),
        ]

    def reset(self) -> None:
        for ch in range(1, CHANNELS + 1):
            reset_in_place(self.channel(ch))
