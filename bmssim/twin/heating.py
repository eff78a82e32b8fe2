"""Heating (P37/P38, S31 with heater hardware) and the 0x45 item 3 heater override."""

from __future__ import annotations

from bmssim.twin.board import EPS, earliest, grid_after
from bmssim.twin.deviations import HEATING_PARAMS
from bmssim.twin.feature import BaseFeature
from bmssim.twin.rows import TCELL_MIN, Hysteresis


class Heating(BaseFeature):
    """Heat while a charger is present and the coldest cell is at or below P37, until it is
    back at or above P38. 0x45 item 3 with 0x10 forces the heater on, 0x1F hands it back."""

    def restart(self, t: int) -> None:
        self.heater = Hysteresis()
        self.manual = False

    def vt(self, t: int) -> None:
        b = self.board
        tmin = b.q[TCELL_MIN]
        ignore = b.ignored_channels(HEATING_PARAMS)
        if ignore:  # channel_ignored: the heater control does not see that NTC
            tmin = b.quantity_without(TCELL_MIN, ignore)
        if not b.sw(31) or not b.inputs.charger_present or tmin is None:
            self.heater.force(False, t)
            return
        self.heater.step(t, tmin <= b.eff(37) + EPS, tmin >= b.eff(38) - EPS, b.confirm_ms)

    def on(self) -> bool:
        return self.manual or self.heater.active

    def next_event_ms(self, now: int) -> int | None:
        d = self.heater.deadline(self.board.confirm_ms)
        return earliest(now, None if d is None else grid_after(d, now, self.board.vt_ms))

    def flags(self) -> set[str]:
        if not self.on():
            return set()
        if self.board.fault("no_flag", (37, 38), 31):
            return {"heater"}
        return {"heater", "cell_heating"}

    def signature(self) -> tuple:
        return (self.on(),)
