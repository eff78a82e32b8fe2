"""``World``: the one physical model of the simulated bench.

It couples the instrument states (``world.bench``, written by the SCPI simulators) with the
BMS twin through the wiring of the bench (DOMAIN.md "The bench"):

- cell simulator channels -> the 16 sense inputs (a channel that is off or OPEN reads 0 V and
  is a disconnected sense wire; SHORT reads 0 V);
- resistor module channels -> the 6 NTC inputs;
- charger supply on P+: with its output on the port sits at its voltage setpoint; with the
  charge FET closed and the setpoint above the pack by more than 0.1 V it delivers its current
  limit (CC mode), further limited by the BMS's current-limit FET when that is on;
- electronic load on P+: sinks its CC setpoint (or the transient level in force) while its
  input is on and the discharge FET is closed, held to the soft-start limit while the BMS
  pre-charges; otherwise 0 A;
- pack current = supply current - load current (+ = charging), minus the short-circuit
  current while the output is shorted;
- relay card (Keysight 34972A + 34903A, channels 101..120, ``world.bench.relays``): the
  hand-steps of the bench, each active while its channel is closed (``RELAY_CHANNELS``; every
  channel's safe position is open):

  ===  ================  ==================================================================
  101  button            the BMS reset/activation button is pressed (held while closed)
  102  bms_power         the BMS's own supply is cut (NC wiring: open = powered): no link
                         answers, both FETs open; back on, the board boots (2 s) and starts
                         with its stored configuration and no latched state
  103  power_switch      the external self-locking power switch is ON (S57)
  104  secondary_trip    the secondary-trip input is asserted (S32)
  105  short_circuit     a contactor shorts P+ to P-: the port is at 0 V, the load sinks
                         nothing, a supply that is on delivers its limit into the short (not
                         through the BMS), and with the discharge FET closed the pack drives
                         ``SHORT_CIRCUIT_CURRENT_A`` through the BMS (held to the soft-start
                         limit while the BMS pre-charges); no charger is seen on a shorted port
  106  connection_fault  ``CONNECTION_FAULT_OHM`` in the link between cell 8's + and cell
                         9's -, which the 8/9 sense wire taps on the cell-9 side: cell 8 reads
                         its channel voltage + I x R (I = pack current, + = charging), cell 9
                         and the pack path are unchanged (the same busbar model as the P84-P87
                         compensation, so P85 = 20 mΩ at position 8 cancels it)
  ===  ================  ==================================================================

Time is virtual (``world.clock``) and the model is event-driven: :meth:`World.advance` moves
from one event to the next (the twin's next sample or timer, the load's next transient edge,
the target) and never steps through idle time, so 48 simulated hours at rest cost a handful of
steps while a 30 ms transient trip still lands on the exact millisecond.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from typing import Any

from bmssim.clock import VirtualClock
from bmssim.faults import Faults
from bmssim.state import BenchState
from bmssim.twin import BmsTwin, SenseInputs, TwinConfig

#: The supply delivers current only when its setpoint exceeds the pack by this much (CC mode).
CHARGE_HEADROOM_V = 0.1
#: The relay card's wiring on the simulated bench: name -> channel (closed = active).
RELAY_CHANNELS: dict[str, int] = {
    "button": 101,
    "bms_power": 102,
    "power_switch": 103,
    "secondary_trip": 104,
    "short_circuit": 105,
    "connection_fault": 106,
}
#: The series resistor channel 106 inserts (a constant of the simulated bench; the bench
#: file's ``relays.connection_fault`` carries it). 20 mΩ: twice P83's 10 mΩ default, within
#: its 0-25.5 mΩ range, so both "above P83" and "below P83" are reachable by writing P83.
CONNECTION_FAULT_OHM = 0.020
#: The cell whose reading the resistor shifts (1-based, as in the bench file).
CONNECTION_FAULT_CELL = 8
#: What the pack drives into a short on P+/P- through a closed discharge FET: 52.8 V over
#: about 35 mΩ of pack, contactor and leads. Bounded on purpose: with S38 off nothing opens
#: at once and the model must stay finite (the transient row P57 and the others still act).
SHORT_CIRCUIT_CURRENT_A = 1500.0
#: A coupling loop at one instant that does not settle after this many rounds is cut short
#: (only possible with zero delays, e.g. P69 = 0 and P70 = 0: trip and retry at one instant).
MAX_SETTLE_ROUNDS = 16


def _width_ms(width_s: float) -> int:
    """Transient widths on the ms grid of the model (at least 1 ms)."""
    return max(1, int(round(width_s * 1000)))


def _reset_in_place(obj: Any) -> None:
    """*RST: every field back to its default, keeping the object (simulators hold it)."""
    fresh = type(obj)()
    for f in dataclasses.fields(obj):
        setattr(obj, f.name, getattr(fresh, f.name))


class World:
    """The simulated bench: instruments, wiring, BMS twin and virtual clock."""

    def __init__(
        self,
        spec: Any,
        twin_config: TwinConfig | None = None,
        faults: Faults | None = None,
        *,
        start_ms: int = 0,
    ) -> None:
        self.spec = spec
        self.clock = VirtualClock(start_ms)
        self.bench = BenchState()
        self.faults = faults or Faults.empty()
        self.twin = BmsTwin(spec, twin_config, self.faults)
        self.twin.reset(self.clock.now_ms)
        # A protocol command changes the board at the current instant: recompute at once.
        self.twin.on_command = self.settle
        self._supply_a = 0.0
        self._load_a = 0.0
        self._pack_a = 0.0
        self._short_a = 0.0
        self._port_v = 0.0
        self._pack_v = 0.0
        self._stepping = False
        #: Instants the model was evaluated at (a measure of the event-driven stepping).
        self.steps = 0
        self.settle()

    # ================================================================== stepping

    def settle(self) -> None:
        """Recompute everything at the current instant (after any instrument command)."""
        self._step(self.clock.now_ms)

    def advance(self, dt_ms: int) -> None:
        """Move the clock by ``dt_ms``, stopping only where something can change."""
        if dt_ms < 0:
            raise ValueError(f"advance by {dt_ms} ms: must not be negative")
        target = self.clock.now_ms + int(dt_ms)
        while self.clock.now_ms < target:
            now = self.clock.now_ms
            t = target
            e = self.twin.next_event_ms(now)
            if e is not None and e < t:
                t = e
            e = self._load_next_edge(now)
            if e is not None and e < t:
                t = e
            self.clock.advance_to(t)
            self._step(t)

    def advance_s(self, dt_s: float) -> None:
        """``advance`` in seconds (rounded to the ms)."""
        self.advance(int(round(dt_s * 1000)))

    def trigger_load(self) -> None:
        """A bus trigger reached the load: start (PULS, CONT) or flip (TOGG) its transient now."""
        load = self.bench.load
        if not load.transient_on:
            return
        if load.transient_mode == "TOGG":
            load.transient_toggled_to_b = not load.transient_toggled_to_b
        load.transient_started_ms = self.clock.now_ms
        self.settle()

    def _step(self, t: int) -> None:
        if self._stepping:
            return  # a command issued from inside a step settles with that step
        self._stepping = True
        self.steps += 1
        try:
            for _ in range(MAX_SETTLE_ROUNDS):
                inputs = self._compute(t)
                if not self.twin.sense(t, inputs):
                    break
            self._compute(t)
            trace = self.bench.trace
            out = self.twin.outputs()
            trace.record(t, "current", round(self._pack_a, 3))
            trace.record(t, "discharge_fet", 1.0 if out.discharge_fet else 0.0)
            trace.record(t, "charge_fet", 1.0 if out.charge_fet else 0.0)
        finally:
            self._stepping = False

    # ================================================================== physics

    def _cell_sense(self) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        volts, disconnected = [], []
        for ch in self.bench.cells:
            open_wire = not ch.output or ch.fault == "OPEN"
            disconnected.append(open_wire)
            volts.append(0.0 if open_wire or ch.fault == "SHORT" else float(ch.voltage_set_v))
        return tuple(volts), tuple(disconnected)

    def _supply_on(self) -> bool:
        s = self.bench.supply
        return bool(s.output and not s.protection_tripped)

    def _load_level_a(self, t: int) -> float:
        """The current the load is asked to sink at ``t`` (CC setpoint or transient level).

        Choice: CONT starts with level A for AWID, then B for BWID, repeating; PULS holds B for
        BWID from the trigger, then A; TOGG flips between A and B at each trigger. Before the
        first trigger a transient sits at level A.
        """
        load = self.bench.load
        if not load.transient_on:
            return float(load.current_set_a)
        a, b = float(load.transient_a_a), float(load.transient_b_a)
        if load.transient_mode == "TOGG":
            return b if load.transient_toggled_to_b else a
        start = load.transient_started_ms
        if start is None or t < start:
            return a
        aw, bw = _width_ms(load.transient_a_width_s), _width_ms(load.transient_b_width_s)
        if load.transient_mode == "PULS":
            return b if t < start + bw else a
        phase = (t - start) % (aw + bw)
        return a if phase < aw else b

    def _load_next_edge(self, now: int) -> int | None:
        load = self.bench.load
        start = load.transient_started_ms
        if not load.transient_on or start is None or load.transient_mode == "TOGG":
            return None
        aw, bw = _width_ms(load.transient_a_width_s), _width_ms(load.transient_b_width_s)
        if load.transient_mode == "PULS":
            end = start + bw
            return end if end > now else None
        if now < start:
            return start
        phase = (now - start) % (aw + bw)
        return now + (aw - phase if phase < aw else aw + bw - phase)

    def relay_closed(self, name: str) -> bool:
        """Whether the relay wired as ``name`` (``RELAY_CHANNELS``) is closed (active)."""
        return self.bench.relays.is_closed(RELAY_CHANNELS[name])

    def _compute(self, t: int) -> SenseInputs:
        """Currents and voltages from the instrument states and the FETs now; returns what
        the board senses."""
        out = self.twin.outputs()
        volts, disconnected = self._cell_sense()
        pack_v = round(sum(volts), 6)  # no 52.79999999999999 at the 0.1 V headroom edge
        s = self.bench.supply
        supply_on = self._supply_on()
        shorted = self.relay_closed("short_circuit")
        charger = supply_on and s.voltage_set_v > 0.0 and not shorted
        supply_a = 0.0
        charge_a = 0.0  # what the supply drives through the BMS
        load_a = 0.0
        short_a = 0.0
        if shorted:
            # P+ on P-: the supply (CC) delivers its limit into the short, the load sees 0 V,
            # and the pack discharges into the short through a closed discharge FET.
            if supply_on and s.voltage_set_v > 0.0:
                supply_a = max(0.0, float(s.current_limit_a))
            if out.discharge_fet:
                short_a = SHORT_CIRCUIT_CURRENT_A
                if out.discharge_limit_a is not None:
                    short_a = min(short_a, out.discharge_limit_a)
            port_v = 0.0
        else:
            headroom = s.voltage_set_v - pack_v > CHARGE_HEADROOM_V + 1e-9
            if charger and out.charge_fet and headroom:
                supply_a = max(0.0, float(s.current_limit_a))
                if out.charge_limit_a is not None:
                    supply_a = min(supply_a, out.charge_limit_a)
            charge_a = supply_a
            load = self.bench.load
            if load.input_on and out.discharge_fet:
                load_a = max(0.0, self._load_level_a(t))
                if out.discharge_limit_a is not None:
                    load_a = min(load_a, out.discharge_limit_a)
            # The port: a charger holds it at its setpoint (it cannot sink, so the pack lifts
            # it when higher); without a charger the pack reaches it through a closed
            # discharge FET.
            if charger:
                port_v = max(float(s.voltage_set_v), pack_v if out.discharge_fet else 0.0)
            else:
                port_v = pack_v if out.discharge_fet else 0.0
        pack_a = charge_a - load_a - short_a
        self._supply_a, self._load_a, self._short_a, self._pack_a = (
            supply_a,
            load_a,
            short_a,
            pack_a,
        )
        self._port_v, self._pack_v = port_v, pack_v
        k = CONNECTION_FAULT_CELL - 1
        if self.relay_closed("connection_fault") and not disconnected[k]:
            sensed = list(volts)
            sensed[k] = max(0.0, volts[k] + pack_a * CONNECTION_FAULT_OHM)
            volts = tuple(sensed)
        ntc_ohm = tuple(float(ch.ohms) for ch in self.bench.ntc)
        ntc_state = tuple(str(ch.state) for ch in self.bench.ntc)
        return SenseInputs(
            cell_v=volts,
            cell_disconnected=disconnected,
            ntc_ohm=ntc_ohm,
            ntc_state=ntc_state,
            current_a=pack_a,
            port_v=port_v,
            charger_present=charger,
            powered=not self.relay_closed("bms_power"),
            button=self.relay_closed("button"),
            power_switch=self.relay_closed("power_switch"),
            secondary_trip=self.relay_closed("secondary_trip"),
        )

    # ================================================================== readbacks

    def supply_current_a(self) -> float:
        """Current delivered by the supply (A, >= 0)."""
        return self._supply_a

    def load_current_a(self) -> float:
        """Current sunk by the load (A, positive when sinking)."""
        return self._load_a

    def pack_current_a(self) -> float:
        """Current through the BMS, + = charging (supply - load, or - the short-circuit
        current while P+ is shorted)."""
        return self._pack_a

    def short_circuit_current_a(self) -> float:
        """Current the pack drives into a short on P+/P- (A, >= 0)."""
        return self._short_a

    def bms_answers(self) -> bool:
        """Whether the BMS answers its links now (powered and booted); the Seplos and Modbus
        servers stay silent otherwise."""
        return self.twin.answering

    def port_voltage_v(self) -> float:
        """Voltage at P+/P-."""
        return self._port_v

    def pack_voltage_v(self) -> float:
        """Sum of the cell voltages (B+/B-)."""
        return self._pack_v

    def cell_current_a(self, index: int) -> float:
        """Current sourced by cell channel ``index`` (0-based): the balancing bleed, since
        the pack current flows through the battery emulator, not the sense leads."""
        ch = self.bench.cells[index]
        if not ch.output or ch.fault != "NONE":
            return 0.0
        return self.twin.balancing_cell_current_a(index)

    # ================================================================== bench shortcuts
    # What a test or a script does through the SCPI simulators, in one call each; every one
    # settles at the current instant like an instrument command does.

    def flags(self) -> set[str]:
        """Names of the 0x44 flags the BMS reports now."""
        return self.twin.flags()

    def set_cells_v(self, volts: float, index: int | None = None) -> None:
        """Set every cell channel (``index`` None) or one (0-based) to ``volts``."""
        targets = self.bench.cells if index is None else [self.bench.cells[index]]
        for ch in targets:
            ch.voltage_set_v = float(volts)
        self.settle()

    def set_ntc_c(self, channel: int, temp_c: float) -> None:
        """Set NTC channel ``channel`` (0-3 cells, 4 ambient, 5 power) to read ``temp_c``."""
        from bmssim.twin.ntc import ohms_at

        self.bench.ntc[channel].ohms = ohms_at(temp_c)
        self.bench.ntc[channel].state = "NORMAL"
        self.settle()

    def charge(self, current_a: float, voltage_v: float = 58.0) -> None:
        """Charger on: CC at ``current_a`` with the setpoint ``voltage_v`` (above the pack)."""
        s = self.bench.supply
        s.voltage_set_v, s.current_limit_a, s.output = float(voltage_v), float(current_a), True
        self.settle()

    def discharge(self, current_a: float) -> None:
        """Load on in CC mode at ``current_a``."""
        load = self.bench.load
        load.transient_on = False
        load.current_set_a, load.input_on = float(current_a), True
        self.settle()

    def idle(self) -> None:
        """Supply output and load input off."""
        self.bench.supply.output = False
        self.bench.load.input_on = False
        self.settle()

    def set_relay(self, name: str, closed: bool) -> None:
        """Close (``True``) or open the relay wired as ``name`` (``RELAY_CHANNELS``), as
        ``ROUT:CLOS``/``ROUT:OPEN`` on the card would."""
        self.bench.relays.set(RELAY_CHANNELS[name], closed)
        self.settle()

    # ================================================================== control

    def set_faults(self, faults: Faults) -> None:
        """Put ``faults`` in force at once (control channel ``faults``)."""
        self.faults = faults
        self.twin.faults = faults
        self.settle()

    def reset(self) -> None:
        """Device to factory state and every instrument to its *RST state (same objects)."""
        b = self.bench
        _reset_in_place(b.supply)
        _reset_in_place(b.load)
        for ch in b.cells:
            _reset_in_place(ch)
        for ch in b.ntc:
            _reset_in_place(ch)
        _reset_in_place(b.scope)
        _reset_in_place(b.relays)
        b.trace.events.clear()
        self.twin.reset(self.clock.now_ms)
        self.settle()

    def snapshot(self) -> dict[str, Any]:
        """Everything observable, JSON-able (control channel ``snapshot``)."""
        out = self.twin.outputs()
        m = self.twin.measurements()
        return {
            "clock": {"now_ms": self.clock.now_ms, "now_s": self.clock.now_s},
            "supply": {**asdict(self.bench.supply), "current_a": self._supply_a},
            "load": {**asdict(self.bench.load), "current_a": self._load_a},
            "cells": [asdict(ch) for ch in self.bench.cells],
            "ntc": [asdict(ch) for ch in self.bench.ntc],
            "pack": {
                "voltage_v": self._pack_v,
                "port_voltage_v": self._port_v,
                "current_a": self.pack_current_a(),
            },
            "fets": {
                "charge": out.charge_fet,
                "discharge": out.discharge_fet,
                "current_limit": out.current_limit_fet,
                "heater": out.heater,
            },
            "flags": sorted(self.twin.flags()),
            "bms": {**asdict(m), "state": self.twin.state, "power": self.twin.power_state},
            # observables a harness on the simulator may use where the wire has none: the
            # history record count (P76/P77) and the overcurrent retry/lockout state (P70/P71)
            "history": {
                "count": self.twin.history_count,
                "last_ms": (self.twin.history_times_ms() or [None])[-1],
            },
            "overcurrent": {
                f"P{n}": {"trips": self.twin.overcurrent_trips(n), "locked": self.twin.locked(n)}
                for n in (55, 56, 57)
            },
            "relays": {
                "closed": self.bench.relays.closed_channels(),
                **{name: self.relay_closed(name) for name in RELAY_CHANNELS},
            },
            "short_circuit": {
                "current_a": self._short_a,
                "trips": self.twin.short_circuit_trips(),
                "locked": self.twin.short_circuit_locked(),
            },
            "connection": {"impedance_mohm": self.twin.connection_impedance_mohm},
            "faults": self.faults.to_dict(),
        }
