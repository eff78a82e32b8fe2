"""Coulomb counting: remaining capacity (kept on the ``Board`` as the shared charge store),
SOC and the P82 cycle count. Charge is counted in integers (10 mA x 1 ms units) so long
jumps are exact."""

from __future__ import annotations

from bmssim.twin.board import ceil_div
from bmssim.twin.feature import BaseFeature


class CoulombCounter(BaseFeature):
    def factory(self, t: int) -> None:
        # non-volatile (EEPROM): survives a power cycle, so not in restart
        self.cycles = 0
        self.discharged_u = 0

    def integrate(self, t: int) -> None:
        b = self.board
        dt = t - b.t
        if dt <= 0 or b.i_ca == 0:
            return
        full = b.full_u()
        before = b.remaining_u
        after = min(full, max(0, before + b.i_ca * dt))
        b.remaining_u = after
        if after < before:
            self.discharged_u += before - after
            self._count_cycles()
        elif after >= full > before:
            # BEHAVIOUR.md P82: cycles count the discharge since the last full charge.
            self.discharged_u = 0

    def _threshold_u(self) -> int:
        return int(self.board.full_u() * self.board.eff(82) / 100.0)

    def _count_cycles(self) -> None:
        threshold = self._threshold_u()
        if threshold <= 0:
            return
        while self.discharged_u >= threshold:
            self.discharged_u -= threshold
            self.cycles += 1

    def next_event_ms(self, now: int) -> int | None:
        """When the SOC permille or the cycle count changes at the held current."""
        b = self.board
        i = b.i_ca
        full = b.full_u()
        if i == 0 or full <= 0:
            return None
        u = b.remaining_u
        p = (1000 * u) // full
        out: list[int] = []
        if i > 0 and u < full:
            target = ceil_div((p + 1) * full, 1000)
            out.append(ceil_div(min(target, full) - u, i))
        elif i < 0 and u > 0:
            target = ceil_div(p * full, 1000) - 1
            out.append(ceil_div(u - max(target, 0), -i))
            threshold = self._threshold_u()
            if threshold > 0:
                out.append(ceil_div(threshold - self.discharged_u, -i))
        out = [x for x in out if x > 0]
        return now + min(out) if out else None
