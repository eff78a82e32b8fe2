"""``Board``: the state every feature of the twin shares, and nothing else.

The features (``bmssim/twin/feature.py``) never reach into each other; what one decides and
another needs passes through this object: the clock, the sense inputs, the parameter block
and switches as the firmware acts on them (faults applied), the latest samples (current,
operating state, cell voltages, temperatures, the quantities the rows watch), the charge
store the coulomb counter keeps, the 0x45 overrides, the FETs, and the few signals one
function raises for another (``shutdown``, ``waiting_manual``, ``activation_pulse``, the
threshold rows' states and their change listeners).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from bmssim.faults import Faults, FirmwareFault
from bmssim.twin import ntc
from bmssim.twin import profile as profiles
from bmssim.twin.params import ParamTable
from bmssim.twin.rows import (
    AMBIENT,
    CELL_DIFF,
    CELL_MAX,
    CELL_MIN,
    CURRENT,
    PACK,
    PORT,
    POWER,
    ROWS,
    SOC,
    TCELL_MAX,
    TCELL_MIN,
    Hysteresis,
    Row,
)
from bmssim.twin.types import CELLS, TEMPERATURES, SenseInputs, TwinConfig
from bmsspec import SECONDS_PER_UNIT

CHARGING = "charging"
DISCHARGING = "discharging"
STANDBY = "standby"
#: BEHAVIOUR.md common rules: the state follows the current direction beyond +-0.5 A.
STATE_THRESHOLD_CA = 50

#: Charge unit: 10 mA x 1 ms (current is measured in 0.01 A, time in ms).
UNITS_PER_AH = 3600 * 100 * 1000
UNITS_PER_CAH = UNITS_PER_AH // 100  # per 0.01 Ah

#: ms per spec time unit, from the kernel's one table (an unknown unit counts as seconds).
MS_PER_UNIT = {unit: s * 1000.0 for unit, s in SECONDS_PER_UNIT.items()}

EPS = 1e-9
_NONE: frozenset[int] = frozenset()

#: Listener of a threshold row's change: (row, now active, t).
RowListener = Callable[[Row, bool, int], None]


def cah_units(ah: float) -> int:
    """``ah`` in charge units, quantised to 0.01 Ah as the board stores it."""
    return int(round(ah * 100)) * UNITS_PER_CAH


class Board:
    """Shared state of one twin (see the module docstring)."""

    def __init__(self, spec: Any, config: TwinConfig, faults: Faults) -> None:
        self.config = config
        self.faults = faults
        self.table = ParamTable(spec)
        self.vt_ms = int(config.voltage_period_ms)
        self.cur_ms = int(config.current_period_ms)
        self._confirm_ms = int(round(config.confirm_s * 1000))
        #: How exactly the board measures (bmssim/twin/profile.py); ideal: exactly.
        self.profile = profiles.make(config.profile, config.seed, config.line_error_rate)
        self.t = 0
        #: Threshold rows' confirmation state, by trip parameter (owned by ThresholdRows;
        #: charge activation releases the undervoltage rows through ``release_row``).
        self.rows: dict[int, Hysteresis] = {}
        self.row_listeners: list[RowListener] = []

    # ------------------------------------------------------------------ factory / restart

    def factory(self, t: int) -> None:
        """Non-volatile state from the factory: block, switches, name, charge, clock, inputs."""
        self.t = t
        self.values = self.table.factory_values()
        self.switches = self.table.factory_switches()
        self.model_name = self.config.model_name.ljust(10)[:10]
        self.remaining_u = cah_units(self.values[60])
        self.inputs = SenseInputs.nominal()
        self.rng = random.Random(self.config.seed)

    def restart(self, t: int) -> None:
        """Volatile (RAM) state as the firmware starts it."""
        self.i_ca = 0  # held current sample, 0.01 A
        self.state = STANDBY
        self.state_changed = False
        self.rows = {r.trip: Hysteresis() for r in ROWS}
        self.force_chg_off = False
        self.force_dsg_off = False
        self.shutdown = False
        self.waiting_manual = False
        self.activation_pulse = False
        self.chg_fet = True
        self.dsg_fet = True
        self.sensor_fault = False

    @property
    def confirm_ms(self) -> int:
        """The confirmation time now: the firmware's, plus the profile's jitter."""
        if not self.profile.active:
            return self._confirm_ms
        return self._confirm_ms + self.profile.confirm_jitter_ms(self.t)

    # ------------------------------------------------------------------ effective values

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = faults
        #: no firmware deviation in force: values and switches act as configured (the fast
        #: path of every decision)
        self.healthy = not faults.firmware

    def sw(self, n: int) -> bool:
        """Switch ``n`` as the firmware honours it; an ``ignored`` fault pins the factory
        setting (the firmware does not look at the bit)."""
        if not self.healthy and self._faults.ignored(n):
            return self.table.switches[n].default
        return self.switches[n]

    def eff(self, n: int) -> float:
        """Parameter ``n`` as the firmware acts on it: configured x scale + offset (faults)."""
        if self.healthy:
            return self.values[n]
        return self.values[n] * self._faults.scale(n) + self._faults.offset(n)

    def ms(self, n: int) -> int:
        """A time parameter in integer ms (its spec unit decides the factor)."""
        unit = self.table.params[n].unit
        return max(0, int(round(self.eff(n) * MS_PER_UNIT.get(unit, 1000.0))))

    def fault(self, kind: str, params: tuple[int, ...], switch: int | None) -> bool:
        return not self.healthy and self._faults.has(kind, params, switch)

    def deviation(self, kind: str, params: tuple[int, ...]) -> FirmwareFault | None:
        """The ``kind`` deviation on any of ``params`` (a function's parameters), or None."""
        return None if self.healthy else self._faults.deviation(kind, params)

    def ignored_channels(self, params: tuple[int, ...]) -> frozenset[int]:
        """Channels (1-based) the function on ``params`` does not see (``channel_ignored``)."""
        return _NONE if self.healthy else self._faults.ignored_channels(params)

    # ------------------------------------------------------------------ charge store

    def full_u(self) -> int:
        return cah_units(self.values[59])

    def soc_permille(self) -> int:
        full = self.full_u()
        if full <= 0:
            return 0
        return min(1000, (1000 * self.remaining_u) // full)

    # ------------------------------------------------------------------ rows

    def row_changed(self, row: Row, active: bool, t: int) -> None:
        for listener in self.row_listeners:
            listener(row, active, t)

    def release_row(self, trip: int, t: int) -> None:
        """Clear row ``trip`` now (the manual activation releasing an undervoltage row)."""
        self.rows[trip].force(False, t)

    # ------------------------------------------------------------------ sampling

    def sample_current(self) -> None:
        """One current sample (10 ms): the held current and the operating state."""
        amps = self.inputs.current_a
        if self.profile.active:
            amps = self.profile.current_a(amps, self.t)
        self.i_ca = int(round(amps * 100))
        if self.i_ca > STATE_THRESHOLD_CA:
            state = CHARGING
        elif self.i_ca < -STATE_THRESHOLD_CA:
            state = DISCHARGING
        else:
            state = STANDBY
        self.state_changed = state != self.state
        self.state = state

    def n_cells(self) -> int:
        return max(1, min(CELLS, int(round(self.values[66]))))

    def measure_vt(self) -> None:
        """One voltage/temperature sample: what the board's ADC and NTC table read now
        (before any compensation)."""
        cfg = self.config
        prof = self.profile
        inp = self.inputs
        cells = []
        for i in range(CELLS):
            v = inp.cell_v[i]
            if inp.cell_disconnected[i]:
                v = 0.0
            elif prof.active:
                v = prof.cell_v(i, v, self.t)
            elif cfg.noise_mv > 0:
                v += self.rng.gauss(0.0, cfg.noise_mv / 1000.0)
            cells.append(max(0.0, round(v, 3)))
        self.cells = cells
        temps = []
        faulty = []
        for k in range(TEMPERATURES):
            state = inp.ntc_state[k]
            if state == "OPEN":
                t_c = ntc.T_MIN_C
            elif state == "SHORT":
                t_c = ntc.T_MAX_C
            else:
                t_c = ntc.temperature_c(inp.ntc_ohm[k])
                if prof.active:
                    t_c = prof.temp_c(k, t_c, self.t)
                elif cfg.noise_c > 0:
                    t_c += self.rng.gauss(0.0, cfg.noise_c)
            temps.append(round(t_c, 1))
            faulty.append(state != "NORMAL" or inp.ntc_ohm[k] <= 0.0 or math.isinf(inp.ntc_ohm[k]))
        self.temps = temps
        self.ntc_faulty = faulty
        self.sensor_fault = self.sw(2) and any(faulty)
        self.port_v = round(max(0.0, inp.port_v), 2)

    def quantities(self) -> dict[str, float | None]:
        """What the rows watch, from the latest samples."""
        n = self.n_cells()
        cells = self.cells[:n]
        # With S2 on, a faulted NTC is known bad and left out of the decisions; with S2 off
        # the board does not know and acts on the saturated reading (Choice).
        use = [not (self.sw(2) and self.ntc_faulty[k]) for k in range(TEMPERATURES)]
        tcell = [self.temps[k] for k in range(4) if use[k]]
        return {
            CELL_MAX: max(cells),
            CELL_MIN: min(cells),
            CELL_DIFF: round(max(cells) - min(cells), 3),
            PACK: round(sum(cells), 3),
            PORT: self.port_v,
            TCELL_MAX: max(tcell) if tcell else None,
            TCELL_MIN: min(tcell) if tcell else None,
            AMBIENT: self.temps[4] if use[4] else None,
            POWER: self.temps[5] if use[5] else None,
            CURRENT: self.i_ca / 100.0,
            SOC: self.soc_permille() / 10.0,
        }

    def quantity_without(self, source: str, ignore: frozenset[int]) -> float | None:
        """A per-channel quantity as a function that does not see the channels ``ignore``
        (1-based cells or cell NTCs) computes it; None when it sees none."""
        if source in (TCELL_MAX, TCELL_MIN):
            temps = [
                self.temps[k]
                for k in range(4)
                if k + 1 not in ignore and not (self.sw(2) and self.ntc_faulty[k])
            ]
            if not temps:
                return None
            return max(temps) if source == TCELL_MAX else min(temps)
        cells = [self.cells[i] for i in range(self.n_cells()) if i + 1 not in ignore]
        if not cells:
            return None
        if source == CELL_MAX:
            return max(cells)
        if source == CELL_MIN:
            return min(cells)
        if source == CELL_DIFF:
            return round(max(cells) - min(cells), 3)
        raise ValueError(f"{source}: not a per-channel quantity")


def ceil_grid(t: int, period: int) -> int:
    """The first instant at or after ``t`` on the ``period`` grid (aligned to t = 0)."""
    return -(-t // period) * period


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def grid_after(d: int, now: int, period: int) -> int:
    """A deadline ``d`` rounded up to the next sample after ``now``."""
    return max(ceil_grid(d, period), ceil_grid(now + 1, period))


def earliest(now: int, *candidates: int | None) -> int | None:
    """The earliest candidate after ``now`` (each raised to at least ``now + 1``)."""
    best: int | None = None
    for c in candidates:
        if c is not None and (best is None or c < best):
            best = c
    if best is None:
        return None
    return best if best > now else now + 1
