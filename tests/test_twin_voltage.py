"""Voltage rows through the World: cell and pack alarms/protections, charger overvoltage,
low-voltage charge prohibition, cell difference, confirmation time, switches, measurement."""

from __future__ import annotations

import pytest
from twin_support import configure, fresh_world

from bmssim.twin import TwinConfig
from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()


@pytest.fixture
def world() -> World:
    return fresh_world()


def test_nominal_bench_reports_nothing(world: World) -> None:
    world.advance(10_000)
    assert world.flags() == {"charge_fet", "discharge_fet", "standby"}
    m = world.twin.measurements()
    assert m.cell_v == [3.3] * 16
    assert m.pack_v == pytest.approx(52.8)
    assert m.soc_permille == 500


def test_cell_overvoltage_protection_opens_the_charge_fet(world: World) -> None:
    world.charge(20.0)
    world.advance(500)
    world.set_cells_v(3.65, 0)
    world.advance(950)
    assert "cell_overvoltage_protection" not in world.flags()  # 1 s confirmation
    world.advance(150)
    assert {"cell_overvoltage_protection", "cell_high_voltage_alarm"} <= world.flags()
    assert world.supply_current_a() == 0.0
    assert not world.twin.outputs().charge_fet
    assert world.twin.outputs().discharge_fet
    world.set_cells_v(3.381, 0)
    world.advance(5000)
    assert "cell_overvoltage_protection" in world.flags()  # above the 3.38 V recovery
    world.set_cells_v(3.38, 0)
    world.advance(1100)
    assert "cell_overvoltage_protection" not in world.flags()
    assert "cell_high_voltage_alarm" not in world.flags()
    assert world.supply_current_a() == 20.0  # SOC 50 % < P81: charging resumes


def test_cell_high_voltage_alarm_keeps_charging(world: World) -> None:
    world.charge(20.0)
    world.set_cells_v(3.549, 3)
    world.advance(3000)
    assert "cell_high_voltage_alarm" not in world.flags()
    world.set_cells_v(3.55, 3)
    world.advance(1100)
    assert "cell_high_voltage_alarm" in world.flags()
    assert world.supply_current_a() == 20.0
    assert world.twin.status().cell_levels[3] == 0x02


def test_cell_undervoltage_protection_opens_the_discharge_fet(world: World) -> None:
    world.discharge(20.0)
    world.set_cells_v(2.7, 5)
    world.advance(1100)
    assert {"cell_undervoltage_protection", "cell_low_voltage_alarm"} <= world.flags()
    assert world.load_current_a() == 0.0
    assert world.twin.status().cell_levels[5] == 0x01
    world.set_cells_v(3.1, 5)
    world.advance(1100)
    assert "cell_undervoltage_protection" not in world.flags()
    world.advance(2000)  # soft start over
    assert world.load_current_a() == 20.0


def test_cell_low_voltage_alarm_and_recovery(world: World) -> None:
    world.discharge(20.0)
    world.set_cells_v(2.9, 0)
    world.advance(1100)
    assert "cell_low_voltage_alarm" in world.flags()
    assert world.load_current_a() == 20.0
    world.set_cells_v(3.099, 0)
    world.advance(2000)
    assert "cell_low_voltage_alarm" in world.flags()
    world.set_cells_v(3.1, 0)
    world.advance(1100)
    assert "cell_low_voltage_alarm" not in world.flags()


def test_a_short_excursion_does_not_confirm(world: World) -> None:
    world.set_cells_v(3.7, 0)
    world.advance(800)
    world.set_cells_v(3.3, 0)
    world.advance(5000)
    assert "cell_overvoltage_protection" not in world.flags()


def test_pack_overvoltage_protection(world: World) -> None:
    world.charge(10.0, voltage_v=60.0)
    world.set_cells_v(3.6)  # 57.6 V
    world.advance(1100)
    assert {"pack_overvoltage_protection", "pack_high_voltage_alarm"} <= world.flags()
    assert world.supply_current_a() == 0.0
    world.set_cells_v(3.375)  # 54.0 V
    world.advance(1100)
    assert "pack_overvoltage_protection" not in world.flags()
    assert "pack_high_voltage_alarm" not in world.flags()


def test_pack_undervoltage_needs_the_cell_protection_out_of_the_way(world: World) -> None:
    configure(world, values={7: 2.5, 8: 2.9})
    world.discharge(10.0)
    world.set_cells_v(2.7)  # 43.2 V
    world.advance(1100)
    assert {"pack_undervoltage_protection", "pack_low_voltage_alarm"} <= world.flags()
    assert "cell_undervoltage_protection" not in world.flags()
    assert world.load_current_a() == 0.0


def test_pack_low_voltage_alarm(world: World) -> None:
    world.discharge(10.0)
    world.set_cells_v(2.9)  # 46.4 V: also the cell low-voltage alarm
    world.advance(1100)
    assert "pack_low_voltage_alarm" in world.flags()
    assert world.twin.status().voltage_level == 0x01
    world.set_cells_v(3.0)  # 48.0 V
    world.advance(1100)
    assert "pack_low_voltage_alarm" not in world.flags()


def test_charger_overvoltage_protection_on_the_port(world: World) -> None:
    world.charge(10.0, voltage_v=62.99)
    world.advance(2000)
    assert "charger_overvoltage_protection" not in world.flags()
    world.charge(10.0, voltage_v=63.0)
    world.advance(1100)
    assert "charger_overvoltage_protection" in world.flags()
    assert world.supply_current_a() == 0.0
    assert world.twin.measurements().port_v == 63.0  # still measured with the FET open
    world.charge(10.0, voltage_v=61.0)
    world.advance(1100)
    assert "charger_overvoltage_protection" not in world.flags()
    assert world.supply_current_a() == 10.0


def test_low_voltage_charge_prohibition(world: World) -> None:
    world.set_cells_v(2.0, 2)
    world.charge(5.0)
    world.advance(1000)
    world.set_cells_v(1.5, 2)
    world.advance(1100)
    assert "low_voltage_charge_prohibition" in world.flags()
    assert world.supply_current_a() == 0.0
    world.set_cells_v(1.59, 2)
    world.advance(2000)
    assert "low_voltage_charge_prohibition" in world.flags()
    world.set_cells_v(1.6, 2)  # P10 + 0.1 V
    world.advance(1100)
    assert "low_voltage_charge_prohibition" not in world.flags()
    assert world.supply_current_a() == 5.0


def test_cell_difference_fault_is_a_notice(world: World) -> None:
    world.discharge(5.0)
    world.set_cells_v(2.8, 0)
    world.advance(1100)
    assert "cell_difference_fault" in world.flags()
    assert world.load_current_a() == 5.0
    world.set_cells_v(3.0, 0)  # 0.3 V difference: the recovery
    world.advance(1100)
    assert "cell_difference_fault" not in world.flags()


def test_switch_off_clears_a_set_flag_and_stops_acting(world: World) -> None:
    world.charge(20.0)
    world.set_cells_v(3.7, 0)
    world.advance(1100)
    assert "cell_overvoltage_protection" in world.flags()
    configure(world, switches={10: False, 9: False})
    assert "cell_overvoltage_protection" not in world.flags()
    assert "cell_high_voltage_alarm" not in world.flags()
    assert world.supply_current_a() == 20.0
    world.advance(5000)
    assert "cell_overvoltage_protection" not in world.flags()


def test_disconnected_cell_reads_zero_and_sets_its_bit(world: World) -> None:
    world.bench.cells[4].output = False
    world.settle()
    world.advance(200)
    st = world.twin.status()
    assert st.disconnected[4] is True
    assert st.cell_levels[4] == 0xF0
    assert world.twin.measurements().cell_v[4] == 0.0


def test_measurement_resolution_is_1_mv(world: World) -> None:
    world.set_cells_v(3.2996, 0)
    world.advance(100)
    assert world.twin.measurements().cell_v[0] == 3.3
    world.set_cells_v(3.3004, 0)
    world.advance(100)
    assert world.twin.measurements().cell_v[0] == 3.3


def test_voltage_is_sampled_every_100_ms(world: World) -> None:
    world.advance(50)  # now 1050: between two samples
    world.set_cells_v(3.5, 0)
    assert world.twin.measurements().cell_v[0] == 3.3
    world.advance(49)
    assert world.twin.measurements().cell_v[0] == 3.3
    world.advance(1)
    assert world.twin.measurements().cell_v[0] == 3.5


def test_series_count_p66_limits_the_cells_reported(world: World) -> None:
    configure(world, values={66: 15})
    world.set_cells_v(0.0, 15)
    world.advance(2000)
    m = world.twin.measurements()
    assert len(m.cell_v) == 15
    assert m.pack_v == pytest.approx(49.5)
    assert "cell_undervoltage_protection" not in world.flags()


def test_noise_is_seeded_and_bounded() -> None:
    cfg = TwinConfig(noise_mv=2.0, seed=7)
    a, b = World(SPEC, cfg), World(SPEC, cfg)
    a.advance(1000)
    b.advance(1000)
    va, vb = a.twin.measurements().cell_v, b.twin.measurements().cell_v
    assert va == vb
    assert va != [3.3] * 16
    assert all(abs(v - 3.3) < 0.02 for v in va)


def test_impedance_compensation_p84_p85(world: World) -> None:
    configure(world, values={85: 2.0, 87: 1.0})  # 2.0 mOhm at cell 9, 1.0 mOhm at cell 13
    world.discharge(50.0)
    world.advance(2200)
    m = world.twin.measurements()
    assert m.cell_v[8] == pytest.approx(3.3 + 50 * 0.002)
    assert m.cell_v[12] == pytest.approx(3.3 + 50 * 0.001)
    assert m.cell_v[0] == 3.3
    world.idle()
    world.charge(50.0)
    world.advance(300)
    m = world.twin.measurements()
    assert m.cell_v[8] == pytest.approx(3.3 - 50 * 0.002)
