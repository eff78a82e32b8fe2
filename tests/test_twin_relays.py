"""The hand-steps of the simulated bench through the World: the relay card's channels and
the twin behaviour behind each (button S4/S54, BMS supply cut and power-up, power switch S57,
secondary trip S32, output short circuit S38/S40, connection fault P83/S47), each with its
switch off and with the firmware faults that apply to it."""

from __future__ import annotations

import json

import pytest
from twin_support import SPEC, configure, fresh_world

from bmssim.faults import Faults
from bmssim.world import (
    CONNECTION_FAULT_CELL,
    CONNECTION_FAULT_OHM,
    RELAY_CHANNELS,
    SHORT_CIRCUIT_CURRENT_A,
    World,
)

HOUR_MS = 3_600_000


@pytest.fixture
def world() -> World:
    return fresh_world()


def world_with(*entries: dict) -> World:
    w = World(SPEC, faults=Faults.from_dict({"firmware": list(entries)}, SPEC))
    w.advance(1000)
    return w


def edges(world: World, signal: str, since: int = 0) -> list[tuple[int, float]]:
    return [(t, v) for t, s, v in world.bench.trace.events if s == signal and t >= since]


def press(world: World, ms: int) -> None:
    world.set_relay("button", True)
    world.advance(ms)
    world.set_relay("button", False)


def power_cycle(world: World, off_ms: int = 1000) -> None:
    """Cut the BMS supply for ``off_ms``, restore it and wait out the boot."""
    world.set_relay("bms_power", True)
    world.advance(off_ms)
    world.set_relay("bms_power", False)
    world.advance(2000)


def fets(world: World) -> tuple[bool, bool]:
    out = world.twin.outputs()
    return out.charge_fet, out.discharge_fet


# ---------------------------------------------------------------------- the card in the World


def test_relays_start_open_and_show_in_the_snapshot(world: World) -> None:
    snap = json.loads(json.dumps(world.snapshot()))
    assert snap["relays"]["closed"] == []
    assert all(snap["relays"][name] is False for name in RELAY_CHANNELS)
    world.set_relay("secondary_trip", True)
    world.set_relay("button", True)
    snap = world.snapshot()
    assert snap["relays"]["closed"] == [101, 104]
    assert snap["relays"]["button"] and snap["relays"]["secondary_trip"]
    assert snap["bms"]["power"] == "on"
    assert set(snap) >= {"short_circuit", "connection"}


def test_reset_opens_every_relay_in_place(world: World) -> None:
    relays = world.bench.relays
    world.set_relay("bms_power", True)
    world.set_relay("short_circuit", True)
    world.reset()
    assert world.bench.relays is relays and relays.closed_channels() == []
    assert world.bms_answers()
    assert world.flags() == {"charge_fet", "discharge_fet", "standby"}


def test_safe_position_changes_nothing(world: World) -> None:
    """Every channel open is the bench without hand-steps: the factory behaviour."""
    plain = fresh_world()
    for w in (world, plain):
        w.discharge(20.0)
        w.advance(5000)
    assert world.flags() == plain.flags()
    assert world.pack_current_a() == plain.pack_current_a() == -20.0


# ---------------------------------------------------------------------- button (S4, S54, P73)


def test_stuck_button_raises_button_fault_until_released(world: World) -> None:
    assert world.twin.read_block().switches[4] is True  # factory: Open
    world.set_relay("button", True)
    t0 = world.clock.now_ms
    world.advance(10_000 - 1)
    assert "button_fault" not in world.flags()
    world.advance(1)
    assert world.clock.now_ms - t0 == 10_000
    assert "button_fault" in world.flags()
    assert fets(world) == (True, True)  # a notice: no FET acts on it
    world.advance(HOUR_MS)
    assert "button_fault" in world.flags()
    world.set_relay("button", False)
    assert "button_fault" not in world.flags()


def test_short_press_is_no_fault(world: World) -> None:
    press(world, 9_999)
    world.advance(20_000)
    assert "button_fault" not in world.flags()


def test_button_fault_needs_s4(world: World) -> None:
    configure(world, switches={4: False})
    world.set_relay("button", True)
    world.advance(60_000)
    assert "button_fault" not in world.flags()
    configure(world, switches={4: True})  # switched on while still held
    assert "button_fault" in world.flags()
    configure(world, switches={4: False})
    assert "button_fault" not in world.flags()


def test_button_faults_latch_no_flag_ignored() -> None:
    w = world_with({"item": "S4", "kind": "latch"})
    press(w, 11_000)
    w.advance(60_000)
    assert "button_fault" in w.flags()
    power_cycle(w)
    assert "button_fault" not in w.flags()

    w = world_with({"item": "S4", "kind": "no_flag"})
    w.set_relay("button", True)
    w.advance(11_000)
    assert "button_fault" not in w.flags()

    w = world_with({"item": "S4", "kind": "ignored"})
    configure(w, switches={4: False})  # the firmware does not look at the bit: factory on
    w.set_relay("button", True)
    w.advance(11_000)
    assert "button_fault" in w.flags()


def undervoltage_waiting(world: World) -> None:
    configure(world, switches={54: True})
    world.discharge(10.0)
    world.set_cells_v(2.6, 0)
    world.advance(1100)
    assert {"cell_undervoltage_protection", "waiting_manual_activation"} <= world.flags()
    world.set_cells_v(3.3, 0)
    world.advance(60_000)
    assert "cell_undervoltage_protection" in world.flags()  # voltage alone does not release


def test_button_press_starts_the_p73_activation(world: World) -> None:
    undervoltage_waiting(world)
    world.set_relay("button", True)
    world.advance(500)
    t_release = world.clock.now_ms
    world.set_relay("button", False)  # the press counts at its release
    world.advance(60_000 - 1)
    assert "cell_undervoltage_protection" in world.flags()
    world.advance(1)
    assert world.clock.now_ms - t_release == 60_000
    assert "cell_undervoltage_protection" not in world.flags()
    assert "waiting_manual_activation" not in world.flags()
    assert world.twin.outputs().discharge_fet


def test_button_and_0x45_item_0_activate_alike() -> None:
    by_button, by_control = fresh_world(), fresh_world()
    for w in (by_button, by_control):
        undervoltage_waiting(w)
    press(by_button, 200)
    by_control.twin.control(0, 0x10)
    for w in (by_button, by_control):
        w.advance(60_000)
        assert "cell_undervoltage_protection" not in w.flags()


def test_stuck_or_bouncing_button_does_not_activate(world: World) -> None:
    undervoltage_waiting(world)
    press(world, 20)  # contact bounce: below the 50 ms debounce
    world.advance(120_000)
    assert "cell_undervoltage_protection" in world.flags()
    press(world, 10_000)  # stuck: a fault, not a press
    world.advance(120_000)
    assert "cell_undervoltage_protection" in world.flags()
    assert "waiting_manual_activation" in world.flags()


def test_button_without_s54_waiting_does_nothing(world: World) -> None:
    press(world, 500)
    world.advance(120_000)
    assert world.flags() == {"charge_fet", "discharge_fet", "standby"}


# ---------------------------------------------------------------------- BMS supply (bms_power)


def test_unpowered_bms_is_silent_with_both_fets_open(world: World) -> None:
    world.discharge(20.0)
    assert world.pack_current_a() == -20.0
    world.set_relay("bms_power", True)
    assert not world.bms_answers()
    assert world.snapshot()["bms"]["power"] == "off"
    assert fets(world) == (False, False)
    assert world.pack_current_a() == 0.0 and world.load_current_a() == 0.0
    assert world.port_voltage_v() == 0.0
    assert world.flags() == set()
    world.charge(10.0)
    assert world.supply_current_a() == 0.0  # no charge path either
    s0 = world.steps
    world.advance(24 * HOUR_MS)  # nothing runs: a dead board costs no steps
    assert world.steps - s0 < 5
    assert not world.bms_answers()


def test_power_up_boots_for_2_s_then_answers(world: World) -> None:
    world.set_relay("bms_power", True)
    world.advance(5000)
    world.set_relay("bms_power", False)
    t_on = world.clock.now_ms
    assert world.snapshot()["bms"]["power"] == "booting"
    world.advance(2000 - 1)
    assert not world.bms_answers() and fets(world) == (False, False)
    world.advance(1)
    assert world.clock.now_ms - t_on == 2000
    assert world.bms_answers()
    assert world.flags() == {"charge_fet", "discharge_fet", "standby"}
    opens = [t for t, v in edges(world, "discharge_fet", t_on) if v == 1.0]
    assert opens == [t_on + 2000]


def test_power_cycle_during_boot_starts_the_boot_again(world: World) -> None:
    world.set_relay("bms_power", True)
    world.set_relay("bms_power", False)
    world.advance(1500)
    world.set_relay("bms_power", True)
    world.advance(100)
    world.set_relay("bms_power", False)
    world.advance(1999)
    assert not world.bms_answers()
    world.advance(1)
    assert world.bms_answers()


def test_power_cycle_clears_a_p25_latch() -> None:
    w = world_with({"item": "P25", "kind": "latch"})
    w.charge(10.0)
    w.set_ntc_c(0, 60.0)
    w.advance(1100)
    assert "charge_overtemperature_protection" in w.flags()
    w.set_ntc_c(0, 25.0)
    w.advance(60_000)
    assert "charge_overtemperature_protection" in w.flags()  # latched
    assert w.supply_current_a() == 0.0
    power_cycle(w)
    assert "charge_overtemperature_protection" not in w.flags()
    assert w.supply_current_a() == 10.0
    w.set_ntc_c(0, 60.0)  # the fault is firmware: it still latches after the boot
    w.advance(1100)
    w.set_ntc_c(0, 25.0)
    w.advance(60_000)
    assert "charge_overtemperature_protection" in w.flags()


def test_power_cycle_keeps_the_parameter_block_counter_and_history(world: World) -> None:
    configure(world, values={5: 3.70, 6: 3.50, 76: 1.0}, switches={10: False, 54: True})
    world.twin.set_remaining_capacity(80.0)
    world.discharge(50.0)
    world.advance(10 * 60_000)  # 8.33 Ah out, 10 history records
    before = world.twin.read_block()
    history = world.twin.history_count
    remaining = world.twin.measurements().remaining_ah
    assert history == 10 and remaining == pytest.approx(80.0 - 50 / 6, abs=0.01)
    power_cycle(world)
    after = world.twin.read_block()
    assert after.values == before.values and after.switches == before.switches
    assert after.model_name == before.model_name
    assert world.twin.measurements().remaining_ah == remaining
    assert world.twin.history_count == history
    assert world.twin.history_record(0) is not None


def test_power_cycle_clears_lockouts_overrides_and_waiting_states(world: World) -> None:
    configure(world, switches={39: True, 54: True})
    world.discharge(250.0)
    world.advance(5 * 62_100)
    assert world.twin.locked(57)
    world.discharge(0.0)
    world.twin.control(1, 0x1F)  # charge FET forced open (RAM)
    assert fets(world) == (False, False)
    power_cycle(world)
    assert not world.twin.locked(57) and world.twin.overcurrent_trips(57) == 0
    assert fets(world) == (True, True)
    assert "transient_overcurrent_lockout" not in world.flags()
    undervoltage_waiting(world)
    power_cycle(world)
    assert "waiting_manual_activation" not in world.flags()
    assert "cell_undervoltage_protection" not in world.flags()


# ---------------------------------------------------------------------- power switch (S57)


def test_power_switch_gates_the_output_with_s57(world: World) -> None:
    world.discharge(10.0)
    configure(world, switches={57: True})  # the switch (relay 103) is open: OFF
    assert fets(world) == (False, False)
    assert world.pack_current_a() == 0.0
    assert "shutdown" in world.flags() and "standby" not in world.flags()
    assert world.bms_answers()  # it is the output that is off, not the board
    world.set_relay("power_switch", True)
    assert "shutdown" not in world.flags()
    world.advance(2100)  # soft start, then the full load
    assert world.pack_current_a() == -10.0
    world.set_relay("power_switch", False)
    assert fets(world) == (False, False) and world.pack_current_a() == 0.0
    world.charge(10.0)  # a charger does not wake it (unlike the P78 shutdown)
    world.advance(5000)
    assert world.supply_current_a() == 0.0 and "shutdown" in world.flags()


def test_power_switch_without_s57_has_no_effect(world: World) -> None:
    assert world.twin.read_block().switches[57] is False  # factory: Close
    world.discharge(10.0)
    for closed in (False, True, False):
        world.set_relay("power_switch", closed)
        world.advance(3000)
        assert world.pack_current_a() == -10.0
        assert "shutdown" not in world.flags()


def test_power_switch_faults() -> None:
    w = world_with({"item": "S57", "kind": "no_flag"})
    configure(w, switches={57: True})
    assert fets(w) == (False, False) and "shutdown" not in w.flags()

    w = world_with({"item": "S57", "kind": "latch"})
    w.set_relay("power_switch", True)  # ON before S57 is enabled: OFF would latch at once
    configure(w, switches={57: True})
    assert fets(w) == (True, True)
    w.set_relay("power_switch", False)
    w.set_relay("power_switch", True)
    w.advance(60_000)
    assert fets(w) == (False, False)  # stays off
    power_cycle(w)
    assert fets(w) == (True, True)

    w = world_with({"item": "S57", "kind": "ignored"})
    configure(w, switches={57: True})  # factory Close is what the firmware honours
    assert fets(w) == (True, True)


# ---------------------------------------------------------------------- secondary trip (S32)


def test_secondary_trip_opens_the_output_with_s32(world: World) -> None:
    configure(world, switches={32: True})
    world.discharge(20.0)
    world.advance(3)
    t0 = world.clock.now_ms
    world.set_relay("secondary_trip", True)
    world.advance(20)
    assert "secondary_trip_protection" in world.flags()
    assert edges(world, "discharge_fet", t0) == [(t0 + 7, 0.0)]  # the next 10 ms sample
    assert world.pack_current_a() == 0.0
    world.idle()
    world.charge(10.0)  # both FETs: charging is stopped too
    world.advance(1000)
    assert fets(world) == (False, False) and world.supply_current_a() == 0.0
    world.set_relay("secondary_trip", False)
    world.advance(10)
    assert "secondary_trip_protection" not in world.flags()
    assert world.supply_current_a() == 10.0


def test_secondary_trip_without_s32_has_no_effect(world: World) -> None:
    assert world.twin.read_block().switches[32] is False  # factory: Close
    world.discharge(20.0)
    world.set_relay("secondary_trip", True)
    world.advance(5000)
    assert "secondary_trip_protection" not in world.flags()
    assert world.pack_current_a() == -20.0


def test_secondary_trip_faults() -> None:
    w = world_with({"item": "S32", "kind": "latch"})
    configure(w, switches={32: True})
    w.set_relay("secondary_trip", True)
    w.advance(100)
    w.set_relay("secondary_trip", False)
    w.advance(60_000)
    assert "secondary_trip_protection" in w.flags() and fets(w) == (False, False)
    power_cycle(w)
    assert "secondary_trip_protection" not in w.flags() and fets(w) == (True, True)

    w = world_with({"item": "S32", "kind": "no_flag"})
    configure(w, switches={32: True})
    w.set_relay("secondary_trip", True)
    w.advance(100)
    assert "secondary_trip_protection" not in w.flags() and fets(w) == (False, False)

    w = world_with({"item": "S32", "kind": "ignored"})
    configure(w, switches={32: True})
    w.set_relay("secondary_trip", True)
    w.advance(100)
    assert "secondary_trip_protection" not in w.flags() and fets(w) == (True, True)


# ---------------------------------------------------------------------- short circuit (S38, S40)


def test_short_circuit_opens_the_discharge_fet_at_the_next_ms(world: World) -> None:
    world.advance(3)  # off the 10 ms grid
    t0 = world.clock.now_ms
    world.set_relay("short_circuit", True)
    assert world.pack_current_a() == -SHORT_CIRCUIT_CURRENT_A
    assert world.port_voltage_v() == 0.0
    world.advance(1)
    assert "output_short_circuit_protection" in world.flags()
    assert fets(world) == (True, False)
    assert edges(world, "current", t0) == [(t0, -SHORT_CIRCUIT_CURRENT_A), (t0 + 1, 0.0)]
    assert edges(world, "discharge_fet", t0) == [(t0 + 1, 0.0)]
    # the 1 ms of 1500 A is no transient (30 ms) or discharge (10 s) overcurrent
    assert world.twin.overcurrent_trips(57) == world.twin.overcurrent_trips(56) == 0


def test_short_circuit_needs_the_discharge_fet(world: World) -> None:
    world.twin.control(0, 0x1F)
    world.set_relay("short_circuit", True)
    world.advance(1000)
    assert world.pack_current_a() == 0.0
    assert "output_short_circuit_protection" not in world.flags()


def test_short_circuit_recovers_after_60_s_and_trips_again_into_a_short(world: World) -> None:
    t0 = world.clock.now_ms
    world.set_relay("short_circuit", True)
    world.advance(60_001 - 1)
    assert "output_short_circuit_protection" in world.flags()
    world.advance(1)
    assert "output_short_circuit_protection" not in world.flags()  # P70 after the trip
    # the retry pre-charges for P58 (the short held at 1 A), then the short trips it again
    world.advance(2001)
    closes = [t - t0 for t, v in edges(world, "discharge_fet", t0) if v == 1.0]
    opens = [t - t0 for t, v in edges(world, "discharge_fet", t0) if v == 0.0]
    assert closes == [60_001] and opens == [1, 62_002]
    assert world.twin.short_circuit_trips() == 2


def test_short_circuit_removed_recovers_after_60_s(world: World) -> None:
    world.set_relay("short_circuit", True)
    world.advance(1000)
    world.set_relay("short_circuit", False)
    world.discharge(20.0)
    world.advance(58_000)
    assert "output_short_circuit_protection" in world.flags()
    world.advance(1001 + 2000)
    assert "output_short_circuit_protection" not in world.flags()
    assert world.pack_current_a() == -20.0


def test_a_charger_releases_the_short_circuit_protection(world: World) -> None:
    world.set_relay("short_circuit", True)
    world.advance(1000)
    world.charge(10.0)  # on a shorted port no charger is seen: still protected
    world.advance(5000)
    assert "output_short_circuit_protection" in world.flags()
    assert world.supply_current_a() == 10.0 and world.pack_current_a() == 0.0
    world.set_relay("short_circuit", False)  # the charger now shows on the port
    assert "output_short_circuit_protection" not in world.flags()
    assert world.twin.outputs().discharge_fet


def test_fifth_short_in_a_row_locks_with_s40_until_power_cycle(world: World) -> None:
    assert world.twin.read_block().switches[40] is True  # factory: Open
    t0 = world.clock.now_ms
    world.set_relay("short_circuit", True)
    world.advance(5 * 62_002)
    opens = [t for t, v in edges(world, "discharge_fet", t0) if v == 0.0]
    assert len(opens) == 5  # P71 = 5
    assert world.twin.short_circuit_locked()
    assert {"output_short_circuit_lockout", "output_short_circuit_protection"} <= world.flags()
    world.set_relay("short_circuit", False)
    world.charge(10.0)
    world.advance(HOUR_MS)
    assert "output_short_circuit_lockout" in world.flags()
    assert not world.twin.outputs().discharge_fet
    world.idle()
    configure(world, values={71: 5.0})  # a block write releases P71 lockouts, not this one
    world.twin.control(5, 0x00)  # nor does a factory reset
    assert world.twin.short_circuit_locked()
    power_cycle(world)
    assert not world.twin.short_circuit_locked()
    assert "output_short_circuit_lockout" not in world.flags()
    assert fets(world) == (True, True)


def test_short_circuit_keeps_retrying_without_s40(world: World) -> None:
    configure(world, switches={40: False})
    t0 = world.clock.now_ms
    world.set_relay("short_circuit", True)
    world.advance(8 * 62_001)  # one trip every P70 + P58 + 1 ms
    assert len([v for _, v in edges(world, "discharge_fet", t0) if v == 0.0]) == 8
    assert "output_short_circuit_lockout" not in world.flags()


def test_shorts_apart_do_not_count_towards_the_lockout(world: World) -> None:
    for _ in range(7):
        world.set_relay("short_circuit", True)
        world.advance(100)
        world.set_relay("short_circuit", False)
        world.advance(60_000 + 2100 + 61_000)  # recovered, then a clean minute
        assert world.twin.short_circuit_trips() == 1
    assert not world.twin.short_circuit_locked()


def test_without_s38_the_short_current_flows_until_the_transient_row(world: World) -> None:
    configure(world, switches={38: False})
    world.advance(3)
    t0 = world.clock.now_ms
    world.set_relay("short_circuit", True)
    world.advance(29)
    assert world.pack_current_a() == -SHORT_CIRCUIT_CURRENT_A  # bounded, no S38 reaction
    world.advance(1)
    assert "output_short_circuit_protection" not in world.flags()
    assert "transient_overcurrent_protection" in world.flags()  # P57 after P69 = 30 ms
    assert edges(world, "discharge_fet", t0) == [(t0 + 30, 0.0)]


def test_short_circuit_faults() -> None:
    w = world_with({"item": "S38", "kind": "latch"})
    w.set_relay("short_circuit", True)
    w.advance(100)
    w.set_relay("short_circuit", False)
    w.charge(10.0)
    w.advance(10 * 60_000)
    assert "output_short_circuit_protection" in w.flags()
    assert not w.twin.outputs().discharge_fet

    w = world_with({"item": "S38", "kind": "no_flag"})
    w.set_relay("short_circuit", True)
    w.advance(2)
    assert "output_short_circuit_protection" not in w.flags()
    assert not w.twin.outputs().discharge_fet

    w = world_with({"item": "S40", "kind": "no_flag"})
    w.set_relay("short_circuit", True)
    w.advance(5 * 62_002)
    assert w.twin.short_circuit_locked()
    assert "output_short_circuit_lockout" not in w.flags()

    w = world_with({"item": "S38", "kind": "ignored"})
    configure(w, switches={38: False})  # factory Open is what the firmware honours
    w.set_relay("short_circuit", True)
    w.advance(2)
    assert "output_short_circuit_protection" in w.flags()


# ---------------------------------------------------------------------- connection fault (P83)


def test_connection_resistor_shifts_cell_8_by_i_r(world: World) -> None:
    world.set_relay("connection_fault", True)
    world.advance(200)
    assert world.twin.measurements().cell_v[7] == 3.300  # no current, no drop
    world.discharge(10.0)
    world.advance(200)
    cells = world.twin.measurements().cell_v
    assert cells[CONNECTION_FAULT_CELL - 1] == pytest.approx(3.300 - 10.0 * CONNECTION_FAULT_OHM)
    assert cells[8] == 3.300 and cells[6] == 3.300  # the neighbours read true
    world.idle()
    world.charge(10.0)
    world.advance(200)
    assert world.twin.measurements().cell_v[7] == pytest.approx(3.300 + 0.2)
    assert world.pack_voltage_v() == pytest.approx(16 * 3.3)  # the channels are untouched


def test_connection_fault_above_p83_with_s47(world: World) -> None:
    configure(world, switches={47: True})
    world.set_relay("connection_fault", True)
    world.advance(500)
    assert "output_connection_fault" not in world.flags()  # at rest nothing is measured
    world.discharge(10.0)
    world.advance(200)
    assert world.twin.connection_impedance_mohm == pytest.approx(20.0)
    assert "output_connection_fault" in world.flags()
    assert fets(world) == (True, True)  # a notice only
    world.idle()  # the step back also measures 20 mΩ: the flag holds
    world.advance(HOUR_MS)
    assert "output_connection_fault" in world.flags()
    world.set_relay("connection_fault", False)
    world.charge(20.0)  # the next step sees a good connection
    world.advance(200)
    assert world.twin.connection_impedance_mohm == pytest.approx(0.0)
    assert "output_connection_fault" not in world.flags()


def test_connection_resistor_below_p83_is_no_fault(world: World) -> None:
    configure(world, values={83: 25.0}, switches={47: True})
    world.set_relay("connection_fault", True)
    world.discharge(10.0)
    world.advance(1000)
    assert world.twin.connection_impedance_mohm == pytest.approx(20.0)
    assert "output_connection_fault" not in world.flags()
    configure(world, values={83: 19.9})
    world.idle()
    world.advance(200)
    assert "output_connection_fault" in world.flags()


def test_connection_fault_without_s47_has_no_effect(world: World) -> None:
    assert world.twin.read_block().switches[47] is False  # factory: Close
    world.set_relay("connection_fault", True)
    world.discharge(10.0)
    world.advance(5000)
    assert "output_connection_fault" not in world.flags()


def test_small_current_steps_and_uniform_changes_are_not_impedance(world: World) -> None:
    configure(world, switches={47: True})
    world.set_relay("connection_fault", True)
    for amps in (1.0, 2.0, 3.0, 4.0):  # 1 A steps: below the 5 A the estimate needs
        world.discharge(amps)
        world.advance(200)
    assert world.twin.connection_impedance_mohm is None
    world.set_relay("connection_fault", False)
    world.idle()
    world.advance(200)
    world.set_cells_v(3.1)  # every cell alike, with a step: the median takes it
    world.discharge(30.0)
    world.advance(200)
    assert world.twin.connection_impedance_mohm == pytest.approx(0.0)
    assert "output_connection_fault" not in world.flags()


def test_connection_fault_faults() -> None:
    w = world_with({"item": "P83", "kind": "latch"})
    configure(w, switches={47: True})
    w.set_relay("connection_fault", True)
    w.discharge(10.0)
    w.advance(200)
    w.set_relay("connection_fault", False)
    w.idle()
    w.advance(200)
    assert w.twin.connection_impedance_mohm == pytest.approx(0.0)
    assert "output_connection_fault" in w.flags()

    w = world_with({"item": "S47", "kind": "no_flag"})
    configure(w, switches={47: True})
    w.set_relay("connection_fault", True)
    w.discharge(10.0)
    w.advance(200)
    assert "output_connection_fault" not in w.flags()

    w = world_with({"item": "P83", "kind": "offset", "value": 15.0})
    configure(w, switches={47: True})  # acts at 10 + 15 = 25 mΩ
    w.set_relay("connection_fault", True)
    w.discharge(10.0)
    w.advance(200)
    assert "output_connection_fault" not in w.flags()
