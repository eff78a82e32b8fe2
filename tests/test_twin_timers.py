"""Long timers and housekeeping through the World: standby shutdown (P78), history records
(P76/P77), balancing (P9, P63-P65, S49-S52), all with the event-driven clock."""

from __future__ import annotations

import json

import pytest
from twin_support import configure

from bmssim.twin import decode_record
from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()
HOUR_MS = 3_600_000


@pytest.fixture
def world() -> World:
    return World(SPEC)


def test_full_48_h_standby_shuts_down_with_few_steps(world: World) -> None:
    steps0 = world.steps
    world.advance(48 * HOUR_MS - 1)
    assert "shutdown" not in world.flags()
    assert world.twin.outputs().discharge_fet
    world.advance(1)
    assert world.flags() == {"shutdown"}
    out = world.twin.outputs()
    assert not out.charge_fet and not out.discharge_fet
    # event-driven: a dozen history records and the shutdown, not 1.7 million samples
    assert world.steps - steps0 < 50


def test_charger_wakes_the_board(world: World) -> None:
    world.advance(48 * HOUR_MS)
    assert "shutdown" in world.flags()
    world.charge(10.0)
    assert "shutdown" not in world.flags()
    assert world.supply_current_a() == 10.0


def test_activity_restarts_the_standby_timer(world: World) -> None:
    world.advance(47 * HOUR_MS)
    world.discharge(5.0)
    world.advance(1000)
    world.idle()
    t_idle = world.clock.now_ms
    world.advance(48 * HOUR_MS - 100)
    assert "shutdown" not in world.flags()
    world.advance(200)
    assert "shutdown" in world.flags()
    assert world.clock.now_ms - t_idle >= 48 * HOUR_MS


def test_no_records_while_shut_down(world: World) -> None:
    world.advance(48 * HOUR_MS)
    count = world.twin.history_count
    assert count == 12
    world.advance(24 * HOUR_MS)
    assert world.twin.history_count == count


def test_standby_shutdown_switch_off(world: World) -> None:
    configure(world, switches={58: False})
    world.advance(100 * HOUR_MS)
    assert "shutdown" not in world.flags()


def test_shortened_p78(world: World) -> None:
    configure(world, values={78: 1.0})
    world.advance(HOUR_MS + 10)
    assert "shutdown" in world.flags()


def test_control_shutdown_and_wake(world: World) -> None:
    world.twin.control(4, 0x00)
    assert world.flags() == {"shutdown"}
    world.discharge(10.0)
    assert world.load_current_a() == 0.0
    world.charge(5.0)
    assert world.supply_current_a() == 5.0


def test_standby_records_every_p77(world: World) -> None:
    world.advance(24 * HOUR_MS)
    assert world.twin.history_count == 6  # every 240 min
    assert world.twin.history_times_ms() == [k * 240 * 60_000 for k in range(1, 7)]
    rec = decode_record(world.twin.history_record(0))
    assert rec["cell_v"] == [3.3] * 16
    assert rec["soc_permille"] == 500
    assert rec["temps_c"] == [25.0] * 6
    assert world.twin.history_record(6) is None
    assert world.twin.history_record(-1) is None


def test_working_records_every_p76(world: World) -> None:
    world.advance(1000)
    world.charge(10.0)
    world.advance(2 * HOUR_MS + 1000)
    times = world.twin.history_times_ms()
    assert len(times) == 4
    assert all(b - a == 30 * 60_000 for a, b in zip(times, times[1:], strict=False))
    rec = decode_record(world.twin.history_record(3))
    assert rec["current_a"] == 10.0
    assert rec["status"][38] == 0x02  # system state: charging
    assert rec["status"][35] & 0x03 == 0x03  # both FETs on


def test_history_switch_off_records_nothing(world: World) -> None:
    configure(world, switches={59: False})
    world.advance(24 * HOUR_MS)
    assert world.twin.history_count == 0


def test_snapshot_after_a_long_run_is_json(world: World) -> None:
    world.advance(50 * HOUR_MS)
    json.dumps(world.snapshot())


# ---------------------------------------------------------------------- balancing


def test_static_balancing_starts_on_the_highest_cell(world: World) -> None:
    world.set_cells_v(3.45, 6)
    world.advance(1100)
    st = world.twin.status()
    assert st.balancing == [i == 6 for i in range(16)]
    assert world.cell_current_a(6) > 0.05
    assert world.cell_current_a(0) == 0.0


def test_balancing_needs_p9(world: World) -> None:
    world.set_cells_v(3.39, 6)
    world.set_cells_v(3.2, 0)
    world.advance(2000)
    assert not any(world.twin.status().balancing)


def test_balancing_difference_hysteresis_p63_p64(world: World) -> None:
    world.set_cells_v(3.43)
    world.set_cells_v(3.45, 2)  # diff 0.020: not started
    world.advance(2000)
    assert not any(world.twin.status().balancing)
    world.set_cells_v(3.46, 2)  # diff 0.030: starts
    world.advance(1100)
    assert world.twin.status().balancing[2]
    world.set_cells_v(3.455, 2)  # diff 0.025: keeps going
    world.advance(2000)
    assert world.twin.status().balancing[2]
    world.set_cells_v(3.45, 2)  # diff 0.020: stops
    world.advance(1100)
    assert not any(world.twin.status().balancing)


def test_no_balancing_while_discharging(world: World) -> None:
    world.set_cells_v(3.45, 6)
    world.discharge(10.0)
    world.advance(2000)
    assert not any(world.twin.status().balancing)


def test_charging_balancing_follows_s49(world: World) -> None:
    world.set_cells_v(3.45, 6)
    world.charge(10.0)
    world.advance(1200)
    assert world.twin.status().balancing[6]
    configure(world, switches={49: False})
    world.advance(200)
    assert not any(world.twin.status().balancing)


def test_static_balancing_follows_s50(world: World) -> None:
    configure(world, switches={50: False})
    world.set_cells_v(3.45, 6)
    world.advance(2000)
    assert not any(world.twin.status().balancing)


def test_static_balancing_stops_after_p65_until_work(world: World) -> None:
    configure(world, values={65: 1.0})
    world.set_cells_v(3.45, 6)
    world.advance(1100)
    assert world.twin.status().balancing[6]
    world.advance(HOUR_MS - 500)
    assert world.twin.status().balancing[6]
    world.advance(1000)
    assert not any(world.twin.status().balancing)
    world.advance(5 * HOUR_MS)
    assert not any(world.twin.status().balancing)
    world.discharge(5.0)  # a discharge re-arms static balancing
    world.advance(100)
    world.idle()
    world.advance(1200)
    assert world.twin.status().balancing[6]


def test_static_balancing_timeout_off_s51(world: World) -> None:
    configure(world, values={65: 1.0}, switches={51: False})
    world.set_cells_v(3.45, 6)
    world.advance(3 * HOUR_MS)
    assert world.twin.status().balancing[6]


def test_overtemperature_prohibits_balancing_s52(world: World) -> None:
    world.set_cells_v(3.45, 6)
    world.set_ntc_c(4, 50.0)  # the ambient high-temperature alarm value P39
    world.advance(2000)
    assert not any(world.twin.status().balancing)
    configure(world, switches={52: False})
    world.advance(1100)
    assert world.twin.status().balancing[6]
