"""``ModbusLink``: the BMS over Modbus RTU or TCP (pymodbus 3.16), on a register map file.

The map (``test_plans/modbus_registers.yaml``) says where each quantity lives; this module
knows no address. Tables: input registers = telemetry, discrete inputs = 0x44 flags and
per-cell bits, holding registers = the 87 parameters (raw wire encoding), coils = the 64
switches. It decodes into the same typed objects as the Seplos link.

What the map does not carry is refused with ``BmsLinkError`` naming it (device info,
protocol version, 0x45 control, history, alarm levels are reported as not available), never
faked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import TEST_PLANS_DIR
from instruments.bms.types import DeviceInfo, HistoryRecord, ParameterBlock, Status, Telemetry
from instruments.bmslink import BmsLink, ControlAction, ControlItem
from instruments.errors import BmsLinkError, BmsRejected

REGISTER_MAP = TEST_PLANS_DIR / "modbus_registers.yaml"
MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000

EXCEPTIONS = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target failed to respond",
}


@dataclass(frozen=True)
class Register:
    """One 16-bit register: value = (raw - offset) * scale, raw two's complement if signed."""

    address: int
    name: str
    source: str
    scale: float = 1.0
    offset: int = 0
    signed: bool = False

    def decode(self, raw: int) -> float:
        if self.signed and raw >= 0x8000:
            raw -= 0x10000
        return (raw - self.offset) * self.scale


@dataclass(frozen=True)
class Bit:
    """One coil or discrete input."""

    address: int
    name: str
    source: str


@dataclass(frozen=True)
class RegisterMap:
    """The four tables of a register map file."""

    input_registers: list[Register]
    discrete_inputs: list[Bit]
    holding_registers: list[Register]
    coils: list[Bit]
    device_id: int = 1

    def by_source(self, table: Iterable[Any]) -> dict[str, Any]:
        return {entry.source: entry for entry in table}


def load_register_map(path: Path | str = REGISTER_MAP) -> RegisterMap:
    """Read a register map file; raise ``ValueError`` naming file, table, row and key."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def rows(table: str, kind: type) -> list[Any]:
        out = []
        for i, row in enumerate(data.get(table) or []):
            fields = {k: row[k] for k in ("address", "name", "source") if k in row}
            if kind is Register:
                fields |= {k: row[k] for k in ("scale", "offset", "signed") if k in row}
            try:
                out.append(kind(**fields))
            except TypeError as exc:
                raise ValueError(f"{path}: {table}[{i}] {row!r}: {exc}") from None
        return out

    return RegisterMap(
        input_registers=rows("input_registers", Register),
        discrete_inputs=rows("discrete_inputs", Bit),
        holding_registers=rows("holding_registers", Register),
        coils=rows("coils", Bit),
        device_id=int(data.get("device_id", 1)),
    )


def runs(addresses: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """Contiguous (start, count) runs covering ``addresses``, each at most ``limit`` long."""
    out: list[tuple[int, int]] = []
    for address in sorted(set(addresses)):
        if out and address == out[-1][0] + out[-1][1] and out[-1][1] < limit:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((address, 1))
    return out


_INDEXED = re.compile(r"^(?P<base>[\w.]+)\[(?P<index>\d+)\]$")


class ModbusLink(BmsLink):
    """One BMS over Modbus. ``port``: a serial device for RTU; ``host:port`` (optionally
    ``tcp://`` or ``socket://``) for TCP."""

    def __init__(
        self,
        port: str,
        *,
        transport: str = "rtu",
        baud: int = 19200,
        address: int = 0,
        timeout_s: float = 0.5,
        retries: int = 3,
        spec: Any = None,
        register_map: RegisterMap | None = None,
        client: Any = None,
    ) -> None:
        if spec is None:
            from harness.spec import load_spec

            spec = load_spec()
        self.spec = spec
        self.map = register_map or load_register_map()
        self.address = address
        self.port_name = port
        self._check_map()
        self.client = client or self._connect(port, transport, baud, timeout_s, retries)

    def _connect(self, port: str, transport: str, baud: int, timeout_s: float, retries: int):
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient

        if transport == "tcp":
            host, _, tcp_port = re.sub(r"^(tcp|socket)://", "", port).rpartition(":")
            client = ModbusTcpClient(host, port=int(tcp_port), timeout=timeout_s, retries=retries)
        elif transport == "rtu":
            client = ModbusSerialClient(
                port,
                baudrate=baud,
                bytesize=8,
                parity="N",
                stopbits=1,
                timeout=timeout_s,
                retries=retries,
            )
        else:
            raise BmsLinkError(f"unknown Modbus transport {transport!r} (rtu or tcp)")
        if not client.connect():
            raise BmsLinkError(f"cannot connect Modbus {transport} to {port}")
        return client

    def _check_map(self) -> None:
        """Fail at open, not mid-test, when the map lacks something the typed objects need."""
        flags = {b.source for b in self.map.discrete_inputs}
        missing = [f"flag.{n}" for n in self.spec.flag_names if f"flag.{n}" not in flags]
        params = {r.source for r in self.map.holding_registers}
        missing += [
            f"parameter.P{p.number}"
            for p in self.spec.parameters
            if f"parameter.P{p.number}" not in params
        ]
        coils = {c.source for c in self.map.coils}
        missing += [
            f"switch.S{s.number}" for s in self.spec.switches if f"switch.S{s.number}" not in coils
        ]
        if missing:
            raise BmsLinkError(
                f"the Modbus register map lacks {', '.join(missing[:8])}"
                + (" ..." if len(missing) > 8 else "")
            )

    # -- wire --------------------------------------------------------------------------

    def _call(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        from pymodbus.exceptions import ModbusException

        try:
            response = getattr(self.client, method)(*args, device_id=self.address, **kwargs)
        except ModbusException as exc:
            raise BmsLinkError(f"{name} over Modbus {self.port_name}: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", 0)
            raise BmsRejected(name, code, EXCEPTIONS.get(code, "unknown exception"))
        return response

    def _read_registers(self, name: str, method: str, table: list[Register]) -> dict[int, int]:
        values: dict[int, int] = {}
        for start, count in runs([r.address for r in table], MAX_REGISTERS_PER_READ):
            response = self._call(name, method, start, count=count)
            if len(response.registers) < count:
                raise BmsLinkError(
                    f"{name}: asked {count} registers at 0x{start:04X}, "
                    f"got {len(response.registers)}"
                )
            values.update(zip(range(start, start + count), response.registers, strict=False))
        return values

    def _read_bits(self, name: str, method: str, table: list[Bit]) -> dict[int, bool]:
        values: dict[int, bool] = {}
        for start, count in runs([b.address for b in table], MAX_BITS_PER_READ):
            response = self._call(name, method, start, count=count)
            values.update(zip(range(start, start + count), response.bits[:count], strict=True))
        return values

    # -- BmsLink -----------------------------------------------------------------------

    def telemetry(self) -> Telemetry:
        raw = self._read_registers("telemetry", "read_input_registers", self.map.input_registers)
        fields: dict[str, Any] = {}
        lists: dict[str, dict[int, float]] = {}
        for reg in self.map.input_registers:
            value = reg.decode(raw[reg.address])
            source = reg.source.removeprefix("measurements.")
            if m := _INDEXED.match(source):
                lists.setdefault(m["base"], {})[int(m["index"])] = value
            else:
                fields[source] = value
        cells = [lists["cell_v"][i] for i in sorted(lists["cell_v"])]
        temps = [lists["temps_c"][i] for i in sorted(lists["temps_c"])]
        return Telemetry(
            cell_v=[round(v, 3) for v in cells],
            cell_temp_c=[round(t, 1) for t in temps[:4]],
            ambient_c=round(temps[4], 1),
            power_c=round(temps[5], 1),
            current_a=round(fields["current_a"], 2),
            pack_v=round(fields["pack_v"], 2),
            port_v=round(fields["port_v"], 2),
            remaining_ah=round(fields["remaining_ah"], 2),
            full_ah=round(fields["full_ah"], 2),
            rated_ah=round(fields["rated_ah"], 2),
            soc_pct=fields["soc_permille"] / 10.0,
            cycles=int(fields["cycles"]),
            soh_pct=fields["soh_permille"] / 10.0,
        )

    def status(self) -> Status:
        bits = self._read_bits("status", "read_discrete_inputs", self.map.discrete_inputs)
        named: dict[str, bool] = {}
        per_cell: dict[str, dict[int, bool]] = {"balancing": {}, "disconnected": {}}
        for bit in self.map.discrete_inputs:
            if bit.source.startswith("flag."):
                named[bit.source.removeprefix("flag.")] = bits[bit.address]
            elif m := _INDEXED.match(bit.source):
                per_cell.setdefault(m["base"], {})[int(m["index"])] = bits[bit.address]
        flags = {name: named[name] for name in self.spec.flag_names}
        system = [f.name for f in self.spec.flags if f.offset == 38 and flags[f.name]]
        return Status(
            flags=flags,
            charge_fet=flags["charge_fet"],
            discharge_fet=flags["discharge_fet"],
            current_limit_fet=flags["current_limit_fet"],
            heater=flags["heater"],
            balancing=[v for _, v in sorted(per_cell["balancing"].items())],
            disconnected=[v for _, v in sorted(per_cell["disconnected"].items())],
            system_states=system,
            # The register map carries no alarm levels: empty, not invented.
            cell_levels=[],
            temperature_levels=[],
            current_level=0,
            voltage_level=0,
        )

    def read_parameters(self) -> ParameterBlock:
        raw = self._read_registers(
            "read parameters", "read_holding_registers", self.map.holding_registers
        )
        coils = self._read_bits("read switches", "read_coils", self.map.coils)
        values = {}
        for reg in self.map.holding_registers:
            number = int(reg.source.removeprefix("parameter.P"))
            values[number] = self.spec.param(number).decode(raw[reg.address])
        switches = {
            int(c.source.removeprefix("switch.S")): coils[c.address] for c in self.map.coils
        }
        return ParameterBlock(values=values, switches=switches, model_name="")

    def write_block(self, block: ParameterBlock) -> None:
        by_address = {}
        for reg in self.map.holding_registers:
            number = int(reg.source.removeprefix("parameter.P"))
            by_address[reg.address] = self.spec.param(number).encode(block.values[number])
        for start, count in runs(list(by_address), MAX_REGISTERS_PER_READ):
            values = [by_address[a] for a in range(start, start + count)]
            self._call("write parameters", "write_registers", start, values)
        coil_values = {
            c.address: block.switches[int(c.source.removeprefix("switch.S"))]
            for c in self.map.coils
        }
        for start, count in runs(list(coil_values), MAX_BITS_PER_READ):
            values = [coil_values[a] for a in range(start, start + count)]
            self._call("write switches", "write_coils", start, values)

    def resolution(self, number: int) -> float:
        return float(self.spec.param(number).encoding.scale)

    def set_remaining_capacity(self, ah: float) -> None:
        reg = self.map.by_source(self.map.holding_registers).get("parameter.P60")
        if reg is None:
            raise BmsLinkError("the Modbus register map has no remaining capacity (P60)")
        self._call(
            "set remaining capacity", "write_register", reg.address, self.spec.param(60).encode(ah)
        )

    def _not_in_map(self, what: str) -> BmsLinkError:
        return BmsLinkError(f"{what} is not available over Modbus (not in {REGISTER_MAP.name})")

    def protocol_version(self) -> str:
        raise self._not_in_map("protocol version")

    def device_info(self) -> DeviceInfo:
        raise self._not_in_map("device info")

    def control(self, item: ControlItem | int, action: ControlAction | int) -> None:
        raise self._not_in_map("control (0x45)")

    def history_record(self, index: int = 0) -> HistoryRecord | None:
        raise self._not_in_map("history records")

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing must not mask the error that led here
            pass
