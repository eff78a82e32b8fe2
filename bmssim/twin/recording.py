"""History recording (S59, P76 working / P77 standby interval): one record of the board's
state (``history.encode_record``) per interval, kept as an EEPROM ring buffer would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bmssim.twin.board import STANDBY, Board, earliest
from bmssim.twin.feature import BaseFeature


@dataclass(frozen=True)
class HistoryEntry:
    t_ms: int
    data: bytes


class HistoryRecorder(BaseFeature):
    def __init__(self, board: Board, encode: Callable[[], bytes]) -> None:
        super().__init__(board)
        self.encode = encode
        self.entries: list[HistoryEntry] = []

    def factory(self, t: int) -> None:
        self.entries = []  # non-volatile: survives a power cycle

    def restart(self, t: int) -> None:
        self.mode = STANDBY
        self.ref = t

    def due(self) -> int | None:
        b = self.board
        if not b.sw(59) or b.shutdown:
            return None  # a sleeping board records nothing
        # Choice: the interval restarts when the board changes between working and standby;
        # an interval of 0 records nothing.
        interval = b.ms(76) if self.mode != STANDBY else b.ms(77)
        if interval <= 0:
            return None
        return self.ref + interval

    def timers(self, t: int) -> None:
        # runs before the standby shutdown, so a record due at the instant the board falls
        # asleep is still written
        mode = STANDBY if self.board.state == STANDBY else "working"
        if mode != self.mode:
            self.mode = mode
            self.ref = t
        due = self.due()
        if due is not None and t >= due:
            self.entries.append(HistoryEntry(t, self.encode()))
            if len(self.entries) > self.board.config.history_capacity:
                del self.entries[0]
            self.ref = t

    def next_event_ms(self, now: int) -> int | None:
        return earliest(now, self.due())
