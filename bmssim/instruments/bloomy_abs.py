"""Simulated Bloomy Advanced Battery Simulator (ABS): one 8-cell unit per instance.

A 16S pack takes two units; each instance is built with an ``offset`` into
``world.bench.cells`` (unit A: ``offset=0`` -> cells 0..7, unit B: ``offset=8`` -> cells 8..15)
and its channels are numbered 1..8 on the wire, as on the real units.

Commands (INSTRUMENTS.md; per cell with a numeric suffix, or for several cells with a
channel list ``(@1:8)``, ``(@1,3,5)``; with neither, channel 1 as SCPI's default suffix):

===================================================  =============================================
``SOURce<n>:VOLTage <V>`` / ``SOUR:VOLT <V>,(@..)``  cell voltage 0..5 V; ``SOUR<n>:VOLT?``,
                                                     ``SOUR:VOLT? (@..)``
``SOURce<n>:CURRent:SRC <A>`` / ``:SNK <A>``         source / sink current limit 0..5 A; queries
``OUTPut<n>[:STATe] ON|OFF`` / ``OUTP 1,(@..)``      enable; ``OUTP<n>?``, ``OUTP? (@..)``
``OUTPut<n>:FAULt OPEN|SHORT|NONE``                  sense-lead fault injection; ``OUTP<n>:FAUL?``
``MEASure<n>:VOLTage?`` / ``MEAS:VOLT? (@..)``       measured output voltage
``MEASure<n>:CURRent?`` / ``MEAS:CURR? (@..)``       measured cell current (World model)
===================================================  =============================================

Answers for several channels are comma-separated, in channel-list order.

Measured voltage (simulator choice): a disabled channel and a SHORT fault read 0 V; an OPEN
fault opens the lead to the BMS, not the simulator's own output, so the unit still reads its
setpoint (the BMS side, modelled by the World, sees 0 V and the disconnection bit).

IEEE 488.2 common commands and the status model (``*ESE``, ``*SRE``, ``*STB?``, ``*TST?``
-> 0, ...) come from :class:`bmssim.scpi.ScpiInstrument`. ``*OPT?`` answers ``0`` (IEEE
488.2's "no reportable options"); no public Bloomy ABS programming manual was available to
quote, so this is the simulator's choice.
"""

from __future__ import annotations

from collections.abc import Callable

from bmssim.instruments import WorldInstrument, WorldLike, reset_in_place
from bmssim.scpi import (
    Args,
    Command,
    ScpiError,
    format_bool,
    format_float,
    is_channel_list,
    parameter_not_allowed,
)
from bmssim.state import CellChannel

MANUFACTURER = "Bloomy"
MODEL = "ABS"
CHANNELS = 8
VOLTAGE_MAX_V = 5.0
CURRENT_MAX_A = 5.0
_FAULTS = ("OPEN", "SHORT", "NONE")


class BloomyAbs(WorldInstrument):
    """One ABS unit: cells ``offset .. offset+7`` of ``world.bench.cells``."""

    def __init__(self, world: WorldLike, offset: int = 0, idn: str | None = None) -> None:
        if offset < 0 or offset + CHANNELS > len(world.bench.cells):
            raise ValueError(f"offset {offset} leaves no room for {CHANNELS} cells")
        self.offset = offset
        unit = "AB"[offset // CHANNELS] if offset // CHANNELS < 2 else str(offset // CHANNELS)
        self.idn = idn or f"{MANUFACTURER},{MODEL},SIM000{unit},1.0.0"
        super().__init__(world)

    def cell(self, channel: int) -> CellChannel:
        """The state of wire channel ``channel`` (1..8)."""
        return self.world.bench.cells[self.offset + channel - 1]

    # Channel selection -----------------------------------------------------------------
    def _targets(self, args: Args, list_index: int) -> list[int]:
        """Channels a command addresses: the channel list if given, else the suffix."""
        if args.has(list_index):
            if args.suffix(0, 0):
                raise parameter_not_allowed("a channel suffix and a channel list")
            return args.channels(list_index, CHANNELS)
        channel = args.suffix(0, 1)
        if not 1 <= channel <= CHANNELS:
            raise ScpiError(-114, "Header suffix out of range", f"channel {channel}")
        return [channel]

    def _query_targets(self, args: Args) -> list[int]:
        if args.has(0) and not is_channel_list(args.raw(0)):
            raise parameter_not_allowed(args.raw(0))
        return self._targets(args, 0)

    def _set_each(
        self, parse: Callable[[Args], object], apply: Callable[[CellChannel, object], None]
    ) -> Callable[[Args], None]:
        """A setter: parse parameter 0 once, apply it to every addressed channel."""

        def handler(args: Args) -> None:
            channels = self._targets(args, 1)
            value = parse(args)
            for ch in channels:
                apply(self.cell(ch), value)

        return handler

    def _query_each(self, read: Callable[[int], str]) -> Callable[[Args], str]:
        def handler(args: Args) -> str:
            return ",".join(read(ch) for ch in self._query_targets(args))

        return handler

    # Values ----------------------------------------------------------------------------
    def measured_voltage_v(self, channel: int) -> float:
        cell = self.cell(channel)
        if not cell.output or cell.fault == "SHORT":
            return 0.0
        return cell.voltage_set_v

    def commands(self) -> list[Command]:
        def volts(args: Args) -> float:
            return args.number(
                0, "V", low=0.0, high=VOLTAGE_MAX_V, minimum=0.0, maximum=VOLTAGE_MAX_V
            )

        def amps(args: Args) -> float:
            return args.number(
                0, "A", low=0.0, high=CURRENT_MAX_A, minimum=0.0, maximum=CURRENT_MAX_A
            )

        def set_voltage(c: CellChannel, v: object) -> None:
            c.voltage_set_v = float(v)  # type: ignore[arg-type]

        def set_source(c: CellChannel, v: object) -> None:
            c.source_limit_a = float(v)  # type: ignore[arg-type]

        def set_sink(c: CellChannel, v: object) -> None:
            c.sink_limit_a = float(v)  # type: ignore[arg-type]

        def set_output(c: CellChannel, v: object) -> None:
            c.output = bool(v)

        def set_fault(c: CellChannel, v: object) -> None:
            c.fault = str(v)

        volt = "SOURce#:VOLTage[:LEVel][:IMMediate][:AMPLitude]"
        return [
            Command(volt, self._set_each(volts, set_voltage), params=(1, 2)),
            Command(
                volt + "?",
                self._query_each(lambda ch: format_float(self.cell(ch).voltage_set_v)),
                params=(0, 1),
            ),
            Command("SOURce#:CURRent:SRC", self._set_each(amps, set_source), params=(1, 2)),
            Command(
                "SOURce#:CURRent:SRC?",
                self._query_each(lambda ch: format_float(self.cell(ch).source_limit_a)),
                params=(0, 1),
            ),
            Command("SOURce#:CURRent:SNK", self._set_each(amps, set_sink), params=(1, 2)),
            Command(
                "SOURce#:CURRent:SNK?",
                self._query_each(lambda ch: format_float(self.cell(ch).sink_limit_a)),
                params=(0, 1),
            ),
            Command(
                "OUTPut#[:STATe]",
                self._set_each(lambda a: a.boolean(0), set_output),
                params=(1, 2),
            ),
            Command(
                "OUTPut#[:STATe]?",
                self._query_each(lambda ch: format_bool(self.cell(ch).output)),
                params=(0, 1),
            ),
            Command(
                "OUTPut#:FAULt",
                self._set_each(lambda a: a.keyword(0, _FAULTS), set_fault),
                params=(1, 2),
            ),
            Command(
                "OUTPut#:FAULt?",
                self._query_each(lambda ch: self.cell(ch).fault),
                params=(0, 1),
            ),
            Command(
                "MEASure#[:SCALar]:VOLTage[:DC]?",
                self._query_each(lambda ch: format_float(self.measured_voltage_v(ch))),
                params=(0, 1),
            ),
            Command(
                "MEASure#[:SCALar]:CURRent[:DC]?",
                self._query_each(
                    lambda ch: format_float(self.world.cell_current_a(self.offset + ch - 1))
                ),
                params=(0, 1),
            ),
        ]

    def reset(self) -> None:
        """``*RST``: this unit's eight channels back to ``CellChannel()`` defaults."""
        for ch in range(1, CHANNELS + 1):
            reset_in_place(self.cell(ch))
