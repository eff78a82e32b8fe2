"""Charge activation: manual (S54 + P73, by the button or 0x45 item 0) and automatic (S53 +
P74: a 60 s output pulse), and the reset/activation button itself (S4 stuck detection)."""

from __future__ import annotations

from bmssim.twin.board import Board, earliest
from bmssim.twin.feature import BaseFeature
from bmssim.twin.rows import Row
from bmssim.twin.thresholds import MANUAL_ROWS, PULSE_ROWS


class ChargeActivation(BaseFeature):
    """While an undervoltage row (P7/P17) is set with S54 on, the board waits for manual
    activation (``board.waiting_manual``: the rows do not recover by voltage); a press starts
    the P73 timer, at whose end the rows are released. With S53 on and P7/P17/P80 set, every
    P74 hours the output is forced on for ``activation_pulse_s`` (``board.activation_pulse``).
    """

    def __init__(self, board: Board) -> None:
        super().__init__(board)
        board.row_listeners.append(self._row_changed)

    def restart(self, t: int) -> None:
        b = self.board
        b.waiting_manual = False
        self.manual_due: int | None = None
        self.activation_due: int | None = None
        self._set_pulse(None)
        self.button_since: int | None = t if b.inputs.button else None
        self.button_fault = False

    def _set_pulse(self, until: int | None) -> None:
        self.pulse_until = until
        self.board.activation_pulse = until is not None

    def _row_changed(self, row: Row, active: bool, t: int) -> None:
        if row.trip in MANUAL_ROWS and active and self.board.sw(54):
            self.board.waiting_manual = True

    def waiting_auto(self) -> bool:
        b = self.board
        return b.sw(53) and any(b.rows[n].active for n in PULSE_ROWS)

    def press(self) -> None:
        """S54 + P73: a press of the activation button (the bench's button, or 0x45 item 0
        action 0x10) while waiting for manual activation starts the P73 timer."""
        b = self.board
        if b.waiting_manual and self.manual_due is None:
            self.manual_due = b.t + b.ms(73)

    def timers(self, t: int) -> None:
        b = self.board
        # manual activation (S54 + P73): the button releases the undervoltage protection
        if self.manual_due is not None and t >= self.manual_due:
            self.manual_due = None
            b.waiting_manual = False
            for n in MANUAL_ROWS:
                b.release_row(n, t)
        # automatic activation (S53 + P74): a 60 s output pulse every P74 hours
        if not self.waiting_auto():
            self.activation_due = None
            self._set_pulse(None)
            return
        if self.pulse_until is not None and t >= self.pulse_until:
            self._set_pulse(None)
            self.activation_due = t + b.ms(74)
        if self.pulse_until is None and self.activation_due is None:
            self.activation_due = t + b.ms(74)
        if self.activation_due is not None and t >= self.activation_due:
            self.activation_due = None
            self._set_pulse(t + int(b.config.activation_pulse_s * 1000))

    def _stuck_ms(self) -> int:
        return max(1, int(round(self.board.config.button_stuck_s * 1000)))

    def inputs(self, t: int) -> None:
        """The reset/activation button (an input the firmware sees at once, debounced).

        A press that ends after at least ``button_debounce_ms`` and before the stuck time is a
        press (Choice: it counts at its release, since only then is it known not to be stuck):
        with S54 waiting it starts the P73 activation exactly as 0x45 item 0 does. Held for
        ``button_stuck_s`` or longer with S4 on: button_fault until released (``latch`` on S4:
        until a power cycle); a stuck button is not a press. S4 off: no fault detection (the
        button still activates). Choice: a notice only, no FET acts on it."""
        b = self.board
        held = b.inputs.button
        if held and self.button_since is None:
            self.button_since = t
        elif not held and self.button_since is not None:
            duration = t - self.button_since
            self.button_since = None
            if b.config.button_debounce_ms <= duration < self._stuck_ms():
                self.press()
        if not b.sw(4):
            self.button_fault = False
            return
        since = self.button_since
        if since is not None and t - since >= self._stuck_ms():
            self.button_fault = True
        elif since is None and not b.fault("latch", (), 4):
            self.button_fault = False

    def vt(self, t: int) -> None:
        if self.board.waiting_manual and not self.board.sw(54):
            self.board.waiting_manual = False
            self.manual_due = None

    def next_event_ms(self, now: int) -> int | None:
        stuck = None
        if self.button_since is not None and not self.button_fault and self.board.sw(4):
            stuck = self.button_since + self._stuck_ms()
        return earliest(now, stuck, self.manual_due, self.activation_due, self.pulse_until)

    def flags(self) -> set[str]:
        out: set[str] = set()
        if self.button_fault and not self.board.fault("no_flag", (), 4):
            out.add("button_fault")
        if self.board.waiting_manual:
            out.add("waiting_manual_activation")
        if self.waiting_auto():
            out.add("waiting_auto_activation")
        return out

    def signature(self) -> tuple:
        return (self.board.waiting_manual, self.pulse_until is not None, self.button_fault)
