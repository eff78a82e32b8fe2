"""Control channel of the simulator: JSON lines over TCP (docs/ARCHITECTURE.md, "Control channel").

The harness's ``SimClock`` uses it to read and move virtual time, so that a test waiting
for a 10 s delay costs milliseconds; it also takes snapshots, swaps faults, resets the
bench and stops the process. One request per line, one answer per line:

    {"op": "now"}                           -> {"ok": true, "now_s": 12.345}
    {"op": "advance", "s": 1.5}             -> {"ok": true, "now_s": 13.845}
    {"op": "line_counts", "line": "/dev/pts/3"}
                                            -> {"ok": true, "served": true, "read": 120,
                                                "written": 480}
    {"op": "await_line", "s": 0.17, "line": "/dev/pts/3", "sent": 136, "received": 480}
                                            -> {"ok": true, "served": true, "now_s": ...,
                                                "input": true}
       (serve the line's requests up to "sent" characters, then advance until an answer
       beyond "received" is out or s passed)
    {"op": "mode", "mode": "real"}          -> {"ok": true}
    {"op": "snapshot"}                      -> {"ok": true, "snapshot": {...}}
    {"op": "faults", "faults": {...}}       -> {"ok": true}     ({} or null: no faults)
    {"op": "faults_in_force"}               -> {"ok": true, "faults": {...}}
    {"op": "profile", "profile": "realistic", "seed": 3, "line_error_rate": null}
                                            -> {"ok": true, "profile": {...}}
    {"op": "profile_in_force"}              -> {"ok": true, "profile": {...}}
    {"op": "reset"}                         -> {"ok": true}
    {"op": "shutdown"}                      -> {"ok": true}   (then the process exits)

Errors: ``{"ok": false, "error": "..."}``; the connection stays open.

Virtual mode (default): time moves only on ``advance``, ``await_line`` and the serial
lines' own line time. Real-time mode: a periodic task
advances the world by the wall time elapsed (every ``tick_s``), so an interactive user or a
real-time client sees a live bench; ``advance`` is refused there because two masters of
time would make results irreproducible.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from bmssim.tcp import TcpServer

_log = logging.getLogger(__name__)

VIRTUAL = "virtual"
REAL = "real"
MAX_LINE = 1 << 20


class ControlError(Exception):
    """A request that cannot be served; its text goes back as ``error``."""


class ControlServer(TcpServer):
    """Serves the control channel for one World.

    The operations that depend on how the bench is assembled are passed in as callables
    (``set_faults(dict)``, ``faults_in_force() -> dict``, ``reset()``, ``shutdown()``,
    ``line_counts(line)``, ``await_line(ms, line, sent, received)``), so
    this module knows the World only through ``clock.now_ms``, ``advance(dt_ms)`` and
    ``snapshot()`` (and ``faults.to_dict()`` when no ``faults_in_force`` is given).
    """

    line_limit = MAX_LINE

    def __init__(
        self,
        world: Any,
        *,
        set_faults: Callable[[dict[str, Any]], None],
        reset: Callable[[], None],
        faults_in_force: Callable[[], dict[str, Any]] | None = None,
        shutdown: Callable[[], None],
        await_line: Callable[[int, str, int, int], bool | None] | None = None,
        line_counts: Callable[[str], tuple[int, int] | None] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_s: float = 0.005,
    ) -> None:
        super().__init__(host, port)
        self.world = world
        self._set_faults = set_faults
        self._faults_in_force = faults_in_force or (lambda: self.world.faults.to_dict())
        self._reset = reset
        self._shutdown = shutdown
        self._await_line = await_line
        self._line_counts = line_counts or (lambda line: None)
        self.tick_s = tick_s
        self.mode = VIRTUAL
        self._ticker: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def stop(self) -> None:
        await self._stop_ticker()
        await super().stop()

    # ------------------------------------------------------------------ time

    def now_s(self) -> float:
        return self.world.clock.now_ms / 1000.0

    def set_mode(self, mode: str) -> None:
        """Switch between virtual (lockstep) and real-time operation."""
        if mode not in (VIRTUAL, REAL):
            raise ControlError(f"mode must be 'virtual' or 'real', got {mode!r}")
        if mode == self.mode:
            return
        self.mode = mode
        if mode == REAL:
            self._ticker = asyncio.get_running_loop().create_task(self._run_real_time())
        elif self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    async def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def _run_real_time(self) -> None:
        """Keep virtual time = start + elapsed wall time (integer ms, no drift: the target
        is recomputed from the start instant, not accumulated tick by tick)."""
        wall0 = time.monotonic()
        virtual0 = self.world.clock.now_ms
        while True:
            await asyncio.sleep(self.tick_s)
            target = virtual0 + int((time.monotonic() - wall0) * 1000)
            dt = target - self.world.clock.now_ms
            if dt > 0:
                try:
                    self.world.advance(dt)
                except Exception:  # keep the bench alive; the log says what broke
                    _log.exception("real-time advance by %d ms failed", dt)

    # ------------------------------------------------------------------ requests

    def handle(self, request: Any) -> dict[str, Any]:
        """Serve one decoded request; never raises (errors become ``ok: false``)."""
        try:
            return self._dispatch(request)
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug must not kill the channel; the client sees it
            _log.exception("control request %r failed", request)
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def _dispatch(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            raise ControlError('a request is a JSON object with a string "op"')
        op = request["op"]
        if op == "now":
            return {"ok": True, "now_s": self.now_s()}
        if op == "advance":
            if self.mode == REAL:
                raise ControlError("advance is refused in real-time mode (time runs by itself)")
            s = _seconds(request, "advance by")
            self.world.advance(round(s * 1000))
            return {"ok": True, "now_s": self.now_s()}
        if op == "line_counts":
            counts = self._line_counts(str(request.get("line")))
            if counts is None:
                return {"ok": True, "served": False}
            return {"ok": True, "served": True, "read": counts[0], "written": counts[1]}
        if op == "await_line":
            if self.mode == REAL or self._await_line is None:
                raise ControlError("await_line needs the virtual clock and a serial line")
            s = _seconds(request, "wait")
            counts = [request.get(key, 0) for key in ("sent", "received")]
            if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
                raise ControlError(f'"sent" and "received" must be counts, got {counts}')
            # Whole milliseconds, rounded up: a wait shorter than the clock's step still
            # moves it (the harness's deadline then passes instead of never coming).
            ms = math.ceil(round(s * 1000, 6))
            has_input = self._await_line(ms, str(request.get("line")), *counts)
            if has_input is None:
                return {"ok": True, "served": False, "now_s": self.now_s()}
            return {"ok": True, "served": True, "now_s": self.now_s(), "input": has_input}
        if op == "mode":
            self.set_mode(request.get("mode"))  # type: ignore[arg-type]
            return {"ok": True}
        if op == "snapshot":
            return {"ok": True, "snapshot": self.world.snapshot()}
        if op == "faults":
            faults = request.get("faults")
            if faults is None:
                faults = {}
            if not isinstance(faults, dict):
                raise ControlError('"faults" must be an object like a faults YAML file')
            self._set_faults(faults)
            return {"ok": True}
        if op == "faults_in_force":
            return {"ok": True, "faults": self._faults_in_force()}
        if op == "profile":
            self.world.twin.set_profile(_profile(request))
            return {"ok": True, "profile": self.world.twin.board.profile.describe()}
        if op == "profile_in_force":
            return {"ok": True, "profile": self.world.twin.board.profile.describe()}
        if op == "reset":
            self._reset()
            return {"ok": True}
        if op == "shutdown":
            return {"ok": True}
        raise ControlError(
            f"unknown op {op!r}; known: now, advance, line_counts, await_line, mode, snapshot, "
            "faults, faults_in_force, profile, profile_in_force, reset, shutdown"
        )

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                writer.write(b'{"ok": false, "error": "request line too long"}\n')
                break
            if not line:
                break
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except json.JSONDecodeError as exc:
                answer: dict[str, Any] = {"ok": False, "error": f"not JSON: {exc}"}
            else:
                answer = self.handle(request)
            writer.write(json.dumps(answer, default=_jsonable).encode() + b"\n")
            await writer.drain()
            if answer.get("ok") and isinstance(request, dict) and request.get("op") == "shutdown":
                self._shutdown()
                break


def _seconds(request: dict[str, Any], verb: str) -> float:
    """A request's ``s``: a finite, non-negative number of seconds (ControlError naming it)."""
    s = request.get("s")
    if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s):
        raise ControlError(f'"s" must be a finite number of seconds, got {s!r}')
    if s < 0:
        raise ControlError(f"cannot {verb} a negative time ({s} s)")
    return float(s)


def _profile(request: dict[str, Any]) -> Any:
    """The device profile a ``profile`` request names (ControlError naming the bad value)."""
    from bmssim.twin.profile import make

    seed, rate = request.get("seed", 0), request.get("line_error_rate")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ControlError(f'"seed" must be an integer, got {seed!r}')
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        raise ControlError(f'"line_error_rate" must be a number or null, got {rate!r}')
    try:
        return make(str(request.get("profile", "ideal")), seed, rate)
    except ValueError as exc:
        raise ControlError(str(exc)) from None


def _jsonable(obj: Any) -> Any:
    """Fallback for snapshot values json does not know (sets, tuples of dataclasses...)."""
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    return str(obj)
