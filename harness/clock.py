"""Clocks the procedures wait on: the wall clock on a real bench, the simulator's virtual
clock on the simulated one. Same two methods, so a procedure never knows which it has.

On the simulated bench, ``sleep(s)`` *advances* the model by ``s`` seconds and returns as
soon as the model has moved: a 48 h standby test takes milliseconds of wall time.
"""

from __future__ import annotations

import json
import mmap
import socket
import struct
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol


class Clock(Protocol):
    """``now() -> seconds`` (monotonic, arbitrary origin) and ``sleep(seconds)``."""

    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class ClockError(RuntimeError):
    """The control channel failed or refused a request."""


class RealClock:
    """Wall time: ``time.monotonic`` and ``time.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def close(self) -> None:
        """Nothing to release."""


class ControlChannel:
    """Client of the simulator's control channel: one JSON request per line, one answer."""

    def __init__(self, address: str, timeout_s: float = 10.0) -> None:
        host, _, port = address.rpartition(":")
        self.address = address
        self._lock = threading.Lock()
        try:
            self._sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        except OSError as exc:
            raise ClockError(f"cannot reach the control channel at {address}: {exc}") from exc
        self._file = self._sock.makefile("rwb")

    def request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request as is; return the answer as is (``ok`` may be false)."""
        line = json.dumps(dict(message)).encode() + b"\n"
        op = message.get("op")
        with self._lock:
            try:
                self._file.write(line)
                self._file.flush()
                answer = self._file.readline()
            except OSError as exc:
                raise ClockError(f"control channel {self.address}: {op} failed: {exc}") from exc
        if not answer:
            raise ClockError(f"control channel {self.address} closed during {op}")
        try:
            return json.loads(answer)
        except json.JSONDecodeError as exc:
            raise ClockError(f"control channel {self.address}: {op} answered {answer!r}") from exc

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send ``{"op": op, **fields}``; raise ``ClockError`` unless the answer is ``ok``."""
        reply = self.request({"op": op, **fields})
        if not reply.get("ok"):
            raise ClockError(f"control channel {self.address}: {op} refused: {reply.get('error')}")
        return reply

    def close(self) -> None:
        try:
            self._file.close()
            self._sock.close()
        except OSError:
            pass


class SimClock:
    """The simulator's virtual clock, through its control channel.

    With ``shared`` (the bench file's ``clock.shared``: the simulator's clock page on this
    machine) ``now()`` reads the page instead of asking: no round trip. The simulator
    writes the page before it answers whatever moved the clock (an ``advance``, the line
    time of a serial exchange), so the time read after an answer is the time that answer
    left. ``sleep`` still goes over the control channel: only the simulator moves time.
    """

    def __init__(self, address: str, shared: str | None = None) -> None:
        self.channel = ControlChannel(address)
        self._page: SharedClockReader | None = None
        if shared is not None:
            try:
                self._page = SharedClockReader(shared)
            except BaseException:
                self.channel.close()
                raise

    def now(self) -> float:
        if self._page is not None:
            return self._page.read_ms() / 1000.0
        return float(self.channel.call("now")["now_s"])

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.channel.call("advance", s=float(seconds))

    def line_counts(self, line: str) -> tuple[int, int] | None:
        """Characters the simulator has read from and written to the serial ``line`` so
        far, or None if it does not serve that line (see ``wait_line``)."""
        reply = self.channel.call("line_counts", line=line)
        if not reply.get("served"):
            return None
        return int(reply["read"]), int(reply["written"])

    def wait_line(self, seconds: float, *, line: str, sent: int, received: int) -> bool:
        """Let the bench clock run until the serial ``line`` has input for the harness, or
        for ``seconds`` (a serial link's timeouts are bench time: instruments/bms/line.py,
        ``ClockedLine``). ``sent``/``received``: the characters the harness has written and
        read on the line; the simulator serves every request up to ``sent`` before time
        runs, and an answer beyond ``received`` is input. True if the line has input."""
        reply = self.channel.call(
            "await_line", s=max(0.0, float(seconds)), line=line, sent=sent, received=received
        )
        return bool(reply.get("input"))

    def close(self) -> None:
        if self._page is not None:
            self._page.close()
        self.channel.close()


#: The simulator's shared clock page: a sequence number (odd mid-write), then the time in
#: integer milliseconds, both little-endian 64-bit (bmssim/clock.py writes it).
_PAGE_FORMAT = "<Qq"
_PAGE_SIZE = struct.calcsize(_PAGE_FORMAT)
#: Reads of a page caught mid-write before it counts as broken.
_PAGE_ATTEMPTS = 100_000


class SharedClockReader:
    """Reader of the simulator's shared clock page (a seqlock: retried while a write is
    under way or the sequence number changed during the read)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path, "rb") as handle:
                self._map = mmap.mmap(handle.fileno(), _PAGE_SIZE, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise ClockError(f"clock.shared {path!r}: cannot map the clock page: {exc}") from exc

    def read_ms(self) -> int:
        for _ in range(_PAGE_ATTEMPTS):
            seq, now_ms = struct.unpack_from(_PAGE_FORMAT, self._map, 0)
            if not seq & 1 and struct.unpack_from("<Q", self._map, 0)[0] == seq:
                return int(now_ms)
        raise ClockError(f"clock.shared {self.path!r}: the clock page stays mid-write")

    def close(self) -> None:
        self._map.close()
