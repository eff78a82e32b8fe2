"""Typed BMS observations, the same whichever link (Seplos V2, Modbus) produced them.

Values are in the spec's units (V, °C, A with + = charging, Ah, %); parameters and switches
are keyed by spec number (P1 -> 1, S1 -> 1) so a procedure never handles a wire index.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Telemetry:
    """One 0x42 answer: what the BMS measures.

    ``cell_temp_c`` are T1..T4; ``soc_pct``/``soh_pct`` are the device's own figures.
    """

    cell_v: list[float]
    cell_temp_c: list[float]
    ambient_c: float
    power_c: float
    current_a: float
    pack_v: float
    port_v: float
    remaining_ah: float
    full_ah: float
    rated_ah: float
    soc_pct: float
    cycles: int
    soh_pct: float


@dataclass(frozen=True)
class Status:
    """One 0x44 answer: alarms, protections, FET and system states.

    ``flags`` holds every flag name of ``test_plans/status_flags.yaml`` (True = set), so
    ``status.flags["cell_overvoltage_protection"]`` never raises KeyError for a known name.
    Levels: 0 normal, 1 below the lower limit, 2 above the upper limit, 0xF0 other fault.
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
    current_level: int
    voltage_level: int

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
