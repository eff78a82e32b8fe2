"""Clocks the procedures wait on: the wall clock on a real bench, the simulator's virtual
clock on the simulated one. Same two methods, so a procedure never knows which it has.

On the simulated bench, ``sleep(s)`` *advances* the model by ``s`` seconds and returns as
soon as the model has moved: a 48 h standby test takes milliseconds of wall time.
"""

from __future__ import annotations

import json
import socket
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
    """The simulator's virtual clock, through its control channel."""

    def __init__(self, address: str) -> None:
        self.channel = ControlChannel(address)

    def now(self) -> float:
        return float(self.channel.call("now")["now_s"])

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.channel.call("advance", s=float(seconds))

    def close(self) -> None:
        self.channel.close()
