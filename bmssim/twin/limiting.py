"""Current limiting: passive (S56 with P51/P72) and active (S55: whenever a charger is
present), and the 0x45 item 2 limiter override."""

from __future__ import annotations

from bmssim.twin.board import EPS, earliest, grid_after
from bmssim.twin.feature import BaseFeature
from bmssim.twin.rows import Hysteresis


class CurrentLimiting(BaseFeature):
    """S56: once the charge current has held at or above P51 for the confirmation time, the
    current-limit FET holds charging at ``limit_current_a`` for P72 minutes; then it lets go,
    and if the charger still pushes above P51 the same confirmation engages it again.
    Choice: the 'reaches the alarm value' of S56 is read as the alarm's condition confirmed
    like the alarm itself, independent of whether S33 reports it. S55: the limiter is on
    while a charger is present."""

    def restart(self, t: int) -> None:
        self.limiter = Hysteresis()
        self.until: int | None = None
        self.manual = False

    def timers(self, t: int) -> None:
        # passive limiting re-check (P72)
        if self.until is not None and t >= self.until:
            self.until = None
            self.limiter.force(False, t)

    def current(self, t: int) -> None:
        b = self.board
        if not b.sw(56):
            self.limiter.force(False, t)
            self.until = None
            return
        if self.limiter.active:
            return
        beyond = b.i_ca / 100.0 >= b.eff(51) - EPS
        if self.limiter.step(t, beyond, False, b.confirm_ms):
            self.until = t + b.ms(72)

    def on(self) -> bool:
        b = self.board
        if self.manual:
            return True
        if b.sw(55) and b.inputs.charger_present:
            return True
        return self.limiter.active and b.sw(56)

    def limit_a(self) -> float | None:
        """The charge current the limit FET holds, None when it is off."""
        return self.board.config.limit_current_a if self.on() else None

    def next_event_ms(self, now: int) -> int | None:
        d = self.limiter.deadline(self.board.confirm_ms)
        confirm = None if d is None else grid_after(d, now, self.board.cur_ms)
        return earliest(now, confirm, self.until)

    def flags(self) -> set[str]:
        return {"current_limit_fet"} if self.on() else set()

    def signature(self) -> tuple:
        return (self.on(),)
