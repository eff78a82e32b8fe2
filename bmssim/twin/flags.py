"""Where each 0x44 flag lives (offset into the 0x44 INFO, bit), for the history records.

The names are those of ``test_plans/status_flags.yaml``; the twin takes the layout from
``spec.flags`` when the loader provides it and falls back to the table of
docs/ARCHITECTURE.md otherwise, so a record encodes exactly like a 0x44 answer.
"""

from __future__ import annotations

from typing import Any

ARCHITECTURE_LAYOUT: dict[int, tuple[str | None, ...]] = {
    29: (
        "voltage_sensor_fault",
        "temperature_sensor_fault",
        "current_sensor_fault",
        "button_fault",
        "cell_difference_fault",
        "charge_fet_fault",
        "discharge_fet_fault",
        "current_limit_fet_fault",
    ),
    30: (
        "cell_high_voltage_alarm",
        "cell_overvoltage_protection",
        "cell_low_voltage_alarm",
        "cell_undervoltage_protection",
        "pack_high_voltage_alarm",
        "pack_overvoltage_protection",
        "pack_low_voltage_alarm",
        "pack_undervoltage_protection",
    ),
    31: (
        "charge_high_temperature_alarm",
        "charge_overtemperature_protection",
        "charge_low_temperature_alarm",
        "charge_undertemperature_protection",
        "discharge_high_temperature_alarm",
        "discharge_overtemperature_protection",
        "discharge_low_temperature_alarm",
        "discharge_undertemperature_protection",
    ),
    32: (
        "ambient_high_temperature_alarm",
        "ambient_overtemperature_protection",
        "ambient_low_temperature_alarm",
        "ambient_undertemperature_protection",
        "power_overtemperature_protection",
        "power_high_temperature_alarm",
        "cell_heating",
        "secondary_trip_protection",
    ),
    33: (
        "charge_overcurrent_alarm",
        "charge_overcurrent_protection",
        "discharge_overcurrent_alarm",
        "discharge_overcurrent_protection",
        "transient_overcurrent_protection",
        "output_short_circuit_protection",
        "transient_overcurrent_lockout",
        "output_short_circuit_lockout",
    ),
    34: (
        "charger_overvoltage_protection",
        "gap_compensation_waiting",
        "remaining_capacity_alarm",
        "remaining_capacity_protection",
        "low_voltage_charge_prohibition",
        "output_reverse_protection",
        "output_connection_fault",
        "event6_internal",
    ),
    35: ("discharge_fet", "charge_fet", "current_limit_fet", "heater"),
    38: ("discharging", "charging", "float_charging", "fully_charged", "standby", "shutdown"),
    41: (None, None, None, None, "waiting_auto_activation", "waiting_manual_activation"),
    42: (
        "eeprom_fault",
        "rtc_fault",
        "voltage_calibration_missing",
        "current_calibration_missing",
        "zero_calibration_missing",
        "calendar_not_synchronised",
    ),
}


def flag_layout(spec: Any) -> dict[str, tuple[int, int]]:
    """name -> (offset, bit), from ``spec.flags`` if present, else ARCHITECTURE.md."""
    flags = getattr(spec, "flags", None)
    if flags:
        return {str(f.name): (int(f.offset), int(f.bit)) for f in flags}
    out: dict[str, tuple[int, int]] = {}
    for offset, names in ARCHITECTURE_LAYOUT.items():
        for bit, name in enumerate(names):
            if name is not None:
                out[name] = (offset, bit)
    return out


def flag_bytes(flags: set[str], layout: dict[str, tuple[int, int]]) -> dict[int, int]:
    """offset -> byte value for the set ``flags``."""
    out: dict[int, int] = {}
    for name in flags:
        pos = layout.get(name)
        if pos is None:
            continue
        offset, bit = pos
        out[offset] = out.get(offset, 0) | (1 << bit)
    return out
