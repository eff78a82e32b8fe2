"""Typed BMS observations, the same whichever link (Seplos V2, Modbus) produced them.

Values are in the spec's units (V, °C, A with + = charging, Ah, %); parameters and switches
are keyed by spec number (P1 -> 1, S1 -> 1) so a procedure never handles a wire index.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Telemetry:
    """One 0x42 answer (Modbus: PIA and PIB): what the BMS measures.

    ``cell_temp_c`` are T1..T4; ``soc_pct``/``soh_pct`` are the device's own figures. None:
    the link does not report it (the Seplos V3 Modbus layout has no port voltage; its rated
    capacity is the parameter P59).
    """

    cell_v: list[float]
    cell_temp_c: list[float]
    ambient_c: float | None
    power_c: float | None
    current_a: float | None
    pack_v: float | None
    port_v: float | None
    remaining_ah: float | None
    full_ah: float | None
    rated_ah: float | None
    soc_pct: float | None
    cycles: int | None
    soh_pct: float | None


@dataclass(frozen=True)
class Status:
    """One 0x44 answer: alarms, protections, FET and system states.

    ``flags`` holds every flag name of ``test_plans/status_flags.yaml`` the link reports
    (True = set): all of them on Seplos V2; on Modbus those of the register map, so a flag
    the link does not report is absent, never False. Levels: 0 normal, 1 below the lower
    limit, 2 above the upper limit, 0xF0 other fault; None (current, voltage on Modbus) and
    an empty list: not reported.
    """

    flags: dict[str, bool]
    charge_fet: bool
    discharge_fet: bool
    current_limit_fet: bool
    heater: bool
    balancing: list[bool]
    disconnected: list[bool]
    system_states: list[str]
    cell_levels: list[int]
    temperature_levels: list[int]
    current_level: int | None
    voltage_level: int | None

    def active(self) -> list[str]:
        """Names of the flags that are set, in table order."""
        return [name for name, on in self.flags.items() if on]


@dataclass
class ParameterBlock:
    """The whole parameter block (0x47 read / 0xA1 write): 87 values, 64 switches, model name.

    ``values`` in spec units by parameter number; ``switches`` True = enabled, by number.
    """

    values: dict[int, float]
    switches: dict[int, bool]
    model_name: str
    group: int = 0

    def copy(self) -> ParameterBlock:
        return ParameterBlock(dict(self.values), dict(self.switches), self.model_name, self.group)


@dataclass(frozen=True)
class DeviceInfo:
    """0x51: device name, software version ("16.4") and manufacturer string."""

    name: str
    version: str
    manufacturer: str


@dataclass(frozen=True)
class HistoryRecord:
    """One 0x4B record, kept raw because the layout is not documented by a capture."""

    index: int
    raw: bytes = field(repr=False)
