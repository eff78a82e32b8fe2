"""``ModbusLink``: the BMS over Modbus RTU or TCP (pymodbus 3.16), on a register map file.

The map (``test_plans/modbus_registers.yaml``, the Seplos V3 layout) says where each
quantity lives; this module knows no address. The four function codes of the V3 board:
input registers (FC 4) = telemetry (PIA, PIB), parameters (SPA, written with FC 16) and
device info (VIA); coils (FC 1) = flags and per-cell bits (PIC), switches (SFA, written with
FC 15). Each block is read (and written) in one transaction. ``modbus_decode`` turns the
raw values into the same typed objects as the Seplos link.

What the map does not carry is not reported, never faked: a flag, parameter or switch it
lacks is absent from the status or the block (``coverage`` tells the plan), and protocol
version, 0x45 control and history are refused with ``BmsLinkError`` naming them.

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

from instruments.bms import modbus_decode as decode
from instruments.bms.coverage import LinkCoverage
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
    RegisterMap,
    answer_problem,
    bytes_of_bits,
    coverage,
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

#: How the plan names this link in a reason.
LINK_NAME = "the Modbus link (Seplos V3 register layout)"


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
        #: The raw SPA registers and SFA coils as last read (written back around the rows).
        self._last_raw: dict[int, int] | None = None
        self._last_bits: dict[int, bool] | None = None
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
        """Fail at open, not mid-test, when the map lacks what the typed objects need (the
        FET bits of a status); a flag, parameter or switch it lacks is not reported
        (``coverage``), never faked."""
        needed = ("charge_fet", "discharge_fet", "current_limit_fet", "heater")
        missing = [f"flag.{n}" for n in needed if n not in self.map.flags()]
        if missing:
            raise BmsLinkError(f"the Modbus register map lacks {', '.join(missing)}")

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

    def _spans(self, table: str, addresses: list[int], limit: int) -> list[tuple[int, int]]:
        """(start, count) reads covering ``addresses``: one span from the first to the last
        address of each block of the map (the board serves a block whole, gaps read 0), at
        most ``limit`` long; addresses outside every block in runs of their own."""
        out: list[tuple[int, int]] = []
        rest = set(addresses)
        for block in self.map.blocks:
            if block.table != table:
                continue
            inside = sorted(a for a in rest if block.start <= a < block.start + block.count)
            rest -= set(inside)
            while inside:
                start = inside[0]
                chunk = [a for a in inside if a < start + limit]
                out.append((start, chunk[-1] - start + 1))
                inside = inside[len(chunk) :]
        return out + runs(sorted(rest), limit)

    def _read_registers(self, name: str, addresses: list[int]) -> dict[int, int]:
        values: dict[int, int] = {}
        code = FUNCTION_CODES["read_input_registers"]
        for start, count in self._spans("registers", addresses, MAX_REGISTERS_PER_READ):
            response = self._call(
                name,
                "read_input_registers",
                start,
                count=count,
                request_bytes=8,
                answer_bytes=5 + 2 * count,
                check=lambda r, count=count: answer_problem(r, code, registers=count),
            )
            values.update(zip(range(start, start + count), response.registers, strict=True))
        return values

    def _read_bits(self, name: str, addresses: list[int]) -> dict[int, bool]:
        values: dict[int, bool] = {}
        code = FUNCTION_CODES["read_coils"]
        for start, count in self._spans("coils", addresses, MAX_BITS_PER_READ):
            response = self._call(
                name,
                "read_coils",
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

    def coverage(self) -> LinkCoverage:
        """What this link reports and sets (the plan's view of it)."""
        return coverage(self.map, self.spec, LINK_NAME)

    def telemetry(self) -> Telemetry:
        """PIA and PIB (one read each), and the rated capacity (SPA: the parameter P59)."""
        rated = self.map.parameters().get(59)
        wanted = [r.address for r in self.map.telemetry()] + ([rated.address] if rated else [])
        raw = self._read_registers("telemetry", wanted)
        rated_ah = None
        if rated is not None:
            rated_ah = round(rated.decode(raw[rated.address]), 2)
        return decode.telemetry(self.map, raw, rated_ah)

    def status(self) -> Status:
        bits = self._read_bits("status", [b.address for b in self.map.status_bits()])
        return decode.status(self.map, bits, self.spec)

    def read_parameters(self) -> ParameterBlock:
        """The parameters and switches the map carries (a row it lacks is absent)."""
        params = self.map.parameters()
        raw = self._read_registers("read parameters", [r.address for r in params.values()])
        switch_bits = self.map.switches()
        bits = self._read_bits("read switches", [b.address for b in switch_bits.values()])
        self._last_raw, self._last_bits = raw, bits
        switches = {n: bits[b.address] for n, b in switch_bits.items()}
        return decode.parameters(self.map, raw, self.spec, switches)

    def write_block(self, block: ParameterBlock) -> None:
        """The parameters and switches the map carries, each block in one write (FC 16 for
        SPA, FC 15 for SFA), so the board sees one consistent block; the addresses between
        them (V3 settings this spec lacks) are written back as last read. A value off its
        register's step is refused before anything is written."""
        missing = [f"P{n}" for n in self.map.parameters() if n not in block.values]
        missing += [f"S{n}" for n in self.map.switches() if n not in block.switches]
        if missing:
            raise BmsLinkError(f"the block to write lacks {', '.join(missing[:8])}")
        if self._last_raw is None or self._last_bits is None:
            self.read_parameters()
        assert self._last_raw is not None and self._last_bits is not None
        words = dict(self._last_raw)
        for n, reg in self.map.parameters().items():
            try:
                words[reg.address] = decode.encode_parameter(
                    reg, block.values[n], self.spec.param(n).unit
                )
            except ValueError as exc:
                raise BmsLinkError(f"P{n} cannot be written over Modbus: {exc}") from None
        bits = dict(self._last_bits)
        for n, bit in self.map.switches().items():
            bits[bit.address] = bool(block.switches[n])
        params = self.map.parameters().values()
        for start, count in self._spans("registers", [r.address for r in params], 123):
            values = [words[a] for a in range(start, start + count)]
            self._write("write parameters", "write_registers", start, values)
        coils = self.map.switches().values()
        for start, count in self._spans("coils", [b.address for b in coils], 1968):
            values = [bits[a] for a in range(start, start + count)]
            self._write("write switches", "write_coils", start, values)

    def resolution(self, number: int) -> float:
        """The step the board keeps parameter ``number`` in (its register), spec unit."""
        step = self.coverage().parameters.get(number)
        return float(step if step is not None else self.spec.param(number).encoding.scale)

    def set_remaining_capacity(self, ah: float) -> None:
        reg = self.map.parameters().get(60)
        if reg is None:
            raise BmsLinkError("the Modbus register map has no remaining capacity (P60)")
        try:
            raw = decode.encode_parameter(reg, ah, self.spec.param(60).unit)
        except ValueError as exc:
            raise BmsLinkError(f"remaining capacity cannot be written: {exc}") from None
        self._write("set remaining capacity", "write_registers", reg.address, [raw])

    def _not_in_map(self, what: str) -> BmsLinkError:
        return BmsLinkError(
            f"{what} is not available over Modbus (the Seplos V3 layout of "
            f"{REGISTER_MAP.name} has none)"
        )

    def protocol_version(self) -> str:
        raise self._not_in_map("protocol version")

    def device_info(self) -> DeviceInfo:
        """VIA: manufacturer, device name and firmware version."""
        if not self.map.text:
            raise self._not_in_map("device info")
        addresses = [a for t in self.map.text for a in range(t.address, t.address + t.registers)]
        return decode.device_info(self.map, self._read_registers("device info", addresses))

    def control(self, item: ControlItem | int, action: ControlAction | int) -> None:
        raise self._not_in_map("control (0x45)")

    def history_record(self, index: int = 0) -> HistoryRecord | None:
        raise self._not_in_map("history records")

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing must not mask the error that led here
            pass
