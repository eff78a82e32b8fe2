"""Balancing (P9/P63/P64/P65, S49-S52): charge and static balancing, the static-balancing
timeout and the over-temperature stop."""

from __future__ import annotations

from bmssim.twin.board import CHARGING, EPS, STANDBY, Board, earliest, grid_after
from bmssim.twin.deviations import BALANCING_PARAMS
from bmssim.twin.feature import BaseFeature
from bmssim.twin.rows import AMBIENT, CELL_DIFF, CELL_MAX, CELL_MIN, Hysteresis
from bmssim.twin.types import CELLS

#: Passive balancing bleed: a cell's sense lead carries V / R while its bleed resistor is on.
#: Choice: 33 Ohm (about 0.1 A at 3.3 V), a typical passive-balancing value for this class.
BALANCE_RESISTOR_OHM = 33.0


class Balancing(BaseFeature):
    """Balance while charging (S49) or at rest (S50) when the highest cell is at or above P9
    and the spread reaches P63; stop at P64. S51 ends static balancing after P65 hours until
    the next charge/discharge; S52 forbids it at or above the ambient high-temperature alarm
    value P39."""

    def __init__(self, board: Board) -> None:
        super().__init__(board)
        self.balance = Hysteresis()
        self.cells = [False] * CELLS

    def restart(self, t: int) -> None:
        self.balance = Hysteresis()
        self.cells = [False] * CELLS
        self.static_ms = 0
        self.static_blocked = False

    def _static_running(self) -> bool:
        return self.balance.active and self.board.state == STANDBY and any(self.cells)

    def integrate(self, t: int) -> None:
        dt = t - self.board.t
        if dt > 0 and self._static_running():
            self.static_ms += dt

    def sample(self, t: int) -> None:
        b = self.board
        if b.state_changed and b.state != STANDBY:
            # S51: static balancing time counts a rest period; work resets it.
            self.static_ms = 0
            self.static_blocked = False

    def timers(self, t: int) -> None:
        b = self.board
        if b.sw(51) and self.static_ms >= b.ms(65) and self.balance.active and b.state == STANDBY:
            self.static_blocked = True
            self.balance.force(False, t)
            self.cells = [False] * CELLS

    def vt(self, t: int) -> None:
        b = self.board
        q = b.q
        allowed = not b.shutdown and (
            (b.state == CHARGING and b.sw(49))
            or (b.state == STANDBY and b.sw(50) and not self.static_blocked)
        )
        amb = q[AMBIENT]
        if b.sw(52) and amb is not None and amb >= b.eff(39) - EPS:
            allowed = False
        vmax, vmin, diff = q[CELL_MAX], q[CELL_MIN], q[CELL_DIFF]
        ignore = b.ignored_channels(BALANCING_PARAMS)
        if ignore:  # channel_ignored: the function does not see those cells
            vmax = b.quantity_without(CELL_MAX, ignore)
            vmin = b.quantity_without(CELL_MIN, ignore)
            diff = b.quantity_without(CELL_DIFF, ignore)
            if vmax is None:
                allowed = False
                vmax = vmin = diff = 0.0
        assert vmax is not None and vmin is not None and diff is not None
        if not allowed:
            self.balance.force(False, t)
        else:
            start = vmax >= b.eff(9) - EPS and diff >= b.eff(63) - EPS
            # Choice: balancing also stops when the top cell falls under the turn-on voltage.
            stop = diff <= b.eff(64) + EPS or vmax < b.eff(9) - EPS
            self.balance.step(t, start, stop, b.confirm_ms)
        n = b.n_cells()
        if self.balance.active:
            # Choice: every cell at or above P9 that is more than P64 above the lowest cell
            # bleeds (the highest cell in the single-cell test).
            p9, p64 = b.eff(9), b.eff(64)
            cells = b.cells
            self.cells = [
                i < n and cells[i] >= p9 - EPS and cells[i] - vmin > p64 + EPS for i in range(CELLS)
            ]
        else:
            self.cells = [False] * CELLS

    def power_off(self, t: int) -> None:
        self.balance.force(False, t)
        self.cells = [False] * CELLS

    def next_event_ms(self, now: int) -> int | None:
        b = self.board
        d = self.balance.deadline(b.confirm_ms)
        confirm = None if d is None else grid_after(d, now, b.vt_ms)
        static = None
        if self._static_running() and b.sw(51):
            static = b.t + max(0, b.ms(65) - self.static_ms)
        return earliest(now, confirm, static)

    def cell_current_a(self, index: int) -> float:
        """Bleed current drawn from cell ``index`` (0-based) by its balancing resistor."""
        if not self.cells[index]:
            return 0.0
        return self.board.inputs.cell_v[index] / BALANCE_RESISTOR_OHM

    def signature(self) -> tuple:
        return (tuple(self.cells), self.static_blocked)
