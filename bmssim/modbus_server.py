"""Modbus TCP and Modbus RTU endpoints of the simulated BMS on the register map file.

The register map is data: every register's address, name, unit, scale, signedness and
source (a twin measurement, a 0x44 flag by name, a parameter or a switch by spec number)
are written in the YAML file, which the harness's Modbus link reads too. Values are read
from the twin at the moment of each request, never cached, so Modbus and the Seplos V2
endpoint always agree.

Writes of parameters (holding registers) and switches (coils) are a read-modify-write of
the whole parameter block through ``twin.write_block``: the same validation as an 0xA1
write, and a refusal becomes Modbus exception 03 (illegal value).

pymodbus 3.16.1 serves Modbus TCP with :class:`TwinModbusContext` as its datastore (a
``ModbusServerContext`` whose ``async_getValues``/``async_setValues`` go to the twin; the
deprecated ``ModbusDeviceContext``/``SimDevice`` stores hold static register arrays and
cannot). Modbus RTU runs on a pty: pymodbus's serial server opens a device path, but the
simulator owns the pty's master side, which has no path; so the RTU endpoint reads the
master fd itself and uses pymodbus's RTU framer and PDU classes for everything else.

The RTU endpoint paces its line as the Seplos endpoint does (``seplos_server.LinePace``:
request bytes, turnaround and answer bytes at ``baud``, 10 bits per byte, on the virtual
clock or, in real-time mode, as a wall-time hold of the answer). Modbus TCP has no serial
line and is not paced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.server import ModbusTcpServer

from bmssim.seplos_server import DEFAULT_BAUD, LinePace, bms_answers, open_raw_pty
from bmssim.twin.types import ParameterBlock

_log = logging.getLogger(__name__)

DEFAULT_MAP = Path(__file__).resolve().parent.parent / "test_plans" / "modbus_registers.yaml"

COIL_FCS = (1, 5, 15)
DISCRETE_FCS = (2,)
HOLDING_FCS = (3, 6, 16, 22, 23)
INPUT_FCS = (4,)

_INDEXED = re.compile(r"^(?P<name>[a-z_.]+)\[(?P<index>\d+)\]$")


@dataclass(frozen=True)
class Register:
    """One 16-bit register: raw = round(value / scale) + offset."""

    address: int
    name: str
    source: str
    unit: str = ""
    scale: float = 1.0
    offset: int = 0
    signed: bool = False

    def to_raw(self, value: float) -> int:
        """The register content; ValueError if the value does not fit 16 bits."""
        raw = round(value / self.scale) + self.offset
        low, high = (-0x8000, 0x7FFF) if self.signed else (0, 0xFFFF)
        if not low <= raw <= high:
            raise ValueError(f"{self.name} = {value} {self.unit}: raw {raw} outside 16 bits")
        return raw & 0xFFFF

    def from_raw(self, raw: int) -> float:
        if self.signed and raw >= 0x8000:
            raw -= 0x10000
        return (raw - self.offset) * self.scale


@dataclass(frozen=True)
class Bit:
    """One coil or discrete input."""

    address: int
    name: str
    source: str


@dataclass
class RegisterMap:
    """The four tables of the map file, keyed by address."""

    device_id: int
    input_registers: dict[int, Register] = field(default_factory=dict)
    holding_registers: dict[int, Register] = field(default_factory=dict)
    discrete_inputs: dict[int, Bit] = field(default_factory=dict)
    coils: dict[int, Bit] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_MAP, spec: Any = None) -> RegisterMap:
        """Read and check the map; with ``spec``, holding registers must carry each
        parameter's wire encoding and every flag/parameter/switch must exist."""
        path = Path(path)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        regmap = cls(device_id=int(data["device_id"]))

        def where(table: str, i: int, row: dict[str, Any]) -> str:
            return f"{path.name}: {table}[{i}] ({row.get('name')!r})"

        for table in ("input_registers", "holding_registers"):
            target: dict[int, Register] = getattr(regmap, table)
            for i, row in enumerate(data.get(table) or []):
                try:
                    reg = Register(
                        address=int(row["address"]),
                        name=str(row["name"]),
                        source=str(row["source"]),
                        unit=str(row.get("unit", "")),
                        scale=float(row.get("scale", 1)),
                        offset=int(row.get("offset", 0)),
                        signed=bool(row.get("signed", False)),
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"{where(table, i, row)}: {exc}") from None
                if reg.address in target:
                    raise ValueError(f"{where(table, i, row)}: address {reg.address:#06x} twice")
                target[reg.address] = reg
        for table in ("discrete_inputs", "coils"):
            bits: dict[int, Bit] = getattr(regmap, table)
            for i, row in enumerate(data.get(table) or []):
                try:
                    bit = Bit(int(row["address"]), str(row["name"]), str(row["source"]))
                except (KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"{where(table, i, row)}: {exc}") from None
                if bit.address in bits:
                    raise ValueError(f"{where(table, i, row)}: address {bit.address:#06x} twice")
                bits[bit.address] = bit
        if spec is not None:
            regmap.check_against(spec, path.name)
        return regmap

    def check_against(self, spec: Any, filename: str = "modbus_registers.yaml") -> None:
        """Refuse a map that disagrees with the spec tables (a stale map would otherwise
        serve wrong values without anyone noticing)."""
        flag_names = {f.name for f in spec.flags}
        for reg in self.holding_registers.values():
            p = spec.param(_number(reg.source, "parameter.P"))
            enc = p.encoding
            mine = (reg.scale, reg.offset, reg.signed)
            theirs = (float(enc.scale), int(enc.offset), bool(enc.signed))
            if abs(mine[0] - theirs[0]) > 1e-12 or mine[1:] != theirs[1:]:
                raise ValueError(
                    f"{filename}: {reg.name} has scale/offset/signed {mine}, "
                    f"the spec's encoding is {theirs}"
                )
        for bit in self.coils.values():
            spec.switch(_number(bit.source, "switch.S"))
        for bit in self.discrete_inputs.values():
            if bit.source.startswith("flag.") and bit.source[5:] not in flag_names:
                raise ValueError(f"{filename}: {bit.name}: {bit.source[5:]!r} is not a spec flag")


def _number(source: str, prefix: str) -> int:
    if not source.startswith(prefix):
        raise ValueError(f"source {source!r} should start with {prefix!r}")
    return int(source[len(prefix) :])


def _indexed(obj: Any, path: str) -> Any:
    """``cell_v[3]`` -> obj.cell_v[3]; ``pack_v`` -> obj.pack_v.

    An index past the end reads 0: with fewer cells in series (P66 < 16) the registers of
    the missing cells stay mapped and read zero, as a fixed map should.
    """
    m = _INDEXED.match(path)
    if m:
        items = getattr(obj, m["name"])
        index = int(m["index"])
        return items[index] if index < len(items) else 0
    return getattr(obj, path)


class TwinModbusContext(ModbusServerContext):
    """A pymodbus server context that reads and writes the live twin.

    Subclasses ``ModbusServerContext`` only to pass pymodbus's type check (``old_simulator``
    mode hands requests straight to ``async_getValues``/``async_setValues``); the parent's
    constructor is not called because it wants the deprecated static device stores.
    """

    def __init__(self, world: Any, spec: Any, regmap: RegisterMap, device_ids: Sequence[int]):
        self.world = world
        self.spec = spec
        self.regmap = regmap
        self._ids = list(device_ids)
        self.old_simulator = True
        self.simdevices = []

    def device_ids(self) -> list[int]:
        return list(self._ids)

    def _check_device(self, device_id: int) -> None:
        if device_id not in self._ids:
            raise NoSuchIdException(f"device id {device_id} not served")
        if not bms_answers(self.world):
            # an unpowered or booting board: silence, as for another unit id on the bus
            raise NoSuchIdException(f"device id {device_id}: the BMS is not powered up")

    # ------------------------------------------------------------------ reads

    async def async_getValues(  # noqa: N802 (pymodbus's name)
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        self._check_device(device_id)
        try:
            return self.read(func_code, address, count)
        except KeyError:
            return ExcCodes.ILLEGAL_ADDRESS
        except ValueError as exc:
            _log.warning("modbus read %d@%#06x: %s", func_code, address, exc)
            return ExcCodes.DEVICE_FAILURE

    def read(self, func_code: int, address: int, count: int) -> list[int] | list[bool]:
        """Values of ``count`` consecutive addresses; KeyError for an unmapped one."""
        addresses = range(address, address + count)
        if func_code in INPUT_FCS:
            m = self.world.twin.measurements()
            regs = [self.regmap.input_registers[a] for a in addresses]
            return [
                r.to_raw(float(_indexed(m, r.source.removeprefix("measurements.")))) for r in regs
            ]
        if func_code in HOLDING_FCS:
            regs = [self.regmap.holding_registers[a] for a in addresses]
            values = self.world.twin.read_block().values
            return [self._param(r).encode(values[_number(r.source, "parameter.P")]) for r in regs]
        if func_code in DISCRETE_FCS:
            bits = [self.regmap.discrete_inputs[a] for a in addresses]
            status = self.world.twin.status()
            return [self._status_bit(status, b.source) for b in bits]
        if func_code in COIL_FCS:
            bits = [self.regmap.coils[a] for a in addresses]
            switches = self.world.twin.read_block().switches
            return [bool(switches[_number(b.source, "switch.S")]) for b in bits]
        raise KeyError(func_code)

    def _param(self, reg: Register) -> Any:
        """The spec parameter behind a holding register (its encoding is the register's)."""
        return self.spec.param(_number(reg.source, "parameter.P"))

    @staticmethod
    def _status_bit(status: Any, source: str) -> bool:
        if source.startswith("flag."):
            return source[5:] in status.flags
        return bool(_indexed(status, source))

    # ------------------------------------------------------------------ writes

    async def async_setValues(  # noqa: N802 (pymodbus's name)
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        self._check_device(device_id)
        try:
            self.write(func_code, address, list(values))
        except KeyError:
            return ExcCodes.ILLEGAL_ADDRESS
        except ValueError as exc:
            _log.info("modbus write %d@%#06x refused: %s", func_code, address, exc)
            return ExcCodes.ILLEGAL_VALUE
        return None

    def write(self, func_code: int, address: int, values: list[Any]) -> None:
        """Read-modify-write of the parameter block; ValueError when the twin refuses."""
        addresses = range(address, address + len(values))
        block = self.world.twin.read_block()
        new_values = dict(block.values)
        new_switches = dict(block.switches)
        if func_code in HOLDING_FCS:
            for a, raw in zip(addresses, values, strict=True):
                p = self._param(self.regmap.holding_registers[a])
                new_values[p.number] = p.decode(int(raw))  # ValueError if it does not fit
        elif func_code in COIL_FCS:
            for a, bit in zip(addresses, values, strict=True):
                new_switches[_number(self.regmap.coils[a].source, "switch.S")] = bool(bit)
        else:
            raise KeyError(func_code)  # input registers and discrete inputs are read-only
        self.world.twin.write_block(
            ParameterBlock(values=new_values, switches=new_switches, model_name=block.model_name)
        )
        self.world.settle()


# --------------------------------------------------------------------------- servers


class ModbusTcpEndpoint:
    """pymodbus ``ModbusTcpServer`` on the twin context."""

    def __init__(self, context: TwinModbusContext, host: str = "127.0.0.1", port: int = 0):
        self.context = context
        self.host = host
        self._requested_port = port
        self._server: ModbusTcpServer | None = None

    @property
    def port(self) -> int:
        transport = self._server.transport if self._server else None
        if transport is None:
            raise RuntimeError("Modbus TCP server is not started")
        return int(transport.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def start(self) -> ModbusTcpEndpoint:
        self._server = ModbusTcpServer(
            self.context,
            address=(self.host, self._requested_port),
            ignore_missing_devices=True,  # a bus device stays silent for other unit ids
            trace_packet=self._silence_when_down,
        )
        await self._server.serve_forever(background=True)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    def _silence_when_down(self, sending: bool, data: bytes) -> bytes:
        """No answer of any function code leaves an unpowered or booting board (reads and
        writes never reach it: ``_check_device``; this covers the ones pymodbus answers
        without the context, such as diagnostics)."""
        if sending and not bms_answers(self.context.world):
            return b""
        return data


class ModbusRtuEndpoint:
    """Modbus RTU on a pty: pymodbus framing and PDUs, the simulator's own fd handling."""

    def __init__(
        self,
        context: TwinModbusContext,
        *,
        baud: int = DEFAULT_BAUD,
        realtime: Callable[[], bool] | None = None,
    ):
        self.context = context
        self.line = LinePace(baud, realtime=realtime)
        self.framer = FramerRTU(DecodePDU(True))
        self.pty_path = ""
        self._master: int | None = None
        self._slave: int | None = None
        self._buffer = b""
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> ModbusRtuEndpoint:
        self._master, self._slave = open_raw_pty()
        self.pty_path = os.ttyname(self._slave)
        asyncio.get_running_loop().add_reader(self._master, self._on_readable)
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._master is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._master)
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)  # type: ignore[arg-type]
            self._master = self._slave = None

    def _on_readable(self) -> None:
        assert self._master is not None
        try:
            self._buffer += os.read(self._master, 4096)
        except OSError:
            return
        while self._buffer:
            try:
                used, pdu = self.framer.handleFrame(self._buffer, 0, 0)
            except Exception as exc:  # undecodable function code: drop the buffer
                _log.info("modbus rtu: undecodable request dropped (%s)", exc)
                self._buffer = b""
                return
            self._buffer = self._buffer[used:]
            if pdu is None:
                if len(self._buffer) > 512:  # hunting through noise for too long
                    self._buffer = b""
                return
            task = asyncio.get_running_loop().create_task(self._serve(pdu, used))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, pdu: Any, request_bytes: int) -> None:
        world = self.context.world
        # the request's bytes are on the line before the device can act on them
        held = self.line.spend(world, self.line.line_s(request_bytes))
        if not bms_answers(world):
            return  # an unpowered or booting board hears nothing
        try:
            response = await pdu.datastore_update(self.context, pdu.dev_id)
        except NoSuchIdException:
            return  # another device's request: silence, as on a bus
        except Exception as exc:  # noqa: BLE001 - answer like a failing slave
            _log.warning("modbus rtu: request failed: %s", exc)
            response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
        response.dev_id = pdu.dev_id
        response.transaction_id = pdu.transaction_id
        frame = self.framer.buildFrame(response)
        held += self.line.spend(world, self.line.turnaround_s + self.line.line_s(len(frame)))
        if held:
            await asyncio.sleep(held)
        if self._master is None:
            return
        try:
            os.write(self._master, frame)
        except OSError as exc:
            _log.warning("modbus rtu: pty write failed (%s)", exc)


async def start_modbus(
    world: Any,
    spec: Any,
    *,
    map_path: Path | str = DEFAULT_MAP,
    host: str = "127.0.0.1",
    tcp_port: int = 0,
    baud: int = DEFAULT_BAUD,
    realtime: Callable[[], bool] | None = None,
) -> tuple[ModbusTcpEndpoint, ModbusRtuEndpoint]:
    """Load the map, check it against the spec and start both endpoints (the RTU one paced
    at ``baud``)."""
    regmap = RegisterMap.load(map_path, spec)
    ids = sorted({regmap.device_id, 0})
    context = TwinModbusContext(world, spec, regmap, ids)
    tcp = await ModbusTcpEndpoint(context, host, tcp_port).start()
    rtu = await ModbusRtuEndpoint(context, baud=baud, realtime=realtime).start()
    return tcp, rtu
