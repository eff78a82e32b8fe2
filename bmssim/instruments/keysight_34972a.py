"""Simulated Keysight 34972A LXI data acquisition/switch unit with a 34903A 20-channel
actuator (general-purpose SPDT relay) module in slot 1: the relay card of the hand-steps.

Dialect: the Keysight 34970A/34972A Data Acquisition/Switch Unit User's Guide, chapter
"Remote Interface Reference", *Switch Control Commands* (the 34972A keeps the 34970A's
command set). A channel is ``<slot><2-digit channel>``: the 34903A in slot 1 has channels
101..120; closing one connects its COM to NO.

==============================================  ============================================
``ROUTe:CLOSe (@<ch_list>)``                    close the channels (COM-NO)
``ROUTe:CLOSe:EXCLusive (@<ch_list>)``          open every other channel of the module first
``ROUTe:CLOSe? (@<ch_list>)``                   ``1`` closed / ``0`` open per channel, ``1,0``
``ROUTe:OPEN (@<ch_list>)``                     open the channels
``ROUTe:OPEN? (@<ch_list>)``                    ``1`` open / ``0`` closed per channel
``*IDN?``, ``*RST``, ``*CLS``, ``*OPC?``         common commands (scpi.py); ``*RST`` opens
                                                every channel
``SYSTem:ERRor?``                               ``+0,"No error"``, ``-222,"Data out of
                                                range"``, ... (the code signed, as the
                                                34970A family answers)
==============================================  ============================================

Channel lists: ``(@101)``, ``(@101,103)``, ``(@101:104)`` and combinations; answers come in
list order. A channel the unit does not have (``(@100)``, ``(@121)``, ``(@201)``: slots 2
and 3 are empty) is ``-222,"Data out of range"`` in the error queue and the whole command
is refused (nothing changes); a missing list is ``-109``, something that is not a channel
list ``-104``. Keywords take the short and long forms of SCPI (``ROUT:CLOS``,
``ROUTe:CLOSe``, any case, optional leading ``:``).

What each channel is wired to on the simulated bench is the World's business
(``bmssim/world.py`` ``RELAY_CHANNELS``); this module only holds the contacts
(``world.bench.relays``) and settles the World after every change, so a query in the same
message already sees the consequences.
"""

from __future__ import annotations

from bmssim.instruments import WorldInstrument, WorldLike, reset_in_place
from bmssim.scpi import Args, Command, data_out_of_range, format_bool, parse_channel_list
from bmssim.state import RELAY_COUNT, RELAY_FIRST, RelayCardState

MANUFACTURER = "Keysight Technologies"
MODEL = "34972A"
IDN = f"{MANUFACTURER},{MODEL},MY00000007,1.17-1.12-02-02"
#: The module in slot 1 and its channels.
MODULE = "34903A"
CHANNELS = tuple(range(RELAY_FIRST, RELAY_FIRST + RELAY_COUNT))


class Keysight34972A(WorldInstrument):
    """34972A + 34903A acting on ``world.bench.relays``."""

    def __init__(self, world: WorldLike, idn: str = IDN) -> None:
        self.idn = idn
        super().__init__(world)

    @property
    def state(self) -> RelayCardState:
        return self.world.bench.relays

    def _channels(self, args: Args) -> list[int]:
        """The channel list of parameter 0; -222 (and nothing done) for any channel the unit
        does not have."""
        channels = parse_channel_list(args.raw(0))
        for ch in channels:
            if ch not in CHANNELS:
                raise data_out_of_range(f"channel {ch}: the {MODULE} in slot 1 has 101..120")
        return channels

    def _close(self, args: Args) -> None:
        for ch in self._channels(args):
            self.state.set(ch, True)

    def _close_exclusive(self, args: Args) -> None:
        channels = set(self._channels(args))
        for ch in CHANNELS:
            self.state.set(ch, ch in channels)

    def _open(self, args: Args) -> None:
        for ch in self._channels(args):
            self.state.set(ch, False)

    def commands(self) -> list[Command]:
        return [
            Command("ROUTe:CLOSe", self._close, params=(1, 1)),
            Command("ROUTe:CLOSe:EXCLusive", self._close_exclusive, params=(1, 1)),
            Command(
                "ROUTe:CLOSe?",
                lambda a: ",".join(format_bool(self.state.is_closed(c)) for c in self._channels(a)),
                params=(1, 1),
            ),
            Command("ROUTe:OPEN", self._open, params=(1, 1)),
            Command(
                "ROUTe:OPEN?",
                lambda a: ",".join(
                    format_bool(not self.state.is_closed(c)) for c in self._channels(a)
                ),
                params=(1, 1),
            ),
        ]

    def format_error(self, item: tuple[int, str]) -> str:
        """The 34970A family signs the code: ``+0,"No error"``, ``-222,"Data out of range"``."""
        code, message = item
        return f'{code:+d},"{message}"'

    def reset(self) -> None:
        """``*RST``: every channel open."""
        reset_in_place(self.state)
