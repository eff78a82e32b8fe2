"""Soft start (P58, S48): whenever the discharge FET closes, the load is pre-charged for
P58 ms with the discharge current held at ``soft_start_current_a``."""

from __future__ import annotations

from bmssim.twin.board import earliest
from bmssim.twin.feature import BaseFeature


class SoftStart(BaseFeature):
    def restart(self, t: int) -> None:
        self.until: int | None = None

    def timers(self, t: int) -> None:
        if self.until is not None and t >= self.until:
            self.until = None

    def fets_set(self, t: int, was_dsg: bool) -> None:
        b = self.board
        if b.dsg_fet and not was_dsg and b.sw(48):
            delay = b.ms(58)
            self.until = t + delay if delay > 0 else None
        if not b.dsg_fet:
            self.until = None

    def power_off(self, t: int) -> None:
        self.until = None

    def active(self) -> bool:
        return self.until is not None and self.board.t < self.until

    def limit_a(self) -> float | None:
        """The discharge current soft start holds, None when it is not running."""
        return self.board.config.soft_start_current_a if self.active() else None

    def next_event_ms(self, now: int) -> int | None:
        return earliest(now, self.until)

    def signature(self) -> tuple:
        return (self.active(),)
