"""Capacity functions through the World: coulomb counting and SOC, remaining-capacity alarm
and protection, gap compensation (P81), cycle counting (P82), charging activation (S53/S54)."""

from __future__ import annotations

import pytest
from twin_support import configure, fresh_world

from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()
HOUR_MS = 3_600_000


def edges(world: World, signal: str, since: int = 0) -> list[tuple[int, float]]:
    return [(t, v) for t, s, v in world.bench.trace.events if s == signal and t >= since]


@pytest.fixture
def world() -> World:
    return fresh_world()


def test_factory_capacity_is_rated_100_remaining_50(world: World) -> None:
    m = world.twin.measurements()
    assert (m.rated_ah, m.full_ah, m.remaining_ah, m.soc_permille) == (100.0, 100.0, 50.0, 500)
    assert m.soh_permille == 1000


def test_soc_is_floor_of_remaining_over_full(world: World) -> None:
    world.twin.set_remaining_capacity(74.36)
    assert world.twin.measurements().soc_permille == 743  # 743.6 truncated, not rounded
    configure(world, values={59: 160.0, 60: 74.36})
    assert world.twin.measurements().soc_permille == 464  # the captured 7436/16000


def test_coulomb_counting_is_exact_over_a_long_charge(world: World) -> None:
    world.charge(10.0)
    world.advance(36_000)  # 10 A x 36 s = 0.1 Ah
    m = world.twin.measurements()
    assert m.remaining_ah == pytest.approx(50.1, abs=0.001)
    assert m.soc_permille == 501
    world.advance(HOUR_MS)  # + 10 Ah
    assert world.twin.measurements().remaining_ah == pytest.approx(60.1, abs=0.001)


def test_charging_stops_counting_at_full(world: World) -> None:
    world.charge(50.0)
    world.advance(2 * HOUR_MS)
    m = world.twin.measurements()
    assert m.remaining_ah == 100.0
    assert m.soc_permille == 1000
    world.idle()
    world.advance(100)
    assert "fully_charged" in world.flags()


def test_set_remaining_capacity_checks_its_range(world: World) -> None:
    world.twin.set_remaining_capacity(0.0)
    world.twin.set_remaining_capacity(100.0)
    with pytest.raises(ValueError, match=r"P60.*100\.01"):
        world.twin.set_remaining_capacity(100.01)
    with pytest.raises(ValueError, match="P60"):
        world.twin.set_remaining_capacity(-1.0)
    assert world.twin.measurements().remaining_ah == 100.0


def test_remaining_capacity_alarm_and_recovery(world: World) -> None:
    world.twin.set_remaining_capacity(10.1)
    world.advance(2000)
    assert "remaining_capacity_alarm" not in world.flags()
    world.twin.set_remaining_capacity(10.0)
    world.advance(1100)
    assert "remaining_capacity_alarm" in world.flags()
    world.twin.set_remaining_capacity(10.01)  # SOC 100 permille: still at the threshold
    world.advance(2000)
    assert "remaining_capacity_alarm" in world.flags()
    world.twin.set_remaining_capacity(10.1)
    world.advance(1100)
    assert "remaining_capacity_alarm" not in world.flags()


def test_remaining_capacity_protection_while_discharging(world: World) -> None:
    world.twin.set_remaining_capacity(5.0)
    world.advance(3000)
    assert "remaining_capacity_protection" not in world.flags()  # evaluated discharging
    world.discharge(10.0)
    world.advance(1100)
    assert {"remaining_capacity_protection", "remaining_capacity_alarm"} <= world.flags()
    assert world.load_current_a() == 0.0
    world.twin.set_remaining_capacity(6.0)
    world.advance(1100)
    assert "remaining_capacity_protection" not in world.flags()


def test_soc_reaches_the_protection_by_counting(world: World) -> None:
    world.twin.set_remaining_capacity(6.0)
    world.discharge(60.0)
    world.advance(HOUR_MS // 60 + 1300)  # 1 Ah in 60 s, then the confirmation
    assert "remaining_capacity_protection" in world.flags()
    assert world.twin.measurements().soc_permille == 50


def test_gap_compensation_holds_charging_above_p81(world: World) -> None:
    world.twin.set_remaining_capacity(97.0)
    world.charge(10.0)
    world.set_cells_v(3.65, 0)
    world.advance(1100)
    assert "cell_overvoltage_protection" in world.flags()
    world.set_cells_v(3.3, 0)
    world.advance(1100)
    assert "cell_overvoltage_protection" not in world.flags()
    assert "gap_compensation_waiting" in world.flags()
    assert world.supply_current_a() == 0.0
    # discharge below 96 %: charging is allowed again
    world.discharge(60.0)
    world.advance(70_000)
    assert world.twin.measurements().soc_permille < 960
    world.advance(200)
    assert "gap_compensation_waiting" not in world.flags()
    world.bench.load.input_on = False
    world.settle()
    assert world.supply_current_a() == 10.0


def test_gap_compensation_off_resumes_at_once(world: World) -> None:
    configure(world, switches={42: False})
    world.twin.set_remaining_capacity(97.0)
    world.charge(10.0)
    world.set_cells_v(3.65, 0)
    world.advance(1100)
    world.set_cells_v(3.3, 0)
    world.advance(1100)
    assert "gap_compensation_waiting" not in world.flags()
    assert world.supply_current_a() == 10.0


def test_a_cycle_counts_after_p82_of_full_discharged(world: World) -> None:
    world.twin.set_remaining_capacity(100.0)
    world.discharge(100.0)  # 80 Ah in 48 min
    world.advance(48 * 60_000 - 1000)
    assert world.twin.measurements().cycles == 0
    world.advance(1000 + 10)
    assert world.twin.measurements().cycles == 1


def test_cycle_count_follows_p82(world: World) -> None:
    configure(world, values={82: 20.0, 60: 100.0})
    world.discharge(100.0)  # 20 Ah in 12 min
    world.advance(25 * 60_000)
    assert world.twin.measurements().cycles == 2


def test_auto_activation_pulses_the_output_every_p74(world: World) -> None:
    configure(world, values={74: 1.0})
    world.discharge(10.0)
    world.set_cells_v(2.6, 0)
    world.advance(1100)
    assert {"cell_undervoltage_protection", "waiting_auto_activation"} <= world.flags()
    ((t_trip, _),) = [e for e in edges(world, "discharge_fet") if e[1] == 0.0]
    world.idle()
    world.advance(3 * HOUR_MS)
    fet = edges(world, "discharge_fet", t_trip + 1)
    assert fet[:4] == [
        (t_trip + HOUR_MS, 1.0),
        (t_trip + HOUR_MS + 60_000, 0.0),
        (t_trip + 2 * HOUR_MS + 60_000, 1.0),
        (t_trip + 2 * HOUR_MS + 120_000, 0.0),
    ]


def test_auto_activation_off_no_pulse(world: World) -> None:
    configure(world, switches={53: False})
    world.discharge(10.0)
    world.set_cells_v(2.6, 0)
    world.advance(1100)
    assert "waiting_auto_activation" not in world.flags()
    world.advance(24 * HOUR_MS)
    assert not world.twin.outputs().discharge_fet


def test_manual_activation_needs_the_button_and_p73(world: World) -> None:
    configure(world, switches={54: True})
    world.discharge(10.0)
    world.set_cells_v(2.6, 0)
    world.advance(1100)
    assert {"cell_undervoltage_protection", "waiting_manual_activation"} <= world.flags()
    world.set_cells_v(3.3, 0)
    world.advance(60_000)
    assert "cell_undervoltage_protection" in world.flags()  # voltage alone does not release
    t0 = world.clock.now_ms
    world.twin.control(0, 0x10)  # the "button"
    world.advance(60_000 - 1)
    assert "cell_undervoltage_protection" in world.flags()
    world.advance(1)
    assert world.clock.now_ms - t0 == 60_000
    assert "cell_undervoltage_protection" not in world.flags()
    assert "waiting_manual_activation" not in world.flags()
    assert world.twin.outputs().discharge_fet
