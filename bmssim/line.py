"""The simulated serial line: 8N1 character time, the board's turnaround, :class:`LinePace`
(line time on the virtual clock, or as a wall-time delay in real-time mode) and the raw pty
the serial endpoints serve on."""

from __future__ import annotations

import os
import tty
from collections.abc import Callable
from typing import Any

#: 8N1: start bit, 8 data bits, stop bit.
BITS_PER_CHARACTER = 10
#: The line rate of the simulated board unless told otherwise (the bench file's bms.baud).
DEFAULT_BAUD = 19200
#: The simulated device's turnaround: end of the request to the first reply character.
TURNAROUND_S = 0.002


class LinePace:
    """The time a serial line at ``baud`` takes, put on the World's virtual clock (integer
    ms, the sub-millisecond rest carried to the next transaction so that nothing is lost
    to rounding) or, in real-time mode, returned as a wall-time delay.

    >>> pace = LinePace(19200)
    >>> round(pace.line_s(356), 4)  # a 0x47 parameter block answer
    0.1854
    """

    def __init__(
        self,
        baud: int = DEFAULT_BAUD,
        *,
        turnaround_s: float = TURNAROUND_S,
        realtime: Callable[[], bool] | None = None,
    ) -> None:
        if baud <= 0 or turnaround_s < 0:
            raise ValueError(f"line pace: baud {baud} must be > 0, turnaround {turnaround_s} >= 0")
        self.baud = baud
        self.turnaround_s = turnaround_s
        self._realtime = realtime or (lambda: False)
        self._carry_ms = 0.0
        #: Seconds of line time accounted so far (for tests and the benchmark).
        self.total_s = 0.0

    def line_s(self, characters: int) -> float:
        """Seconds ``characters`` take on the line."""
        return characters * BITS_PER_CHARACTER / self.baud

    @property
    def realtime(self) -> bool:
        return bool(self._realtime())

    def spend(self, world: Any, seconds: float) -> float:
        """Account ``seconds`` of line time: advance ``world`` in virtual mode and return 0;
        in real-time mode return ``seconds`` (the caller holds its reply back that long)."""
        if seconds <= 0:
            return 0.0
        self.total_s += seconds
        if self.realtime:
            return seconds
        advance = getattr(world, "advance", None)
        if advance is None:
            return 0.0
        self._carry_ms += seconds * 1000.0
        whole = int(self._carry_ms)
        if whole:
            self._carry_ms -= whole
            advance(whole)
        return 0.0


def open_raw_pty() -> tuple[int, int]:
    """A pty pair with the slave in raw mode (no echo, no CR/LF translation, 8-bit clean)
    and the master non-blocking for the event loop. Returns (master, slave)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave
