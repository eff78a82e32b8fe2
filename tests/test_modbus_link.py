"""The Modbus link against a fake pymodbus client serving the register map file: decoding
through the map, whole-block writes, exceptions as BmsRejected, and what the map lacks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.spec import load_spec
from instruments.bms.modbus_link import ModbusLink, load_register_map, runs
from instruments.errors import BmsLinkError, BmsRejected

SPEC = load_spec()
MAP = load_register_map()


class FakeClient:
    """Holds the four tables as dicts of raw values, answering like pymodbus responses."""

    def __init__(self) -> None:
        self.input = {r.address: 0 for r in MAP.input_registers}
        self.holding = {
            r.address: SPEC.param(int(r.source.removeprefix("parameter.P"))).encode(
                SPEC.param(int(r.source.removeprefix("parameter.P"))).default
            )
            for r in MAP.holding_registers
        }
        self.discrete = {b.address: False for b in MAP.discrete_inputs}
        self.coils = {c.address: True for c in MAP.coils}
        self.calls: list[tuple[str, int, int]] = []
        self.refuse: int | None = None

    def _answer(self, table: dict, name: str, address: int, count: int, key: str):
        self.calls.append((name, address, count))
        if self.refuse is not None:
            return SimpleNamespace(isError=lambda: True, exception_code=self.refuse)
        values = [table[a] for a in range(address, address + count)]  # KeyError = address 02
        return SimpleNamespace(isError=lambda: False, **{key: values})

    def read_input_registers(self, address, *, count, device_id):
        return self._answer(self.input, "ir", address, count, "registers")

    def read_holding_registers(self, address, *, count, device_id):
        return self._answer(self.holding, "hr", address, count, "registers")

    def read_discrete_inputs(self, address, *, count, device_id):
        return self._answer(self.discrete, "di", address, count, "bits")

    def read_coils(self, address, *, count, device_id):
        return self._answer(self.coils, "co", address, count, "bits")

    def write_registers(self, address, values, *, device_id):
        self.holding.update(zip(range(address, address + len(values)), values, strict=True))
        return self._answer(self.holding, "w_hr", address, len(values), "registers")

    def write_register(self, address, value, *, device_id):
        self.holding[address] = value
        return self._answer(self.holding, "w_r", address, 1, "registers")

    def write_coils(self, address, values, *, device_id):
        self.coils.update(zip(range(address, address + len(values)), values, strict=True))
        return self._answer(self.coils, "w_co", address, len(values), "bits")

    def close(self) -> None:
        pass


def make() -> tuple[ModbusLink, FakeClient]:
    client = FakeClient()
    return ModbusLink("fake", spec=SPEC, register_map=MAP, client=client), client


def by_name(name: str) -> int:
    return next(r.address for r in MAP.input_registers if r.name == name)


def test_runs():
    assert runs([5, 1, 2, 3, 7], 125) == [(1, 3), (5, 1), (7, 1)]
    assert runs(list(range(10)), 4) == [(0, 4), (4, 4), (8, 2)]


def test_telemetry_through_the_map():
    link, client = make()
    client.input[by_name("current")] = (-1234) & 0xFFFF
    client.input[by_name("cell_voltage_16")] = 3456
    client.input[by_name("ambient_temperature")] = 2731 + 452
    client.input[by_name("soc")] = 505
    t = link.telemetry()
    assert t.current_a == pytest.approx(-12.34)
    assert t.cell_v[15] == pytest.approx(3.456) and len(t.cell_v) == 16
    assert t.ambient_c == pytest.approx(45.2)
    assert t.soc_pct == pytest.approx(50.5)
    assert all(count <= 125 for _, _, count in client.calls)


def test_status_names_every_flag():
    link, client = make()
    flag_address = {b.source: b.address for b in MAP.discrete_inputs}
    client.discrete[flag_address["flag.cell_overvoltage_protection"]] = True
    client.discrete[flag_address["flag.charge_fet"]] = True
    client.discrete[flag_address["flag.standby"]] = True
    client.discrete[flag_address["balancing[4]"]] = True
    s = link.status()
    assert set(s.flags) == set(SPEC.flag_names)
    assert s.active() == ["cell_overvoltage_protection", "charge_fet", "standby"]
    assert s.charge_fet and not s.discharge_fet and s.system_states == ["standby"]
    assert s.balancing == [i == 4 for i in range(16)]


def test_block_read_modify_write_verified():
    link, client = make()
    back = link.write_parameters({57: -240.0}, switches={10: False})
    assert back.values[57] == pytest.approx(-240.0) and back.switches[10] is False
    assert back.values[1] == pytest.approx(SPEC.param(1).default)
    assert {name for name, _, _ in client.calls} >= {"w_hr", "w_co"}


def test_single_remaining_capacity_register():
    link, client = make()
    link.set_remaining_capacity(42.5)
    p60 = next(r.address for r in MAP.holding_registers if r.source == "parameter.P60")
    assert client.holding[p60] == 4250


def test_exception_becomes_rejected_with_meaning():
    link, client = make()
    client.refuse = 0x03
    with pytest.raises(BmsRejected, match=r"illegal data value"):
        link.read_parameters()


def test_what_the_map_lacks_is_refused_not_faked():
    link, _ = make()
    with pytest.raises(BmsLinkError, match="device info is not available over Modbus"):
        link.device_info()
    with pytest.raises(BmsLinkError, match="control"):
        link.control(0, 0x1F)


def test_a_map_missing_a_flag_is_refused_at_open():
    partial = load_register_map()
    partial.discrete_inputs.pop(0)
    with pytest.raises(BmsLinkError, match="lacks flag.voltage_sensor_fault"):
        ModbusLink("fake", spec=SPEC, register_map=partial, client=FakeClient())
