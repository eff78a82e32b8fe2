"""The InfiniiVision simulator's timebase, acquisition and trigger settings: position, trigger
source and level, holdoff, sweep, and ``:AUToscale``."""

from __future__ import annotations

from bmssim.instruments.infiniivision_setup import (
    REFERENCE_FRACTION,
    SIGNALS,
    TIMEBASE_MAX_S,
    TIMEBASE_MIN_S,
    TRIGGER_OTHER_SOURCES,
    nice_scale,
    parse_source,
)
from bmssim.scpi import Args, Command, ScpiError, format_bool, format_float


class ScopeTimebaseTrigger:
    """Timebase, acquisition and trigger settings of :class:`KeysightInfiniiVision`."""

    # Timebase, acquisition, trigger ------------------------------------------------------------
    def timebase_setup(self) -> str:
        t = self.setup
        return (
            f":TIM:MODE {t.timebase_mode};REF {t.timebase_reference};"
            f"MAIN:RANG {format_float(self.state.timebase_range_s)};"
            f"POS {format_float(t.timebase_position_s)}"
        )

    def _set_position(self, args: Args) -> None:
        pos = args.number(0, "S")
        fraction = REFERENCE_FRACTION[self.setup.timebase_reference]
        low = (fraction - 1.0) * self.state.timebase_range_s  # at most a screen of pre-trigger
        self.setup.timebase_position_s = self._clamp(pos, low, TIMEBASE_MAX_S)

    def _trigger_source(self, text: str) -> str:
        word = text.strip().upper()
        if word.startswith("CHAN"):
            return f"CHAN{parse_source(word)}"
        return {"EXT": "EXT", "LINE": "LINE", "WGEN": "WGEN"}[
            self._keyword(word, TRIGGER_OTHER_SOURCES)
        ]

    @staticmethod
    def _keyword(text: str, options: tuple[str, ...]) -> str:
        return Args([text]).keyword(0, options)

    def _set_level(self, args: Args) -> None:
        source = self._trigger_source(args.raw(1)) if args.has(1) else self.setup.trigger_source
        if source in ("LINE", "WGEN"):
            raise ScpiError(-221, "Settings conflict", f"{source} has no level")
        self.setup.trigger_levels[source] = args.number(0, "V")

    def _get_level(self, args: Args) -> str:
        source = self._trigger_source(args.raw(0)) if args.has(0) else self.setup.trigger_source
        if source in ("LINE", "WGEN"):
            raise ScpiError(-221, "Settings conflict", f"{source} has no level")
        return format_float(self.setup.trigger_levels[source])

    def recorded_range(self, channel: int) -> tuple[float, float]:
        """(min, max) of everything recorded for a channel, 0 included."""
        _times, values = self._events(channel)
        return min([0.0, *values]), max([0.0, *values])

    def _level_autosetup(self, _: Args) -> None:
        source = self.setup.trigger_source
        if source.startswith("CHAN"):
            lo, hi = self.recorded_range(int(source[4:]))
            self.setup.trigger_levels[source] = (lo + hi) / 2.0

    def _setting(self, node: str, attr: str, options: tuple[str, ...]) -> list[Command]:
        def setter(args: Args) -> None:
            setattr(self.setup, attr, args.keyword(0, options))

        return [
            Command(node, setter, params=(1, 1)),
            Command(node + "?", lambda _: getattr(self.setup, attr)),
        ]

    def _boolean(self, node: str, attr: str) -> list[Command]:
        def setter(args: Args) -> None:
            setattr(self.setup, attr, args.boolean(0))

        return [
            Command(node, setter, params=(1, 1)),
            Command(node + "?", lambda _: format_bool(getattr(self.setup, attr))),
        ]

    def _set_count(self, args: Args) -> None:
        self.setup.acquire_count = args.integer(0, 2, 65536)

    def _set_holdoff(self, args: Args) -> None:
        self.setup.trigger_holdoff_s = args.number(
            0, "S", low=40e-9, high=10.0, minimum=40e-9, maximum=10.0
        )

    def _sample_rate(self, _: Args) -> str:
        return format_float(self._points() / self.state.timebase_range_s)

    def _autoscale(self, _: Args) -> None:
        """Show every wired channel scaled to its recorded range; channel 4 off."""
        for n, ch in enumerate(self.setup.channels, start=1):
            if n not in SIGNALS:
                ch.display = False
                continue
            lo, hi = self.recorded_range(n)
            ch.display = True
            ch.invert = False
            if hi - lo > 1e-9:  # a flat signal keeps its scale and is centred
                ch.scale = self._limit_scale(ch, nice_scale((hi - lo) / 6.0))
            ch.offset = self._limit_offset(ch, (hi + lo) / 2.0)
        self.setup.timebase_mode = "MAIN"
        self.setup.timebase_position_s = 0.0
        self._run(Args([]))

    def _timebase(self, args: Args, factor: float) -> float:
        low, high = TIMEBASE_MIN_S / factor, TIMEBASE_MAX_S / factor
        return args.number(0, "S", low=low, high=high, minimum=low, maximum=high) * factor
