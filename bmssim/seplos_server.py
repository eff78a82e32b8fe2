"""Seplos V2 device endpoint of the simulator, on a pseudo-terminal and on TCP at once.

The pty stands in for the RS485 adapter: its slave side is a real tty device path
(``/dev/pts/N``) that any serial client (pyserial, minicom, the vendor tool under Wine) opens
like ``/dev/ttyUSB0``; the pty itself ignores baud rate settings. The TCP endpoint serves the
same device for ``socket://`` clients and for several clients at once. Both feed one
:class:`SeplosDevice`, so they see one BMS.

Line timing (:class:`LinePace`): the device's line runs at ``baud`` (19200 by default, the
bench file's ``bms.baud``), 10 bits per character (8N1). Every transaction costs the
request's characters, the device's turnaround (``TURNAROUND_S``) and the reply's characters:
on the virtual clock (the default, lockstep mode) the World is advanced by that time, the
request's part before the device reads its state and the rest after, so the reply carries
the values of the instant the request ended and a bench-time figure includes the link; in
real-time mode (``realtime()`` true: the clock follows the wall clock) the reply is held back
by that time instead. A 0x47 block answer (356 characters) costs 185 ms at 19200 baud, a
0x42 telemetry answer of 16 cells about 90 ms. A request the device does not answer (another
address, BMS unpowered) costs its own characters; a reply lost to a link fault costs what
it cost on the line before it was lost.

The protocol choices the real device leaves open follow the simulator checklist of the
protocol document (§11): error answers for bad LCHKSUM/CHKSUM/VER/CID1/CID2, silence for
other addresses, RTN 0x05 for a malformed 0xA1 block and RTN 0x06 when the twin refuses
the values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bmssim import seplos_codec as sc
from bmssim.line import DEFAULT_BAUD, LinePace, open_raw_pty
from bmssim.tcp import TcpServer
from bmssim.twin.types import ParameterBlock

_log = logging.getLogger(__name__)


@dataclass
class LinkFaults:
    """Reply faults on the wire (the ``link`` section of a faults file); 0 = never."""

    drop_every: int = 0
    corrupt_every: int = 0
    late_every: int = 0
    late_s: float = 0.0

    @classmethod
    def of(cls, source: Any) -> LinkFaults:
        """Read the link section from a Faults object, a dict, or None (no faults)."""
        if source is None:
            return cls()
        if isinstance(source, dict):
            return cls(**{k: source[k] for k in cls.__dataclass_fields__ if k in source})
        return cls(
            **{k: getattr(source, k) for k in cls.__dataclass_fields__ if hasattr(source, k)}
        )


def world_link_faults(world: Any) -> LinkFaults:
    """The link faults currently in force in ``world.faults`` (re-read for every reply, so a
    ``faults`` request on the control channel takes effect at once)."""
    faults = getattr(world, "faults", None)
    return LinkFaults.of(getattr(faults, "link", None) if faults is not None else None)


def bms_answers(world: Any) -> bool:
    """Whether the BMS behind ``world`` is powered and booted (a World without the relay
    card's power model always answers)."""
    answers = getattr(world, "bms_answers", None)
    return True if answers is None else bool(answers())


@dataclass
class Reply:
    """One answer to send: the bytes and how long to hold them back (wall seconds)."""

    data: bytes
    delay_s: float = 0.0


class SeplosDevice:
    """The protocol logic of one BMS at one address: frames in, answers out.

    Transport-free (unit-tested, shared by pty and TCP); every reply counts for link faults.
    """

    def __init__(
        self,
        world: Any,
        spec: Any,
        *,
        address: int = 0,
        link_faults: Callable[[], LinkFaults] | None = None,
        baud: int = DEFAULT_BAUD,
        realtime: Callable[[], bool] | None = None,
    ) -> None:
        self.world = world
        self.line = LinePace(baud, realtime=realtime)
        self.spec = spec
        self.address = address
        self._link_faults = link_faults or (lambda: world_link_faults(world))
        self._replies = 0
        self._remaining_param = next(
            spec.param(n)
            for n in range(1, sc.PARAMETER_COUNT + 1)
            if spec.param(n).encoding.index == sc.REMAINING_CAPACITY_INDEX
        )

    @property
    def twin(self) -> Any:
        return self.world.twin

    # ------------------------------------------------------------------ entry point

    def handle(self, item: sc.Frame | sc.FrameError) -> Reply | None:
        """Answer one received frame (or framing error); None = stay silent, as an
        unpowered or booting board does (``world.bms_answers()``)."""
        # the request's characters are on the line before the device can act on them
        held = self.line.spend(self.world, self.line.line_s(request_characters(item)))
        if not bms_answers(self.world):
            return None
        answer = self._answer(item)
        if answer is None:
            return None
        held += self.line.spend(self.world, self.line.turnaround_s + self.line.line_s(len(answer)))
        reply = self._apply_link_faults(answer)
        if reply is not None and held:
            reply.delay_s += held
        return reply

    def _apply_link_faults(self, answer: bytes) -> Reply | None:
        self._replies += 1
        n = self._replies
        faults = self._link_faults()
        line = self.twin.board.profile.line_error(n)  # the profile's seeded line errors
        if (faults.drop_every and n % faults.drop_every == 0) or line == "drop":
            _log.info("link fault: reply %d dropped", n)
            return None
        if (faults.corrupt_every and n % faults.corrupt_every == 0) or line == "corrupt":
            # flip the checksum's last hex digit (the frame stays well formed)
            last = answer[-2:-1]
            answer = answer[:-2] + (b"0" if last != b"0" else b"1") + answer[-1:]
            _log.info("link fault: reply %d checksum corrupted", n)
        delay = 0.0
        if faults.late_every and n % faults.late_every == 0:
            delay = float(faults.late_s)
            _log.info("link fault: reply %d late by %.3f s", n, delay)
        return Reply(answer, delay)

    def _answer(self, item: sc.Frame | sc.FrameError) -> bytes | None:
        if isinstance(item, sc.FrameError):
            if item.adr is None or item.adr != self.address:
                return None  # cannot tell who it was for: a bus device keeps quiet
            return sc.error_frame(
                item.adr, item.rtn, ver=item.ver or sc.VER, cid1=item.cid1 or sc.CID1_LFP
            )
        frame = item
        if frame.adr != self.address:
            return None

        def reply(rtn: int, info: bytes = b"") -> bytes:
            return sc.encode_frame(frame.adr, rtn, info, ver=frame.ver, cid1=frame.cid1)

        if frame.ver != sc.VER:
            return reply(sc.Rtn.VER_ERROR)
        if frame.cid1 != sc.CID1_LFP:
            return reply(sc.Rtn.CID1_INVALID)
        handler = self._handlers.get(frame.cid2)
        if handler is None:
            return reply(sc.Rtn.CID2_INVALID)
        try:
            rtn, info = handler(self, frame)
        except sc.BlockFormatError as exc:
            _log.info("0x%02X format error: %s", frame.cid2, exc)
            return reply(sc.Rtn.FORMAT_ERROR)
        except _FormatError as exc:
            _log.info("0x%02X format error: %s", frame.cid2, exc)
            return reply(sc.Rtn.FORMAT_ERROR)
        except ValueError as exc:
            _log.info("0x%02X invalid data: %s", frame.cid2, exc)
            return reply(sc.Rtn.INVALID_DATA)
        except (struct.error, OverflowError) as exc:
            # a twin value the wire encoding cannot carry: a device fault, not a crash
            _log.warning("0x%02X cannot encode the answer: %s", frame.cid2, exc)
            return reply(sc.Rtn.EXECUTION_FAILED)
        return reply(rtn, info)

    # ------------------------------------------------------------------ commands

    def _group(self, frame: sc.Frame, *, optional: bool) -> int:
        try:
            group = sc.decode_group(frame.info, optional=optional)
        except ValueError as exc:
            raise _FormatError(str(exc)) from None
        return frame.adr if group is None else group

    def _telemetry(self, frame: sc.Frame) -> tuple[int, bytes]:
        group = self._group(frame, optional=True)
        m = self.twin.measurements()
        telemetry = sc.Telemetry(
            cell_v=list(m.cell_v),
            temps_c=list(m.temps_c),
            current_a=m.current_a,
            pack_v=m.pack_v,
            remaining_ah=m.remaining_ah,
            full_ah=m.full_ah,
            soc_permille=int(m.soc_permille),
            rated_ah=m.rated_ah,
            cycles=int(m.cycles),
            soh_permille=int(m.soh_permille),
            port_v=m.port_v,
            group=group,
        )
        return sc.Rtn.OK, telemetry.encode()

    def _status(self, frame: sc.Frame) -> tuple[int, bytes]:
        group = self._group(frame, optional=True)
        s = self.twin.status()
        answer = sc.StatusAnswer(
            cell_levels=list(s.cell_levels),
            temp_levels=list(s.temp_levels),
            current_level=s.current_level,
            voltage_level=s.voltage_level,
            flags=set(s.flags),
            balancing=list(s.balancing),
            disconnected=list(s.disconnected),
            group=group,
        )
        return sc.Rtn.OK, answer.encode(self.spec.flags)

    def _parameters(self, frame: sc.Frame) -> tuple[int, bytes]:
        group = self._group(frame, optional=True)
        block = self.twin.read_block()
        wire = sc.ParameterBlockWire(
            values=dict(block.values),
            switches=dict(block.switches),
            model_name=block.model_name,
            group=group,
        )
        return sc.Rtn.OK, wire.encode(self.spec)

    def _write_parameters(self, frame: sc.Frame) -> tuple[int, bytes]:
        wire = sc.ParameterBlockWire.decode(frame.info, self.spec)
        self.twin.write_block(_twin_block(wire))
        self.world.settle()
        return sc.Rtn.OK, b""

    def _set_parameter(self, frame: sc.Frame) -> tuple[int, bytes]:
        try:
            request = sc.SetParameter.decode(frame.info)
        except ValueError as exc:
            raise _FormatError(str(exc)) from None
        if request.index != sc.REMAINING_CAPACITY_INDEX:
            raise ValueError(f"0x49 index 0x{request.index:02X}: only 0x3B is writable (§8)")
        if len(request.raw) != self._remaining_param.encoding.bytes:
            raise ValueError(f"0x49 value of {len(request.raw)} bytes for index 0x3B")
        value = sc.decode_parameter(self._remaining_param, request.raw)
        self.twin.set_remaining_capacity(value)
        self.world.settle()
        return sc.Rtn.OK, b""

    def _control(self, frame: sc.Frame) -> tuple[int, bytes]:
        try:
            request = sc.Control.decode(frame.info)
        except ValueError as exc:
            raise _FormatError(str(exc)) from None
        self.twin.control(request.item, request.action)
        self.world.settle()
        return sc.Rtn.OK, b""

    def _history(self, frame: sc.Frame) -> tuple[int, bytes]:
        try:
            request = sc.HistoryRequest.decode(frame.info)
        except ValueError as exc:
            raise _FormatError(str(exc)) from None
        record = self.twin.history_record(request.index)
        if record is None:
            return sc.Rtn.NO_DATA, b""
        return sc.Rtn.OK, bytes(record)

    def _protocol_version(self, frame: sc.Frame) -> tuple[int, bytes]:
        self._group(frame, optional=True)
        return sc.Rtn.OK, b""

    def _device_info(self, frame: sc.Frame) -> tuple[int, bytes]:
        self._group(frame, optional=True)
        d = self.twin.device_info()
        info = sc.DeviceInfo(name=d.name, version=tuple(d.version), manufacturer=d.manufacturer)
        return sc.Rtn.OK, info.encode()

    _handlers: dict[int, Callable[[SeplosDevice, sc.Frame], tuple[int, bytes]]] = {
        sc.Cid2.TELEMETRY: _telemetry,
        sc.Cid2.STATUS: _status,
        sc.Cid2.PARAMETERS: _parameters,
        sc.Cid2.WRITE_PARAMETERS: _write_parameters,
        sc.Cid2.SET_PARAMETER: _set_parameter,
        sc.Cid2.CONTROL: _control,
        sc.Cid2.HISTORY: _history,
        sc.Cid2.PROTOCOL_VERSION: _protocol_version,
        sc.Cid2.DEVICE_INFO: _device_info,
    }


def request_characters(item: sc.Frame | sc.FrameError) -> int:
    """Characters of a received request on the line: SOI, VER, ADR, CID1, CID2, LENGTH,
    CHKSUM, EOI (18) and two per INFO byte; a framing error counts as the bare frame."""
    info = item.info if isinstance(item, sc.Frame) else b""
    return 18 + 2 * len(info)


class _FormatError(Exception):
    """A request INFO of the wrong shape: RTN 0x05."""


def _twin_block(wire: sc.ParameterBlockWire) -> Any:
    """The twin contract's ``ParameterBlock`` built from a decoded 0xA1 block."""
    return ParameterBlock(
        values=dict(wire.values), switches=dict(wire.switches), model_name=wire.model_name
    )


class SeplosServer(TcpServer):
    """Serves one :class:`SeplosDevice` on a pty and on a TCP port.

    ``await server.start()`` opens both; ``server.pty_path`` is the serial device path and
    ``server.tcp_port`` the TCP port (``socket://127.0.0.1:<port>`` for pyserial).
    """

    def __init__(self, device: SeplosDevice, *, host: str = "127.0.0.1", tcp_port: int = 0):
        super().__init__(host, tcp_port)
        self.device = device
        self._master: int | None = None
        self._slave: int | None = None
        self.pty_path = ""
        self._pty_reader = sc.FrameReader()
        self._pending: set[asyncio.TimerHandle] = set()
        #: Late replies held back until a virtual instant (virtual mode): (ms, data, write).
        self._held: list[tuple[int, bytes, Callable[[bytes], None]]] = []
        #: Characters read from and written to the pty so far (``await_line``).
        self.pty_read = 0
        self.pty_written = 0

    @property
    def tcp_port(self) -> int:
        return self.port

    @property
    def tcp_url(self) -> str:
        return f"socket://{self.host}:{self.tcp_port}"

    async def start(self) -> SeplosServer:
        loop = asyncio.get_running_loop()
        self._master, self._slave = open_raw_pty()
        self.pty_path = os.ttyname(self._slave)
        loop.add_reader(self._master, self._on_pty_readable)
        self.device.world.clock.observers.append(self._release_due)
        return await super().start()

    async def stop(self) -> None:
        for handle in list(self._pending):
            handle.cancel()
        self._pending.clear()
        self._held.clear()
        with contextlib.suppress(ValueError):
            self.device.world.clock.observers.remove(self._release_due)
        if self._master is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._master)
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)  # type: ignore[arg-type]
            self._master = self._slave = None
        await super().stop()

    # ------------------------------------------------------------------ pty

    def _on_pty_readable(self) -> int:
        """Serve what the serial side wrote; returns the number of characters read."""
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return 0
        except OSError:
            # EIO: no process holds the slave open. We keep our own slave fd open so this
            # should not happen; if it does, there is nothing to read.
            return 0
        self.pty_read += len(data)
        for item in self._pty_reader.feed(data):
            self._send(self.device.handle(item), self._write_pty)
        return len(data)

    def serve_until(self, sent: int, wall_s: float = 1.0) -> None:
        """Serve the serial side's requests until ``sent`` characters have been read (a pty
        delivers asynchronously: what the harness wrote may still be on its way), waiting
        at most ``wall_s`` of wall time for them."""
        if self._master is None:
            return
        deadline = time.monotonic() + wall_s
        while self._on_pty_readable() or self.pty_read < sent:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _log.warning("await_line: %d of %d characters arrived", self.pty_read, sent)
                return
            if self.pty_read < sent:
                select.select([self._master], [], [], remaining)

    def line_counts(self) -> tuple[int, int]:
        """Characters read from and written to the pty so far (what is waiting served)."""
        self.serve_until(0)
        return self.pty_read, self.pty_written

    def await_answer(self, ms: int, sent: int, received: int) -> bool:
        """Serve the pty's requests up to the harness's ``sent`` characters, then let the
        virtual clock run until an answer beyond its ``received`` ones is out (a late one at
        its instant) or ``ms`` have passed. True if the pty has input for the harness."""
        self.serve_until(sent)
        world = self.device.world
        clock = world.clock
        target = clock.now_ms + ms
        while self.pty_written <= received and clock.now_ms < target:
            release = self.next_release_ms()
            until = target if release is None else min(target, max(release, clock.now_ms + 1))
            world.advance(until - clock.now_ms)
        return self.pty_written > received

    def next_release_ms(self) -> int | None:
        """The virtual instant the next held-back (late) reply goes out, if any."""
        return min((ms for ms, _, _ in self._held), default=None)

    def _release_due(self, now_ms: int) -> None:
        if not self._held:
            return
        due = [item for item in self._held if item[0] <= now_ms]
        self._held = [item for item in self._held if item[0] > now_ms]
        for _, data, write in sorted(due, key=lambda item: item[0]):
            write(data)

    def _write_pty(self, data: bytes) -> None:
        if self._master is None:
            return
        try:
            self.pty_written += os.write(self._master, data)
        except (BlockingIOError, OSError) as exc:
            # nobody reads the serial side and the pty buffer is full: the answer is lost,
            # as it would be on a bus with no master listening
            _log.warning("pty write failed (%s); reply dropped", exc)

    # ------------------------------------------------------------------ tcp

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = sc.FrameReader()

        def write(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(data)

        try:
            while data := await reader.read(4096):
                for item in frames.feed(data):
                    self._send(self.device.handle(item), write)
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass

    # ------------------------------------------------------------------ common

    def _send(self, reply: Reply | None, write: Callable[[bytes], None]) -> None:
        if reply is None:
            return
        if reply.delay_s <= 0:
            write(reply.data)
            return
        if not self.device.line.realtime:
            # Late on the virtual clock: out when the clock passes the instant (a real line
            # would carry it then), not after a wall-time delay.
            release = self.device.world.clock.now_ms + round(reply.delay_s * 1000)
            self._held.append((release, reply.data, write))
            return
        loop = asyncio.get_running_loop()

        def later() -> None:
            self._pending.discard(handle)
            write(reply.data)

        handle = loop.call_later(reply.delay_s, later)
        self._pending.add(handle)
