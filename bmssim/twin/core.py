"""``BmsTwin``: the Seplos V2 16S board's behaviour for all 87 parameters and 64 switches.

docs/BEHAVIOUR.md is the reading implemented here, row by row; where it is silent, the choice
is written next to the code ("Choice:").

Time model. The board is a sampled system: cell/pack/port voltages and temperatures every
100 ms, current every 10 ms, the transient comparator every 1 ms, all on a grid aligned to
t = 0. The World calls :meth:`BmsTwin.sense` at every instant its inputs change and at every
instant :meth:`BmsTwin.next_event_ms` names; between two such instants nothing the board
decides can change, so the World jumps straight over them. ``next_event_ms`` is therefore the
earliest of: the next sample after an input change (a "dirty" sample), every running
confirmation/delay/recovery timer, and the instant the coulomb counter moves the SOC by one
permille. Charge is counted in integers (10 mA x 1 ms units) so long jumps are exact.

Hand-steps (the simulated bench's relay card, seen through ``SenseInputs``): the button
(S4 stuck detection, S54/P73 activation), the board's own supply (``powered``: off, the
board does nothing and drives nothing; back on, it boots for ``TwinConfig.boot_s`` and
starts from :meth:`BmsTwin._restart`: the parameter block, coulomb counter and history are
non-volatile, everything else is not), the external power switch (S57) and the
secondary-trip input (S32). A short circuit (S38/S40) and a connection fault (P83/S47) reach
the board only as current and cell voltages. Each choice is documented where it is made.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bmssim.faults import Faults
from bmssim.twin import history, ntc
from bmssim.twin.flags import flag_layout
from bmssim.twin.params import ParamTable
from bmssim.twin.rows import (
    AMBIENT,
    BOTH,
    CELL_DIFF,
    CELL_MAX,
    CELL_MIN,
    CHARGE,
    CUR,
    CURRENT,
    DISCHARGE,
    OVERCURRENT_ROWS,
    PACK,
    PORT,
    POWER,
    ROWS,
    SOC,
    TCELL_MAX,
    TCELL_MIN,
    VT,
    Hysteresis,
    OvercurrentRow,
    Row,
)
from bmssim.twin.types import (
    CELLS,
    TEMPERATURES,
    DeviceInfo,
    Measurements,
    ParameterBlock,
    SenseInputs,
    Status,
    TwinConfig,
    TwinOutputs,
)

CHARGING = "charging"
DISCHARGING = "discharging"
STANDBY = "standby"
#: BEHAVIOUR.md common rules: the state follows the current direction beyond +-0.5 A.
STATE_THRESHOLD_CA = 50

#: Charge unit: 10 mA x 1 ms (current is measured in 0.01 A, time in ms).
UNITS_PER_AH = 3600 * 100 * 1000
UNITS_PER_CAH = UNITS_PER_AH // 100  # per 0.01 Ah

MS_PER = {"second": 1000, "minute": 60_000, "hours": 3_600_000, "mS": 1}

LEVEL_NORMAL, LEVEL_LOW, LEVEL_HIGH, LEVEL_FAULT = 0x00, 0x01, 0x02, 0xF0

#: Manual control (0x45) action codes (protocol §9).
ACTION_ON, ACTION_OFF, ACTION_ONESHOT = 0x10, 0x1F, 0x00

#: Passive balancing bleed: a cell's sense lead carries V / R while its bleed resistor is on.
#: Choice: 33 Ohm (about 0.1 A at 3.3 V), a typical passive-balancing value for this class.
BALANCE_RESISTOR_OHM = 33.0

EPS = 1e-9

#: The board's own supply (the bench's bms_power relay): on, off (nothing runs, nothing
#: answers, FETs open) or booting (powered, not yet running: ``TwinConfig.boot_s``).
POWER_ON, POWER_OFF, POWER_BOOTING = "on", "off", "booting"


def _ceil_grid(t: int, period: int) -> int:
    return -(-t // period) * period


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class _OcState:
    """Runtime state of one overcurrent protection."""

    active: bool = False
    pending_since: int | None = None
    tripped_at: int | None = None
    count: int = 0
    last_recovery_at: int | None = None
    locked: bool = False


@dataclass(frozen=True)
class HistoryEntry:
    t_ms: int
    data: bytes


class BmsTwin:
    """The board: parameter block, switch bits, measurement, decisions and FETs.

    The protocol servers use the Twin contract (``read_block``, ``write_block``,
    ``set_remaining_capacity``, ``control``, ``measurements``, ``status``, ``device_info``,
    ``history_record``); the World uses ``sense``, ``outputs`` and ``next_event_ms``.
    """

    def __init__(
        self, spec: Any, config: TwinConfig | None = None, faults: Faults | None = None
    ) -> None:
        self.spec = spec
        self.config = config or TwinConfig()
        self.faults = faults or Faults.empty()
        self.table = ParamTable(spec)
        self._layout = flag_layout(spec)
        #: Called after a command changed the board (write_block, control, ...), so the World
        #: can recompute currents at the same instant.
        self.on_command: Callable[[], None] | None = None
        self._vt_ms = int(self.config.voltage_period_ms)
        self._cur_ms = int(self.config.current_period_ms)
        self._confirm_ms = int(round(self.config.confirm_s * 1000))
        self._noise = self.config.noise_mv > 0 or self.config.noise_c > 0
        self.reset(0)

    # ================================================================== state

    def reset(self, now_ms: int = 0) -> None:
        """Factory state at ``now_ms``: spec defaults, rated 100 Ah, remaining 50 Ah, FETs on,
        powered."""
        self._t = int(now_ms)
        # non-volatile: the parameter block, the coulomb counter and the history (EEPROM)
        self._values = self.table.factory_values()
        self._switches = self.table.factory_switches()
        self._model_name = self.config.model_name.ljust(10)[:10]
        self._remaining_u = self._cah_units(self._values[60])
        self._cycles = 0
        self._discharged_u = 0
        self._history: list[HistoryEntry] = []
        self._in = SenseInputs.nominal()
        self._rng = random.Random(self.config.seed)
        self._power = POWER_ON
        self._boot_until: int | None = None
        self._restart(self._t)

    def _restart(self, t: int) -> None:
        """Every volatile (RAM) state as the firmware starts it at ``t``: no protection, no
        lockout or latch, no override, no timer, FETs on. What survives a power cycle (the
        parameter block, remaining capacity, cycle count and history) is left alone."""
        self._i_ca = 0  # held current sample, 0.01 A
        self._state = STANDBY
        self._rows = {r.trip: Hysteresis() for r in ROWS}
        self._oc = {r.trip: _OcState() for r in OVERCURRENT_ROWS}
        self._balance = Hysteresis()
        self._balancing = [False] * CELLS
        self._static_ms = 0
        self._static_blocked = False
        self._heater = Hysteresis()
        self._limiter = Hysteresis()
        self._limit_until: int | None = None
        self._gap_waiting = False
        self._waiting_manual = False
        self._manual_due: int | None = None
        self._activation_due: int | None = None
        self._pulse_until: int | None = None
        self._force_dsg_off = False
        self._force_chg_off = False
        self._manual_limit = False
        self._manual_heater = False
        self._shutdown = False
        self._idle_since = t
        self._charger_was_present = False
        self._hist_mode = STANDBY
        self._hist_ref = t
        self._soft_until: int | None = None
        self._chg_fet = True
        self._dsg_fet = True
        self._sensor_fault = False
        # hand-step functions (relay card): button (S4, S54), secondary trip (S32), short
        # circuit (S38/S40), power switch (S57), connection fault (P83/S47)
        self._button_since: int | None = t if self._in.button else None
        self._button_fault = False
        self._secondary = False
        self._sc = _OcState()
        self._switch_latched_off = False
        self._conn_prev: tuple[int, tuple[float, ...], tuple[bool, ...]] | None = None
        self._conn_mohm: float | None = None
        self._conn_fault = False
        self._cur_dirty = True
        self._vt_dirty = True
        self._measure_vt()
        self._sig = self._signature()

    # ================================================================== effective values

    def _sw(self, n: int) -> bool:
        """Switch ``n`` as the firmware honours it; an ``ignored`` fault pins the factory
        setting (the firmware does not look at the bit)."""
        if self.faults.ignored(n):
            return self.table.switches[n].default
        return self._switches[n]

    def _eff(self, n: int) -> float:
        """Parameter ``n`` as the firmware acts on it: configured x scale + offset (faults)."""
        return self._values[n] * self.faults.scale(n) + self.faults.offset(n)

    def _ms(self, n: int) -> int:
        """A time parameter in integer ms (its spec unit decides the factor)."""
        unit = self.table.params[n].unit
        return max(0, int(round(self._eff(n) * MS_PER.get(unit, 1000))))

    def _fault(self, kind: str, params: tuple[int, ...], switch: int | None) -> bool:
        return self.faults.has(kind, params, switch)

    @staticmethod
    def _cah_units(ah: float) -> int:
        return int(round(ah * 100)) * UNITS_PER_CAH

    def _full_u(self) -> int:
        return self._cah_units(self._values[59])

    def soc_permille(self) -> int:
        full = self._full_u()
        if full <= 0:
            return 0
        return min(1000, (1000 * self._remaining_u) // full)

    # ================================================================== World interface

    def outputs(self) -> TwinOutputs:
        """FETs and limits the World applies to the power path. An unpowered or booting board
        drives nothing: both FETs open (the gate drivers have no supply)."""
        if self._power != POWER_ON:
            return TwinOutputs(
                charge_fet=False,
                discharge_fet=False,
                current_limit_fet=False,
                heater=False,
                charge_limit_a=None,
                discharge_limit_a=None,
            )
        limit = self._limit_on()
        soft = self._soft_until is not None and self._t < self._soft_until
        return TwinOutputs(
            charge_fet=self._chg_fet,
            discharge_fet=self._dsg_fet,
            current_limit_fet=limit,
            heater=self._heater_on(),
            charge_limit_a=self.config.limit_current_a if limit else None,
            discharge_limit_a=self.config.soft_start_current_a if soft else None,
        )

    def sense(self, now_ms: int, inputs: SenseInputs) -> bool:
        """The board sees ``inputs`` from ``now_ms`` on. Runs every decision due up to and at
        ``now_ms``; returns True when the outputs (FETs, limits) changed, so the World knows
        to recompute its currents at the same instant."""
        now_ms = int(now_ms)
        if now_ms < self._t:
            raise ValueError(f"twin time cannot go back from {self._t} ms to {now_ms} ms")
        before = self.outputs()
        # Decisions due before now were taken with the inputs that held until now.
        while True:
            e = self.next_event_ms(self._t)
            if e is None or e >= now_ms:
                break
            self._process(e)
        if inputs != self._in:
            was_powered = self._in.powered
            self._in = inputs
            self._cur_dirty = self._vt_dirty = True
            if was_powered and not inputs.powered:
                self._power_off(now_ms)
            elif inputs.powered and not was_powered:
                self._power_on(now_ms)
        self._process(now_ms)
        return self.outputs() != before

    def next_event_ms(self, now_ms: int) -> int | None:
        """Earliest instant after ``now_ms`` at which the board may change anything with its
        inputs held; None when nothing is pending (the World may jump to its target)."""
        now = int(now_ms)
        if self._power == POWER_OFF:
            return None
        if self._power == POWER_BOOTING:
            assert self._boot_until is not None
            return max(self._boot_until, now + 1)
        c: list[int] = []
        if self._cur_dirty:
            c.append(_ceil_grid(now + 1, self._cur_ms))
        if self._vt_dirty or self._noise:
            c.append(_ceil_grid(now + 1, self._vt_ms))
        confirm = self._confirm_ms
        for row in ROWS:
            d = self._rows[row.trip].deadline(confirm)
            if d is not None:
                period = self._vt_ms if row.period == VT else self._cur_ms
                c.append(self._grid_after(d, now, period))
        for h, period in (
            (self._balance, self._vt_ms),
            (self._heater, self._vt_ms),
            (self._limiter, self._cur_ms),
        ):
            d = h.deadline(confirm)
            if d is not None:
                c.append(self._grid_after(d, now, period))
        for row in OVERCURRENT_ROWS:
            st = self._oc[row.trip]
            if st.pending_since is not None:
                d = st.pending_since + self._oc_delay_ms(row)
                c.append(self._grid_after(d, now, 1 if row.period == "cmp" else self._cur_ms))
            if st.active and not st.locked and st.tripped_at is not None:
                if not self._fault("latch", (row.trip, row.delay, 70, 71), row.switch):
                    c.append(max(st.tripped_at + self._ms(70), now + 1))
        sc = self._sc
        if sc.pending_since is not None:
            c.append(max(sc.pending_since + self._sc_reaction_ms(), now + 1))
        if sc.active and not sc.locked and sc.tripped_at is not None:
            if not self._fault("latch", (), 38):
                c.append(max(sc.tripped_at + self._ms(70), now + 1))
        if self._button_since is not None and not self._button_fault and self._sw(4):
            c.append(max(self._button_since + self._button_stuck_ms(), now + 1))
        for d in (
            self._soft_until,
            self._manual_due,
            self._activation_due,
            self._pulse_until,
            self._limit_until,
        ):
            if d is not None:
                c.append(max(d, now + 1))
        d = self._shutdown_due()
        if d is not None:
            c.append(max(d, now + 1))
        d = self._history_due()
        if d is not None:
            c.append(max(d, now + 1))
        d = self._static_due()
        if d is not None:
            c.append(max(d, now + 1))
        d = self._coulomb_due()
        if d is not None:
            c.append(max(now + d, now + 1))
        c = [x for x in c if x > now]
        return min(c) if c else None

    @staticmethod
    def _grid_after(d: int, now: int, period: int) -> int:
        return max(_ceil_grid(d, period), _ceil_grid(now + 1, period))

    # ================================================================== processing

    def _process(self, t: int) -> None:
        """Everything the board does at instant ``t`` (samples on the grid, timers)."""
        if self._power != POWER_ON:
            self._t = max(self._t, t)
            if self._power == POWER_OFF or self._boot_until is None or t < self._boot_until:
                return
            self._boot(t)
        self._integrate(t)
        on_cur = t % self._cur_ms == 0
        on_vt = t % self._vt_ms == 0
        if on_cur:
            self._sample_current(t)
            self._eval_secondary_trip()
        self._timers(t)
        self._eval_button(t)
        self._comparator(t)
        if on_cur:
            self._current_rows(t)
        if on_vt:
            self._measure_vt()
            self._vt_rows(t)
            self._eval_connection()
        self._eval_power_switch()
        self._update_fets(t)
        sig = self._signature()
        if sig != self._sig:
            self._sig = sig
            self._cur_dirty = self._vt_dirty = True
        else:
            if on_cur:
                self._cur_dirty = False
            if on_vt:
                self._vt_dirty = False

    def _signature(self) -> tuple:
        return (
            self._i_ca,
            self._state,
            self.soc_permille(),
            tuple(h.active for h in self._rows.values()),
            tuple((s.active, s.locked) for s in self._oc.values()),
            self._chg_fet,
            self._dsg_fet,
            self._limit_on(),
            self._heater_on(),
            self._soft_until is not None and self._t < self._soft_until,
            tuple(self._balancing),
            self._gap_waiting,
            self._waiting_manual,
            self._pulse_until is not None,
            self._shutdown,
            self._sensor_fault,
            self._static_blocked,
            self._button_fault,
            self._secondary,
            (self._sc.active, self._sc.locked),
            self._switched_off(),
            self._conn_fault,
        )

    # ------------------------------------------------------------------ coulomb counting

    def _integrate(self, t: int) -> None:
        dt = t - self._t
        if dt <= 0:
            return
        if self._i_ca != 0:
            full = self._full_u()
            before = self._remaining_u
            after = min(full, max(0, before + self._i_ca * dt))
            self._remaining_u = after
            if after < before:
                self._discharged_u += before - after
                self._count_cycles()
            elif after >= full > before:
                # BEHAVIOUR.md P82: cycles count the discharge since the last full charge.
                self._discharged_u = 0
        if self._balance.active and self._state == STANDBY and any(self._balancing):
            self._static_ms += dt
        self._t = t

    def _count_cycles(self) -> None:
        threshold = self._cycle_threshold_u()
        if threshold <= 0:
            return
        while self._discharged_u >= threshold:
            self._discharged_u -= threshold
            self._cycles += 1

    def _cycle_threshold_u(self) -> int:
        return int(self._full_u() * self._eff(82) / 100.0)

    def _coulomb_due(self) -> int | None:
        """ms until the SOC permille or the cycle count changes at the held current."""
        i = self._i_ca
        full = self._full_u()
        if i == 0 or full <= 0:
            return None
        u = self._remaining_u
        p = (1000 * u) // full
        out: list[int] = []
        if i > 0 and u < full:
            target = _ceil_div((p + 1) * full, 1000)
            out.append(_ceil_div(min(target, full) - u, i))
        elif i < 0 and u > 0:
            target = _ceil_div(p * full, 1000) - 1
            out.append(_ceil_div(u - max(target, 0), -i))
            threshold = self._cycle_threshold_u()
            if threshold > 0:
                out.append(_ceil_div(threshold - self._discharged_u, -i))
        out = [x for x in out if x > 0]
        return min(out) if out else None

    # ------------------------------------------------------------------ sampling

    def _sample_current(self, t: int) -> None:
        self._i_ca = int(round(self._in.current_a * 100))
        if self._i_ca > STATE_THRESHOLD_CA:
            state = CHARGING
        elif self._i_ca < -STATE_THRESHOLD_CA:
            state = DISCHARGING
        else:
            state = STANDBY
        if state != self._state:
            self._state = state
            if state != STANDBY:
                # S51: static balancing time counts a rest period; work resets it.
                self._static_ms = 0
                self._static_blocked = False

    def _measure_vt(self) -> None:
        """One voltage/temperature sample: what the board's ADC and NTC table read now."""
        cfg = self.config
        n_cells = self._n_cells()
        cells = []
        for i in range(CELLS):
            v = self._in.cell_v[i]
            if self._in.cell_disconnected[i]:
                v = 0.0
            elif cfg.noise_mv > 0:
                v += self._rng.gauss(0.0, cfg.noise_mv / 1000.0)
            cells.append(max(0.0, round(v, 3)))
        # P84-P87: busbar compensation, reported = sensed - I x R (I signed, + charging):
        # + |I| R while discharging, - |I| R while charging (BEHAVIOUR.md).
        i_a = self._i_ca / 100.0
        for pos_n, imp_n in ((84, 85), (86, 87)):
            pos = int(round(self._values[pos_n]))
            r_ohm = self._eff(imp_n) / 1000.0
            if 1 <= pos <= n_cells and r_ohm != 0.0 and not self._in.cell_disconnected[pos - 1]:
                cells[pos - 1] = max(0.0, round(cells[pos - 1] - i_a * r_ohm, 3))
        self._cells = cells
        temps = []
        faulty = []
        for k in range(TEMPERATURES):
            state = self._in.ntc_state[k]
            if state == "OPEN":
                t_c = ntc.T_MIN_C
            elif state == "SHORT":
                t_c = ntc.T_MAX_C
            else:
                t_c = ntc.temperature_c(self._in.ntc_ohm[k])
                if cfg.noise_c > 0:
                    t_c += self._rng.gauss(0.0, cfg.noise_c)
            temps.append(round(t_c, 1))
            faulty.append(
                state != "NORMAL" or self._in.ntc_ohm[k] <= 0.0 or math.isinf(self._in.ntc_ohm[k])
            )
        self._temps = temps
        self._ntc_faulty = faulty
        self._sensor_fault = self._sw(2) and any(faulty)
        self._port_v = round(max(0.0, self._in.port_v), 2)

    def _n_cells(self) -> int:
        return max(1, min(CELLS, int(round(self._values[66]))))

    def _quantities(self) -> dict[str, float | None]:
        n = self._n_cells()
        cells = self._cells[:n]
        # With S2 on, a faulted NTC is known bad and left out of the decisions; with S2 off
        # the board does not know and acts on the saturated reading (Choice).
        use = [not (self._sw(2) and self._ntc_faulty[k]) for k in range(TEMPERATURES)]
        tcell = [self._temps[k] for k in range(4) if use[k]]
        return {
            CELL_MAX: max(cells),
            CELL_MIN: min(cells),
            CELL_DIFF: round(max(cells) - min(cells), 3),
            PACK: round(sum(cells), 3),
            PORT: self._port_v,
            TCELL_MAX: max(tcell) if tcell else None,
            TCELL_MIN: min(tcell) if tcell else None,
            AMBIENT: self._temps[4] if use[4] else None,
            POWER: self._temps[5] if use[5] else None,
            CURRENT: self._i_ca / 100.0,
            SOC: self.soc_permille() / 10.0,
        }

    # ------------------------------------------------------------------ threshold rows

    def _row_condition(self, row: Row) -> str:
        cond = self.table.params[row.trip].condition
        return cond if cond in ("any", CHARGING, DISCHARGING) else row.condition

    def _state_ok(self, condition: str) -> bool:
        return condition == "any" or condition == self._state

    def _row_thresholds(self, row: Row) -> tuple[float, float, bool]:
        """(trip, recovery, strict_recovery) as the firmware acts on them."""
        trip = self._eff(row.trip)
        if row.recovery is not None:
            return trip, self._eff(row.recovery), False
        if row.trip == 10:
            return trip, trip + self.config.charge_prohibition_hysteresis_v, False
        # P79/P80: the flag clears as soon as SOC is back above the threshold.
        return trip, trip, True

    def _eval_row(self, row: Row, t: int, q: dict[str, float | None]) -> None:
        h = self._rows[row.trip]
        if not self._sw(row.switch):
            # BEHAVIOUR.md: switch off, the function neither flags nor acts; a set flag clears.
            h.force(False, t)
            return
        v = q[row.source]
        trip, rec, strict = self._row_thresholds(row)
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
            trip_c = trip_c and self._state_ok(self._row_condition(row))
        else:
            if self._fault("latch", row.params, row.switch):
                clear_c = False
            if row.trip in (7, 17) and self._waiting_manual:
                # S54: the undervoltage protection is released by the button, not by voltage.
                clear_c = False
        if h.step(t, trip_c, clear_c, self._confirm_ms):
            self._on_row_change(row, h, t)

    def _on_row_change(self, row: Row, h: Hysteresis, t: int) -> None:
        if row.trip in (7, 17) and h.active and self._sw(54):
            self._waiting_manual = True
        if row.trip in (5, 15) and not h.active and self._sw(42):
            # P81: after the overvoltage protection's voltage recovery, charging stays off
            # while SOC is at or above the gap compensation capacity.
            if self.soc_permille() >= self._eff(81) * 10 - EPS:
                self._gap_waiting = True

    def _vt_rows(self, t: int) -> None:
        q = self._quantities()
        for row in ROWS:
            if row.period == VT:
                self._eval_row(row, t, q)
        if self._gap_waiting and (
            not self._sw(42) or self.soc_permille() < self._eff(81) * 10 - EPS
        ):
            self._gap_waiting = False
        if self._waiting_manual and not self._sw(54):
            self._waiting_manual = False
            self._manual_due = None
        self._eval_balancing(t, q)
        self._eval_heater(t, q)

    def _current_rows(self, t: int) -> None:
        qc: dict[str, float | None] = {CURRENT: self._i_ca / 100.0}
        for row in ROWS:
            if row.period == CUR:
                self._eval_row(row, t, qc)
        for row in OVERCURRENT_ROWS:
            if row.period == CUR:
                self._eval_overcurrent(row, t, self._i_ca / 100.0)
        self._eval_passive_limit(t)

    def _comparator(self, t: int) -> None:
        """The transient comparator sees the instantaneous current every 1 ms."""
        for row in OVERCURRENT_ROWS:
            if row.period == "cmp":
                self._eval_overcurrent(row, t, round(self._in.current_a, 2))
        self._eval_short_circuit(t)

    # ------------------------------------------------------------------ overcurrent

    def _oc_delay_ms(self, row: OvercurrentRow) -> int:
        return max(0, int(round(self._eff(row.delay) * row.delay_unit_ms)))

    def _oc_lock_count(self) -> int:
        return int(round(self._eff(71)))

    def _eval_overcurrent(self, row: OvercurrentRow, t: int, current_a: float) -> None:
        st = self._oc[row.trip]
        params = (row.trip, row.delay, 70, 71)
        if not self._sw(row.switch):
            st.active = st.locked = False
            st.pending_since = st.tripped_at = None
            st.count = 0
            return
        if st.active:
            if st.locked or self._fault("latch", params, row.switch):
                return
            if st.tripped_at is not None and t >= st.tripped_at + self._ms(70):
                # P70: the output is tried again; if the overcurrent is still there it trips
                # again after the delay, and the trip counts towards the P71 lockout.
                st.active = False
                st.tripped_at = None
                st.last_recovery_at = t
            else:
                return
        trip = self._eff(row.trip)
        beyond = current_a >= trip - EPS if row.direction == "high" else current_a <= trip + EPS
        if not beyond:
            st.pending_since = None
            return
        if st.pending_since is None:
            st.pending_since = t
        if t - st.pending_since < self._oc_delay_ms(row):
            return
        st.pending_since = None
        clean_ms = int(self.config.clean_run_s * 1000)
        if st.last_recovery_at is not None and t - st.last_recovery_at < clean_ms:
            st.count += 1
        else:
            st.count = 1
        st.active = True
        st.tripped_at = t
        locks = row.lock_switch is None or self._sw(row.lock_switch)
        if locks and st.count >= self._oc_lock_count():
            st.locked = True

    def _clear_lockouts(self) -> None:
        """A block write or a factory reset releases the overcurrent lockouts (BEHAVIOUR P71)."""
        for st in self._oc.values():
            if st.locked:
                st.active = st.locked = False
                st.tripped_at = st.pending_since = None
            st.count = 0
            st.last_recovery_at = None

    # ------------------------------------------------------------------ board power

    def _power_off(self, t: int) -> None:
        """The board's supply is cut at ``t``: charge counted up to now is kept (Choice: the
        coulomb counter, remaining capacity and cycle count are in EEPROM, saved at the
        brown-out as boards of this class do, so a cut loses none of it); everything else
        stops, both FETs open."""
        self._integrate(t)
        self._power = POWER_OFF
        self._boot_until = None
        self._i_ca = 0
        self._chg_fet = self._dsg_fet = False
        self._soft_until = None
        self._balance.force(False, t)
        self._balancing = [False] * CELLS

    def _power_on(self, t: int) -> None:
        """The supply is back at ``t``: the firmware boots for ``TwinConfig.boot_s``."""
        self._t = max(self._t, t)
        self._power = POWER_BOOTING
        self._boot_until = t + int(round(self.config.boot_s * 1000))

    def _boot(self, t: int) -> None:
        """End of the boot: RAM state from scratch (latched protections, lockouts, ``latch``
        faults' held states, 0x45 overrides and timers all gone); the stored parameter block,
        the coulomb counter and the history as they were."""
        self._power = POWER_ON
        self._boot_until = None
        self._t = t
        self._restart(t)
        # the FETs were open while the board was down: the first decision closes them, with
        # the P58 soft start as whenever the output closes
        self._chg_fet = self._dsg_fet = False
        self._sig = self._signature()

    @property
    def power_state(self) -> str:
        """``on``, ``off`` (supply cut) or ``booting``."""
        return self._power

    @property
    def answering(self) -> bool:
        """True when the firmware runs and answers its links (not while unpowered or
        booting)."""
        return self._power == POWER_ON

    # ------------------------------------------------------------------ hand-step functions

    def _button_stuck_ms(self) -> int:
        return max(1, int(round(self.config.button_stuck_s * 1000)))

    def _activation_press(self) -> None:
        """S54 + P73: a press of the activation button (the bench's button, or 0x45 item 0
        action 0x10) while waiting for manual activation starts the P73 timer; when it runs
        out the undervoltage protection is released (``_timers``)."""
        if self._waiting_manual and self._manual_due is None:
            self._manual_due = self._t + self._ms(73)

    def _eval_button(self, t: int) -> None:
        """The reset/activation button (an input the firmware sees at once, debounced).

        A press that ends after at least ``button_debounce_ms`` and before the stuck time is a
        press (Choice: it counts at its release, since only then is it known not to be stuck):
        with S54 waiting it starts the P73 activation exactly as 0x45 item 0 does. Held for
        ``button_stuck_s`` or longer with S4 on: button_fault until released (``latch`` on S4:
        until a power cycle); a stuck button is not a press. S4 off: no fault detection (the
        button still activates). Choice: a notice only, no FET acts on it."""
        held = self._in.button
        if held and self._button_since is None:
            self._button_since = t
        elif not held and self._button_since is not None:
            duration = t - self._button_since
            self._button_since = None
            if self.config.button_debounce_ms <= duration < self._button_stuck_ms():
                self._activation_press()
        if not self._sw(4):
            self._button_fault = False
            return
        since = self._button_since
        if since is not None and t - since >= self._button_stuck_ms():
            self._button_fault = True
        elif since is None and not self._fault("latch", (), 4):
            self._button_fault = False

    def _eval_secondary_trip(self) -> None:
        """S32: the secondary-trip input, read with every current sample (10 ms). Asserted:
        secondary_trip_protection, and (Choice) both FETs open whatever the current direction:
        it is the last-resort disconnect of the output, not a charge- or discharge-side row.
        Released: recovers at the next sample (``latch`` on S32: only by a power cycle)."""
        if not self._sw(32):
            self._secondary = False
        elif self._in.secondary_trip:
            self._secondary = True
        elif not self._fault("latch", (), 32):
            self._secondary = False

    def _switched_off(self) -> bool:
        """S57: the output is enabled only while the external self-locking switch is ON
        (``latch`` on S57: once switched off it stays off until a power cycle). S57 off: the
        switch has no effect."""
        return self._sw(57) and (not self._in.power_switch or self._switch_latched_off)

    def _eval_power_switch(self) -> None:
        """Choice: switched off, both FETs open and the 0x44 system byte shows ``shutdown``
        (as the P78 standby shutdown does) instead of standby; no event flag. The board keeps
        measuring and answering: it is the output the switch enables, and no charger wakes
        it (unlike P78)."""
        if not self._sw(57):
            self._switch_latched_off = False
        elif not self._in.power_switch and self._fault("latch", (), 57):
            self._switch_latched_off = True

    def _sc_reaction_ms(self) -> int:
        return max(1, int(self.config.short_circuit_reaction_ms))

    def _eval_short_circuit(self, t: int) -> None:
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
        st = self._sc
        if not self._sw(38):
            st.active = st.locked = False
            st.pending_since = st.tripped_at = st.last_recovery_at = None
            st.count = 0
            return
        if st.active:
            if st.locked or self._fault("latch", (), 38):
                return
            due = st.tripped_at is not None and t >= st.tripped_at + self._ms(70)
            if not (due or self._in.charger_present):
                return
            st.active = False
            st.tripped_at = None
            st.last_recovery_at = t
        if self._in.current_a > -self.config.short_circuit_trip_a:
            st.pending_since = None
            return
        if st.pending_since is None:
            st.pending_since = t
        if t - st.pending_since < self._sc_reaction_ms():
            return
        st.pending_since = None
        clean_ms = int(self.config.clean_run_s * 1000)
        if st.last_recovery_at is not None and t - st.last_recovery_at < clean_ms:
            st.count += 1
        else:
            st.count = 1
        st.active = True
        st.tripped_at = t
        if self._sw(40) and st.count >= self._oc_lock_count():
            st.locked = True

    def _eval_connection(self) -> None:
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
        n = self._n_cells()
        cells = tuple(self._cells[:n])
        disc = tuple(self._in.cell_disconnected[:n])
        prev, self._conn_prev = self._conn_prev, (self._i_ca, cells, disc)
        if not self._sw(47):
            self._conn_fault = False
        if prev is None or len(prev[1]) != n:
            return
        step_a = (self._i_ca - prev[0]) / 100.0
        if abs(step_a) < self.config.connection_step_min_a - EPS:
            return
        changes = [cells[k] - prev[1][k] for k in range(n) if not (disc[k] or prev[2][k])]
        if not changes:
            return
        common = statistics.median(changes)
        r_mohm = max(abs(d - common) for d in changes) / abs(step_a) * 1000.0
        self._conn_mohm = round(r_mohm, 1)
        if not self._sw(47):
            return
        if self._conn_mohm > self._eff(83) + EPS:
            self._conn_fault = True
        elif not self._fault("latch", (83,), 47):
            self._conn_fault = False

    # ------------------------------------------------------------------ limiting, heater

    def _eval_passive_limit(self, t: int) -> None:
        """S56: once the charge current has held at or above P51 for the confirmation time,
        the current-limit FET holds charging at 10 A for P72 minutes; then it lets go, and if
        the charger still pushes above P51 the same confirmation engages it again.
        Choice: the 'reaches the alarm value' of S56 is read as the alarm's condition
        confirmed like the alarm itself, independent of whether S33 reports it."""
        if not self._sw(56):
            self._limiter.force(False, t)
            self._limit_until = None
            return
        if self._limiter.active:
            return
        beyond = self._i_ca / 100.0 >= self._eff(51) - EPS
        if self._limiter.step(t, beyond, False, self._confirm_ms):
            self._limit_until = t + self._ms(72)

    def _limit_on(self) -> bool:
        if self._manual_limit:
            return True
        if self._sw(55) and self._in.charger_present:
            return True
        return self._limiter.active and self._sw(56)

    def _eval_heater(self, t: int, q: dict[str, float | None]) -> None:
        """P37/P38 with S31 (heater hardware): heat while a charger is present and the coldest
        cell is at or below P37, until it is back at or above P38."""
        tmin = q[TCELL_MIN]
        if not self._sw(31) or not self._in.charger_present or tmin is None:
            self._heater.force(False, t)
            return
        self._heater.step(
            t, tmin <= self._eff(37) + EPS, tmin >= self._eff(38) - EPS, self._confirm_ms
        )

    def _heater_on(self) -> bool:
        return self._manual_heater or self._heater.active

    # ------------------------------------------------------------------ balancing

    def _eval_balancing(self, t: int, q: dict[str, float | None]) -> None:
        """P9/P63/P64: balance while charging (S49) or at rest (S50) when the highest cell is
        at or above P9 and the spread reaches P63; stop at P64. S51 ends static balancing
        after P65 hours until the next charge/discharge; S52 forbids it at or above the
        ambient high-temperature alarm value P39."""
        allowed = not self._shutdown and (
            (self._state == CHARGING and self._sw(49))
            or (self._state == STANDBY and self._sw(50) and not self._static_blocked)
        )
        amb = q[AMBIENT]
        if self._sw(52) and amb is not None and amb >= self._eff(39) - EPS:
            allowed = False
        vmax, vmin, diff = q[CELL_MAX], q[CELL_MIN], q[CELL_DIFF]
        assert vmax is not None and vmin is not None and diff is not None
        if not allowed:
            self._balance.force(False, t)
        else:
            start = vmax >= self._eff(9) - EPS and diff >= self._eff(63) - EPS
            # Choice: balancing also stops when the top cell falls under the turn-on voltage.
            stop = diff <= self._eff(64) + EPS or vmax < self._eff(9) - EPS
            self._balance.step(t, start, stop, self._confirm_ms)
        n = self._n_cells()
        if self._balance.active:
            # Choice: every cell at or above P9 that is more than P64 above the lowest cell
            # bleeds (the highest cell in the single-cell test).
            p9, p64 = self._eff(9), self._eff(64)
            self._balancing = [
                i < n and self._cells[i] >= p9 - EPS and self._cells[i] - vmin > p64 + EPS
                for i in range(CELLS)
            ]
        else:
            self._balancing = [False] * CELLS

    def _static_due(self) -> int | None:
        if not (self._balance.active and self._state == STANDBY and any(self._balancing)):
            return None
        if not self._sw(51):
            return None
        return self._t + max(0, self._ms(65) - self._static_ms)

    # ------------------------------------------------------------------ timers

    def _timers(self, t: int) -> None:
        # soft start over
        if self._soft_until is not None and t >= self._soft_until:
            self._soft_until = None
        # passive limiting re-check (P72)
        if self._limit_until is not None and t >= self._limit_until:
            self._limit_until = None
            self._limiter.force(False, t)
        # manual activation (S54 + P73): the button releases the undervoltage protection
        if self._manual_due is not None and t >= self._manual_due:
            self._manual_due = None
            self._waiting_manual = False
            for n in (7, 17):
                self._rows[n].force(False, t)
        # automatic activation (S53 + P74): a 60 s output pulse every P74 hours
        waiting_auto = self._waiting_auto()
        if not waiting_auto:
            self._activation_due = self._pulse_until = None
        else:
            if self._pulse_until is not None and t >= self._pulse_until:
                self._pulse_until = None
                self._activation_due = t + self._ms(74)
            if self._pulse_until is None and self._activation_due is None:
                self._activation_due = t + self._ms(74)
            if self._activation_due is not None and t >= self._activation_due:
                self._activation_due = None
                self._pulse_until = t + int(self.config.activation_pulse_s * 1000)
        # static balancing time (S51, P65)
        if (
            self._sw(51)
            and self._static_ms >= self._ms(65)
            and self._balance.active
            and self._state == STANDBY
        ):
            self._static_blocked = True
            self._balance.force(False, t)
            self._balancing = [False] * CELLS
        # history (S59, P76/P77); before the shutdown check, so a record due at the instant
        # the board falls asleep is still written
        mode = STANDBY if self._state == STANDBY else "working"
        if mode != self._hist_mode:
            self._hist_mode = mode
            self._hist_ref = t
        due = self._history_due()
        if due is not None and t >= due:
            self._record(t)
            self._hist_ref = t
        # standby shutdown (S58, P78) and wake-up by a charger
        present = self._in.charger_present
        if present and not self._charger_was_present and self._shutdown:
            self._shutdown = False
        self._charger_was_present = present
        if self._state != STANDBY or present:
            self._idle_since = t
        due = self._shutdown_due()
        if due is not None and t >= due:
            self._shutdown = True

    def _waiting_auto(self) -> bool:
        return self._sw(53) and any(self._rows[n].active for n in (7, 17, 80))

    def _shutdown_due(self) -> int | None:
        # Choice: P78 = 0 means the function never fires (a zero sleep delay would make the
        # board unusable); a charger on the port keeps the board awake.
        if self._shutdown or not self._sw(58) or self._in.charger_present:
            return None
        delay = self._ms(78)
        if delay <= 0:
            return None
        return self._idle_since + delay

    def _history_due(self) -> int | None:
        if not self._sw(59) or self._shutdown:
            return None  # a sleeping board records nothing
        # Choice: the interval restarts when the board changes between working and standby;
        # an interval of 0 records nothing.
        interval = self._ms(76) if self._hist_mode != STANDBY else self._ms(77)
        if interval <= 0:
            return None
        return self._hist_ref + interval

    def _record(self, t: int) -> None:
        data = history.encode_record(self, self._layout)
        self._history.append(HistoryEntry(t, data))
        if len(self._history) > self.config.history_capacity:
            del self._history[0]

    # ------------------------------------------------------------------ FETs

    def _holds(self, side: str) -> bool:
        """True when some function holds the ``side`` FET open."""
        for row in ROWS:
            if row.action is None or not self._rows[row.trip].active:
                continue
            if row.action != side and row.action != BOTH:
                continue
            if self._fault("no_action", row.params, row.switch):
                continue
            if side == DISCHARGE and self._pulse_until is not None and row.trip in (7, 17, 80):
                continue  # S53: the activation pulse forces the output on for 60 s
            return True
        for row in OVERCURRENT_ROWS:
            st = self._oc[row.trip]
            if (
                st.active
                and row.action == side
                and not self._fault("no_action", (row.trip, row.delay), row.switch)
            ):
                return True
        if side == CHARGE and self._gap_waiting:
            return True
        if self._secondary and not self._fault("no_action", (), 32):
            return True  # S32: the secondary trip opens the output both ways
        if side == DISCHARGE and self._sc.active and not self._fault("no_action", (), 38):
            return True
        return False

    def _update_fets(self, t: int) -> None:
        off = self._shutdown or (self._switched_off() and not self._fault("no_action", (), 57))
        chg = not (off or self._force_chg_off or self._holds(CHARGE))
        dsg = not (off or self._force_dsg_off or self._holds(DISCHARGE))
        if dsg and not self._dsg_fet and self._sw(48):
            # P58/S48: pre-charge the load whenever the output closes.
            delay = self._ms(58)
            self._soft_until = t + delay if delay > 0 else None
        if not dsg:
            self._soft_until = None
        self._chg_fet, self._dsg_fet = chg, dsg

    # ================================================================== Twin contract

    def read_block(self) -> ParameterBlock:
        """0x47: the stored block; P60 is the live remaining capacity (protocol §8 [sim])."""
        values = dict(self._values)
        values[60] = self.table.params[60].quantise(self._remaining_u / UNITS_PER_AH)
        return ParameterBlock(
            values=values, switches=dict(self._switches), model_name=self._model_name
        )

    def write_block(self, block: ParameterBlock) -> None:
        """0xA1: validate and store the whole block; P60 sets the remaining capacity. Also
        releases the overcurrent lockouts. Raises ValueError (-> RTN 0x06) naming the item."""
        values, switches, name = self.table.validate(block.values, block.switches, block.model_name)
        self._values = values
        self._switches = switches
        self._model_name = name
        live = self.table.params[60].quantise(self._remaining_u / UNITS_PER_AH)
        if values[60] != live:
            # a read-modify-write that leaves P60 as read keeps the exact live count
            self._remaining_u = self._cah_units(values[60])
        self._remaining_u = min(self._remaining_u, self._full_u())
        self._clear_lockouts()
        self._after_command()

    def set_remaining_capacity(self, ah: float) -> None:
        """0x49 index 0x3B: the one parameter written alone. 0 <= ah <= full capacity."""
        if isinstance(ah, bool) or not isinstance(ah, int | float) or not math.isfinite(ah):
            raise ValueError(f"P60 remaining capacity {ah!r}: not a number")
        q = self.table.params[60].quantise(float(ah))
        full = self._values[59]
        if q < 0 or q > full + EPS:
            raise ValueError(f"P60 remaining capacity = {ah} Ah: outside 0 .. {full} Ah (full)")
        self._remaining_u = self._cah_units(q)
        self._values[60] = q
        self._after_command()

    def control(self, item: int, action: int) -> None:
        """0x45 telecontrol (protocol §9). Items 0-3 take 0x10/0x1F, 4-5 take 0x00.

        Choice: for the FETs 0x1F forces the FET open and 0x10 releases that force (the FET
        follows the protections again); for the current limiter and the heater 0x10 forces
        them on and 0x1F hands them back to automatic control. Item 0 with 0x10 is also the
        "button" of manual charging activation (S54): P73 minutes later it releases the
        undervoltage protection.
        """
        if item in (0, 1, 2, 3):
            if action not in (ACTION_ON, ACTION_OFF):
                raise ValueError(f"0x45 item {item}: action 0x{action:02X} (0x10 or 0x1F)")
            on = action == ACTION_ON
            if item == 0:
                self._force_dsg_off = not on
                if on:
                    self._activation_press()
            elif item == 1:
                self._force_chg_off = not on
            elif item == 2:
                self._manual_limit = on
            else:
                self._manual_heater = on
        elif item == 4:
            if action != ACTION_ONESHOT:
                raise ValueError(f"0x45 item 4 (shutdown): action 0x{action:02X} (0x00)")
            self._shutdown = True
        elif item == 5:
            if action != ACTION_ONESHOT:
                raise ValueError(f"0x45 item 5 (factory reset): action 0x{action:02X} (0x00)")
            self._factory_parameters()
        else:
            raise ValueError(f"0x45 item {item}: unknown control item (0..5)")
        self._after_command()

    def _factory_parameters(self) -> None:
        """Item 5: default parameters and switches, overrides and lockouts released.
        Choice: the live remaining capacity is kept (reloading parameters does not discharge
        the battery), clamped to the factory rated capacity."""
        self._values = self.table.factory_values()
        self._switches = self.table.factory_switches()
        self._model_name = self.config.model_name.ljust(10)[:10]
        self._remaining_u = min(self._remaining_u, self._full_u())
        self._force_chg_off = self._force_dsg_off = False
        self._manual_limit = self._manual_heater = False
        self._clear_lockouts()

    def _after_command(self) -> None:
        self._cur_dirty = self._vt_dirty = True
        self._process(self._t)
        if self.on_command is not None:
            self.on_command()

    def measurements(self) -> Measurements:
        """0x42 content from the latest samples."""
        n = self._n_cells()
        full_ah = self._values[59]
        return Measurements(
            cell_v=list(self._cells[:n]),
            temps_c=list(self._temps),
            current_a=self._i_ca / 100.0,
            pack_v=round(sum(self._cells[:n]), 2),
            port_v=self._port_v,
            remaining_ah=round(self._remaining_u / UNITS_PER_AH, 2),
            full_ah=full_ah,
            rated_ah=full_ah,
            soc_permille=self.soc_permille(),
            cycles=self._cycles,
            soh_permille=1000,
        )

    def status(self) -> Status:
        """0x44 content: levels, every set flag by name, balancing, disconnection."""
        return Status(
            cell_levels=self._cell_levels(),
            temp_levels=self._temp_levels(),
            current_level=self._current_level(),
            voltage_level=self._voltage_level(),
            flags=self.flags(),
            balancing=list(self._balancing),
            disconnected=list(self._in.cell_disconnected),
        )

    def flags(self) -> set[str]:
        """Names (status_flags.yaml) of every flag the board reports now (none while the
        board is unpowered or booting: it reports nothing)."""
        out: set[str] = set()
        if self._power != POWER_ON:
            return out
        for row in ROWS:
            if self._rows[row.trip].active and not self._fault("no_flag", row.params, row.switch):
                out.add(row.flag)
        for row in OVERCURRENT_ROWS:
            st = self._oc[row.trip]
            silent = self._fault("no_flag", (row.trip, row.delay), row.switch)
            if st.active and not silent:
                out.add(row.flag)
            if (
                st.locked
                and row.lock_flag is not None
                and not self._fault("no_flag", (71,), row.lock_switch)
            ):
                out.add(row.lock_flag)
        if self._sensor_fault:
            out.add("temperature_sensor_fault")
        if self._button_fault and not self._fault("no_flag", (), 4):
            out.add("button_fault")
        if self._secondary and not self._fault("no_flag", (), 32):
            out.add("secondary_trip_protection")
        if self._sc.active and not self._fault("no_flag", (), 38):
            out.add("output_short_circuit_protection")
        if self._sc.locked and not self._fault("no_flag", (), 40):
            out.add("output_short_circuit_lockout")
        if self._conn_fault and not self._fault("no_flag", (83,), 47):
            out.add("output_connection_fault")
        if self._heater_on():
            out.add("heater")
            if not self._fault("no_flag", (37, 38), 31):
                out.add("cell_heating")
        if self._gap_waiting and not self._fault("no_flag", (81,), 42):
            out.add("gap_compensation_waiting")
        if self._waiting_manual:
            out.add("waiting_manual_activation")
        if self._waiting_auto():
            out.add("waiting_auto_activation")
        if self._chg_fet:
            out.add("charge_fet")
        if self._dsg_fet:
            out.add("discharge_fet")
        if self._limit_on():
            out.add("current_limit_fet")
        if self._shutdown or (self._switched_off() and not self._fault("no_flag", (), 57)):
            out.add("shutdown")
        else:
            out.add(self._state)
            if self.soc_permille() >= 1000 and self._state != DISCHARGING:
                out.add("fully_charged")
        return out

    def _cell_levels(self) -> list[int]:
        # Choice: per-cell levels compare each cell with the alarm values directly (no
        # confirmation); a disconnected sense wire reads "other fault".
        hi, lo = self._eff(1), self._eff(3)
        out = []
        for i in range(self._n_cells()):
            v = self._cells[i]
            if self._in.cell_disconnected[i]:
                out.append(LEVEL_FAULT)
            elif v >= hi - EPS:
                out.append(LEVEL_HIGH)
            elif v <= lo + EPS:
                out.append(LEVEL_LOW)
            else:
                out.append(LEVEL_NORMAL)
        return out

    def _temp_levels(self) -> list[int]:
        # Choice: T1..T4 use the charging alarm values while charging and the discharging
        # ones otherwise (a pack at rest is ready to discharge).
        if self._state == CHARGING:
            cell_hi, cell_lo = self._eff(21), self._eff(23)
        else:
            cell_hi, cell_lo = self._eff(29), self._eff(31)
        limits = [(cell_hi, cell_lo)] * 4 + [(self._eff(39), self._eff(41)), (self._eff(47), None)]
        out = []
        for k in range(TEMPERATURES):
            if self._sw(2) and self._ntc_faulty[k]:
                out.append(LEVEL_FAULT)
                continue
            hi, lo = limits[k]
            t = self._temps[k]
            if t >= hi - EPS:
                out.append(LEVEL_HIGH)
            elif lo is not None and t <= lo + EPS:
                out.append(LEVEL_LOW)
            else:
                out.append(LEVEL_NORMAL)
        return out

    def _current_level(self) -> int:
        i = self._i_ca / 100.0
        if i >= self._eff(51) - EPS:
            return LEVEL_HIGH
        if i <= self._eff(53) + EPS:
            return LEVEL_LOW
        return LEVEL_NORMAL

    def _voltage_level(self) -> int:
        pack = sum(self._cells[: self._n_cells()])
        if pack >= self._eff(11) - EPS:
            return LEVEL_HIGH
        if pack <= self._eff(13) + EPS:
            return LEVEL_LOW
        return LEVEL_NORMAL

    def device_info(self) -> DeviceInfo:
        return DeviceInfo(
            name=self._model_name,
            version=tuple(self.faults.version or self.config.version),
            manufacturer=self.config.manufacturer,
        )

    def history_record(self, index: int) -> bytes | None:
        """0x4B: record ``index`` (0 = oldest kept), or None when there is none."""
        if not isinstance(index, int) or index < 0 or index >= len(self._history):
            return None
        return self._history[index].data

    # ================================================================== introspection

    @property
    def now_ms(self) -> int:
        return self._t

    @property
    def state(self) -> str:
        """charging | discharging | standby (from the last current sample)."""
        return self._state

    @property
    def history_count(self) -> int:
        return len(self._history)

    def history_times_ms(self) -> list[int]:
        return [h.t_ms for h in self._history]

    def balancing_cell_current_a(self, index: int) -> float:
        """Bleed current drawn from cell ``index`` (0-based) by its balancing resistor."""
        if not self._balancing[index]:
            return 0.0
        return self._in.cell_v[index] / BALANCE_RESISTOR_OHM

    def overcurrent_trips(self, item: int) -> int:
        """Trips in a row counted towards the P71 lockout for P55, P56 or P57."""
        return self._oc[item].count

    def locked(self, item: int) -> bool:
        return self._oc[item].locked

    def short_circuit_trips(self) -> int:
        """Short-circuit trips in a row counted towards the S40 lockout."""
        return self._sc.count

    def short_circuit_locked(self) -> bool:
        return self._sc.locked

    @property
    def connection_impedance_mohm(self) -> float | None:
        """The last connection-impedance estimate (P83), None before the first current step."""
        return self._conn_mohm
