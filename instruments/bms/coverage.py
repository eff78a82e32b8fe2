"""What a BMS link reports and sets, for the plan: a case that needs a flag, a parameter, a
switch, a telemetry value or an operation its bench's link does not carry is untestable on
that bench, with the reason (``harness/plan/link.py``). The Seplos V2 link carries the whole
spec (no coverage: None); the Modbus link carries what its register map holds
(``instruments.bms.modbus_map.coverage``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkCoverage:
    """``parameters``: spec number -> the step the link keeps the row in (spec unit);
    ``telemetry``: fields of ``instruments.bms.types.Telemetry`` it reports; ``operations``:
    of ``device_info``, ``control`` (0x45), ``history`` (0x4B), those it offers."""

    link: str
    flags: frozenset[str]
    parameters: Mapping[int, float]
    switches: frozenset[int]
    telemetry: frozenset[str]
    operations: frozenset[str]
