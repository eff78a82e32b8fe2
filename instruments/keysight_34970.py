"""Keysight 34970A/34972A data acquisition mainframe with a 34903A 20-channel actuator:
the bench's relay card (``RelayCard`` over SCPI).

Commands from the 34970A/34972A user's guide, ROUTe subsystem: ``ROUT:CLOS (@101)``,
``ROUT:OPEN (@101,103)``, ``ROUT:CLOS? (@101,102)`` answers ``1,0`` (1 = closed, in the
order asked). Channels are ``<slot><two-digit channel>``: slot 1..3, a 34903A has channels
01..20 (101..120 in slot 1). ``*RST`` opens every channel; the driver does not send it (the
bench puts every relay in its *safe* position instead, which need not be open).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from instruments.errors import InstrumentError
from instruments.relays import RelayCard
from instruments.scpi_instrument import ScpiInstrument

SLOTS = (1, 2, 3)
#: A 34903A actuator has 20 SPDT relays per slot.
CHANNELS_PER_SLOT = 20


def channel_list(channels: Sequence[int]) -> str:
    """``(@101,103)``: the SCPI channel list of ``channels`` in the order given."""
    if not channels:
        raise ValueError("an empty channel list")
    return "(@" + ",".join(str(int(c)) for c in channels) + ")"


class Keysight34972A(ScpiInstrument, RelayCard):
    """34970A/34972A mainframe driving 34903A actuator channels."""

    ENVELOPE: ClassVar[str] = "relays"
    CLOSE = "ROUT:CLOS {}"
    OPEN = "ROUT:OPEN {}"
    QUERY_CLOSED = "ROUT:CLOS? {}"

    def check_channel(self, channel: int) -> None:
        slot, number = divmod(int(channel), 100)
        if slot not in SLOTS or not 1 <= number <= CHANNELS_PER_SLOT:
            raise ValueError(
                f"{self._where()}: channel {channel} does not exist on a 34903A "
                f"(slot 1..3, channels 01..{CHANNELS_PER_SLOT}: 101..{100 + CHANNELS_PER_SLOT})"
            )

    def close_channels(self, channels: Sequence[int]) -> None:
        for c in channels:
            self.check_channel(c)
        self.send(self.CLOSE.format(channel_list(channels)))

    def open_channels(self, channels: Sequence[int]) -> None:
        for c in channels:
            self.check_channel(c)
        self.send(self.OPEN.format(channel_list(channels)))

    def closed_channels(self, channels: Sequence[int]) -> list[bool]:
        command = self.QUERY_CLOSED.format(channel_list(channels))
        answer = self.ask(command)
        fields = [f.strip() for f in answer.split(",")]
        if len(fields) != len(channels) or any(f not in ("0", "1") for f in fields):
            raise InstrumentError(
                f"{self._where()}: {command!r} answered {answer!r}, expected "
                f"{len(channels)} values of 0 or 1"
            )
        return [f == "1" for f in fields]

    def safe_state(self) -> None:
        """Nothing at the card level: the bench's relays know each channel's safe position
        (``instruments.relays.Relays.safe_state``)."""
