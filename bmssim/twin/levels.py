"""0x44 alarm levels (0 normal, 1 below, 2 above, 0xF0 fault) from the latest samples."""

from __future__ import annotations

from bmssim.twin.board import CHARGING, EPS, Board
from bmssim.twin.types import TEMPERATURES

LEVEL_NORMAL, LEVEL_LOW, LEVEL_HIGH, LEVEL_FAULT = 0x00, 0x01, 0x02, 0xF0


def cell_levels(b: Board) -> list[int]:
    # Choice: per-cell levels compare each cell with the alarm values directly (no
    # confirmation); a disconnected sense wire reads "other fault".
    hi, lo = b.eff(1), b.eff(3)
    out = []
    for i in range(b.n_cells()):
        v = b.cells[i]
        if b.inputs.cell_disconnected[i]:
            out.append(LEVEL_FAULT)
        elif v >= hi - EPS:
            out.append(LEVEL_HIGH)
        elif v <= lo + EPS:
            out.append(LEVEL_LOW)
        else:
            out.append(LEVEL_NORMAL)
    return out


def temp_levels(b: Board) -> list[int]:
    # Choice: T1..T4 use the charging alarm values while charging and the discharging
    # ones otherwise (a pack at rest is ready to discharge).
    if b.state == CHARGING:
        cell_hi, cell_lo = b.eff(21), b.eff(23)
    else:
        cell_hi, cell_lo = b.eff(29), b.eff(31)
    limits = [(cell_hi, cell_lo)] * 4 + [(b.eff(39), b.eff(41)), (b.eff(47), None)]
    out = []
    for k in range(TEMPERATURES):
        if b.sw(2) and b.ntc_faulty[k]:
            out.append(LEVEL_FAULT)
            continue
        hi, lo = limits[k]
        t = b.temps[k]
        if t >= hi - EPS:
            out.append(LEVEL_HIGH)
        elif lo is not None and t <= lo + EPS:
            out.append(LEVEL_LOW)
        else:
            out.append(LEVEL_NORMAL)
    return out


def current_level(b: Board) -> int:
    i = b.i_ca / 100.0
    if i >= b.eff(51) - EPS:
        return LEVEL_HIGH
    if i <= b.eff(53) + EPS:
        return LEVEL_LOW
    return LEVEL_NORMAL


def voltage_level(b: Board) -> int:
    pack = sum(b.cells[: b.n_cells()])
    if pack >= b.eff(11) - EPS:
        return LEVEL_HIGH
    if pack <= b.eff(13) + EPS:
        return LEVEL_LOW
    return LEVEL_NORMAL
