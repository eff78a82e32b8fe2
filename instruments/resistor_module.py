"""Programmable resistor module emulating the six NTCs: ``Resistors`` over a small SCPI set.

No SCPI standard exists for these modules; this is the documented set of the bench's
module (INSTRUMENTS.md): ``SOUR:RES <ohm>,(@<ch>)``, ``SOUR:RES? (@<ch>)`` and
``OUTP:STAT OPEN|SHORT|NORMAL,(@<ch>)``. Bounded by ``envelope.resistors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from instruments.ntc import BetaNtc, NtcModel
from instruments.resistors import Resistors
from instruments.scpi_instrument import ScpiInstrument, format_number


class ResistorModule(ScpiInstrument, Resistors):
    """One module channel per NTC; logical names come from the bench's ``channels.ntc``."""

    ENVELOPE: ClassVar[str] = "resistors"
    SET_RESISTANCE = "SOUR:RES {ohm},(@{ch})"
    READ_RESISTANCE = "SOUR:RES? (@{ch})"
    STATE = "OUTP:STAT {state},(@{ch})"

    def __init__(
        self,
        resource: Any,
        *,
        channel_map: Mapping[str, int],
        ntc: NtcModel | None = None,
        **kwargs: Any,
    ) -> None:
        if not channel_map:
            raise ValueError("a resistor module needs a channel map (channels.ntc)")
        self.channel_map = dict(channel_map)
        self.ntc = ntc or BetaNtc()
        super().__init__(resource, **kwargs)

    @property
    def channels(self) -> list[str]:
        return list(self.channel_map)

    def _ch(self, channel: str) -> int:
        try:
            return self.channel_map[channel]
        except KeyError:
            raise KeyError(
                f"{self.name}: no NTC channel {channel!r}; "
                f"the bench maps {sorted(self.channel_map)}"
            ) from None

    def set_ohm(self, channel: str, ohm: float) -> None:
        ch = self._ch(channel)
        self.within(f"{channel} resistance", ohm, "Ohm", low_key="min_ohm", high_key="max_ohm")
        self.send(self.SET_RESISTANCE.format(ohm=format_number(round(ohm, 3)), ch=ch))

    def read_ohm(self, channel: str) -> float:
        return self.ask_float(self.READ_RESISTANCE.format(ch=self._ch(channel)))

    def open(self, channel: str) -> None:
        self.send(self.STATE.format(state="OPEN", ch=self._ch(channel)))

    def short(self, channel: str) -> None:
        self.send(self.STATE.format(state="SHORT", ch=self._ch(channel)))

    def normal(self, channel: str) -> None:
        self.send(self.STATE.format(state="NORMAL", ch=self._ch(channel)))
