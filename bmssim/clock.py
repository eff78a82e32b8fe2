"""Virtual clock of the simulated bench.

Integer milliseconds, so that a 30 ms transient trip or a 10 s overcurrent delay lands on an
exact tick and two runs of the same scenario give the same numbers. The clock is lockstep:
it moves only when the World is told to advance (control channel ``advance`` or a test), never
by itself, so a test can dwell for 48 simulated hours without waiting for them.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable
from pathlib import Path

#: Layout of the shared clock page: a sequence number (odd while a write is under way),
#: then the clock in integer milliseconds; both little-endian 64-bit.
SHARED_CLOCK_FORMAT = "<Qq"
SHARED_CLOCK_SIZE = struct.calcsize(SHARED_CLOCK_FORMAT)


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
        #: Called with the new time after every move (the shared clock page, replies held
        #: back until a virtual instant).
        self.observers: list[Callable[[int], None]] = []

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
        for observer in self.observers:
            observer(t_ms)

    def advance(self, dt_ms: int) -> None:
        """Move forward by ``dt_ms`` (non-negative)."""
        if dt_ms < 0:
            raise ValueError(f"advance by {dt_ms} ms: must not be negative")
        self._now_ms += int(dt_ms)
        for observer in self.observers:
            observer(self._now_ms)

    def __repr__(self) -> str:
        return f"VirtualClock(now_ms={self._now_ms})"


class SharedClockPage:
    """The clock published in a small memory-mapped file, so that the harness on the same
    machine reads the time without a control-channel round trip (about a quarter of a
    regression's requests were ``now``). A seqlock: the writer makes the sequence number
    odd, writes the time, makes it even again; a reader retries while the number is odd or
    changed under it. The simulator writes the page before it answers the request that
    moved the clock, so a reader that got the answer sees the new time.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "clock"
    >>> page = SharedClockPage.create(path)
    >>> page.publish(1500)
    >>> struct.unpack_from(SHARED_CLOCK_FORMAT, page._map, 0)
    (2, 1500)
    """

    def __init__(self, path: Path, buffer: mmap.mmap) -> None:
        self.path = path
        self._map = buffer
        self._seq = 0

    @classmethod
    def create(cls, path: Path) -> SharedClockPage:
        """A new page at ``path`` (replaced if it exists), time 0."""
        path = Path(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, SHARED_CLOCK_SIZE)
            buffer = mmap.mmap(fd, SHARED_CLOCK_SIZE)
        finally:
            os.close(fd)
        return cls(path, buffer)

    def publish(self, now_ms: int) -> None:
        self._seq += 1
        struct.pack_into("<Q", self._map, 0, self._seq)  # odd: a write is under way
        struct.pack_into("<q", self._map, 8, int(now_ms))
        self._seq += 1
        struct.pack_into("<Q", self._map, 0, self._seq)

    def close(self) -> None:
        self._map.close()
