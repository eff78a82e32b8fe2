"""What the BMS links share about the serial line: 8N1 character time, the default
turnaround margin, the settings check, and :class:`LinePace`, which keeps transactions at
the line's pace on a bench clock."""

from __future__ import annotations

from typing import Any

#: 8N1: start bit, 8 data bits, stop bit.
BITS_PER_CHARACTER = 10
#: The device's turnaround margin beyond the line time (the bench file's ``bms.timeout_s``
#: default): a reply not complete by then is lost.
REPLY_MARGIN_S = 0.1
#: How long the line is drained after a timeout for a late answer (the bench file's
#: ``bms.late_guard_s`` default): it must exceed the worst lateness of the line, and the
#: simulator's late-reply faults go to 0.6-0.8 s.
LATE_GUARD_S = 1.0


def line_time_s(characters: int, baud: int) -> float:
    """Seconds ``characters`` take on a line at ``baud`` (8N1)."""
    return characters * BITS_PER_CHARACTER / baud


def check_settings(
    baud: int, timeout_s: float, retries: int, late_guard_s: float | None, lost_after: int
) -> None:
    """Refuse link settings no line can have (one message naming every value)."""
    if (
        baud <= 0
        or timeout_s <= 0
        or retries < 0
        or (late_guard_s is not None and late_guard_s < 0)
        or lost_after < 1
    ):
        raise ValueError(
            f"bad link settings: baud={baud} timeout_s={timeout_s} retries={retries} "
            f"late_guard_s={late_guard_s} lost_after={lost_after}"
        )


class LinePace:
    """Keeps transactions at the line's pace on a bench clock (``now()``/``sleep(s)``): the
    next transaction waits until the previous one's line time has elapsed since it
    started. Without a clock it does nothing (the line itself is the pace)."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock
        self._started: float | None = None
        self._free_at: float | None = None
        #: Seconds spent waiting for the line (for tests and the record).
        self.waited_s = 0.0

    def wait(self) -> None:
        """Before a request: wait for the line, then mark the transaction's start."""
        if self.clock is None:
            return
        now = float(self.clock.now())
        if self._free_at is not None and now < self._free_at:
            self.clock.sleep(self._free_at - now)
            self.waited_s += self._free_at - now
            now = float(self.clock.now())
        self._started = now

    def used(self, line_s: float) -> None:
        """The transaction just made occupies the line ``line_s`` from its start."""
        if self.clock is not None and self._started is not None:
            self._free_at = self._started + line_s
