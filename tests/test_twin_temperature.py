"""Temperature rows through the World: NTC conversion, charging/discharging conditions,
ambient and power temperatures, sensor faults (S2) and low-temperature heating."""

from __future__ import annotations

import math

import pytest
from twin_support import configure, fresh_world

from bmssim.twin import ohms_at, temperature_c
from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()


@pytest.fixture
def world() -> World:
    return fresh_world()


def test_ntc_formula_round_trip() -> None:
    assert ohms_at(25.0) == pytest.approx(10_000.0)
    # R(T) = 10000 * exp(3435 * (1/T - 1/298.15)) at 0 C
    assert ohms_at(0.0) == pytest.approx(10_000 * math.exp(3435 * (1 / 273.15 - 1 / 298.15)))
    for t in (-30.0, -10.0, 0.0, 2.0, 47.3, 55.0, 100.0):
        assert temperature_c(ohms_at(t)) == pytest.approx(t, abs=1e-9)
    assert temperature_c(0.0) == 125.0
    assert temperature_c(math.inf) == -40.0


def test_reported_temperature_has_0_1_c_resolution(world: World) -> None:
    world.set_ntc_c(0, 31.26)
    world.advance(100)
    assert world.twin.measurements().temps_c[0] == 31.3


def test_charge_overtemperature_only_while_charging(world: World) -> None:
    world.set_ntc_c(0, 56.0)
    world.advance(3000)
    assert "charge_overtemperature_protection" not in world.flags()  # standby
    world.charge(20.0)
    world.advance(1200)
    assert {"charge_overtemperature_protection", "charge_high_temperature_alarm"} <= world.flags()
    assert world.supply_current_a() == 0.0
    assert world.twin.outputs().discharge_fet
    # the protection stays in standby until its recovery
    world.advance(10_000)
    assert "charge_overtemperature_protection" in world.flags()
    world.set_ntc_c(0, 50.0)
    world.advance(1100)
    assert "charge_overtemperature_protection" not in world.flags()
    assert world.supply_current_a() == 20.0


def test_charge_low_temperature_alarm_and_protection(world: World) -> None:
    world.charge(10.0)
    world.set_ntc_c(1, 2.0)
    world.advance(1100)
    assert "charge_low_temperature_alarm" in world.flags()
    assert world.supply_current_a() == 10.0
    world.set_ntc_c(1, -10.0)
    world.advance(1100)
    assert "charge_undertemperature_protection" in world.flags()
    assert world.supply_current_a() == 0.0
    world.set_ntc_c(1, 0.0)
    world.advance(1100)
    assert "charge_undertemperature_protection" not in world.flags()
    assert "charge_low_temperature_alarm" in world.flags()  # 0 C < 5 C recovery
    world.set_ntc_c(1, 5.0)
    world.advance(1100)
    assert "charge_low_temperature_alarm" not in world.flags()


def test_discharge_temperature_rows_only_while_discharging(world: World) -> None:
    world.set_ntc_c(3, 53.0)
    world.charge(10.0)
    world.advance(1200)
    assert "charge_high_temperature_alarm" in world.flags()
    assert "discharge_high_temperature_alarm" not in world.flags()
    world.idle()
    world.discharge(10.0)
    world.advance(1200)
    assert "discharge_high_temperature_alarm" in world.flags()
    assert world.load_current_a() == 10.0
    world.set_ntc_c(3, 55.0)
    world.advance(1100)
    assert "discharge_overtemperature_protection" in world.flags()
    assert "charge_overtemperature_protection" not in world.flags()
    assert world.load_current_a() == 0.0
    assert world.twin.outputs().charge_fet


def test_discharge_undertemperature(world: World) -> None:
    world.discharge(10.0)
    world.set_ntc_c(2, -10.0)
    world.advance(1100)
    assert {"discharge_undertemperature_protection", "discharge_low_temperature_alarm"} <= (
        world.flags()
    )
    assert world.load_current_a() == 0.0


def test_ambient_overtemperature_opens_both_fets(world: World) -> None:
    world.set_ntc_c(4, 60.0)
    world.advance(1100)
    assert {"ambient_overtemperature_protection", "ambient_high_temperature_alarm"} <= (
        world.flags()
    )
    out = world.twin.outputs()
    assert not out.charge_fet and not out.discharge_fet
    world.set_ntc_c(4, 55.0)
    world.advance(1100)
    assert "ambient_overtemperature_protection" not in world.flags()
    assert "ambient_high_temperature_alarm" in world.flags()


def test_ambient_low_and_under_temperature(world: World) -> None:
    world.set_ntc_c(4, -10.0)
    world.advance(1100)
    assert {"ambient_undertemperature_protection", "ambient_low_temperature_alarm"} <= (
        world.flags()
    )
    assert not world.twin.outputs().discharge_fet


def test_power_temperature(world: World) -> None:
    world.set_ntc_c(5, 90.0)
    world.advance(1100)
    assert "power_high_temperature_alarm" in world.flags()
    assert world.twin.outputs().charge_fet
    world.set_ntc_c(5, 100.0)
    world.advance(1100)
    assert "power_overtemperature_protection" in world.flags()
    assert not world.twin.outputs().charge_fet
    world.set_ntc_c(5, 85.0)
    world.advance(1100)
    assert not {"power_overtemperature_protection", "power_high_temperature_alarm"} & (
        world.flags()
    )


@pytest.mark.parametrize("state", ["OPEN", "SHORT"])
def test_ntc_open_or_short_is_a_sensor_fault(world: World, state: str) -> None:
    world.bench.ntc[2].state = state
    world.settle()
    world.advance(100)
    assert "temperature_sensor_fault" in world.flags()
    assert world.twin.status().temp_levels[2] == 0xF0
    # with S2 on, the known-bad channel takes no part in the protections
    world.charge(10.0)
    world.advance(2000)
    assert world.supply_current_a() == 10.0
    world.bench.ntc[2].state = "NORMAL"
    world.settle()
    world.advance(100)
    assert "temperature_sensor_fault" not in world.flags()


def test_sensor_fault_detection_off_acts_on_the_saturated_reading(world: World) -> None:
    configure(world, switches={2: False})
    world.bench.ntc[0].state = "OPEN"  # reads -40 C
    world.settle()
    world.charge(10.0)
    world.advance(1200)
    assert "temperature_sensor_fault" not in world.flags()
    assert "charge_undertemperature_protection" in world.flags()


def test_heating_needs_s31_and_a_charger(world: World) -> None:
    world.set_ntc_c(0, -5.0)
    world.charge(5.0)
    world.advance(2000)
    assert "cell_heating" not in world.flags()  # S31 factory off: no heater hardware
    configure(world, switches={31: True})
    world.advance(1100)
    assert {"cell_heating", "heater"} <= world.flags()
    world.set_ntc_c(0, 9.9)
    world.advance(2000)
    assert "cell_heating" in world.flags()
    world.set_ntc_c(0, 10.0)
    world.advance(1100)
    assert "cell_heating" not in world.flags()
    world.set_ntc_c(0, -1.0)
    world.advance(1100)
    assert "cell_heating" in world.flags()
    world.idle()  # charger gone: heating stops
    assert "cell_heating" not in world.flags()


def test_manual_heater_control(world: World) -> None:
    world.twin.control(3, 0x10)
    assert "heater" in world.flags()
    assert world.twin.outputs().heater
    world.twin.control(3, 0x1F)
    assert "heater" not in world.flags()
