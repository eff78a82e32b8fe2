"""Threshold rows (``rows.ROWS``: voltage, temperature, current alarm, cell difference and
SOC rows with hysteresis and confirmation) and the P81 gap compensation that follows the
overvoltage rows' recovery."""

from __future__ import annotations

from bmssim.twin.board import CHARGING, DISCHARGING, EPS, Board, grid_after
from bmssim.twin.deviations import sides
from bmssim.twin.feature import BaseFeature
from bmssim.twin.rows import CHARGE, CUR, CURRENT, DISCHARGE, ROWS, VT, Row

#: Rows the S53 activation pulse overrides (their discharge hold is lifted for 60 s).
PULSE_ROWS = (7, 17, 80)
#: Rows S54 makes wait for the button instead of recovering by voltage.
MANUAL_ROWS = (7, 17)

VT_ROWS = tuple(r for r in ROWS if r.period == VT)
CUR_ROWS = tuple(r for r in ROWS if r.period == CUR)
#: The FETs each row opens (as configured; ``wrong_fet`` / ``extra_action`` change them).
ROW_SIDES = {r.trip: sides(r.action) for r in ROWS}


def acting_sides(board: Board, own: frozenset[str], params: tuple[int, ...]) -> frozenset[str]:
    """The FETs a function opens: its own, or the ``wrong_fet`` one, plus ``extra_action``."""
    if board.healthy:
        return own
    wrong = board.deviation("wrong_fet", params)
    if wrong is not None:
        own = sides(str(wrong.value))
    extra = board.deviation("extra_action", params)
    if extra is not None:
        own = own | sides(str(extra.value))
    return own


class ThresholdRows(BaseFeature):
    """Every row of ``ROWS``: trip when the watched quantity passes the trip value for the
    confirmation time (in the row's operating condition), recover at the recovery value as
    long. A disabled switch clears the row at once (BEHAVIOUR.md)."""

    def __init__(self, board: Board) -> None:
        super().__init__(board)
        #: each row's operating condition: the spec's when it carries one, else the table's
        self.conditions: dict[int, str] = {}
        for row in ROWS:
            cond = board.table.params[row.trip].condition
            self.conditions[row.trip] = (
                cond if cond in ("any", CHARGING, DISCHARGING) else row.condition
            )

    def next_event_ms(self, now: int) -> int | None:
        b = self.board
        confirm = b.confirm_ms
        best: int | None = None
        for row in ROWS:
            d = b.rows[row.trip].deadline(confirm)
            if d is not None:
                if d <= now and not b.healthy and b.deviation("timer_not_reset", row.params):
                    continue  # a kept timer that ran out waits for its condition, not time
                e = grid_after(d, now, b.vt_ms if row.period == VT else b.cur_ms)
                if best is None or e < best:
                    best = e
        return best

    def current(self, t: int) -> None:
        qc: dict[str, float | None] = {CURRENT: self.board.i_ca / 100.0}
        for row in CUR_ROWS:
            self._eval(row, t, qc)

    def vt(self, t: int) -> None:
        q = self.board.q
        for row in VT_ROWS:
            self._eval(row, t, q)

    def _thresholds(self, row: Row) -> tuple[float, float, bool]:
        """(trip, recovery, strict_recovery) as the firmware acts on them."""
        b = self.board
        trip = b.eff(row.trip)
        if not b.healthy and b.deviation("no_hysteresis", row.params) is not None:
            return trip, trip, True  # recovers as soon as the quantity is back over the trip
        if row.recovery is not None:
            return trip, b.eff(row.recovery), False
        if row.trip == 10:
            return trip, trip + b.config.charge_prohibition_hysteresis_v, False
        # P79/P80: the flag clears as soon as SOC is back above the threshold.
        return trip, trip, True

    def _eval(self, row: Row, t: int, q: dict[str, float | None]) -> None:
        b = self.board
        h = b.rows[row.trip]
        if not b.sw(row.switch):
            # BEHAVIOUR.md: switch off, the function neither flags nor acts; a set flag clears.
            h.force(False, t)
            return
        v = q[row.source]
        if not b.healthy:
            ignore = b.ignored_channels(row.params)
            if ignore:
                v = b.quantity_without(row.source, ignore)
        trip, rec, strict = self._thresholds(row)
        if v is None:
            h.pending_since = None
            return
        if row.direction == "high":
            trip_c = v >= trip - EPS
            clear_c = v < rec - EPS if strict else v <= rec + EPS
        else:
            trip_c = v <= trip + EPS
            clear_c = v > rec + EPS if strict else v >= rec - EPS
        if not h.active:
            cond = self.conditions[row.trip]
            if cond != "any" and (b.healthy or not b.deviation("condition_ignored", row.params)):
                trip_c = trip_c and cond == b.state
        else:
            if b.fault("latch", row.params, row.switch):
                clear_c = False
            if row.trip in MANUAL_ROWS and b.waiting_manual:
                # S54: the undervoltage protection is released by the button, not by voltage.
                clear_c = False
        keep = not b.healthy and b.deviation("timer_not_reset", row.params) is not None
        if h.step(t, trip_c, clear_c, b.confirm_ms, keep):
            b.row_changed(row, h.active, t)

    def flags(self) -> set[str]:
        b = self.board
        return {
            row.flag
            for row in ROWS
            if b.rows[row.trip].active and not b.fault("no_flag", row.params, row.switch)
        }

    def holds(self) -> tuple[bool, bool]:
        b = self.board
        chg = dsg = False
        for row in ROWS:
            if not b.rows[row.trip].active:
                continue
            acts = acting_sides(b, ROW_SIDES[row.trip], row.params)
            if not acts or b.fault("no_action", row.params, row.switch):
                continue
            if CHARGE in acts:
                chg = True
            if DISCHARGE in acts and not (b.activation_pulse and row.trip in PULSE_ROWS):
                dsg = True  # (S53: the activation pulse forces the output on for 60 s)
        return chg, dsg

    def signature(self) -> tuple:
        return tuple(h.active for h in self.board.rows.values())


class GapCompensation(BaseFeature):
    """P81/S42: after the overvoltage protection's voltage recovery (P5/P15), charging stays
    off while SOC is at or above the gap compensation capacity."""

    def __init__(self, board: Board) -> None:
        super().__init__(board)
        board.row_listeners.append(self._row_changed)

    def restart(self, t: int) -> None:
        self.waiting = False

    def _threshold_permille(self) -> float:
        return self.board.eff(81) * 10 - EPS

    def _row_changed(self, row: Row, active: bool, t: int) -> None:
        b = self.board
        if row.trip in (5, 15) and not active and b.sw(42):
            if b.soc_permille() >= self._threshold_permille():
                self.waiting = True

    def vt(self, t: int) -> None:
        b = self.board
        if self.waiting and (not b.sw(42) or b.soc_permille() < self._threshold_permille()):
            self.waiting = False

    def flags(self) -> set[str]:
        if self.waiting and not self.board.fault("no_flag", (81,), 42):
            return {"gap_compensation_waiting"}
        return set()

    def holds(self) -> tuple[bool, bool]:
        return self.waiting, False

    def signature(self) -> tuple:
        return (self.waiting,)
