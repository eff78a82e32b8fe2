"""Modbus TCP and Modbus RTU endpoints of the simulated BMS on the register map file: the
Seplos V3 layout (``test_plans/modbus_registers.yaml``; what each address holds is
``bmssim/modbus_map.py``). Values are read from the twin at the moment of each request,
never cached, so Modbus and the Seplos V2 endpoint always agree.

The V3 board's function codes only: 04 (telemetry, parameters, device info), 01 (alarms,
per-cell bits, switches), 10 (parameters) and 0F (switches); any other gets exception 01,
an address outside the map's blocks exception 02. Writes are a read-modify-write of the
whole parameter block through ``twin.write_block``: the same validation as an 0xA1 write,
and a refusal becomes exception 03 (illegal value); the remaining capacity written alone
goes through the twin's single write, as 0x49 does.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.server import ModbusTcpServer

from bmssim.line import DEFAULT_BAUD, LinePace, open_raw_pty
from bmssim.modbus_map import DEFAULT_MAP, RegisterMap, TwinRegisters
from bmssim.seplos_server import bms_answers
from bmssim.twin.types import ParameterBlock

_log = logging.getLogger(__name__)


#: The function codes of the Seplos V3 board (any other one: exception 01).
READ_COILS, READ_REGISTERS, WRITE_COILS, WRITE_REGISTERS = 0x01, 0x04, 0x0F, 0x10


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
        self.values = TwinRegisters(world, spec, regmap)
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
        except LookupError:
            return ExcCodes.ILLEGAL_FUNCTION
        except ValueError as exc:
            _log.warning("modbus read %d@%#06x: %s", func_code, address, exc)
            return ExcCodes.DEVICE_FAILURE

    def read(self, func_code: int, address: int, count: int) -> list[int] | list[bool]:
        """Values of ``count`` consecutive addresses (FC 4 registers, FC 1 coils); KeyError
        for an address outside every block, LookupError for another function code."""
        if func_code == READ_REGISTERS:
            return self.values.registers(address, count)
        if func_code == READ_COILS:
            return self.values.coils(address, count)
        raise LookupError(func_code)

    # ------------------------------------------------------------------ writes

    async def async_setValues(  # noqa: N802 (pymodbus's name)
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        self._check_device(device_id)
        try:
            self.write(func_code, address, list(values))
        except KeyError:
            return ExcCodes.ILLEGAL_ADDRESS
        except LookupError:
            return ExcCodes.ILLEGAL_FUNCTION
        except ValueError as exc:
            _log.info("modbus write %d@%#06x refused: %s", func_code, address, exc)
            return ExcCodes.ILLEGAL_VALUE
        return None

    def write(self, func_code: int, address: int, values: list[Any]) -> None:
        """FC 16 parameters, FC 15 switches: a read-modify-write of the parameter block
        through the twin (0xA1 rules: ValueError when it refuses); the remaining capacity
        written alone goes through the twin's single write (0x49)."""
        twin = self.world.twin
        if func_code == WRITE_REGISTERS:
            new_values, single = self.values.write_registers(address, values)
            if single:
                twin.set_remaining_capacity(new_values[60])
                self.world.settle()
                return
            new_switches: dict[int, bool] = {}
        elif func_code == WRITE_COILS:
            new_values, new_switches = {}, self.values.write_coils(address, values)
        else:
            raise LookupError(func_code)  # the V3 board writes with FC 16 and FC 15 only
        block = twin.read_block()
        twin.write_block(
            ParameterBlock(
                values=dict(block.values) | new_values,
                switches=dict(block.switches) | new_switches,
                model_name=block.model_name,
            )
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
