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


#: With a bench clock: wall time a read waits for an answer under way before it lets the
#: bench clock run (an optimisation only: an answer is never given up on wall time).
WALL_GRACE_S = 0.002
#: Wall time a read waits for characters the bench clock said are on the line.
WALL_DELIVERY_S = 1.0


class ClockedLine:
    """A serial port whose reads are timed on the bench clock (``now()`` and
    ``wait_line(...)``: the simulated bench's clock), not on the wall clock.

    The line counts what it sent and received. ``wait_line`` tells the simulator both, so
    it serves every request still on its way (a pty delivers asynchronously) before it
    lets time run, and knows whether the harness has an answer it has not read yet; it then
    runs the clock until an answer is out or the time asked for has passed. The counts
    start from the simulator's own (``line_counts``), so a link opened after another one
    agrees with it. If the clock does not serve this line (``line_counts`` gives None),
    every read is timed by the line itself, as on a real bench.
    """

    def __init__(self, serial: Any, port: str, clock: Any) -> None:
        self.serial = serial
        self.port = port
        counts = clock.line_counts(port) if hasattr(clock, "line_counts") else None
        self.clock = clock if counts is not None else None
        self.sent, self.received = counts if counts is not None else (0, 0)

    @property
    def clocked(self) -> bool:
        return self.clock is not None

    def now(self) -> float:
        assert self.clock is not None
        return float(self.clock.now())

    def write(self, data: bytes) -> None:
        self.serial.write(data)
        self.serial.flush()
        self.sent += len(data)

    def read_now(self, n: int) -> bytes:
        """What is already here, up to ``n`` characters (no wait)."""
        return self._read(n, 0)

    def read_within(self, n: int, remaining: float) -> bytes:
        """Up to ``n`` characters, waiting at most ``remaining`` seconds of the link's time
        for the first (the bench clock's when clocked, the line's own otherwise)."""
        if self.clock is None:
            return self._read(n, remaining)
        got = self._read(n, min(remaining, WALL_GRACE_S))
        if got:
            return got
        before = self.now()
        has_input = self.clock.wait_line(
            remaining, line=self.port, sent=self.sent, received=self.received
        )
        if not has_input and self.now() <= before:
            # A clock that neither moved nor saw input would keep the read waiting forever.
            raise RuntimeError(
                f"{self.port}: the bench clock did not move while waiting {remaining:.6g} s "
                "for the line"
            )
        return self._read(n, WALL_DELIVERY_S if has_input else 0)

    def _read(self, n: int, timeout: float) -> bytes:
        self.serial.timeout = timeout
        got = bytes(self.serial.read(n))
        self.received += len(got)
        return got
