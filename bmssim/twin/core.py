"""``BmsTwin``: the Seplos V2 16S board, a combination of its device behaviours.

docs/BEHAVIOUR.md is the reading implemented, row by row; where it is silent, the choice is
written next to the code ("Choice:"). Each behaviour is one feature module behind the
protocol of ``bmssim/twin/feature.py``; they share state only through the ``Board``
(``bmssim/twin/board.py``). This module combines them (``FEATURES`` and "The combination"
below) and serves the Twin contract.

Time model. The board is a sampled system: cell/pack/port voltages and temperatures every
100 ms, current every 10 ms, the transient comparator every 1 ms, all on a grid aligned to
t = 0. The World calls :meth:`BmsTwin.sense` at every instant its inputs change and at every
instant :meth:`BmsTwin.next_event_ms` names; between two such instants nothing the board
decides can change, so the World jumps straight over them. ``next_event_ms`` is therefore the
earliest of: the next sample after an input change (a "dirty" sample) and every feature's
next event (confirmation/delay/recovery timers, the next SOC permille, ...).

Hand-steps (the simulated bench's relay card, seen through ``SenseInputs``): the button
(S4 stuck detection, S54/P73 activation), the board's own supply (``powered``: off, the
board does nothing and drives nothing; back on, it boots for ``TwinConfig.boot_s`` and
restarts: the parameter block, coulomb counter and history are non-volatile, everything
else is not), the external power switch (S57) and the secondary-trip input (S32). A short
circuit (S38/S40) and a connection fault (P83/S47) reach the board only as current and cell
voltages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bmssim.faults import Faults
from bmssim.twin import history, mutate
from bmssim.twin.activation import ChargeActivation
from bmssim.twin.balancing import Balancing
from bmssim.twin.board import Board, ceil_grid
from bmssim.twin.busbar import BusbarCompensation, ConnectionFault
from bmssim.twin.contract import TwinContract
from bmssim.twin.coulomb import CoulombCounter
from bmssim.twin.feature import HOOKS, PHASES, Feature, overriding
from bmssim.twin.flags import flag_layout
from bmssim.twin.heating import Heating
from bmssim.twin.limiting import CurrentLimiting
from bmssim.twin.overcurrent import Overcurrent, SecondaryTrip, ShortCircuit
from bmssim.twin.power import PowerState
from bmssim.twin.recording import HistoryEntry, HistoryRecorder
from bmssim.twin.softstart import SoftStart
from bmssim.twin.thresholds import GapCompensation, ThresholdRows
from bmssim.twin.types import (
    SenseInputs,
    TwinConfig,
    TwinOutputs,
)

__all__ = ["BmsTwin", "HistoryEntry"]

#: The board's own supply (the bench's bms_power relay): on, off (nothing runs, nothing
#: answers, FETs open) or booting (powered, not yet running: ``TwinConfig.boot_s``).
POWER_ON, POWER_OFF, POWER_BOOTING = "on", "off", "booting"


class BmsTwin(TwinContract):
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
        self.board = b = Board(spec, self.config, faults or Faults.empty())
        self.table = b.table
        self._layout = flag_layout(spec)
        #: Called after a command changed the board (write_block, control, ...), so the World
        #: can recompute currents at the same instant.
        self.on_command: Callable[[], None] | None = None
        self._noise = self.config.noise_mv > 0 or self.config.noise_c > 0 or b.profile.active
        # The features, in the firmware's order within each phase (feature.py).
        self.coulomb = CoulombCounter(b)
        self.rows = ThresholdRows(b)
        self.gap = GapCompensation(b)
        self.overcurrent = Overcurrent(b)
        self.short_circuit = ShortCircuit(b)
        self.secondary = SecondaryTrip(b)
        self.soft_start = SoftStart(b)
        self.limiting = CurrentLimiting(b)
        self.activation = ChargeActivation(b)
        self.balancing = Balancing(b)
        self.heating = Heating(b)
        self.history = HistoryRecorder(b, lambda: history.encode_record(self, self._layout))
        self.power = PowerState(b)
        self.busbar = BusbarCompensation(b)
        self.connection = ConnectionFault(b)
        self.features: tuple[Feature, ...] = (
            self.coulomb,
            self.rows,
            self.gap,
            self.overcurrent,
            self.short_circuit,
            self.secondary,
            self.soft_start,
            self.limiting,
            self.activation,
            self.balancing,
            self.heating,
            self.history,
            self.power,
            self.busbar,
            self.connection,
        )
        #: the mutant in force (bmssim/twin/mutants.py) and the (object, method) it replaced
        self.mutant: str | None = None
        self._mutated: list[tuple[object, str]] = []
        mutate.install(self, b.faults.mutant)  # binds the phase calls (_bind)
        self.reset(0)

    def _bind(self) -> None:
        """The bound methods the combination calls; bound again when a mutant comes or goes
        (it replaces methods of the feature objects)."""
        #: phase or hook name -> the bound methods of the features that have it, in order
        self._calls: dict[str, tuple[Callable[..., None], ...]] = {
            name: tuple(getattr(f, name) for f in self.features if hasattr(f, name))
            for name in PHASES + HOOKS
        }
        # the combination's four questions, asked only of features that answer them
        self._next = overriding(self.features, "next_event_ms")
        self._flags = overriding(self.features, "flags")
        self._holds = overriding(self.features, "holds")
        self._signatures = overriding(self.features, "signature")

    @property
    def faults(self) -> Faults:
        return self.board.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.board.faults = faults
        if faults.mutant != self.mutant:
            mutate.install(self, faults.mutant)

    def set_profile(self, profile: Any) -> None:
        """Measure from now on as ``profile`` (bmssim/twin/profile.py) says."""
        self.board.profile = profile
        self._noise = self.config.noise_mv > 0 or self.config.noise_c > 0 or profile.active
        self._vt_dirty = self._cur_dirty = True

    # ================================================================== the combination

    def next_event_ms(self, now_ms: int) -> int | None:
        """Earliest instant after ``now_ms`` at which the board may change anything with its
        inputs held: the next dirty sample or the earliest next event of any feature; None
        when nothing is pending (the World may jump to its target)."""
        now = int(now_ms)
        if self._power == POWER_OFF:
            return None
        if self._power == POWER_BOOTING:
            assert self._boot_until is not None
            return max(self._boot_until, now + 1)
        b = self.board
        c: list[int] = []
        if self._cur_dirty:
            c.append(ceil_grid(now + 1, b.cur_ms))
        if self._vt_dirty or self._noise:
            c.append(ceil_grid(now + 1, b.vt_ms))
        for next_event in self._next:
            e = next_event(now)
            if e is not None and e > now:
                c.append(e)
        return min(c) if c else None

    def flags(self) -> set[str]:
        """Names (status_flags.yaml) of every flag the board reports now: the union of the
        features' flags and the board's own (none while the board is unpowered or booting:
        it reports nothing)."""
        out: set[str] = set()
        if self._power != POWER_ON:
            return out
        for flags in self._flags:
            out |= flags()
        b = self.board
        if b.sensor_fault:
            out.add("temperature_sensor_fault")
        if b.chg_fet:
            out.add("charge_fet")
        if b.dsg_fet:
            out.add("discharge_fet")
        return out

    def _update_fets(self, t: int) -> None:
        """A FET is open when any feature holds it (or a 0x45 override forces it open)."""
        b = self.board
        chg_held, dsg_held = b.force_chg_off, b.force_dsg_off
        for holds in self._holds:
            c, d = holds()
            chg_held = chg_held or c
            dsg_held = dsg_held or d
        was_dsg = b.dsg_fet
        b.chg_fet, b.dsg_fet = not chg_held, not dsg_held
        for hook in self._calls["fets_set"]:
            hook(t, was_dsg)

    def _signature(self) -> tuple:
        b = self.board
        return (
            b.i_ca,
            b.state,
            b.soc_permille(),
            b.chg_fet,
            b.dsg_fet,
            b.sensor_fault,
            tuple([signature() for signature in self._signatures]),
        )

    def _process(self, t: int) -> None:
        """Everything the board does at instant ``t``: each phase of ``PHASES`` in order,
        the sampled ones on their grid, then the FETs."""
        b = self.board
        if self._power != POWER_ON:
            b.t = max(b.t, t)
            if self._power == POWER_OFF or self._boot_until is None or t < self._boot_until:
                return
            self._boot(t)
        calls = self._calls
        for step in calls["integrate"]:
            step(t)
        if t > b.t:
            b.t = t
        on_cur = t % b.cur_ms == 0
        on_vt = t % b.vt_ms == 0
        if on_cur:
            b.sample_current()
            for step in calls["sample"]:
                step(t)
        for phase in ("timers", "inputs", "comparator"):
            for step in calls[phase]:
                step(t)
        if on_cur:
            for step in calls["current"]:
                step(t)
        if on_vt:
            self._measure()
            for step in calls["vt"]:
                step(t)
        for step in calls["after"]:
            step(t)
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

    def _measure(self) -> None:
        """A voltage/temperature sample, its compensations, and the quantities rows watch."""
        b = self.board
        b.measure_vt()
        for step in self._calls["compensate"]:
            step()
        b.q = b.quantities()

    # ================================================================== state

    def reset(self, now_ms: int = 0) -> None:
        """Factory state at ``now_ms``: spec defaults, rated 100 Ah, remaining 50 Ah, FETs on,
        powered."""
        t = int(now_ms)
        self.board.factory(t)
        for hook in self._calls["factory"]:
            hook(t)
        self._power = POWER_ON
        self._boot_until: int | None = None
        self._restart(t)

    def _restart(self, t: int) -> None:
        """Every volatile (RAM) state as the firmware starts it at ``t``: no protection, no
        lockout or latch, no override, no timer, FETs on. What survives a power cycle (the
        parameter block, remaining capacity, cycle count and history) is left alone."""
        self.board.restart(t)
        for f in self.features:
            f.restart(t)
        self._cur_dirty = True
        self._vt_dirty = True
        self._measure()
        self._sig = self._signature()

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
        limit = self.limiting.limit_a()
        return TwinOutputs(
            charge_fet=self.board.chg_fet,
            discharge_fet=self.board.dsg_fet,
            current_limit_fet=limit is not None,
            heater=self.heating.on(),
            charge_limit_a=limit,
            discharge_limit_a=self.soft_start.limit_a(),
        )

    def sense(self, now_ms: int, inputs: SenseInputs) -> bool:
        """The board sees ``inputs`` from ``now_ms`` on. Runs every decision due up to and at
        ``now_ms``; returns True when the outputs (FETs, limits) changed, so the World knows
        to recompute its currents at the same instant."""
        now_ms = int(now_ms)
        b = self.board
        if now_ms < b.t:
            raise ValueError(f"twin time cannot go back from {b.t} ms to {now_ms} ms")
        before = self.outputs()
        # Decisions due before now were taken with the inputs that held until now.
        while True:
            e = self.next_event_ms(b.t)
            if e is None or e >= now_ms:
                break
            self._process(e)
        if inputs != b.inputs:
            was_powered = b.inputs.powered
            b.inputs = inputs
            self._cur_dirty = self._vt_dirty = True
            if was_powered and not inputs.powered:
                self._power_off(now_ms)
            elif inputs.powered and not was_powered:
                self._power_on(now_ms)
        self._process(now_ms)
        return self.outputs() != before

    # ------------------------------------------------------------------ board power

    def _power_off(self, t: int) -> None:
        """The board's supply is cut at ``t``: charge counted up to now is kept (Choice: the
        coulomb counter, remaining capacity and cycle count are in EEPROM, saved at the
        brown-out as boards of this class do, so a cut loses none of it); everything else
        stops, both FETs open."""
        b = self.board
        for step in self._calls["integrate"]:
            step(t)
        if t > b.t:
            b.t = t
        self._power = POWER_OFF
        self._boot_until = None
        b.i_ca = 0
        b.chg_fet = b.dsg_fet = False
        for hook in self._calls["power_off"]:
            hook(t)

    def _power_on(self, t: int) -> None:
        """The supply is back at ``t``: the firmware boots for ``TwinConfig.boot_s``."""
        self.board.t = max(self.board.t, t)
        self._power = POWER_BOOTING
        self._boot_until = t + int(round(self.config.boot_s * 1000))

    def _boot(self, t: int) -> None:
        """End of the boot: RAM state from scratch (latched protections, lockouts, ``latch``
        faults' held states, 0x45 overrides and timers all gone); the stored parameter block,
        the coulomb counter and the history as they were."""
        self._power = POWER_ON
        self._boot_until = None
        self.board.t = t
        self._restart(t)
        # the FETs were open while the board was down: the first decision closes them, with
        # the P58 soft start as whenever the output closes
        self.board.chg_fet = self.board.dsg_fet = False
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
