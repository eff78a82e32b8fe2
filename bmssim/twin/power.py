"""Standby shutdown (S58, P78; a charger wakes the board), the external power switch (S57)
and the power state the 0x44 system byte reports."""

from __future__ import annotations

from bmssim.twin.board import DISCHARGING, STANDBY, earliest
from bmssim.twin.feature import BaseFeature


class PowerState(BaseFeature):
    """``board.shutdown`` (P78 or 0x45 item 4) and the S57 switch open both FETs; the system
    byte then shows ``shutdown`` instead of the operating state.

    Power switch, Choice: switched off, both FETs open and the system byte shows
    ``shutdown`` (as the P78 standby shutdown does) instead of standby; no event flag. The
    board keeps measuring and answering: it is the output the switch enables, and no charger
    wakes it (unlike P78). ``latch`` on S57: once switched off it stays off until a power
    cycle. S57 off: the switch has no effect."""

    def restart(self, t: int) -> None:
        self.idle_since = t
        self.charger_was_present = False
        self.switch_latched_off = False

    def due(self) -> int | None:
        # Choice: P78 = 0 means the function never fires (a zero sleep delay would make the
        # board unusable); a charger on the port keeps the board awake.
        b = self.board
        if b.shutdown or not b.sw(58) or b.inputs.charger_present:
            return None
        delay = b.ms(78)
        if delay <= 0:
            return None
        return self.idle_since + delay

    def timers(self, t: int) -> None:
        b = self.board
        present = b.inputs.charger_present
        if present and not self.charger_was_present and b.shutdown:
            b.shutdown = False
        self.charger_was_present = present
        if b.state != STANDBY or present:
            self.idle_since = t
        due = self.due()
        if due is not None and t >= due:
            b.shutdown = True

    def after(self, t: int) -> None:
        b = self.board
        if not b.sw(57):
            self.switch_latched_off = False
        elif not b.inputs.power_switch and b.fault("latch", (), 57):
            self.switch_latched_off = True

    def switched_off(self) -> bool:
        b = self.board
        return b.sw(57) and (not b.inputs.power_switch or self.switch_latched_off)

    def next_event_ms(self, now: int) -> int | None:
        return earliest(now, self.due())

    def holds(self) -> tuple[bool, bool]:
        b = self.board
        off = b.shutdown or (self.switched_off() and not b.fault("no_action", (), 57))
        return off, off

    def flags(self) -> set[str]:
        b = self.board
        if b.shutdown or (self.switched_off() and not b.fault("no_flag", (), 57)):
            return {"shutdown"}
        if b.soc_permille() >= 1000 and b.state != DISCHARGING:
            return {b.state, "fully_charged"}
        return {b.state}

    def signature(self) -> tuple:
        return (self.board.shutdown, self.switched_off())
