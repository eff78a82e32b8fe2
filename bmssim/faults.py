"""Firmware deviations and link faults injected into the simulated bench.

A harness is only as good as the failures it can see, so the simulator can be told to
misbehave the way real firmware does: act at the wrong threshold, late, not at all, without
reporting, or never recover. The twin consults :class:`Faults` at every decision point; the
protocol servers read ``Faults.link`` before every reply.

File format (``--sim-faults FILE`` or the control channel's ``faults`` request)::

    firmware:
      - {item: P5, kind: offset, value: 0.050}   # acts at configured + 0.050 V
      - {item: P67, kind: scale, value: 1.5}     # the delay acts after configured x 1.5
      - {item: S10, kind: ignored}               # the switch has no effect
      - {item: P1, kind: no_flag}                # acts, never reports
      - {item: P5, kind: no_action}              # reports, the FET stays closed
      - {item: P5, kind: latch}                  # never recovers
      - {item: P5, kind: channel_ignored, channel: 16}  # that cell / NTC is never seen
      - {item: P25, kind: condition_ignored}     # acts in any operating condition
      - {item: P47, kind: extra_action, value: both}    # also opens charge|discharge|both
      - {item: P43, kind: wrong_fet, value: discharge}  # opens only this FET instead
      - {item: P24, kind: no_hysteresis}         # recovers at the trip value
      - {item: P67, kind: timer_not_reset}       # the delay keeps counting on a fall-back
    telemetry:                                   # what the device reports, not what it acts on
      - {quantity: cell_voltage, channel: 7, kind: offset, value: 0.030}
      - {quantity: current, kind: scale, value: -1.0}
    link: {drop_every: 0, corrupt_every: 0, late_every: 0, late_s: 0.0}
    mutant: scan_skips_cell16                    # a mutant of the twin (bmssim/twin/mutants.py)

Items are ``P1``..``P87``, ``S1``..``S64`` or a slug id of the spec tables. Which of the
function kinds (``channel_ignored`` .. ``timer_not_reset``) apply to which parameter is
decided by the twin's tables (``bmssim/twin/deviations.py``); any other pairing is refused
with the file, the entry, the item and the kind.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: kind -> what it needs: "value" (a number), "fet" (a FET name), "channel", or None.
FIRMWARE_KINDS: dict[str, str | None] = {
    "offset": "value",
    "scale": "value",
    "ignored": None,
    "no_flag": None,
    "no_action": None,
    "latch": None,
    "channel_ignored": "channel",
    "condition_ignored": None,
    "extra_action": "fet",
    "wrong_fet": "fet",
    "no_hysteresis": None,
    "timer_not_reset": None,
}
#: Kinds that make sense for a switch item; the others need a parameter. A switch with
#: no_flag / no_action / latch applies to the functions the switch governs.
SWITCH_KINDS = {"ignored", "no_flag", "no_action", "latch"}
PARAM_KINDS = set(FIRMWARE_KINDS) - {"ignored"}

#: Telemetry deviations: quantity -> its channels (None: it has none).
TELEMETRY_QUANTITIES: dict[str, int | None] = {
    "cell_voltage": 16,
    "cell_temperature": 4,
    "ambient_temperature": None,
    "power_temperature": None,
    "current": None,
    "pack_voltage": None,
    "soc": None,  # in %-points (the device reports per mille)
}
TELEMETRY_KINDS = ("offset", "scale")

LINK_KEYS = ("drop_every", "corrupt_every", "late_every", "late_s")

_ITEM_RE = re.compile(r"^([PS])(\d{1,2})$", re.IGNORECASE)


@dataclass(frozen=True)
class FirmwareFault:
    """One firmware deviation: ``item`` is ``("P", 5)`` or ``("S", 10)``."""

    kind: str
    item: tuple[str, int]
    value: float | str | None = None
    channel: int | None = None

    @property
    def label(self) -> str:
        return f"{self.item[0]}{self.item[1]}"


@dataclass(frozen=True)
class TelemetryFault:
    """A deviation of what the device reports: ``quantity`` (channel 1-based, None for
    current and pack voltage) reported as value + ``value`` (offset) or x ``value`` (scale)."""

    quantity: str
    kind: str
    value: float
    channel: int | None = None

    def apply(self, reading: float) -> float:
        return reading + self.value if self.kind == "offset" else reading * self.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            **({"channel": self.channel} if self.channel is not None else {}),
            "kind": self.kind,
            "value": self.value,
        }


@dataclass(frozen=True)
class LinkFaults:
    """Reply faults of the BMS link; parsed here, applied by the protocol servers."""

    drop_every: int = 0
    corrupt_every: int = 0
    late_every: int = 0
    late_s: float = 0.0


@dataclass
class Faults:
    """Every fault in force. ``Faults.empty()`` is a healthy device."""

    firmware: list[FirmwareFault] = field(default_factory=list)
    link: LinkFaults = field(default_factory=LinkFaults)
    telemetry: list[TelemetryFault] = field(default_factory=list)
    source: str = "<none>"
    #: Firmware version the device reports (0x51) instead of its factory one: a deviating
    #: build identifies itself, so runs of different builds can be told apart in history.
    version: tuple[int, int] | None = None
    #: A mutant of the twin's logic in force (``bmssim/twin/mutants.py``), None: none.
    mutant: str | None = None

    def __post_init__(self) -> None:
        self._index: dict[tuple[str, str, int], FirmwareFault] = {}
        for f in self.firmware:
            # later entries override earlier ones of the same kind and item
            self._index[(f.kind, f.item[0], f.item[1])] = f

    # ------------------------------------------------------------------ construction

    @classmethod
    def empty(cls) -> Faults:
        return cls()

    @classmethod
    def load(cls, path: str | Path, spec: Any = None) -> Faults:
        """Read a faults YAML file; errors name the file, the entry and the bad value."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from None
        except OSError as exc:
            raise ValueError(f"{path}: cannot read: {exc}") from None
        return cls.from_dict(data or {}, spec, source=str(path))

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, spec: Any = None, *, source: str = "<dict>"
    ) -> Faults:
        """Build from the YAML structure. ``spec`` resolves slug ids; without it only
        ``P<n>``/``S<n>`` items are accepted."""
        if data is None:
            return cls(source=source)
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: top level must be a mapping, got {data!r}")
        unknown = set(data) - {"firmware", "link", "version", "telemetry", "mutant"}
        if unknown:
            raise ValueError(f"{source}: unknown section(s) {sorted(unknown)}")
        version = _parse_version(data.get("version"), source)
        firmware = [
            _parse_entry(entry, i, spec, source)
            for i, entry in enumerate(_as_list(data.get("firmware"), source))
        ]
        link = _parse_link(data.get("link"), source)
        telemetry = [
            _parse_telemetry(entry, i, source)
            for i, entry in enumerate(_as_list(data.get("telemetry"), source, "telemetry"))
        ]
        mutant = _parse_mutant(data.get("mutant"), source)
        return cls(
            firmware=firmware,
            link=link,
            telemetry=telemetry,
            source=source,
            version=version,
            mutant=mutant,
        )

    # ------------------------------------------------------------------ queries

    def get(self, kind: str, prefix: str, number: int) -> FirmwareFault | None:
        return self._index.get((kind, prefix, number))

    def offset(self, param: int) -> float:
        """Offset added to parameter ``param`` in its unit (0.0 when none)."""
        f = self._index.get(("offset", "P", param))
        return float(f.value) if f is not None and f.value is not None else 0.0

    def scale(self, param: int) -> float:
        """Factor applied to parameter ``param`` (1.0 when none)."""
        f = self._index.get(("scale", "P", param))
        return float(f.value) if f is not None and f.value is not None else 1.0

    def deviation(self, kind: str, params: Iterable[int]) -> FirmwareFault | None:
        """The ``kind`` deviation injected on any of ``params`` (the first), or None."""
        for p in params:
            f = self._index.get((kind, "P", p))
            if f is not None:
                return f
        return None

    def ignored_channels(self, params: Iterable[int]) -> frozenset[int]:
        """Channels (1-based) a function on ``params`` does not see (``channel_ignored``)."""
        return frozenset(
            int(f.channel)
            for f in self.firmware
            if f.kind == "channel_ignored" and f.item[0] == "P" and f.item[1] in params
            if f.channel is not None
        )

    def reported(self, quantity: str, value: float, channel: int | None = None) -> float:
        """``value`` of ``quantity`` as the device reports it (telemetry deviations)."""
        for f in self.telemetry:
            if f.quantity == quantity and f.channel == channel:
                value = f.apply(value)
        return value

    def ignored(self, switch: int) -> bool:
        return ("ignored", "S", switch) in self._index

    def has(self, kind: str, params: Iterable[int] = (), switch: int | None = None) -> bool:
        """True if ``kind`` is injected on any of ``params`` or on ``switch``."""
        for p in params:
            if (kind, "P", p) in self._index:
                return True
        return switch is not None and (kind, "S", switch) in self._index

    def __bool__(self) -> bool:
        return (
            bool(self.firmware)
            or bool(self.telemetry)
            or self.link != LinkFaults()
            or self.mutant is not None
        )

    def to_dict(self) -> dict[str, Any]:
        """The YAML structure back (for the snapshot and the control channel)."""
        return {
            "firmware": [
                {
                    "item": f.label,
                    "kind": f.kind,
                    **({"channel": f.channel} if f.channel is not None else {}),
                    **({"value": f.value} if f.value is not None else {}),
                }
                for f in self.firmware
            ],
            **({"telemetry": [t.to_dict() for t in self.telemetry]} if self.telemetry else {}),
            "link": {k: getattr(self.link, k) for k in LINK_KEYS},
            **({"version": f"{self.version[0]}.{self.version[1]}"} if self.version else {}),
            **({"mutant": self.mutant} if self.mutant is not None else {}),
        }


# ---------------------------------------------------------------------- parsing helpers


def _as_list(value: Any, source: str, section: str = "firmware") -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{source}: '{section}' must be a list of entries, got {value!r}")
    return value


def _parse_entry(entry: Any, i: int, spec: Any, source: str) -> FirmwareFault:
    where = f"{source}: firmware[{i}]"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: must be a mapping with item and kind, got {entry!r}")
    extra = set(entry) - {"item", "kind", "value", "channel"}
    if extra:
        raise ValueError(f"{where}: unknown key(s) {sorted(extra)} in {dict(entry)!r}")
    if "item" not in entry or "kind" not in entry:
        raise ValueError(f"{where}: needs 'item' and 'kind', got {dict(entry)!r}")
    kind = entry["kind"]
    if kind not in FIRMWARE_KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r} (one of {sorted(FIRMWARE_KINDS)})")
    item = _resolve_item(entry["item"], spec, where)
    allowed = SWITCH_KINDS if item[0] == "S" else PARAM_KINDS
    if kind not in allowed:
        raise ValueError(
            f"{where}: kind {kind!r} does not apply to {item[0]}{item[1]} "
            f"(a {'switch' if item[0] == 'S' else 'parameter'})"
        )
    needs = FIRMWARE_KINDS[kind]
    if needs != "channel" and "channel" in entry:
        raise ValueError(f"{where}: kind {kind!r} takes no 'channel', got {entry['channel']!r}")
    if kind in _function_kinds():
        return _function_entry(entry, kind, item, where)
    value: float | None = None
    if needs == "value":
        raw = entry.get("value")
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"{where}: kind {kind!r} needs a numeric 'value', got {raw!r}")
        value = float(raw)
        if kind == "scale" and value < 0:
            raise ValueError(f"{where}: scale {value!r} must not be negative")
    elif "value" in entry:
        raise ValueError(f"{where}: kind {kind!r} takes no 'value', got {entry['value']!r}")
    return FirmwareFault(kind=kind, item=item, value=value)


def _function_kinds() -> tuple[str, ...]:
    from bmssim.twin.deviations import FUNCTION_KINDS  # the twin imports this module

    return FUNCTION_KINDS


def _function_entry(
    entry: Mapping[str, Any], kind: str, item: tuple[str, int], where: str
) -> FirmwareFault:
    """One of the kinds that act on a function of the parameter, checked against the twin's
    tables (``bmssim/twin/deviations.py``): the refusal names the item and the kind."""
    from bmssim.twin.deviations import refusal

    needs = FIRMWARE_KINDS[kind]
    if needs is None and "value" in entry:
        raise ValueError(f"{where}: kind {kind!r} takes no 'value', got {entry['value']!r}")
    if needs == "channel" and "value" in entry:
        raise ValueError(f"{where}: kind {kind!r} takes no 'value', got {entry['value']!r}")
    value = entry.get("value") if needs == "fet" else None
    channel = entry.get("channel") if needs == "channel" else None
    reason = refusal(kind, item[1], value, channel)
    if reason is not None:
        raise ValueError(f"{where}: kind {kind!r} does not apply to P{item[1]}: {reason}")
    return FirmwareFault(kind=kind, item=item, value=value, channel=channel)


def _parse_telemetry(entry: Any, i: int, source: str) -> TelemetryFault:
    where = f"{source}: telemetry[{i}]"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: must be a mapping with quantity, kind and value, got {entry!r}")
    extra = set(entry) - {"quantity", "channel", "kind", "value"}
    if extra:
        raise ValueError(f"{where}: unknown key(s) {sorted(extra)} in {dict(entry)!r}")
    missing = [k for k in ("quantity", "kind", "value") if k not in entry]
    if missing:
        raise ValueError(f"{where}: needs {missing} in {dict(entry)!r}")
    quantity = entry["quantity"]
    if quantity not in TELEMETRY_QUANTITIES:
        raise ValueError(
            f"{where}: unknown quantity {quantity!r} (one of {list(TELEMETRY_QUANTITIES)})"
        )
    kind = entry["kind"]
    if kind not in TELEMETRY_KINDS:
        raise ValueError(
            f"{where}: kind {kind!r} does not apply to {quantity} (one of {list(TELEMETRY_KINDS)})"
        )
    count = TELEMETRY_QUANTITIES[quantity]
    channel = entry.get("channel")
    if count is None and channel is not None:
        raise ValueError(f"{where}: {quantity} has no channels, got channel {channel!r}")
    if count is not None and (
        isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= count
    ):
        raise ValueError(f"{where}: {quantity} needs 'channel' 1..{count}, got {channel!r}")
    raw = entry["value"]
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ValueError(f"{where}: kind {kind!r} needs a finite numeric 'value', got {raw!r}")
    return TelemetryFault(quantity=quantity, kind=kind, value=float(raw), channel=channel)


def _resolve_item(raw: Any, spec: Any, where: str) -> tuple[str, int]:
    """``P5``/``S10`` directly; anything else through the spec's slug lookup."""
    if isinstance(raw, str):
        m = _ITEM_RE.match(raw.strip())
        if m:
            prefix, number = m.group(1).upper(), int(m.group(2))
            limit = 87 if prefix == "P" else 64
            if not 1 <= number <= limit:
                raise ValueError(f"{where}: unknown item {raw!r} ({prefix}1..{prefix}{limit})")
            return prefix, number
        if spec is not None:
            for prefix, getter in (("P", spec.param), ("S", spec.switch)):
                try:
                    obj = getter(raw)
                except (KeyError, ValueError, LookupError, TypeError):
                    continue
                if obj is not None:
                    return prefix, int(obj.number)
    raise ValueError(f"{where}: unknown item {raw!r} (P1..P87, S1..S64 or a spec slug id)")


def _parse_mutant(raw: Any, source: str) -> str | None:
    """``mutant: NAME``: one of ``bmssim/twin/mutants.py``, or absent / null."""
    if raw is None:
        return None
    from bmssim.twin.mutants import NAMES  # the twin imports this module

    if isinstance(raw, str) and raw in NAMES:
        return raw
    close = difflib.get_close_matches(str(raw), NAMES, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ValueError(
        f"{source}: mutant: unknown mutant {raw!r} ({hint}{len(NAMES)} known, listed by "
        "`python benchmarks/mutation.py --list`)"
    )


def _parse_link(raw: Any, source: str) -> LinkFaults:
    if raw is None:
        return LinkFaults()
    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: 'link' must be a mapping, got {raw!r}")
    unknown = set(raw) - set(LINK_KEYS)
    if unknown:
        raise ValueError(f"{source}: link: unknown key(s) {sorted(unknown)}")
    values: dict[str, Any] = {}
    for key in LINK_KEYS:
        if key not in raw:
            continue
        v = raw[key]
        if key == "late_s":
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"{source}: link.late_s must be a number >= 0, got {v!r}")
            values[key] = float(v)
        else:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{source}: link.{key} must be an integer >= 0, got {v!r}")
            values[key] = v
    return LinkFaults(**values)


def _parse_version(value: Any, source: str) -> tuple[int, int] | None:
    """``version: "16.5"`` -> (16, 5); each part one byte on the wire (0x51)."""
    if value is None:
        return None
    parts = str(value).split(".")
    try:
        major, minor = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{source}: version: {value!r} is not MAJOR.MINOR (e.g. 16.5)") from None
    if not (0 <= major <= 255 and 0 <= minor <= 255):
        raise ValueError(f"{source}: version: {value!r}: each part must be 0..255")
    return (major, minor)
