"""Raw Modbus values (by address) -> the typed BMS objects, through the register map: the
decoding half of the Modbus link, kept apart from its transaction policy."""

from __future__ import annotations

import re
from typing import Any

from instruments.bms.modbus_map import Register, RegisterMap, Text, from_spec_unit, to_spec_unit
from instruments.bms.types import DeviceInfo, ParameterBlock, Status, Telemetry

_INDEXED = re.compile(r"^(?P<base>[\w.]+)\[(?P<index>\d+)\]$")

#: Per-cell coil sources (``base[i]``) the status decodes.
PER_CELL = ("cell_low", "cell_high", "temperature_low", "temperature_high", "balancing")


def telemetry(regmap: RegisterMap, raw: dict[int, int], rated_ah: float | None) -> Telemetry:
    fields: dict[str, float] = {}
    lists: dict[str, dict[int, float]] = {}
    for reg in regmap.telemetry():
        value = reg.decode(raw[reg.address])
        source = reg.source.removeprefix("measurements.")
        if m := _INDEXED.match(source):
            lists.setdefault(m["base"], {})[int(m["index"])] = value
        else:
            fields[source] = value
    cells = [lists["cell_v"][i] for i in sorted(lists.get("cell_v", {}))]
    temps = lists.get("temps_c", {})

    def temp(i: int) -> float | None:
        return round(temps[i], 1) if i in temps else None

    def field(name: str, digits: int) -> float | None:
        return round(fields[name], digits) if name in fields else None

    return Telemetry(
        cell_v=[round(v, 3) for v in cells],
        cell_temp_c=[t for t in (temp(i) for i in range(4)) if t is not None],
        ambient_c=temp(4),
        power_c=temp(5),
        current_a=field("current_a", 2),
        pack_v=field("pack_v", 2),
        port_v=field("port_v", 2),
        remaining_ah=field("remaining_ah", 2),
        full_ah=field("full_ah", 2),
        rated_ah=rated_ah,
        soc_pct=field("soc_pct", 1),
        cycles=int(fields["cycles"]) if "cycles" in fields else None,
        soh_pct=field("soh_pct", 1),
    )


def status(regmap: RegisterMap, bits: dict[int, bool], spec: Any) -> Status:
    """The flags the map carries (an absent name: not reported by this link, never False),
    the FETs, the per-cell bits and the levels V3 reports (cells: 1 low / 2 high; the four
    cell NTCs likewise)."""
    named = {name: bits[b.address] for name, b in regmap.flags().items()}
    flags = {n: named[n] for n in spec.flag_names if n in named}
    per: dict[str, dict[int, bool]] = {base: {} for base in PER_CELL}
    for b in regmap.status_bits():
        if (m := _INDEXED.match(b.source)) and m["base"] in per:
            per[m["base"]][int(m["index"])] = bits[b.address]

    def listed(base: str) -> list[bool]:
        return [v for _, v in sorted(per[base].items())]

    def levels(low: str, high: str) -> list[int]:
        return [2 if h else 1 if lo else 0 for lo, h in zip(listed(low), listed(high), strict=True)]

    system = [f.name for f in spec.flags if f.offset == 38 and flags.get(f.name)]
    return Status(
        flags=flags,
        charge_fet=flags["charge_fet"],
        discharge_fet=flags["discharge_fet"],
        current_limit_fet=flags["current_limit_fet"],
        heater=flags["heater"],
        balancing=listed("balancing"),
        disconnected=[],  # V3 reports one open-wire bit, not which cell
        system_states=system,
        cell_levels=levels("cell_low", "cell_high"),
        temperature_levels=levels("temperature_low", "temperature_high"),
        current_level=None,
        voltage_level=None,
    )


def parameters(regmap: RegisterMap, raw: dict[int, int], spec: Any, switches: dict[int, bool]):
    values = {
        n: to_spec_unit(reg, reg.decode(raw[reg.address]), spec.param(n).unit)
        for n, reg in regmap.parameters().items()
    }
    values = {n: round(v, 6) for n, v in values.items()}
    return ParameterBlock(values=values, switches=switches, model_name="")


def encode_parameter(reg: Register, value: float, spec_unit: str) -> int:
    return reg.encode(round(from_spec_unit(reg, value, spec_unit), 9))


def text(entry: Text, raw: dict[int, int]) -> bytes:
    out = bytearray()
    for a in range(entry.address, entry.address + entry.registers):
        out += int(raw[a]).to_bytes(2, "big")
    return bytes(out)


def version(data: bytes) -> str:
    """VIA's firmware version: two characters, "15" = 1.5 (what public clients show); a
    byte that is no ASCII digit is read as its number ((16, 4) = 16.4)."""
    parts = [chr(b) if 0x30 <= b <= 0x39 else str(b) for b in data[:2]]
    return ".".join(parts)


def device_info(regmap: RegisterMap, raw: dict[int, int]) -> DeviceInfo:
    by_source = {t.source: text(t, raw) for t in regmap.text}

    def ascii_of(source: str) -> str:
        return by_source.get(source, b"").split(b"\0", 1)[0].decode("ascii", "replace")

    return DeviceInfo(
        name=ascii_of("device_info.name"),
        version=version(by_source.get("device_info.version", b"")),
        manufacturer=ascii_of("device_info.manufacturer"),
    )
