"""The InfiniiVision simulator's analog channels: scale, range, offset, probe and label within
the limits of the programming guide, and the ``:CHANnel<n>`` command table."""

from __future__ import annotations

from bmssim.instruments.infiniivision_setup import (
    ANALOG_CHANNELS,
    DIVISIONS_Y,
    LABEL_MAX,
    OFFSET_LARGE_V,
    OFFSET_SMALL_V,
    PROBE_MAX,
    PROBE_MIN,
    SCALE_MAX_V,
    SCALE_MIN_V,
    ChannelSetup,
    parse_string,
)
from bmssim.scpi import Args, Command, ScpiError, format_bool, format_float


class ScopeChannels:
    """The ``:CHANnel<n>`` subsystem of :class:`KeysightInfiniiVision`."""

    # Channels ------------------------------------------------------------------------------
    def channel(self, args: Args) -> ChannelSetup:
        n = args.suffix(0, 1)
        if not 1 <= n <= ANALOG_CHANNELS:
            raise ScpiError(-114, "Header suffix out of range", f"channel {n}")
        return self.setup.channels[n - 1]

    @staticmethod
    def _clamp(value: float, low: float, high: float) -> float:
        return min(high, max(low, value))

    def _limit_scale(self, ch: ChannelSetup, scale: float) -> float:
        """Out-of-range values go to the nearest legal one, as on the real scope."""
        return self._clamp(scale, SCALE_MIN_V * ch.probe, SCALE_MAX_V * ch.probe)

    def _limit_offset(self, ch: ChannelSetup, offset: float) -> float:
        small = ch.scale / ch.probe < 0.2
        limit = (OFFSET_SMALL_V if small else OFFSET_LARGE_V) * ch.probe
        return self._clamp(offset, -limit, limit)

    def _set_scale(self, args: Args) -> None:
        ch = self.channel(args)
        ch.scale = self._limit_scale(ch, args.number(0, "V", low=0.0))
        ch.offset = self._limit_offset(ch, ch.offset)

    def _set_range(self, args: Args) -> None:
        ch = self.channel(args)
        ch.scale = self._limit_scale(ch, args.number(0, "V", low=0.0) / DIVISIONS_Y)
        ch.offset = self._limit_offset(ch, ch.offset)

    def _set_offset(self, args: Args) -> None:
        ch = self.channel(args)
        ch.offset = self._limit_offset(ch, args.number(0, "V"))

    def _set_probe(self, args: Args) -> None:
        ch = self.channel(args)
        probe = args.number(0, None, low=PROBE_MIN, high=PROBE_MAX)
        factor = probe / ch.probe
        ch.probe = probe
        ch.scale = self._limit_scale(ch, ch.scale * factor)  # the screen stays the same
        ch.offset = self._limit_offset(ch, ch.offset * factor)

    def _set_label(self, args: Args) -> None:
        self.channel(args).label = parse_string(args.raw(0)).upper()[:LABEL_MAX]

    def channel_setup(self, n: int) -> str:
        """``:CHANnel<n>?``: the channel's setup as the InfiniiVision scopes answer it."""
        ch = self.setup.channels[n - 1]
        label = ch.label.replace('"', '""')
        return (
            f":CHAN{n}:RANG {format_float(ch.scale * DIVISIONS_Y)};"
            f"OFFS {format_float(ch.offset)};COUP {ch.coupling};IMP {ch.impedance};"
            f"DISP {format_bool(ch.display)};BWL {format_bool(ch.bwlimit)};"
            f'INV {format_bool(ch.invert)};LAB "{label}";UNIT {ch.units};'
            f"PROB {format_float(ch.probe)};PROB:SKEW {format_float(ch.skew_s)};STYP SING"
        )

    def _channel_commands(self) -> list[Command]:
        chan = ":CHANnel#"

        def flag(attr: str) -> list[Command]:
            def setter(args: Args) -> None:
                setattr(self.channel(args), attr, args.boolean(0))

            node = {"display": "DISPlay", "bwlimit": "BWLimit", "invert": "INVert"}
            node["vernier"] = "VERNier"
            return [
                Command(f"{chan}:{node[attr]}", setter, params=(1, 1)),
                Command(
                    f"{chan}:{node[attr]}?",
                    lambda a: format_bool(getattr(self.channel(a), attr)),
                ),
            ]

        def choice(node: str, attr: str, options: tuple[str, ...]) -> list[Command]:
            def setter(args: Args) -> None:
                setattr(self.channel(args), attr, args.keyword(0, options))

            return [
                Command(f"{chan}:{node}", setter, params=(1, 1)),
                Command(f"{chan}:{node}?", lambda a: getattr(self.channel(a), attr)),
            ]

        def skew(args: Args) -> None:
            self.channel(args).skew_s = args.number(0, "S", low=-100e-9, high=100e-9)

        return [
            Command(f"{chan}?", lambda a: self.channel_setup(self._n(a))),
            Command(f"{chan}:SCALe", self._set_scale, params=(1, 1)),
            Command(f"{chan}:SCALe?", lambda a: format_float(self.channel(a).scale)),
            Command(f"{chan}:RANGe", self._set_range, params=(1, 1)),
            Command(f"{chan}:RANGe?", lambda a: format_float(self.channel(a).scale * DIVISIONS_Y)),
            Command(f"{chan}:OFFSet", self._set_offset, params=(1, 1)),
            Command(f"{chan}:OFFSet?", lambda a: format_float(self.channel(a).offset)),
            Command(f"{chan}:PROBe", self._set_probe, params=(1, 1)),
            Command(f"{chan}:PROBe?", lambda a: format_float(self.channel(a).probe)),
            Command(f"{chan}:PROBe:SKEW", skew, params=(1, 1)),
            Command(f"{chan}:PROBe:SKEW?", lambda a: format_float(self.channel(a).skew_s)),
            Command(f"{chan}:PROBe:STYPe?", self._probe_type),
            Command(f"{chan}:LABel", self._set_label, params=(1, 1)),
            Command(f"{chan}:LABel?", lambda a: f'"{self.channel(a).label}"'),
            *flag("display"),
            *flag("bwlimit"),
            *flag("invert"),
            *flag("vernier"),
            *choice("COUPling", "coupling", ("AC", "DC")),
            *choice("IMPedance", "impedance", ("ONEMeg", "FIFTy")),
            *choice("UNITs", "units", ("VOLT", "AMPere")),
        ]

    def _probe_type(self, args: Args) -> str:
        self.channel(args)  # validates the suffix
        return "SING"  # single-ended probes only

    def _n(self, args: Args) -> int:
        self.channel(args)  # validates the suffix
        return args.suffix(0, 1)
