"""The bench as the procedures see it: stimuli and observations in the lab's words.

``Rig`` wraps a ``harness.bench.Bench`` and the spec. Procedures call ``rig.apply(stimulus,
value)``, ``rig.condition("charging")``, ``rig.dwell()``, ``rig.observe()``; they never talk
to a driver. Nothing here knows whether the bench is simulated: time comes from the bench's
clock, everything else from the instrument interfaces and the BMS link.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from harness.procedures.record import BenchFault, Recorder
from harness.procedures.setup import Setup

NOMINAL_CELL_V = 3.300
NOMINAL_TEMP_C = 25.0
CELLS = 16
#: Current that makes the BMS see charging / discharging (BEHAVIOUR.md: +-0.5 A) with room.
CONDITION_CURRENT_A = 5.0
#: A charger must sit this far above the pack to push its current limit (ARCHITECTURE.md).
CHARGER_HEADROOM_V = 2.0
#: Below this the current at the terminals counts as stopped.
STOPPED_A = 0.5
#: Default dwell at each probe: past the firmware's ~1 s confirmation (DOMAIN.md).
DEFAULT_DWELL_S = 1.5
NTC_CHANNELS = ("cell1", "cell2", "cell3", "cell4", "ambient", "power")


@dataclass
class Observation:
    """What one probe saw: the BMS's report and the current at the terminals."""

    t_s: float
    stimulus: float | None
    flag: bool
    flags: dict[str, bool]
    charge_fet: bool
    discharge_fet: bool
    supply_a: float
    load_a: float
    extra: dict[str, Any] = field(default_factory=dict)
    #: Bench seconds since the observation before it (None for a case's first).
    gap_s: float | None = None

    @property
    def terminal_a(self) -> float:
        """Signed current at P+ (+ charging), from the supply and load read-backs."""
        return self.supply_a - self.load_a

    def describe(self, flag: str | None = None) -> str:
        """What this observation saw, in words that hold whatever the verdict: the flag
        (when named), both FETs and the currents at the terminals."""
        parts = [f"{flag} {'set' if self.flag else 'clear'}"] if flag else []
        parts.append(
            f"charge FET {fet_state(self.charge_fet)}, "
            f"discharge FET {fet_state(self.discharge_fet)}"
        )
        parts.append(f"charge current {self.supply_a:.2f} A, discharge current {self.load_a:.2f} A")
        return ", ".join(parts)


def on_off(flag: bool) -> str:
    """ "on"/"off" for a flag in a sentence."""
    return "on" if flag else "off"


def charge_text(obs: Observation) -> str:
    """The charge side of an observation in a sentence."""
    return f"charge current {obs.supply_a:.2f} A, charge FET {fet_state(obs.charge_fet)}"


def fet_state(closed: bool) -> str:
    """A FET in the lab's words: closed conducts, open blocks."""
    return "closed" if closed else "open"


class Rig:
    """Stimuli, operating conditions and observations on an open bench."""

    def __init__(self, bench: Any, spec: Any, recorder: Recorder | None = None) -> None:
        self.bench = bench
        self.spec = spec
        self.rec = recorder or Recorder()
        self.cells_v = [NOMINAL_CELL_V] * CELLS
        self._condition = "standby"
        self._condition_current_a = CONDITION_CURRENT_A
        self._supply_override_v: float | None = None
        self._supply_limit_a: float | None = None
        self._load_a: float | None = None
        self._params_cache: dict[int, float] | None = None
        self.probes = 0
        #: Polls whose timing resolution the link lost (``delay.poll_resolution``), for the
        #: record's note (``runner.run_case``).
        self.resolution_lost: list[str] = []
        self._last_observed_s: float | None = None
        #: The stimulus value in force, logged with every observation (continuous traces).
        self.stimulus_value: float | None = None
        #: Voltage of the cells that do not move in a difference stimulus (plan ``base_v``).
        self.difference_base_v = NOMINAL_CELL_V
        #: The case's hand-steps (``harness.procedures.hands.Hands``): relays or a person.
        self.hands: Any = None
        #: The plan case's ``params`` (procedures read their bounded waits from here).
        self.params: dict[str, Any] = {}
        #: The same, read with a type (``harness/procedures/setup.py``).
        self.setup = Setup("(no case)", {})
        #: Rated capacity in force (Ah), from the case's nominal setup: the SOC stimulus.
        self.rated_ah: float | None = None
        #: Voltage of the highest cell in a balancing stimulus (the case's ``top_v``).
        self.balance_top_v: float | None = None
        #: The run's final record of a test id, or None (``procedures/evidence.py``).
        self.evidence: Any = None

    # -- time ---------------------------------------------------------------------------
    def now(self) -> float:
        return float(self.bench.clock.now())

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self.bench.clock.sleep(seconds)

    # -- configuration ------------------------------------------------------------------
    def parameter(self, number: int) -> float:
        """The value the device is configured with (as last written or read)."""
        if self._params_cache is None:
            self._params_cache = dict(self.bench.bms.read_parameters().values)
        return float(self._params_cache[number])

    def configure(
        self,
        values: dict[int, float],
        switches: dict[int, bool],
        explicit: frozenset[int] = frozenset(),
    ) -> bool:
        """Bring the device's block to ``values``/``switches``: one whole-block write, and only
        when something differs. Returns True when a write happened."""
        block = self.bench.bms.read_parameters()
        # A live row (its recipe says the device moves it: the remaining capacity) is only
        # written when asked for explicitly (``explicit``), or when it would exceed the row
        # that bounds it (its range's ``max_param``: a new rated capacity); then to half of it.
        live = [p for p in self.spec.parameters if p.recipe is not None and p.recipe.live]
        skipped = {p.number for p in live} - set(explicit)
        # A row the link does not carry (absent from the block it reads: the Modbus link's
        # Seplos V3 layout) cannot be written; the plan makes a case that needs it untestable.
        differs = {
            n: v
            for n, v in values.items()
            if n not in skipped
            and n in block.values
            and not _same(block.values.get(n), v, self.spec.param(n).encoding.scale)
        }
        for p in live:
            bound = p.range_spec.max_param if p.range_spec is not None else None
            if p.number in differs or bound is None:
                continue
            cap = differs.get(bound, block.values.get(bound))
            if cap is not None and block.values.get(p.number, 0.0) > cap:
                differs[p.number] = round(cap / 2, 2)
        sw_differs = {
            n: v
            for n, v in switches.items()
            if n in block.switches and bool(block.switches[n]) != bool(v)
        }
        self._params_cache = dict(block.values)
        if not differs and not sw_differs:
            return False
        with self.rec.step(
            "write parameter block: "
            + ", ".join(
                [f"P{n}={v:g}" for n, v in differs.items()]
                + [f"S{n}={'on' if v else 'off'}" for n, v in sw_differs.items()]
            )
        ):
            self.bench.bms.write_parameters(differs, switches=sw_differs)
        self._params_cache.update(differs)
        return True

    def forget_parameters(self) -> None:
        """The device's block may have changed behind the rig's back (a power-cycle): read it
        again before the next use."""
        self._params_cache = None

    def rewrite_block(self) -> None:
        """Write the block unchanged: the device's documented way to clear lock-outs."""
        with self.rec.step("rewrite the parameter block (clears lock-outs)"):
            self.bench.bms.write_block(self.bench.bms.read_parameters())
        self._params_cache = None

    def history_count(self, known: int = 0) -> int:
        """Number of history records the device holds (see :func:`count_history`)."""
        return count_history(self.bench.bms.history_record, known)

    # -- stimuli ------------------------------------------------------------------------
    def set_cells(self, volts: list[float]) -> None:
        self.cells_v = list(volts)
        self.bench.cells.set_all_v(self.cells_v)
        self._refresh_charger()

    def set_cell(self, cell: int, volts: float) -> None:
        self.cells_v[cell - 1] = volts
        self.bench.cells.set_cell_v(cell, volts)
        self._refresh_charger()

    def set_temperature(self, channel: str, celsius: float) -> None:
        self.bench.resistors.set_temperature_c(channel, celsius)

    def set_soc_pct(self, pct: float) -> None:
        if self.rated_ah is None:
            raise BenchFault("a SOC stimulus needs the rated capacity in force (params.nominal)")
        self.bench.bms.set_remaining_capacity(round(self.rated_ah * pct / 100.0, 2))

    def pack_v(self) -> float:
        return sum(self.cells_v)

    def apply(self, stimulus: str, value: float, cell: int = 1) -> None:
        """Set one stimulus, in the unit of the quantity it drives."""
        self.stimulus_value = value
        if self.rec.trace:
            # The moment the stimulus changed, with the state last observed, so the trace
            # (and its plot) shows when each value was applied, not only when it was read.
            row = dict(self.rec.trace[-1])
            row.update(t_s=round(self.now(), 3), stimulus=value, event="set")
            self.rec.sample(**row)
        if stimulus == "cell":
            self.set_cell(cell, value)
        elif stimulus == "pack":
            self.set_cells([value / CELLS] * CELLS)
        elif stimulus == "port":
            self._supply_override_v = value
            self._refresh_charger()
        elif stimulus.startswith("ntc:"):
            self.set_temperature(stimulus.split(":", 1)[1], value)
        elif stimulus == "charge_current":
            self._supply_limit_a = abs(value)
            self._refresh_charger()
        elif stimulus == "discharge_current":
            self._load_a = abs(value)
            self._refresh_load()
        elif stimulus == "soc":
            self.set_soc_pct(value)
        elif stimulus == "transient":
            # A load pulse of ``value`` A for 100 ms on top of the condition's base current.
            base = self._condition_current_a
            self.bench.load.configure_transient(
                a_a=base, b_a=abs(value), a_width_s=0.5, b_width_s=0.1, mode="pulse"
            )
            self.bench.load.transient(True)
            self.bench.load.trigger()
        elif stimulus == "cell_difference":
            # One cell lower than the others by ``value``; the others at the base voltage
            # (nominal for the failure difference P61/P62, above P9 for balancing P63/P64).
            volts = [self.difference_base_v] * CELLS
            volts[cell - 1] = self.difference_base_v - value
            self.set_cells(volts)
        elif stimulus == "balance_difference":
            # The highest cell sits above the balancing voltage; the others ``value`` lower.
            if self.balance_top_v is None:
                raise BenchFault("a balancing stimulus needs the top cell voltage (params top_v)")
            top = self.balance_top_v
            volts = [top - value] * CELLS
            volts[cell - 1] = top
            self.set_cells(volts)
        else:
            raise BenchFault(f"unknown stimulus {stimulus!r}")

    # -- operating conditions -------------------------------------------------------------
    def condition(self, name: str, current_a: float = CONDITION_CURRENT_A) -> None:
        """Put the bench in an operating condition: charging / discharging current flowing,
        standby (no current), or charger present (supply on, nothing else asked)."""
        self._condition = name
        self._condition_current_a = current_a
        if name in ("standby", "any"):
            self.bench.load.input(False)
            self.bench.supply.output(False)
        elif name in ("charging", "charger"):
            self.bench.load.input(False)
            self._refresh_charger()
            self.bench.supply.output(True)
        elif name == "discharging":
            self.bench.supply.output(False)
            self._refresh_load()
            self.bench.load.input(True)
        else:
            raise BenchFault(f"unknown operating condition {name!r}")

    def _refresh_charger(self) -> None:
        if self._condition not in ("charging", "charger"):
            return
        volts = self._supply_override_v
        if volts is None:
            volts = self.pack_v() + CHARGER_HEADROOM_V
        limit = (
            self._supply_limit_a if self._supply_limit_a is not None else self._condition_current_a
        )
        self.bench.supply.set_voltage_v(volts)
        self.bench.supply.set_current_limit_a(limit)

    def _refresh_load(self) -> None:
        if self._condition != "discharging":
            return
        amps = self._load_a if self._load_a is not None else self._condition_current_a
        self.bench.load.set_current_a(amps)

    def condition_flowing(self, obs: Observation) -> bool:
        """Is the operating condition's current really flowing (not held back by a FET or by
        the BMS's soft start after a FET closed)?"""
        if self._condition == "discharging":
            amps = self._load_a if self._load_a is not None else self._condition_current_a
            return obs.discharge_fet and obs.load_a >= 0.9 * amps - 0.1
        if self._condition == "charging":
            amps = (
                self._supply_limit_a
                if self._supply_limit_a is not None
                else self._condition_current_a
            )
            return obs.charge_fet and obs.supply_a >= 0.9 * amps - 0.1
        return True

    def settle(self, timeout_s: float = 10.0) -> Observation:
        """Wait until the operating condition's current flows; a bench fault if it never does."""
        obs = self.wait_until(self.condition_flowing, timeout_s=timeout_s, poll_s=0.1)
        if obs is None:
            last = self.observe(None)
            raise BenchFault(
                f"the {self._condition} current does not flow {timeout_s:g} s after the condition "
                f"was set (supply {last.supply_a:.2f} A, load {last.load_a:.2f} A, charge FET "
                f"{'closed' if last.charge_fet else 'open'}, discharge FET "
                f"{'closed' if last.discharge_fet else 'open'})"
            )
        return obs

    # -- observations -------------------------------------------------------------------
    def status(self) -> Any:
        return self.bench.bms.status()

    def observe(self, flag: str | None, stimulus: float | None = None) -> Observation:
        """Read the BMS's report and the terminal current at this instant; log a trace row.

        The report is read before the currents: a FET that moves in between gives a torn
        reading (FET closed, the condition's current stopped; or open and flowing), which is
        read once more; a state that stays inconsistent is returned as it is."""
        if stimulus is None:
            stimulus = self.stimulus_value
        obs = self._read(flag, stimulus)
        if self._torn(obs):
            again = self._read(flag, stimulus)
            # The gap to the observation before stays the torn one's (poll_resolution).
            obs = replace(again, gap_s=obs.gap_s and obs.gap_s + again.t_s - obs.t_s)
        self.rec.sample(
            t_s=round(obs.t_s, 3),
            event="observe",
            stimulus=stimulus,
            flag=int(obs.flag),
            charge_fet=int(obs.charge_fet),
            discharge_fet=int(obs.discharge_fet),
            current_a=round(obs.terminal_a, 3),
        )
        return obs

    def _torn(self, obs: Observation) -> bool:
        if self._condition == "discharging":
            return obs.discharge_fet != (obs.load_a >= STOPPED_A)
        if self._condition == "charging":
            return obs.charge_fet != (obs.supply_a >= STOPPED_A)
        return False

    def _read(self, flag: str | None, stimulus: float | None) -> Observation:
        st = self.status()
        supply_a = float(self.bench.supply.measure_current_a())
        load_a = float(self.bench.load.measure_current_a())
        flags = dict(st.flags)
        # System states (charging, standby, shutdown...) read like flags for the procedures.
        for state in getattr(st, "system_states", []) or []:
            flags.setdefault(state, True)
        if flag == "balancing":
            raised = any(st.balancing)
        elif flag == "heater":
            raised = bool(st.heater)
        elif flag is None:
            raised = False
        else:
            raised = bool(flags.get(flag, False))
        t_s = self.now()
        gap_s = None if self._last_observed_s is None else t_s - self._last_observed_s
        self._last_observed_s = t_s
        obs = Observation(
            gap_s=gap_s,
            t_s=t_s,
            stimulus=stimulus,
            flag=raised,
            flags=flags,
            charge_fet=bool(st.charge_fet),
            discharge_fet=bool(st.discharge_fet),
            supply_a=supply_a,
            load_a=load_a,
        )
        return obs

    def probe(
        self, stimulus: str, value: float, flag: str | None, dwell_s: float, cell: int = 1
    ) -> Observation:
        """Apply a value, dwell past the confirmation time, observe."""
        self.apply(stimulus, value, cell=cell)
        self.wait(dwell_s)
        self.probes += 1
        return self.observe(flag, stimulus=value)

    def wait_until(
        self, predicate: Any, timeout_s: float, poll_s: float, flag: str | None = None
    ) -> Observation | None:
        """Poll until ``predicate(observation)`` holds; None on timeout (bench time)."""
        deadline = self.now() + timeout_s
        while True:
            obs = self.observe(flag)
            if predicate(obs):
                return obs
            if self.now() >= deadline:
                return None
            self.wait(min(poll_s, max(deadline - self.now(), 0.001)))

    def restart_idle(self) -> None:
        """Start a standby period from now: a brief charge resets the BMS's idle timers
        (standby shutdown, static balancing), which otherwise count from whenever the
        current last flowed, possibly cases ago."""
        with self.rec.step("brief charge: the standby period starts now"):
            self.condition("charging")
            self.wait(2.0)
            self.condition("standby")

    def wake_if_shut_down(self) -> bool:
        """A BMS that slept through a long standby wakes when a charger appears."""
        if not self.observe(None).flags.get("shutdown"):
            return False
        with self.rec.step("the BMS is shut down: charger on to wake it"):
            self.condition("charger")
            self.wait(2.0)
            self.condition("standby")
        return True

    # -- nominal state --------------------------------------------------------------------
    def nominal_stimuli(self) -> None:
        """Cells 3.300 V, NTCs 25 C, no current (DOMAIN.md's nominal bench)."""
        self._supply_override_v = None
        self._supply_limit_a = None
        self._load_a = None
        self.condition("standby")
        self.bench.load.transient(False)
        self.set_cells([NOMINAL_CELL_V] * CELLS)
        with self.bench.resistors.batch():
            for ch in NTC_CHANNELS:
                self.bench.resistors.normal(ch)
                self.set_temperature(ch, NOMINAL_TEMP_C)


def count_history(record: Any, known: int = 0) -> int:
    """Number of history records a device holds, ``record(i)`` being None past the last one
    (0x4B answers "no data").

    Found by doubling then bisecting the record index: a few exchanges even when the device
    holds hundreds of records. ``known``, a count read earlier in the same case (records only
    accumulate while it runs), starts the search there: one exchange when no record was
    added since.

    >>> asked = []
    >>> def record(i):
    ...     asked.append(i)
    ...     return "r" if i < 37 else None
    >>> count_history(record), len(asked)
    (37, 12)
    >>> asked.clear(); count_history(record, known=37), asked
    (37, [37])
    """
    if known > 0:
        if record(known) is None:
            return known
        present = known
    elif record(0) is None:
        return 0
    else:
        present = 0
    step = 1
    absent = present + step
    while record(absent) is not None:
        present, step = absent, step * 2
        absent = present + step
    while absent - present > 1:
        mid = (present + absent) // 2
        if record(mid) is not None:
            present = mid
        else:
            absent = mid
    return absent


def _same(current: float | None, wanted: float, scale: float) -> bool:
    if current is None:
        return False
    return math.isclose(float(current), float(wanted), abs_tol=scale / 2)
