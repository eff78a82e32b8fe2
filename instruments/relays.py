"""``Relays``: the hand-steps a bench wires to relays, as procedures see them.

A bench file's ``relays`` mapping names each relay after the hand-step it stands in for
(``button``, ``bms_power``, ``power_switch``, ``secondary_trip``, ``short_circuit``,
``connection_fault``) and says where it is (an instrument of the relay role and a channel)
and which position is safe. Procedures speak the lab's words:

* ``activate(name)``: the step is in force (the button pressed, the supply cut, the short
  applied), that is the position that is *not* safe; ``release(name)``: back to safe;
* ``close(name)`` / ``open(name)`` / ``is_closed(name)``: the contact itself;
* ``safe_state()``: every relay to its safe position, each attempted even if one fails.

Relays are setpoints: a name the bench does not wire is refused (``UnknownRelay``) before
anything is sent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from instruments.errors import EnvelopeError, InstrumentError

#: Every hand-step a relay may stand in for (the bench file's ``relays`` keys).
RELAY_NAMES = (
    "button",
    "bms_power",
    "power_switch",
    "secondary_trip",
    "short_circuit",
    "connection_fault",
)


class UnknownRelay(EnvelopeError):
    """A relay name the bench does not wire; nothing was sent."""


class RelayCard(ABC):
    """A switch card that closes and opens numbered channels (driver level)."""

    @abstractmethod
    def close_channels(self, channels: Sequence[int]) -> None:
        """Close the contacts of ``channels``."""

    @abstractmethod
    def open_channels(self, channels: Sequence[int]) -> None:
        """Open the contacts of ``channels``."""

    @abstractmethod
    def closed_channels(self, channels: Sequence[int]) -> list[bool]:
        """Whether each of ``channels`` is closed (the card's read-back)."""

    def check_channel(self, channel: int) -> None:  # noqa: B027 - optional hook
        """Raise ``ValueError`` for a channel this card does not have."""


@dataclass(frozen=True)
class RelayWiring:
    """One relay: the card and channel it is on, its safe position, what it inserts."""

    name: str
    card: RelayCard
    channel: int
    safe_closed: bool = False
    #: Connection-fault relay: the series resistance it inserts (ohm) and in which cell lead.
    ohm: float | None = None
    cell: int | None = None


class Relays(ABC):
    """Relays by hand-step name. ``close``/``open``/``is_closed`` are the contact; the
    ``activate``/``release``/``is_active`` helpers follow each relay's safe position."""

    @property
    @abstractmethod
    def names(self) -> list[str]:
        """The hand-steps this bench wires to a relay, in the bench file's order."""

    @abstractmethod
    def close(self, name: str) -> None:
        """Close the relay's contact."""

    @abstractmethod
    def open(self, name: str) -> None:
        """Open the relay's contact."""

    @abstractmethod
    def is_closed(self, name: str) -> bool:
        """The contact as the card reports it."""

    @abstractmethod
    def safe_closed(self, name: str) -> bool:
        """True when the relay's safe position is closed (bench file ``safe: closed``)."""

    def wiring(self, name: str) -> RelayWiring | None:
        """The relay's wiring (``ohm``/``cell`` for the connection fault), if known."""
        return None

    def has(self, name: str) -> bool:
        return name in self.names

    def activate(self, name: str) -> None:
        """The step in force: the position that is not the safe one."""
        if self.safe_closed(name):
            self.open(name)
        else:
            self.close(name)

    def release(self, name: str) -> None:
        """The step over: the relay back in its safe position."""
        if self.safe_closed(name):
            self.close(name)
        else:
            self.open(name)

    def is_active(self, name: str) -> bool:
        return self.is_closed(name) != self.safe_closed(name)

    def safe_state(self) -> None:
        """Every relay to its safe position; each one attempted even if another fails, then
        the positions read back. Raises ``InstrumentError`` listing every failure."""
        failures: list[str] = []
        for name in self.names:
            try:
                self.release(name)
            except Exception as exc:  # noqa: BLE001 - every relay must be attempted
                failures.append(f"relay {name}: {exc}")
        try:
            wrong = [name for name in self.names if self.is_active(name)]
        except Exception as exc:  # noqa: BLE001 - said with the rest
            failures.append(f"relays read-back: {exc}")
        else:
            failures += [f"relay {name} not in its safe position after release" for name in wrong]
        if failures:
            raise InstrumentError("; ".join(failures))


class BenchRelays(Relays):
    """The bench's relays over one or more relay cards (``Relays`` by wiring)."""

    def __init__(self, wirings: Iterable[RelayWiring]) -> None:
        self._wiring: dict[str, RelayWiring] = {}
        seen: dict[tuple[int, int], str] = {}
        for w in wirings:
            if w.name not in RELAY_NAMES:
                raise ValueError(f"unknown relay {w.name!r}; known: {', '.join(RELAY_NAMES)}")
            w.card.check_channel(w.channel)
            key = (id(w.card), w.channel)
            if key in seen:
                raise ValueError(f"relays {seen[key]} and {w.name} share channel {w.channel}")
            seen[key] = w.name
            self._wiring[w.name] = w

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], cards: Mapping[str, RelayCard]
    ) -> BenchRelays:
        """From a bench file's ``relays`` (entries with ``instrument``, ``channel``,
        ``safe``, ``ohm``, ``cell``) and the open relay cards by instrument name."""
        wirings = []
        for name, entry in mapping.items():
            wirings.append(
                RelayWiring(
                    name=name,
                    card=cards[_field(entry, "instrument")],
                    channel=int(_field(entry, "channel")),
                    safe_closed=_field(entry, "safe", "open") == "closed",
                    ohm=_field(entry, "ohm"),
                    cell=_field(entry, "cell"),
                )
            )
        return cls(wirings)

    def _get(self, name: str) -> RelayWiring:
        try:
            return self._wiring[name]
        except KeyError:
            known = ", ".join(self._wiring) or "none"
            raise UnknownRelay(
                f"relay {name!r} refused: the bench wires no such relay (relays: {known}); "
                "nothing was sent"
            ) from None

    @property
    def names(self) -> list[str]:
        return list(self._wiring)

    def wiring(self, name: str) -> RelayWiring:
        return self._get(name)

    def safe_closed(self, name: str) -> bool:
        return self._get(name).safe_closed

    def close(self, name: str) -> None:
        w = self._get(name)
        w.card.close_channels([w.channel])

    def open(self, name: str) -> None:
        w = self._get(name)
        w.card.open_channels([w.channel])

    def is_closed(self, name: str) -> bool:
        w = self._get(name)
        return bool(w.card.closed_channels([w.channel])[0])


def _field(entry: Any, key: str, default: Any = None) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(key, default)
    return getattr(entry, key, default)
