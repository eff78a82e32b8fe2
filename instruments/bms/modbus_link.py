"""``ModbusLink``: the BMS over Modbus RTU or TCP (pymodbus 3.16), on a register map file.

The map (``test_plans/modbus_registers.yaml``) says where each quantity lives; this module
knows no address. Tables: input registers = telemetry, discrete inputs = 0x44 flags and
per-cell bits, holding registers = the 87 parameters (raw wire encoding), coils = the 64
switches. It decodes into the same typed objects as the Seplos link.

What the map does not carry is refused with ``BmsLinkError`` naming it (device info,
protocol version, 0x45 control, history, alarm levels are reported as not available), never
faked.

Transaction policy: the one of ``seplos_link`` (see its module docstring), as far as pymodbus
allows. pymodbus runs with ``retries=0``; the link makes every attempt itself, so each
attempt is a new pymodbus transaction (a new transaction id on TCP).

* **Timeout** per transaction: RTU ``(request bytes + answer bytes) * 10 / baud +
  timeout_s``, with the answer's exact RTU size (registers ``5 + 2n``, bits ``5 + ceil(n/8)``,
  writes 8) and ``timeout_s`` the device's turnaround margin (0.1 s by default): a lost
  answer costs its line time plus that margin. TCP ``timeout_s`` alone (no line time to
  add). Set through ``client.comm_params.timeout_connect`` before each call.
* **Stale answers**: on TCP the transaction id refuses an answer to an earlier attempt
  (pymodbus skips it). RTU has no id: after a timeout (pymodbus reports a corrupt CRC as a
  timeout too) the serial port is read and discarded until one complete answer (the
  expected size, or a 5-byte exception) or ``late_guard_s`` (1.0 s by default); after
  a refused answer (complete, so it was the answer owed) only what is already arriving is
  discarded. Bytes waiting before a request or after a valid answer make the attempt
  ambiguous (discarded, counted). Every answer is checked against its request: function
  code, register or bit count, and for writes the echoed address and count.
* **Line pace** (RTU) as on the Seplos link: with a ``pace_clock`` a transaction does not
  start before the previous one's line time has elapsed on it.
* **Bounded retries**, **silent link = bench lost** (``consecutive_failures``,
  ``lost_after``, ``BenchLost`` at once on a lost connection) and ``stats`` as on the
  Seplos link.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from instruments.bms.line import (
    BITS_PER_CHARACTER,
    LATE_GUARD_S,
    REPLY_MARGIN_S,
    LinePace,
    check_settings,
)
from instruments.bms.modbus_map import (
    EXCEPTIONS,
    FUNCTION_CODES,
    MAX_BITS_PER_READ,
    MAX_REGISTERS_PER_READ,
    REGISTER_MAP,
    Bit,
    Register,
    RegisterMap,
    answer_problem,
    bytes_of_bits,
    load_register_map,
    rtu_answer_complete,
    runs,
)
from instruments.bms.types import DeviceInfo, HistoryRecord, ParameterBlock, Status, Telemetry
from instruments.bmslink import BmsLink, ControlAction, ControlItem
from instruments.errors import BenchLost, BmsLinkError, BmsRejected

try:
    import termios

    _PORT_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error)
except ImportError:  # pragma: no cover - not posix
    _PORT_ERRORS = (OSError,)

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
        timeout_s: float = REPLY_MARGIN_S,
        retries: int = 3,
        late_guard_s: float | None = LATE_GUARD_S,
        lost_after: int = 3,
        spec: Any = None,
        register_map: RegisterMap | None = None,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
        pace_clock: Any = None,
    ) -> None:
        if spec is None:
            from bmsspec import load_spec

            spec = load_spec()
        check_settings(baud, timeout_s, retries, late_guard_s, lost_after)
        self.spec = spec
        self.map = register_map or load_register_map()
        self.address = address
        self.port_name = port
        self.transport = transport
        self.baud = baud
        self.timeout_s = timeout_s
        self.retries = retries
        self.late_guard_s = LATE_GUARD_S if late_guard_s is None else late_guard_s
        self.lost_after = lost_after
        self.pace = LinePace(pace_clock if transport == "rtu" else None)
        self.consecutive_failures = 0
        self.stats: dict[str, int] = dict.fromkeys(
            ("exchanges", "retries", "timeouts", "corrupt", "stale_discarded"), 0
        )
        self._clock = clock
        self._check_map()
        self.client = client or self._connect(port, transport, baud, timeout_s)

    def _connect(self, port: str, transport: str, baud: int, timeout_s: float):
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient

        # retries=0: every attempt is the link's own (module docstring).
        if transport == "tcp":
            host, _, tcp_port = re.sub(r"^(tcp|socket)://", "", port).rpartition(":")
            client = ModbusTcpClient(host, port=int(tcp_port), timeout=timeout_s, retries=0)
        elif transport == "rtu":
            client = ModbusSerialClient(
                port,
                baudrate=baud,
                bytesize=8,
                parity="N",
                stopbits=1,
                timeout=timeout_s,
                retries=0,
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

    def timeout_for(self, request_bytes: int, answer_bytes: int) -> float:
        """Response timeout of one transaction: RTU line time of request and answer plus
        ``timeout_s``; TCP ``timeout_s``."""
        if self.transport == "tcp":
            return self.timeout_s
        return (request_bytes + answer_bytes) * BITS_PER_CHARACTER / self.baud + self.timeout_s

    def _serial(self) -> Any:
        """The pyserial port under an RTU client (None on TCP or a client without one)."""
        port = getattr(self.client, "socket", None)
        return port if port is not None and hasattr(port, "in_waiting") else None

    def _waiting(self) -> int:
        port = self._serial()
        return int(port.in_waiting) if port is not None else 0

    def _drain(self, answer_bytes: int, guard_s: float | None = None) -> int:
        """RTU: read and discard until one complete answer (``answer_bytes``, or an
        exception answer) has been discarded or ``guard_s`` (default ``late_guard_s``) has
        passed; an answer under way is read to its end (its line time plus the margin)."""
        port = self._serial()
        if port is None:
            return 0
        guard = self.late_guard_s if guard_s is None else guard_s
        deadline = self._clock() + guard
        data = bytearray()
        while not rtu_answer_complete(data, answer_bytes):
            if data:  # an answer under way: allow for the rest of it
                rest = max(0, answer_bytes - len(data)) * BITS_PER_CHARACTER / self.baud
                deadline = max(deadline, self._clock() + rest + self.timeout_s)
            remaining = deadline - self._clock()
            waiting = int(port.in_waiting)
            if remaining <= 0:
                if not waiting or len(data) > 2 * answer_bytes:
                    break
                remaining = 0.0  # past the guard: still take what is already here
            port.timeout = remaining
            data += port.read(max(1, waiting))
        if data:
            self.stats["stale_discarded"] += 1
        return len(data)

    def _drained(self, problem: str, answer_bytes: int, guard_s: float | None = None) -> str:
        n = self._drain(answer_bytes, guard_s)
        return f"{problem}; discarded {n} late bytes" if n else problem

    def _call(
        self,
        name: str,
        method: str,
        *args: Any,
        request_bytes: int,
        answer_bytes: int,
        check: Callable[[Any], str | None],
        **kwargs: Any,
    ) -> Any:
        """One transaction under the link's policy (module docstring); ``check`` names
        what makes an answer not the answer to this request (None when it fits)."""
        from pymodbus.exceptions import ConnectionException, ModbusException

        timeout = self.timeout_for(request_bytes, answer_bytes)
        line_s = (request_bytes + answer_bytes) * BITS_PER_CHARACTER / self.baud
        params = getattr(self.client, "comm_params", None)
        if params is not None:
            params.timeout_connect = timeout
        attempts = 1 + self.retries
        problems: list[str] = []
        self.stats["exchanges"] += 1
        try:
            for attempt in range(attempts):
                if attempt:
                    self.stats["retries"] += 1
                if waiting := self._waiting():
                    self._drain(answer_bytes)
                    problems.append(f"{waiting} bytes waiting before the request (discarded)")
                    continue
                self.pace.wait()
                try:
                    response = getattr(self.client, method)(*args, device_id=self.address, **kwargs)
                except ConnectionException:
                    raise
                except ModbusException as exc:
                    self.pace.used(line_s)
                    self.stats["timeouts"] += 1
                    problems.append(
                        self._drained(
                            f"no valid answer within {timeout:.3g} s ({exc})", answer_bytes
                        )
                    )
                    continue
                self.pace.used(line_s)
                if waiting := self._waiting():
                    self._drain(answer_bytes)
                    problems.append(
                        f"ambiguous: {waiting} more bytes arrived with the answer (discarded)"
                    )
                    continue
                if response.isError():
                    code = getattr(response, "exception_code", 0)
                    self.consecutive_failures = 0  # the device answered: the link is alive
                    raise BmsRejected(name, code, EXCEPTIONS.get(code, "unknown exception"))
                if problem := check(response):
                    self.stats["corrupt"] += 1
                    problems.append(self._drained(f"answer refused: {problem}", answer_bytes, 0.0))
                    continue
                self.consecutive_failures = 0
                return response
        except (ConnectionException, *_PORT_ERRORS) as exc:
            raise BenchLost(
                what=f"BMS link on {self.port_name}",
                detail=f"{name}: Modbus connection failed: {exc}",
            ) from exc
        self.consecutive_failures += 1
        message = (
            f"{name} over Modbus {self.port_name} to device {self.address}: "
            f"no valid answer in {attempts} attempts: {'; '.join(problems)}"
        )
        if self.consecutive_failures >= self.lost_after:
            raise BenchLost(
                what=f"BMS link on {self.port_name}",
                detail=f"{self.consecutive_failures} consecutive exchanges without a valid "
                f"answer; the last: {message}",
            )
        raise BmsLinkError(message)

    def _read_registers(self, name: str, method: str, table: list[Register]) -> dict[int, int]:
        values: dict[int, int] = {}
        code = FUNCTION_CODES[method]
        for start, count in runs([r.address for r in table], MAX_REGISTERS_PER_READ):
            response = self._call(
                name,
                method,
                start,
                count=count,
                request_bytes=8,
                answer_bytes=5 + 2 * count,
                check=lambda r, count=count: answer_problem(r, code, registers=count),
            )
            values.update(zip(range(start, start + count), response.registers, strict=True))
        return values

    def _read_bits(self, name: str, method: str, table: list[Bit]) -> dict[int, bool]:
        values: dict[int, bool] = {}
        code = FUNCTION_CODES[method]
        for start, count in runs([b.address for b in table], MAX_BITS_PER_READ):
            response = self._call(
                name,
                method,
                start,
                count=count,
                request_bytes=8,
                answer_bytes=5 + bytes_of_bits(count),
                check=lambda r, count=count: answer_problem(r, code, bits=count),
            )
            values.update(zip(range(start, start + count), response.bits[:count], strict=True))
        return values

    def _write(self, name: str, method: str, start: int, values: list[Any]) -> None:
        """One write transaction; the answer must echo the address and the count."""
        code = FUNCTION_CODES[method]
        data = 2 * len(values) if method == "write_registers" else bytes_of_bits(len(values))
        self._call(
            name,
            method,
            start,
            values,
            request_bytes=9 + data,
            answer_bytes=8,
            check=lambda r: answer_problem(r, code, address=start, count=len(values)),
        )

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
            self._write("write parameters", "write_registers", start, values)
        coil_values = {
            c.address: block.switches[int(c.source.removeprefix("switch.S"))]
            for c in self.map.coils
        }
        for start, count in runs(list(coil_values), MAX_BITS_PER_READ):
            values = [coil_values[a] for a in range(start, start + count)]
            self._write("write switches", "write_coils", start, values)

    def resolution(self, number: int) -> float:
        return float(self.spec.param(number).encoding.scale)

    def set_remaining_capacity(self, ah: float) -> None:
        reg = self.map.by_source(self.map.holding_registers).get("parameter.P60")
        if reg is None:
            raise BmsLinkError("the Modbus register map has no remaining capacity (P60)")
        raw = self.spec.param(60).encode(ah)
        self._call(
            "set remaining capacity",
            "write_register",
            reg.address,
            raw,
            request_bytes=8,
            answer_bytes=8,
            check=lambda r: answer_problem(
                r, FUNCTION_CODES["write_register"], address=reg.address, registers=[raw]
            ),
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
