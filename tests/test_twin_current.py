"""Current rows of the twin through the World: overcurrent alarms, delayed protections, the
30 ms transient trip, P70 recovery, P71 lockout, soft start and current limiting."""

from __future__ import annotations

import pytest
from twin_support import configure, fresh_world

from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()


def edges(world: World, signal: str, since: int = 0) -> list[tuple[int, float]]:
    return [(t, v) for t, s, v in world.bench.trace.events if s == signal and t >= since]


@pytest.fixture
def world() -> World:
    return fresh_world()


def test_250_a_discharge_step_trips_in_30_ms(world: World) -> None:
    load = world.bench.load
    load.transient_on, load.transient_mode = True, "PULS"
    load.transient_a_a, load.transient_b_a, load.transient_b_width_s = 0.0, 250.0, 0.5
    load.input_on = True
    world.settle()
    world.advance(7)  # an instant off the 10 ms grid: the comparator runs every 1 ms
    t0 = world.clock.now_ms
    world.trigger_load()
    assert world.pack_current_a() == pytest.approx(-250.0)
    world.advance(29)
    assert world.twin.outputs().discharge_fet
    world.advance(1)
    assert not world.twin.outputs().discharge_fet
    assert edges(world, "discharge_fet", t0) == [(t0 + 30, 0.0)]
    assert edges(world, "current", t0) == [(t0, -250.0), (t0 + 30, 0.0)]
    assert "transient_overcurrent_protection" in world.flags()


def test_transient_shorter_than_the_delay_does_not_trip(world: World) -> None:
    load = world.bench.load
    load.transient_on, load.transient_mode = True, "PULS"
    load.transient_b_a, load.transient_b_width_s = 300.0, 0.029
    load.input_on = True
    world.settle()
    world.trigger_load()
    world.advance(1000)
    assert world.twin.outputs().discharge_fet
    assert "transient_overcurrent_protection" not in world.flags()


def test_110_a_charge_current_trips_after_10_s(world: World) -> None:
    # S56 (passive limiting, factory on) would hold the current at 10 A once it confirms
    # the P51 alarm, so the delay test turns it off, as a test plan must.
    configure(world, switches={56: False})
    world.advance(3)
    t0 = world.clock.now_ms
    world.charge(110.0)
    assert world.supply_current_a() == pytest.approx(110.0)
    world.advance(9_990)
    assert world.twin.outputs().charge_fet
    world.advance(20)
    ((t_open, _),) = edges(world, "charge_fet", t0)
    # first 10 ms current sample after the onset + 10.000 s
    assert 10_000 <= t_open - t0 <= 10_010
    assert world.supply_current_a() == 0.0
    assert {"charge_overcurrent_protection", "charge_overcurrent_alarm"} <= world.flags()


def test_charge_overcurrent_delay_follows_p67(world: World) -> None:
    configure(world, values={67: 3.0}, switches={56: False})
    t0 = world.clock.now_ms
    world.charge(120.0)
    world.advance(5000)
    ((t_open, _),) = edges(world, "charge_fet", t0)
    assert 3000 <= t_open - t0 <= 3010


def test_charge_just_below_p55_never_trips(world: World) -> None:
    configure(world, switches={56: False})
    world.charge(109.9)
    world.advance(60_000)
    assert world.twin.outputs().charge_fet
    assert "charge_overcurrent_protection" not in world.flags()


def test_overcurrent_recovers_after_p70_and_retries(world: World) -> None:
    configure(world, switches={56: False})
    t0 = world.clock.now_ms
    world.charge(115.0)
    world.advance(11_000)
    ((t_trip, _),) = edges(world, "charge_fet", t0)
    world.advance(t_trip + 60_000 - 1 - world.clock.now_ms)
    assert not world.twin.outputs().charge_fet
    world.advance(1)
    assert world.twin.outputs().charge_fet  # back exactly 60 s after the trip
    assert "charge_overcurrent_protection" not in world.flags()
    world.advance(10_100)  # still 115 A: trips again after the delay
    assert not world.twin.outputs().charge_fet
    assert world.twin.overcurrent_trips(55) == 2


def test_transient_locks_after_fifth_trip_with_s39(world: World) -> None:
    configure(world, switches={39: True})
    t0 = world.clock.now_ms
    world.discharge(250.0)
    world.advance(5 * 62_100)
    opens = [t for t, v in edges(world, "discharge_fet", t0) if v == 0.0]
    closes = [t for t, v in edges(world, "discharge_fet", t0) if v == 1.0]
    assert len(opens) == 5
    assert opens[0] == t0 + 30
    # each retry comes 60 s after its trip, pre-charges for P58 = 2 s, then trips 30 ms on
    assert closes == [t + 60_000 for t in opens[:4]]
    assert all(b - a == 62_030 for a, b in zip(opens, opens[1:], strict=False))
    world.advance(600_000)
    assert len([v for _, v in edges(world, "discharge_fet", t0) if v == 0.0]) == 5
    assert not world.twin.outputs().discharge_fet
    assert {"transient_overcurrent_lockout", "transient_overcurrent_protection"} <= world.flags()


def test_transient_keeps_retrying_without_s39(world: World) -> None:
    assert world.twin.read_block().switches[39] is False  # factory: Close
    t0 = world.clock.now_ms
    world.discharge(250.0)
    world.advance(8 * 62_030)
    opens = [t for t, v in edges(world, "discharge_fet", t0) if v == 0.0]
    assert len(opens) == 8
    assert "transient_overcurrent_lockout" not in world.flags()


def test_discharge_overcurrent_locks_after_fifth_trip(world: World) -> None:
    t0 = world.clock.now_ms
    world.discharge(120.0)
    world.advance(10_010)
    assert not world.twin.outputs().discharge_fet
    assert "discharge_overcurrent_protection" in world.flags()
    world.advance(4 * 72_100 + 600_000)
    opens = [t for t, v in edges(world, "discharge_fet", t0) if v == 0.0]
    assert len(opens) == 5
    assert world.twin.locked(56)
    assert not world.twin.outputs().discharge_fet
    # lockout released by removing the load and writing the block
    world.idle()
    configure(world)
    assert world.twin.outputs().discharge_fet
    assert "discharge_overcurrent_protection" not in world.flags()


def test_clean_running_resets_the_trip_count(world: World) -> None:
    configure(world, switches={39: True})
    for _ in range(3):
        world.discharge(250.0)
        world.advance(100)
        world.idle()
        world.advance(60_000 + 61_000)  # recovery, then more than 60 s of clean running
    world.discharge(250.0)
    world.advance(100)
    assert world.twin.overcurrent_trips(57) == 1


def test_charge_overcurrent_alarm_confirms_and_recovers(world: World) -> None:
    configure(world, switches={56: False})
    world.charge(70.0)
    world.advance(990)
    assert "charge_overcurrent_alarm" not in world.flags()
    world.advance(30)
    assert "charge_overcurrent_alarm" in world.flags()
    assert world.supply_current_a() == 70.0  # an alarm never stops the current
    world.bench.supply.current_limit_a = 65.5
    world.settle()
    world.advance(3000)
    assert "charge_overcurrent_alarm" in world.flags()  # above the 65 A recovery
    world.bench.supply.current_limit_a = 65.0
    world.settle()
    world.advance(1100)
    assert "charge_overcurrent_alarm" not in world.flags()


def test_discharge_overcurrent_alarm(world: World) -> None:
    world.discharge(104.9)
    world.advance(2000)
    assert "discharge_overcurrent_alarm" not in world.flags()
    world.discharge(105.0)
    world.advance(1100)
    assert "discharge_overcurrent_alarm" in world.flags()
    assert world.load_current_a() == 105.0
    world.discharge(103.0)
    world.advance(1100)
    assert "discharge_overcurrent_alarm" not in world.flags()


def test_soft_start_holds_the_load_for_p58(world: World) -> None:
    world.twin.control(0, 0x1F)
    world.discharge(50.0)
    assert world.load_current_a() == 0.0
    t0 = world.clock.now_ms
    world.twin.control(0, 0x10)
    assert world.load_current_a() == 1.0
    world.advance(1999)
    assert world.load_current_a() == 1.0
    world.advance(1)
    assert world.load_current_a() == 50.0
    assert edges(world, "current", t0) == [(t0, -1.0), (t0 + 2000, -50.0)]


def test_soft_start_off_gives_full_current_at_once(world: World) -> None:
    configure(world, switches={48: False})
    world.twin.control(0, 0x1F)
    world.discharge(50.0)
    world.twin.control(0, 0x10)
    assert world.load_current_a() == 50.0


def test_passive_limiting_engages_and_rechecks_after_p72(world: World) -> None:
    assert world.twin.read_block().switches[56] is True
    world.charge(80.0)
    world.advance(1000)
    assert world.supply_current_a() == 10.0
    assert "current_limit_fet" in world.flags()
    world.advance(5 * 60_000 - 20)
    assert world.supply_current_a() == 10.0
    world.advance(30)  # P72 = 5 min: lets go, the charger pushes 80 A again
    assert world.supply_current_a() == 80.0
    world.advance(1010)  # re-check confirms: limited again
    assert world.supply_current_a() == 10.0
    # the charger now stays under P51: after the next re-check, no more limiting
    world.bench.supply.current_limit_a = 40.0
    world.settle()
    world.advance(5 * 60_000 + 2000)
    assert world.supply_current_a() == 40.0
    assert "current_limit_fet" not in world.flags()


def test_passive_limiting_prevents_the_charge_overcurrent_trip(world: World) -> None:
    world.charge(110.0)
    world.advance(60_000)
    assert world.twin.outputs().charge_fet
    assert "charge_overcurrent_protection" not in world.flags()


def test_active_limiting_holds_10_a_whatever_the_charger(world: World) -> None:
    configure(world, switches={55: True, 56: False})
    world.charge(50.0)
    assert world.supply_current_a() == 10.0
    assert "current_limit_fet" in world.flags()
    world.idle()
    assert "current_limit_fet" not in world.flags()


def test_switch_off_disables_the_transient_protection(world: World) -> None:
    configure(world, switches={37: False})
    world.discharge(260.0)
    world.advance(1000)
    assert world.twin.outputs().discharge_fet
    assert "transient_overcurrent_protection" not in world.flags()
    world.advance(9_100)  # the 10 s discharge overcurrent still acts
    assert "discharge_overcurrent_protection" in world.flags()
