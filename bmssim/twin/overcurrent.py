"""Overcurrent and lockout: the delayed overcurrent rows (P55/P56 on the 10 ms current
samples, P57 on the 1 ms transient comparator) with P70 recovery and P71 lockout, the S38/S40
hardware short-circuit comparator, and the S32 secondary-trip input."""

from __future__ import annotations

from dataclasses import dataclass

from bmssim.twin.board import EPS, Board, earliest, grid_after
from bmssim.twin.deviations import sides
from bmssim.twin.feature import BaseFeature
from bmssim.twin.rows import CHARGE, CUR, DISCHARGE, OVERCURRENT_ROWS, OvercurrentRow
from bmssim.twin.thresholds import acting_sides

CMP_ROWS = tuple(r for r in OVERCURRENT_ROWS if r.period == "cmp")
CUR_ROWS = tuple(r for r in OVERCURRENT_ROWS if r.period == CUR)
OC_SIDES = {r.trip: sides(r.action) for r in OVERCURRENT_ROWS}


@dataclass
class TripState:
    """Runtime state of one overcurrent or short-circuit protection."""

    active: bool = False
    pending_since: int | None = None
    tripped_at: int | None = None
    count: int = 0
    last_recovery_at: int | None = None
    locked: bool = False

    def trip(self, t: int, clean_ms: int) -> None:
        """Trip at ``t``; trips in a row (no ``clean_ms`` of clean running) are counted."""
        self.pending_since = None
        if self.last_recovery_at is not None and t - self.last_recovery_at < clean_ms:
            self.count += 1
        else:
            self.count = 1
        self.active = True
        self.tripped_at = t


def lock_count(board: Board) -> int:
    """P71: the trip in a row that locks."""
    return int(round(board.eff(71)))


class Overcurrent(BaseFeature):
    """P55-P57 (BEHAVIOUR.md): beyond the trip for the delay, the FET opens; P70 later the
    output is tried again; the P71-th trip in a row locks (P57: with S39) until a block write
    or a factory reset."""

    def restart(self, t: int) -> None:
        self.states = {r.trip: TripState() for r in OVERCURRENT_ROWS}

    def _delay_ms(self, row: OvercurrentRow) -> int:
        return self.board.ms(row.delay)

    def next_event_ms(self, now: int) -> int | None:
        b = self.board
        c: list[int] = []
        for row in OVERCURRENT_ROWS:
            st = self.states[row.trip]
            if st.pending_since is not None:
                d = st.pending_since + self._delay_ms(row)
                if d <= now and b.deviation("timer_not_reset", (row.trip, row.delay)):
                    continue  # a kept timer that ran out waits for the overcurrent, not time
                c.append(grid_after(d, now, 1 if row.period == "cmp" else b.cur_ms))
            if st.active and not st.locked and st.tripped_at is not None:
                if not b.fault("latch", (row.trip, row.delay, 70, 71), row.switch):
                    c.append(max(st.tripped_at + b.ms(70), now + 1))
        return min(c) if c else None

    def comparator(self, t: int) -> None:
        current_a = round(self.board.inputs.current_a, 2)
        for row in CMP_ROWS:
            self._eval(row, t, current_a)

    def current(self, t: int) -> None:
        current_a = self.board.i_ca / 100.0
        for row in CUR_ROWS:
            self._eval(row, t, current_a)

    def _eval(self, row: OvercurrentRow, t: int, current_a: float) -> None:
        b = self.board
        st = self.states[row.trip]
        params = (row.trip, row.delay, 70, 71)
        if not b.sw(row.switch):
            st.active = st.locked = False
            st.pending_since = st.tripped_at = None
            st.count = 0
            return
        if st.active:
            if st.locked or b.fault("latch", params, row.switch):
                return
            if st.tripped_at is not None and t >= st.tripped_at + b.ms(70):
                # P70: the output is tried again; if the overcurrent is still there it trips
                # again after the delay, and the trip counts towards the P71 lockout.
                st.active = False
                st.tripped_at = None
                st.last_recovery_at = t
            else:
                return
        trip = b.eff(row.trip)
        beyond = current_a >= trip - EPS if row.direction == "high" else current_a <= trip + EPS
        if not beyond:
            if b.deviation("timer_not_reset", (row.trip, row.delay)) is None:
                st.pending_since = None
            return
        if st.pending_since is None:
            st.pending_since = t
        if t - st.pending_since < self._delay_ms(row):
            return
        st.trip(t, int(b.config.clean_run_s * 1000))
        locks = row.lock_switch is None or b.sw(row.lock_switch)
        if locks and st.count >= lock_count(b):
            st.locked = True

    def block_written(self) -> None:
        """A block write or a factory reset releases the lockouts (BEHAVIOUR.md P71)."""
        for st in self.states.values():
            if st.locked:
                st.active = st.locked = False
                st.tripped_at = st.pending_since = None
            st.count = 0
            st.last_recovery_at = None

    def flags(self) -> set[str]:
        b = self.board
        out: set[str] = set()
        for row in OVERCURRENT_ROWS:
            st = self.states[row.trip]
            if st.active and not b.fault("no_flag", (row.trip, row.delay), row.switch):
                out.add(row.flag)
            if (
                st.locked
                and row.lock_flag is not None
                and not b.fault("no_flag", (71,), row.lock_switch)
            ):
                out.add(row.lock_flag)
        return out

    def holds(self) -> tuple[bool, bool]:
        b = self.board
        chg = dsg = False
        for row in OVERCURRENT_ROWS:
            st = self.states[row.trip]
            params = (row.trip, row.delay)
            if st.active and not b.fault("no_action", params, row.switch):
                acts = acting_sides(b, OC_SIDES[row.trip], params)
                chg = chg or CHARGE in acts
                dsg = dsg or DISCHARGE in acts
        return chg, dsg

    def signature(self) -> tuple:
        return tuple((s.active, s.locked) for s in self.states.values())


class ShortCircuit(BaseFeature):
    """S38/S40: the hardware short-circuit comparator (every 1 ms, instantaneous current).

    A discharge current beyond ``short_circuit_trip_a`` opens the discharge FET
    ``short_circuit_reaction_ms`` later: output_short_circuit_protection. It recovers P70
    after the trip (Choice: the spec's "60 seconds" is the overcurrent recovery delay P70,
    60 s by default, as for P55-P57) or at once when a charger is present (the spec's
    release by charging; a shorted port shows no charger, so this needs the short gone).
    A recovery into a persisting short trips again (after the P58 soft start, which holds
    the short to its pre-charge current). Trips in a row without ``clean_run_s`` of clean
    running between them count like the P71 lockout: with S40 on, the P71-th locks
    (output_short_circuit_lockout, no more recovery) until the board is power-cycled; a
    block write or a factory reset does not release it (S40: "does not recover").
    ``latch`` on S38: no recovery at all until a power cycle. S38 off: no protection (the
    short current flows, bounded by the bench; the other current rows still see it)."""

    def restart(self, t: int) -> None:
        self.st = TripState()

    def _reaction_ms(self) -> int:
        return max(1, int(self.board.config.short_circuit_reaction_ms))

    def next_event_ms(self, now: int) -> int | None:
        b = self.board
        st = self.st
        a = None if st.pending_since is None else st.pending_since + self._reaction_ms()
        r = None
        if st.active and not st.locked and st.tripped_at is not None:
            if not b.fault("latch", (), 38):
                r = st.tripped_at + b.ms(70)
        return earliest(now, a, r)

    def comparator(self, t: int) -> None:
        b = self.board
        st = self.st
        if not b.sw(38):
            st.active = st.locked = False
            st.pending_since = st.tripped_at = st.last_recovery_at = None
            st.count = 0
            return
        if st.active:
            if st.locked or b.fault("latch", (), 38):
                return
            due = st.tripped_at is not None and t >= st.tripped_at + b.ms(70)
            if not (due or b.inputs.charger_present):
                return
            st.active = False
            st.tripped_at = None
            st.last_recovery_at = t
        if b.inputs.current_a > -b.config.short_circuit_trip_a:
            st.pending_since = None
            return
        if st.pending_since is None:
            st.pending_since = t
        if t - st.pending_since < self._reaction_ms():
            return
        st.trip(t, int(b.config.clean_run_s * 1000))
        if b.sw(40) and st.count >= lock_count(b):
            st.locked = True

    def flags(self) -> set[str]:
        b = self.board
        out: set[str] = set()
        if self.st.active and not b.fault("no_flag", (), 38):
            out.add("output_short_circuit_protection")
        if self.st.locked and not b.fault("no_flag", (), 40):
            out.add("output_short_circuit_lockout")
        return out

    def holds(self) -> tuple[bool, bool]:
        return False, self.st.active and not self.board.fault("no_action", (), 38)

    def signature(self) -> tuple:
        return (self.st.active, self.st.locked)


class SecondaryTrip(BaseFeature):
    """S32: the secondary-trip input, read with every current sample (10 ms). Asserted:
    secondary_trip_protection, and (Choice) both FETs open whatever the current direction:
    it is the last-resort disconnect of the output, not a charge- or discharge-side row.
    Released: recovers at the next sample (``latch`` on S32: only by a power cycle)."""

    def restart(self, t: int) -> None:
        self.active = False

    def sample(self, t: int) -> None:
        b = self.board
        if not b.sw(32):
            self.active = False
        elif b.inputs.secondary_trip:
            self.active = True
        elif not b.fault("latch", (), 32):
            self.active = False

    def flags(self) -> set[str]:
        if self.active and not self.board.fault("no_flag", (), 32):
            return {"secondary_trip_protection"}
        return set()

    def holds(self) -> tuple[bool, bool]:
        held = self.active and not self.board.fault("no_action", (), 32)
        return held, held

    def signature(self) -> tuple:
        return (self.active,)
