"""The World's physical model and stepping: supply, load and transients, port and pack
voltages, the scope trace, snapshot, reset, and the event-driven clock."""

from __future__ import annotations

import json

import pytest
from twin_support import fresh_world

from bmssim.clock import VirtualClock
from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()


@pytest.fixture
def world() -> World:
    return fresh_world()


def test_clock_is_lockstep_integer_ms() -> None:
    c = VirtualClock()
    assert (c.now_ms, c.now_s) == (0, 0.0)
    c.advance(1500)
    c.advance_to(2000)
    assert (c.now_ms, c.now_s) == (2000, 2.0)
    with pytest.raises(ValueError, match="back"):
        c.advance_to(1999)
    with pytest.raises(ValueError):
        c.advance(-1)


def test_supply_delivers_its_limit_only_above_the_pack(world: World) -> None:
    world.charge(20.0, voltage_v=52.9)  # pack 52.8 V: within 0.1 V, no current
    assert world.supply_current_a() == 0.0
    assert world.port_voltage_v() == pytest.approx(52.9)
    world.charge(20.0, voltage_v=52.91)
    assert world.supply_current_a() == 20.0
    assert world.pack_current_a() == 20.0
    world.bench.supply.output = False
    world.settle()
    assert world.supply_current_a() == 0.0
    assert world.port_voltage_v() == pytest.approx(52.8)  # the pack through the FETs


def test_supply_protection_tripped_is_off(world: World) -> None:
    world.charge(20.0)
    world.bench.supply.protection_tripped = True
    world.settle()
    assert world.supply_current_a() == 0.0


def test_load_needs_input_and_the_discharge_fet(world: World) -> None:
    world.discharge(30.0)
    assert world.load_current_a() == 30.0
    assert world.pack_current_a() == -30.0
    world.twin.control(0, 0x1F)
    assert world.load_current_a() == 0.0
    assert world.port_voltage_v() == 0.0


def test_pack_current_is_supply_minus_load(world: World) -> None:
    world.charge(40.0)
    world.discharge(15.0)
    assert world.pack_current_a() == pytest.approx(25.0)


def test_pack_voltage_is_the_sum_of_channels(world: World) -> None:
    world.set_cells_v(3.4, 0)
    world.bench.cells[1].fault = "SHORT"
    world.settle()
    assert world.pack_voltage_v() == pytest.approx(3.4 + 14 * 3.3)


def test_puls_transient_b_for_bwid_then_a(world: World) -> None:
    load = world.bench.load
    load.transient_on, load.transient_mode, load.input_on = True, "PULS", True
    load.transient_a_a, load.transient_b_a, load.transient_b_width_s = 5.0, 50.0, 0.1
    world.settle()
    assert world.load_current_a() == 5.0
    world.advance(1)
    t0 = world.clock.now_ms
    world.trigger_load()
    assert world.load_current_a() == 50.0
    world.advance(100)
    assert world.load_current_a() == 5.0
    cur = [(t, v) for t, s, v in world.bench.trace.events if s == "current" and t >= t0]
    assert cur == [(t0, -50.0), (t0 + 100, -5.0)]


def test_togg_transient_flips_per_trigger(world: World) -> None:
    load = world.bench.load
    load.transient_on, load.transient_mode, load.input_on = True, "TOGG", True
    load.transient_a_a, load.transient_b_a = 2.0, 20.0
    world.settle()
    world.trigger_load()
    world.advance(5000)
    assert world.load_current_a() == 20.0
    world.trigger_load()
    assert world.load_current_a() == 2.0


def test_cont_transient_alternates(world: World) -> None:
    load = world.bench.load
    load.transient_on, load.transient_mode, load.input_on = True, "CONT", True
    load.transient_a_a, load.transient_b_a = 1.0, 10.0
    load.transient_a_width_s, load.transient_b_width_s = 0.02, 0.03
    world.settle()
    t0 = world.clock.now_ms
    world.trigger_load()
    world.advance(100)
    cur = [(t - t0, v) for t, s, v in world.bench.trace.events if s == "current" and t >= t0]
    assert cur == [(0, -1.0), (20, -10.0), (50, -1.0), (70, -10.0), (100, -1.0)]


def test_trace_records_fet_edges_with_ms_timestamps(world: World) -> None:
    world.advance(123)
    world.twin.control(1, 0x1F)
    world.advance(7)
    world.twin.control(1, 0x10)
    fet = [(t, v) for t, s, v in world.bench.trace.events if s == "charge_fet"]
    assert fet == [(0, 1.0), (1123, 0.0), (1130, 1.0)]


def test_snapshot_is_json_and_complete(world: World) -> None:
    world.charge(10.0)
    world.advance(1000)
    snap = json.loads(json.dumps(world.snapshot()))
    assert set(snap) >= {"clock", "supply", "load", "cells", "ntc", "fets", "flags"}
    assert snap["clock"]["now_ms"] == 2000
    assert snap["supply"]["current_a"] == 10.0
    assert len(snap["cells"]) == 16 and len(snap["ntc"]) == 6
    assert snap["fets"]["charge"] is True
    assert "charging" in snap["flags"]
    assert snap["history"] == {"count": 0, "last_ms": None}
    assert snap["overcurrent"]["P57"] == {"trips": 0, "locked": False}


def test_reset_restores_instruments_and_device_in_place(world: World) -> None:
    supply, cell0 = world.bench.supply, world.bench.cells[0]
    world.charge(10.0)
    world.set_cells_v(3.7, 0)
    block = world.twin.read_block()
    block.values[5] = 3.7
    block.values[6] = 3.5
    world.twin.write_block(block)
    world.advance(5000)
    world.reset()
    assert world.bench.supply is supply and world.bench.cells[0] is cell0
    assert supply.output is False and cell0.voltage_set_v == 3.3
    assert world.twin.read_block().values[5] == 3.65
    assert world.flags() == {"charge_fet", "discharge_fet", "standby"}
    assert world.clock.now_ms == 6000  # virtual time does not go back


def test_idle_hours_cost_few_steps_and_delays_resolve_to_the_ms(world: World) -> None:
    s0 = world.steps
    world.advance(10 * 3_600_000)
    assert world.steps - s0 < 10
    block = world.twin.read_block()
    block.switches[56] = False
    world.twin.write_block(block)
    world.advance(3)
    t0 = world.clock.now_ms
    world.charge(112.0)
    s0 = world.steps
    world.advance(20_000)
    assert world.steps - s0 < 200  # not 2000 samples
    opens = [t for t, s, v in world.bench.trace.events if s == "charge_fet" and v == 0.0]
    assert opens == [t0 + 7 + 10_000]  # first 10 ms sample after the onset, + 10 s


def test_advance_refuses_negative(world: World) -> None:
    with pytest.raises(ValueError):
        world.advance(-1)


def test_cell_current_is_the_balancing_bleed(world: World) -> None:
    world.set_cells_v(3.5, 3)
    world.advance(1200)
    assert world.cell_current_a(3) == pytest.approx(3.5 / 33.0)
    assert world.cell_current_a(4) == 0.0
