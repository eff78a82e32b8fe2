"""``SeplosLink``: the BMS over its Seplos V2 serial protocol, through pyserial.

The port is opened with ``serial.serial_for_url``, so ``/dev/ttyUSB0``, a pty path and
``socket://host:port`` all work. Every exchange is checked (LENGTH checksum, CHKSUM,
address, INFO layout); a corrupt frame is never parsed into values. A non-zero RTN raises
``BmsRejected`` with its meaning (except 0x02/0x03: the BMS saw our request corrupted on the
line, which is worth a retry).

Transaction policy (one per link; a bench fault must never look like a product failure).
The protocol has no sequence number, so a late answer to an earlier request cannot be told
from the answer to the current one by its content: the policy makes sure it is never read.

* **Timeout** per request: ``(request characters + answer characters) * 10 / baud +
  timeout_s``. Ten bits per character (8N1: start, 8 data, stop); the answer's characters
  are ``18 + 2 * INFO bytes`` (§2.1) with the INFO bound of ``ANSWERS`` (16 cells, 6
  temperatures for 0x42/0x44, the documented sizes otherwise); the request's characters
  are counted too because a USB adapter may report its write flushed before the last
  character is on the line. ``timeout_s`` is the device's turnaround margin beyond the line
  time (``REPLY_MARGIN_S``, 0.1 s, by default), so a reply is given up after its line time
  plus that margin: 0.17 s for a 0x44 status at 19200 baud, 0.30 s for the 0x47 block.
* **Drain after a timeout**: the lost answer may only be late. The line is read and
  discarded until one complete frame has been discarded or ``late_guard_s`` has passed
  (``LATE_GUARD_S``, 1.0 s, by default: it must exceed the line's worst lateness); only
  then is the request sent again. A timeout therefore costs line time + margin + guard;
  a bench whose device is never late beyond its margin may set the guard lower.
* **No wait after a refused answer**: a complete frame that cannot be ours (corrupt, other
  address, INFO that does not fit the command) was the answer of the request just sent (or
  a leftover the drain before it would have discarded), so nothing more is owed: what is
  arriving is read to its end and discarded, and the request is sent again at once. Every
  attempt of one exchange is the same request, so an answer to an earlier attempt of it is
  still an answer to the question asked; what must never happen, an answer taken for a
  later exchange, the drain after a timeout and the ambiguity rule prevent.
* **Waits on the bench clock** (the simulated bench's, ``bench_clock``): the timeout and
  the late guard are bench time. A read with nothing after a brief wall-time grace lets
  the bench clock run until the line has input or the time left has passed
  (``instruments.bms.line.ClockedLine``): a lost answer costs its timeout and guard on the
  bench clock, as on a real bench, and milliseconds of wall time. Without one (a real
  bench) the line's own time bounds every read.
* **Line pace**: a transaction does not start before the previous one's line time (its
  request and the answer received, or the longest answer when none came) has elapsed on
  ``pace_clock`` (anything with ``now()`` and ``sleep(s)``: the bench clock). On a real
  line the answer's arrival already implies it; the rule binds where answers come faster
  than the line could carry them. Without a ``pace_clock`` the line itself is the pace.
* **Ambiguity is an attempt**: characters waiting before a request is sent, or after a
  valid answer was read, mean two answers are on the line; they are discarded (drained) and
  the attempt counts as failed.
* **Bounded retries**: at most ``1 + retries`` attempts, then ``BmsLinkError`` naming the
  command, the attempts and every problem seen.
* **Silent link = bench lost**: ``consecutive_failures`` counts exchanges that ended in
  ``BmsLinkError``; any answer (valid, or a refusal by RTN) resets it. At ``lost_after`` the
  exchange raises ``BenchLost`` instead. A port error (device gone, pty closed) raises
  ``BenchLost`` at once.

``stats`` counts ``exchanges``, ``retries``, ``timeouts``, ``corrupt`` (answers refused:
bad frame, other address, INFO of the wrong shape) and ``stale_discarded`` (drains that
discarded characters, and ambiguous exchanges), for the harness to record.

Residual risk, stated: an answer later than its timeout plus ``late_guard_s`` that arrives
just before the next answer is still indistinguishable from it; the guard must exceed the
worst lateness of the line (a device that answers within its turnaround margin is never
late).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import serial

from instruments.bms import seplos_codec as codec
from instruments.bms.line import (
    BITS_PER_CHARACTER,
    LATE_GUARD_S,
    REPLY_MARGIN_S,
    ClockedLine,
    LinePace,
    check_settings,
)
from instruments.bms.types import DeviceInfo, HistoryRecord, ParameterBlock, Status, Telemetry
from instruments.bmslink import BmsLink, ControlAction, ControlItem
from instruments.errors import BenchLost, BmsLinkError, BmsRejected

try:
    import termios

    _PORT_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error)
except ImportError:  # pragma: no cover - not posix
    _PORT_ERRORS = (OSError,)

T = TypeVar("T")

#: RTNs that mean "your request arrived damaged": retried like a corrupt answer.
RETRY_RTN = {0x02, 0x03}
RTN_NO_DATA = 0x07

#: SOI, VER, ADR, CID1, RTN, LENGTH, CHKSUM, EOI: the characters of a frame besides INFO.
FRAME_OVERHEAD_CHARACTERS = 18
#: 0x4B: 15 status bytes and 31 two-byte values (Battery Monitor's record layout, §10).
HISTORY_RECORD_BYTES = 15 + 31 * 2


@dataclass(frozen=True)
class Answer:
    """What the answer INFO of one command may be, in decoded bytes: ``fixed_bytes`` plus,
    for the per-cell layouts (0x42, 0x44), ``per_cell`` bytes for each of the M cells the
    answer reports in its byte 2 (M = 1..``max_cells``)."""

    fixed_bytes: int
    per_cell: int = 0
    max_cells: int = 16

    @property
    def max_bytes(self) -> int:
        return self.fixed_bytes + self.per_cell * self.max_cells

    @property
    def characters(self) -> int:
        """Upper bound of the answer's length on the wire."""
        return FRAME_OVERHEAD_CHARACTERS + 2 * self.max_bytes

    def check(self, cid2: int, info: bytes) -> None:
        """Refuse an INFO that cannot be this command's answer (e.g. another command's)."""
        if not self.per_cell:
            if len(info) != self.fixed_bytes:
                raise codec.FrameError(
                    f"0x{cid2:02X} answer INFO of {len(info)} bytes, expected {self.fixed_bytes}"
                )
            return
        cells = info[2] if len(info) > 2 else 0
        if not 1 <= cells <= self.max_cells:
            raise codec.FrameError(
                f"0x{cid2:02X} answer reports {cells} cells, expected 1..{self.max_cells}"
            )
        if len(info) != (want := self.fixed_bytes + self.per_cell * cells):
            raise codec.FrameError(
                f"0x{cid2:02X} answer INFO of {len(info)} bytes, expected {want} for {cells} cells"
            )


#: Answer INFO per command (§4-§10). 0x42: 1+1+1+2M+1+2N+2+2+2+1+2P bytes with N = 6,
#: P = 10 (§5: board variants change M only, P is always 10); 0x44: 1+1+1+M+1+N+1+1+1+20
#: with N = 6 (§6: P is always 20). The two can never be taken for each other: both carry
#: M in byte 2, and 43 + 2M never equals 33 + M.
ANSWERS: dict[int, Answer] = {
    codec.CID2_TELEMETRY: Answer(43, per_cell=2),
    codec.CID2_STATUS: Answer(33, per_cell=1),
    codec.CID2_READ_PARAMETERS: Answer(codec.BLOCK_BYTES),
    codec.CID2_DEVICE_INFO: Answer(32),
    codec.CID2_HISTORY: Answer(HISTORY_RECORD_BYTES),
    codec.CID2_PROTOCOL_VERSION: Answer(0),
    codec.CID2_CONTROL: Answer(0),
    codec.CID2_SET_PARAMETER: Answer(0),
    codec.CID2_WRITE_PARAMETERS: Answer(0),
}
#: A command not in ``ANSWERS``: its timeout allows for anything LENID can carry, and the
#: INFO is left to ``parse``.
ANY_ANSWER_BYTES = 0xFFF // 2


class LinkTimeout(Exception):
    """No complete frame within the response timeout."""


class SeplosLink(BmsLink):
    """One BMS at ``address`` on a serial line (or a socket standing in for one).

    ``timeout_s``: the device's turnaround margin beyond the line time of request and
    answer; ``retries``: extra attempts after a missing, late or corrupt answer (default 3,
    so at most 4 requests); ``late_guard_s``: how long the drain after a timeout waits for a
    late answer (None: ``LATE_GUARD_S``); ``lost_after``: consecutive failed exchanges that
    mean the bench is lost. ``clock`` (seconds, monotonic) times the reads; tests drive a
    fake port with it in virtual time. ``pace_clock`` (``now()``/``sleep(s)``) keeps
    transactions at the line's pace (module docstring).
    """

    def __init__(
        self,
        port: str,
        *,
        baud: int = 19200,
        address: int = 0,
        spec: Any = None,
        timeout_s: float = REPLY_MARGIN_S,
        retries: int = 3,
        late_guard_s: float | None = LATE_GUARD_S,
        lost_after: int = 3,
        serial_port: Any = None,
        clock: Callable[[], float] = time.monotonic,
        pace_clock: Any = None,
        bench_clock: Any = None,
    ) -> None:
        if spec is None:
            from bmsspec import load_spec

            spec = load_spec()
        check_settings(baud, timeout_s, retries, late_guard_s, lost_after)
        self.spec = spec
        self.address = address
        self.baud = baud
        self.timeout_s = timeout_s
        self.retries = retries
        self.late_guard_s = LATE_GUARD_S if late_guard_s is None else late_guard_s
        self.lost_after = lost_after
        self.port_name = port
        self.pace = LinePace(pace_clock)
        self.consecutive_failures = 0
        self.stats: dict[str, int] = dict.fromkeys(
            ("exchanges", "retries", "timeouts", "corrupt", "stale_discarded"), 0
        )
        self._last_raw_block: codec.RawBlock | None = None
        try:
            self.serial = serial_port or serial.serial_for_url(
                port, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=timeout_s
            )
        except (serial.SerialException, ValueError, OSError) as exc:
            raise BmsLinkError(f"cannot open BMS port {port}: {exc}") from exc
        # The bench clock, when it serves this line, times every read (module docstring).
        self.line = ClockedLine(self.serial, port, bench_clock)
        self._clock = self.line.now if self.line.clocked else clock

    # -- timing ------------------------------------------------------------------------

    def line_time_s(self, characters: int) -> float:
        """Seconds ``characters`` take on the line at this baud rate."""
        return characters * BITS_PER_CHARACTER / self.baud

    def timeout_for(self, cid2: int, request_characters: int) -> float:
        """Response timeout of one request: line time of request and answer + margin."""
        answer = ANSWERS.get(cid2)
        characters = (
            answer.characters
            if answer is not None
            else FRAME_OVERHEAD_CHARACTERS + 2 * ANY_ANSWER_BYTES
        )
        return self.line_time_s(request_characters + characters) + self.timeout_s

    # -- reading -----------------------------------------------------------------------

    def _read_exact(self, n: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < n:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise LinkTimeout(f"{len(data)} of {n} characters")
            data += self.line.read_within(n - len(data), remaining)
        return bytes(data)

    def _read_frame(self, deadline: float) -> bytes:
        while self._read_exact(1, deadline) != codec.SOI:
            pass  # line noise or the tail of a late answer: resynchronise on '~'
        header = self._read_exact(12, deadline)
        try:
            lenid = codec.lenid_of_header(header)
        except codec.FrameError:
            return codec.SOI + header  # decode_frame names the problem
        return codec.SOI + header + self._read_exact(lenid + 5, deadline)

    def _waiting(self) -> int:
        return int(self.serial.in_waiting)

    def _drain(self, guard_s: float | None = None) -> int:
        """Read and discard until one complete frame has been discarded or ``guard_s``
        (default ``late_guard_s``) has passed; a frame that has begun to arrive is read to
        its end (its line time plus the margin) even past the guard. Returns the number of
        characters discarded."""
        guard = self.late_guard_s if guard_s is None else guard_s
        deadline = self._clock() + guard
        data = bytearray()
        while _frame_end(data) is None:
            if codec.SOI in data:  # a frame under way: allow for the rest of it
                deadline = max(deadline, self._clock() + self._rest_s(data))
            remaining = deadline - self._clock()
            waiting = self._waiting()
            if remaining <= 0:
                if not waiting or len(data) > FRAME_OVERHEAD_CHARACTERS + 2 * ANY_ANSWER_BYTES:
                    break
                remaining = 0.0  # past the guard: still take what is already here
            if remaining <= 0:
                data += self.line.read_now(max(1, waiting))
            else:
                data += self.line.read_within(max(1, waiting), remaining)
        if data:
            self.stats["stale_discarded"] += 1
        return len(data)

    def _rest_s(self, data: bytes | bytearray) -> float:
        """Time the rest of the frame begun in ``data`` may still take: the line time of the
        longest frame LENID allows past what has arrived, plus the margin."""
        got = len(data) - data.find(codec.SOI)
        longest = FRAME_OVERHEAD_CHARACTERS + 2 * ANY_ANSWER_BYTES
        return self.line_time_s(max(0, longest - got)) + self.timeout_s

    def _drained(self, problem: str, guard_s: float | None = None) -> str:
        """``problem`` with what the drain before the retry discarded."""
        n = self._drain(guard_s)
        return f"{problem}; discarded {n} late characters" if n else problem

    # -- exchange ----------------------------------------------------------------------

    def exchange(self, name: str, cid2: int, info: bytes, parse: Callable[[codec.Frame], T]) -> T:
        """Send one request; return ``parse`` of the first valid answer (policy: module
        docstring).

        The answer INFO is checked against ``ANSWERS[cid2]`` before ``parse`` sees it;
        ``parse`` raising ``FrameError``/``ValueError`` marks the answer corrupt (retried).
        """
        request = codec.encode_frame(codec.Frame(adr=self.address, cid2=cid2, info=info))
        answer = ANSWERS.get(cid2)
        timeout = self.timeout_for(cid2, len(request))
        attempts = 1 + self.retries
        problems: list[str] = []
        self.stats["exchanges"] += 1
        try:
            for attempt in range(attempts):
                if attempt:
                    self.stats["retries"] += 1
                result = self._attempt(name, cid2, request, answer, timeout, parse)
                if isinstance(result, _Problem):
                    problems.append(result.text)
                    continue
                self.consecutive_failures = 0
                return result
        except _PORT_ERRORS as exc:
            raise BenchLost(
                what=f"BMS link on {self.port_name}", detail=f"{name}: port failed: {exc}"
            ) from exc
        self.consecutive_failures += 1
        message = (
            f"{name} (CID2 0x{cid2:02X}) to address {self.address} on {self.port_name}: "
            f"no valid answer in {attempts} attempts: {'; '.join(problems)}"
        )
        if self.consecutive_failures >= self.lost_after:
            raise BenchLost(
                what=f"BMS link on {self.port_name}",
                detail=f"{self.consecutive_failures} consecutive exchanges without a valid "
                f"answer; the last: {message}",
            )
        raise BmsLinkError(message)

    def _attempt(
        self,
        name: str,
        cid2: int,
        request: bytes,
        answer: Answer | None,
        timeout: float,
        parse: Callable[[codec.Frame], T],
    ) -> T | _Problem:
        """One request and its answer; a ``_Problem`` when the attempt failed (the line has
        then been drained as the policy says)."""
        if waiting := self._waiting():
            self._drain()
            return _Problem(f"{waiting} characters waiting before the request (discarded)")
        self.pace.wait()
        self.line.write(request)
        longest = answer.characters if answer is not None else 2 * ANY_ANSWER_BYTES + 18
        try:
            raw = self._read_frame(self._clock() + timeout)
        except LinkTimeout as exc:
            self.stats["timeouts"] += 1
            self.pace.used(self.line_time_s(len(request) + longest))
            return _Problem(self._drained(f"no complete answer within {timeout:.3g} s ({exc})"))
        self.pace.used(self.line_time_s(len(request) + len(raw)))
        try:
            frame = codec.decode_frame(raw)
        except codec.FrameError as exc:
            self.stats["corrupt"] += 1
            return _Problem(self._drained(f"corrupt answer: {exc}", 0.0))
        if frame.adr != self.address or frame.cid1 != codec.CID1_LIFEPO4:
            self.stats["corrupt"] += 1
            return _Problem(
                self._drained(
                    f"answer from address {frame.adr} CID1 0x{frame.cid1:02X}, expected "
                    f"address {self.address} CID1 0x{codec.CID1_LIFEPO4:02X}",
                    0.0,
                )
            )
        if waiting := self._waiting():
            self._drain()
            return _Problem(
                f"ambiguous: {waiting} more characters arrived with the answer (discarded)"
            )
        if frame.rtn in RETRY_RTN:
            return _Problem(f"BMS answered RTN 0x{frame.rtn:02X} ({codec.describe_rtn(frame.rtn)})")
        if frame.rtn != 0:
            self.consecutive_failures = 0  # the device answered: the link is alive
            raise BmsRejected(name, frame.rtn, codec.describe_rtn(frame.rtn))
        try:
            if answer is not None:
                answer.check(cid2, frame.info)
            return parse(frame)
        except ValueError as exc:  # FrameError is a ValueError
            self.stats["corrupt"] += 1
            return _Problem(self._drained(f"malformed INFO: {exc}", 0.0))

    def _group(self) -> bytes:
        return bytes([self.address])

    # -- BmsLink -----------------------------------------------------------------------

    def telemetry(self) -> Telemetry:
        return self.exchange(
            "telemetry",
            codec.CID2_TELEMETRY,
            self._group(),
            lambda f: codec.decode_telemetry(f.info)[0],
        )

    def status(self) -> Status:
        flags = codec.as_flag_list(self.spec.flags)
        return self.exchange(
            "status", codec.CID2_STATUS, self._group(), lambda f: codec.decode_status(f.info, flags)
        )

    def protocol_version(self) -> str:
        return self.exchange(
            "protocol version",
            codec.CID2_PROTOCOL_VERSION,
            b"",
            lambda f: f"{f.ver >> 4}.{f.ver & 0xF}",
        )

    def device_info(self) -> DeviceInfo:
        return self.exchange(
            "device info", codec.CID2_DEVICE_INFO, b"", lambda f: codec.decode_device_info(f.info)
        )

    def read_parameters(self) -> ParameterBlock:
        raw = self.exchange(
            "read parameters",
            codec.CID2_READ_PARAMETERS,
            self._group(),
            lambda f: codec.decode_block(f.info),
        )
        self._last_raw_block = raw
        return codec.block_values(raw, self.spec.parameters, self.spec.switches)

    def write_block(self, block: ParameterBlock) -> None:
        raw = codec.block_raw(block, self.spec.parameters, self.spec.switches, self._last_raw_block)
        self.exchange(
            "write parameters", codec.CID2_WRITE_PARAMETERS, codec.encode_block(raw), lambda f: None
        )

    def resolution(self, number: int) -> float:
        return float(self.spec.param(number).encoding.scale)

    def set_remaining_capacity(self, ah: float) -> None:
        info = codec.remaining_capacity_info(self.address, ah)
        self.exchange("set remaining capacity", codec.CID2_SET_PARAMETER, info, lambda f: None)

    def control(self, item: ControlItem | int, action: ControlAction | int) -> None:
        info = codec.control_info(self.address, int(item), int(action))
        name = f"control {ControlItem(item).name.lower()} {ControlAction(action).name.lower()}"
        self.exchange(name, codec.CID2_CONTROL, info, lambda f: None)

    def history_record(self, index: int = 0) -> HistoryRecord | None:
        try:
            raw = self.exchange(
                "history record", codec.CID2_HISTORY, codec.history_info(index), lambda f: f.info
            )
        except BmsRejected as exc:
            if exc.code == RTN_NO_DATA:
                return None
            raise
        return HistoryRecord(index=index, raw=raw)

    def close(self) -> None:
        try:
            self.serial.close()
        except Exception:  # noqa: BLE001 - closing must not mask the error that led here
            pass


@dataclass(frozen=True)
class _Problem:
    """Why one attempt failed (collected into the ``BmsLinkError`` message)."""

    text: str


def _frame_end(data: bytes | bytearray) -> int | None:
    """End (exclusive) of the first complete frame in ``data``, by its LENID; None while no
    frame is complete. A '~' with an unreadable header is skipped (line noise)."""
    start = data.find(codec.SOI)
    while start >= 0:
        header = bytes(data[start + 1 : start + 13])
        if len(header) < 12:
            return None
        try:
            lenid = codec.lenid_of_header(header)
        except codec.FrameError:
            start = data.find(codec.SOI, start + 1)
            continue
        end = start + 13 + lenid + 5
        return end if len(data) >= end else None
    return None
