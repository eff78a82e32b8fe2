"""Connection compensation: busbar compensation of the cell readings (P84-P87) and the
P83/S47 connection-fault estimate."""

from __future__ import annotations

import statistics

from bmssim.twin.board import EPS, Board
from bmssim.twin.feature import BaseFeature

#: (position parameter, impedance parameter in mΩ) of the two busbars.
BUSBARS = ((84, 85), (86, 87))


class BusbarCompensation(BaseFeature):
    """P84-P87: reported = sensed - I x R (I signed, + charging): + |I| R while discharging,
    - |I| R while charging (BEHAVIOUR.md), on the cell at the configured position."""

    def compensate(self) -> None:
        b = self.board
        i_a = b.i_ca / 100.0
        n = b.n_cells()
        cells = b.cells
        for pos_n, imp_n in BUSBARS:
            pos = int(round(b.values[pos_n]))
            r_ohm = b.eff(imp_n) / 1000.0
            if 1 <= pos <= n and r_ohm != 0.0 and not b.inputs.cell_disconnected[pos - 1]:
                cells[pos - 1] = max(0.0, round(cells[pos - 1] - i_a * r_ohm, 3))


class ConnectionFault(BaseFeature):
    """P83/S47 connection fault, at every voltage sample.

    Rule (Choice): the firmware estimates a connection impedance at each current step of
    at least ``connection_step_min_a`` between two voltage samples: for every cell the
    change of its reading minus the median change of all cells (what the current does to
    every cell alike: a real cell's internal resistance), divided by the current step;
    the largest, in mΩ, is the connection impedance. Above P83 (strictly): the flag
    output_connection_fault; an estimate at or below P83 clears it, so it holds between
    steps (at rest nothing can be measured). A notice only: no FET acts on it. A cell
    moved by other means in the same 100 ms sample as a current step reads as impedance,
    as it would on a real board. S47 off: no flag. ``latch``: the flag never clears."""

    def __init__(self, board: Board) -> None:
        super().__init__(board)
        self.mohm: float | None = None

    def restart(self, t: int) -> None:
        self.prev: tuple[int, tuple[float, ...], tuple[bool, ...]] | None = None
        self.mohm = None
        self.fault = False

    def vt(self, t: int) -> None:
        b = self.board
        n = b.n_cells()
        cells = tuple(b.cells[:n])
        disc = tuple(b.inputs.cell_disconnected[:n])
        prev, self.prev = self.prev, (b.i_ca, cells, disc)
        if not b.sw(47):
            self.fault = False
        if prev is None or len(prev[1]) != n:
            return
        step_a = (b.i_ca - prev[0]) / 100.0
        if abs(step_a) < b.config.connection_step_min_a - EPS:
            return
        changes = [cells[k] - prev[1][k] for k in range(n) if not (disc[k] or prev[2][k])]
        if not changes:
            return
        common = statistics.median(changes)
        r_mohm = max(abs(d - common) for d in changes) / abs(step_a) * 1000.0
        self.mohm = round(r_mohm, 1)
        if not b.sw(47):
            return
        if self.mohm > b.eff(83) + EPS:
            self.fault = True
        elif not b.fault("latch", (83,), 47):
            self.fault = False

    def flags(self) -> set[str]:
        if self.fault and not self.board.fault("no_flag", (83,), 47):
            return {"output_connection_fault"}
        return set()

    def signature(self) -> tuple:
        return (self.fault,)
