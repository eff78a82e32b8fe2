"""Virtual clock of the simulated bench.

Integer milliseconds, so that a 30 ms transient trip or a 10 s overcurrent delay lands on an
exact tick and two runs of the same scenario give the same numbers. The clock is lockstep:
it moves only when the World is told to advance (control channel ``advance`` or a test), never
by itself, so a test can dwell for 48 simulated hours without waiting for them.
"""

from __future__ import annotations


class VirtualClock:
    """Simulated time in integer milliseconds; moves only when told.

    >>> clock = VirtualClock()
    >>> clock.advance_to(1500)
    >>> clock.now_ms, clock.now_s
    (1500, 1.5)
    """

    def __init__(self, start_ms: int = 0) -> None:
        if start_ms < 0:
            raise ValueError(f"clock start {start_ms} ms: must not be negative")
        self._now_ms = int(start_ms)

    @property
    def now_ms(self) -> int:
        """Current simulated time, integer milliseconds since the simulation started."""
        return self._now_ms

    @property
    def now_s(self) -> float:
        """Current simulated time in seconds (for the control channel and reports)."""
        return self._now_ms / 1000.0

    def advance_to(self, t_ms: int) -> None:
        """Move to ``t_ms``; refuses to go backwards because the model's timers assume
        monotonic time."""
        t_ms = int(t_ms)
        if t_ms < self._now_ms:
            raise ValueError(f"clock cannot go back from {self._now_ms} ms to {t_ms} ms")
        self._now_ms = t_ms

    def advance(self, dt_ms: int) -> None:
        """Move forward by ``dt_ms`` (non-negative)."""
        if dt_ms < 0:
            raise ValueError(f"advance by {dt_ms} ms: must not be negative")
        self._now_ms += int(dt_ms)

    def __repr__(self) -> str:
        return f"VirtualClock(now_ms={self._now_ms})"
