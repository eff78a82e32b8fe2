"""The Modbus map is the Seplos V3 layout: a real board's register dump decodes through it to
sensible values, and a public client's decoding rules, written here on their own with the
addresses and scales the clients use (not the map's), read the simulator's registers as the
twin's values and agree with the harness's link.

Reference decoder, from two public V3 clients (facts only):
  dbus-serialbattery, github.com/mr-manuel/venus-os_dbus-serialbattery
    etc/dbus-serialbattery/bms/seplosv3.py: PIA = FC 4 0x1000 x 0x12: voltage r[0] / 100,
    current signed r[1] / 100, remaining r[2] / 100, SOC r[5] / 10, cycles r[7];
    PIB = FC 4 0x1100 x 0x1A: cell i r[i] / 1000, cell temperatures r[0x10..0x13], power
    (MOSFET) temperature r[0x19]; SPA = FC 4 0x1300 x 0x6A: cell count r[1]; PIC = FC 1
    0x1200 x 0x90: discharge FET bit 0x78, charge FET bit 0x79.
  aiobmsble (pypi.org/p/aiobmsble), seplos_v3_bms: PIA SOH r[6] / 10; PIB temperatures
    (raw - 2731) / 10 (dbus-serialbattery subtracts 273.0 K instead: 0.1 °C apart).
The ambient temperature r[0x18] of PIB is the protocol document's ("XZH BMS Modbus-RTU
Protocol V0.3", in github.com/syssi/esphome-seplos-bms docs/).

Captured dump: github.com/syssi/esphome-seplos-bms docs/pdus/v3/SG16S200A-SP57B-A-all-
frames.txt (a 16S 330 Ah pack behind an SG16S200A-SP57B-A board, unit 1 and the display id
0xE0), the frames below as captured.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bmssim.modbus_map import RegisterMap as SimRegisterMap
from bmssim.modbus_server import TwinModbusContext
from bmssim.world import World
from bmsspec import load_spec
from instruments.bms import modbus_decode as decode
from instruments.bms.modbus_link import ModbusLink
from instruments.bms.modbus_map import load_register_map
from instruments.ntc import BetaNtc

SPEC = load_spec()
MAP = load_register_map(spec=SPEC)

# -- the captured frames (answers; the requests were 01 04 1000 0011, 01 04 1100 001A,
#    E0 04 1300 0035 and E0 04 1335 0035) --------------------------------------------------
PIA = (
    "01 04 22 14 CD FF 77 6B 40 80 E8 01 22 03 40 03 E7 00 0A 0C FF 0B 7F 0D 00 0C FF "
    "0B 81 0B 7E 00 00 00 B4 00 B4 D3 2E"
)
PIB = (
    "01 04 34 0C FF 0C FF 0D 00 0D 00 0D 00 0C FF 0D 00 0C FF 0D 00 0D 00 0D 00 0D 00 "
    "0D 00 0C FF 0C FF 0D 00 0B 82 0B 7F 0B 81 0B 7E 0A AB 0A AB 0A AB 0A AB 0B 8C 0B 7F "
    "01 13"
)
SPA_1 = (
    "E0 04 6A 00 04 00 10 15 18 15 E0 15 18 16 80 12 C0 12 20 12 C0 10 E0 0D 48 0D AC "
    "0D 48 0E 42 0C 1C 0B 54 0C 1C 0A 8C 07 D0 03 E8 01 F4 00 CB 00 CD 00 D2 00 64 01 2C "
    "01 2C FF 35 FF 33 FF 2E 00 64 FE A2 01 2C FE D4 00 6A 02 58 00 05 0B B8 00 CD 00 0A "
    "0D AC 0D 48 05 DC 03 E8 03 20 00 C8 00 1E 0C 81 0C 9F 0C 9F 0C D1 0A DD 0A C9 76 16"
)
SPA_2 = (
    "E0 04 6A 0A BF 0A AB 0C 9F 0C D1 0C D1 0D 03 0A C9 0A AB 0A B5 0A 8D 0C 81 0C 9F "
    "0C D1 0D 03 0A C9 0A AB 0A AB 0A 47 0D FD 0E 61 0D FD 0E F7 0B 0F 0A AB 0C 9F 0A AB "
    "00 0A 0D 48 00 32 00 1E 03 C0 00 50 00 32 00 32 00 1E 80 E8 80 E8 6B 40 00 30 00 3C "
    "00 F0 00 0A 00 07 00 00 00 0D 00 00 01 F4 01 2C 16 80 00 B4 FF 4C 00 00 00 08 FE C9"
)


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def registers_of(frame: str) -> list[int]:
    """The registers of a captured FC 4 answer, its CRC checked (the frame is whole)."""
    data = bytes.fromhex(frame)
    assert crc16(data[:-2]) == int.from_bytes(data[-2:], "little"), frame[:20]
    assert data[1] == 0x04 and data[2] == len(data) - 5
    body = data[3:-2]
    return [int.from_bytes(body[i : i + 2], "big") for i in range(0, len(body), 2)]


def captured_registers() -> dict[int, int]:
    raw: dict[int, int] = {}
    for start, frame in ((0x1000, PIA), (0x1100, PIB), (0x1300, SPA_1), (0x1335, SPA_2)):
        raw.update({start + i: v for i, v in enumerate(registers_of(frame))})
    return raw


# -- the public clients' decoding, on its own -------------------------------------------


def s16(raw: int) -> int:
    return raw - 0x10000 if raw >= 0x8000 else raw


def client_pia(r: list[int]) -> dict[str, float]:
    return {
        "pack_v": r[0] / 100,
        "current_a": s16(r[1]) / 100,
        "remaining_ah": r[2] / 100,
        "soc_pct": r[5] / 10,
        "soh_pct": r[6] / 10,
        "cycles": r[7],
    }


def client_pib(r: list[int]) -> dict[str, Any]:
    return {
        "cell_v": [r[i] / 1000 for i in range(16)],
        "cell_temp_c": [(r[0x10 + i] - 2731) / 10 for i in range(4)],
        "ambient_c": (r[0x18] - 2731) / 10,
        "power_c": (r[0x19] - 2731) / 10,
    }


def client_pic(bits: list[bool]) -> dict[str, bool]:
    return {"discharge_fet": bits[0x78], "charge_fet": bits[0x79]}


# -- a real board's dump ------------------------------------------------------------------


def test_a_captured_v3_dump_decodes_through_the_map_to_sensible_values():
    raw = captured_registers()
    tele = decode.telemetry(MAP, raw, rated_ah=None)
    assert tele.pack_v == pytest.approx(53.25)
    assert tele.pack_v == pytest.approx(sum(tele.cell_v), abs=0.05)  # 16 cells of 3.327 V
    assert min(tele.cell_v) == pytest.approx(3.327) and max(tele.cell_v) == pytest.approx(3.328)
    assert tele.current_a == pytest.approx(-1.37)  # signed: a small discharge
    assert tele.remaining_ah == pytest.approx(274.56) and tele.full_ah == pytest.approx(330.0)
    assert tele.soc_pct == pytest.approx(83.2)
    assert tele.soc_pct == pytest.approx(100 * tele.remaining_ah / tele.full_ah, abs=0.1)
    assert tele.soh_pct == pytest.approx(99.9) and tele.cycles == 10
    assert tele.cell_temp_c == pytest.approx([21.5, 21.2, 21.4, 21.1])
    assert (tele.ambient_c, tele.power_c) == pytest.approx((22.5, 21.2))
    block = decode.parameters(MAP, raw, SPEC, {})
    v = block.values
    # the pack's configuration, in the spec's units; the SPA figures agree with PIA
    assert v[60] == pytest.approx(tele.remaining_ah) and v[59] == pytest.approx(tele.full_ah)
    assert v[66] == 16
    assert (v[1], v[2], v[5], v[6], v[7], v[8]) == pytest.approx((3.5, 3.4, 3.65, 3.4, 2.7, 3.1))
    assert (v[15], v[16], v[17], v[18]) == pytest.approx((57.6, 54.0, 43.2, 48.0))
    assert v[1] < v[5] and v[7] < v[3] and v[17] < v[13] < v[11] < v[15]
    assert (v[55], v[56], v[57]) == pytest.approx((210.0, -210.0, -350.0))  # signed amperes
    assert (v[61], v[62]) == pytest.approx((0.5, 0.3))  # the spec's P61/P62 defaults
    assert v[72] == pytest.approx(5.0)  # 300.0 s, in the spec's minutes
    assert (v[25], v[26], v[49]) == pytest.approx((55.0, 50.0, 110.0))
    assert (v[79], v[80], v[81]) == pytest.approx((5.0, 3.0, 96.0))
    assert (v[65], v[78], v[84], v[86]) == (10.0, 48.0, 7.0, 13.0)


def test_the_public_client_decodes_the_captured_dump_as_the_map_does():
    raw = captured_registers()
    pia = client_pia([raw[0x1000 + i] for i in range(0x11)])
    pib = client_pib([raw[0x1100 + i] for i in range(0x1A)])
    tele = decode.telemetry(MAP, raw, rated_ah=None)
    for name, value in {**pia, **pib}.items():
        assert getattr(tele, name) == pytest.approx(value), name
    assert raw[0x1301] == SPEC.param(66).default  # dbus-serialbattery's cell count: spa[1]


# -- the simulator's registers ------------------------------------------------------------


class ContextClient:
    """A pymodbus-like client on the simulator's Modbus context (what its servers answer)."""

    def __init__(self, context: TwinModbusContext) -> None:
        self.context = context
        self.comm_params = SimpleNamespace(timeout_connect=0.5)

    def _ok(self, code: int, **fields: Any) -> Any:
        return SimpleNamespace(isError=lambda: False, function_code=code, **fields)

    def read_input_registers(self, address: int, *, count: int, device_id: int) -> Any:
        return self._ok(4, registers=self.context.read(4, address, count))

    def read_coils(self, address: int, *, count: int, device_id: int) -> Any:
        return self._ok(1, bits=self.context.read(1, address, count))

    def write_registers(self, address: int, values: list[int], *, device_id: int) -> Any:
        self.context.write(16, address, list(values))
        return self._ok(16, address=address, count=len(values))

    def write_coils(self, address: int, values: list[bool], *, device_id: int) -> Any:
        self.context.write(15, address, list(values))
        return self._ok(15, address=address, count=len(values))

    def close(self) -> None:
        pass


@pytest.fixture
def world() -> World:
    w = World(SPEC)
    levels = [3.200 + 0.011 * i for i in range(16)]
    for cell, volts in zip(w.bench.cells, levels, strict=True):
        cell.voltage_set_v = volts
    for ntc, celsius in zip(w.bench.ntc, (15.0, 20.0, 30.0, 35.0, 10.0, 40.0), strict=True):
        ntc.ohms = BetaNtc().ohm_at(celsius)
    w.settle()
    return w


def test_the_public_client_reads_the_twin_from_the_simulators_registers(world: World):
    context = TwinModbusContext(world, SPEC, SimRegisterMap.load(spec=SPEC), [0, 1])
    pia = client_pia(context.read(4, 0x1000, 0x12))
    pib = client_pib(context.read(4, 0x1100, 0x1A))
    pic = client_pic(context.read(1, 0x1200, 0x90))
    m = world.twin.measurements()
    assert pia["pack_v"] == pytest.approx(m.pack_v, abs=0.005)
    assert pia["current_a"] == pytest.approx(m.current_a, abs=0.005)
    assert pia["remaining_ah"] == pytest.approx(m.remaining_ah, abs=0.005)
    assert pia["soc_pct"] == pytest.approx(m.soc_permille / 10)
    assert pia["soh_pct"] == pytest.approx(m.soh_permille / 10) and pia["cycles"] == m.cycles
    assert pib["cell_v"] == pytest.approx(m.cell_v, abs=0.0005)
    assert pib["cell_temp_c"] == pytest.approx(m.temps_c[:4], abs=0.05)
    assert (pib["ambient_c"], pib["power_c"]) == pytest.approx(m.temps_c[4:6], abs=0.05)
    status = world.twin.status()
    assert pic == {
        "discharge_fet": "discharge_fet" in status.flags,
        "charge_fet": "charge_fet" in status.flags,
    }
    assert context.read(4, 0x1300, 0x6A)[1] == SPEC.param(66).default


def test_the_link_and_the_public_client_agree_on_the_simulators_registers(world: World):
    context = TwinModbusContext(world, SPEC, SimRegisterMap.load(spec=SPEC), [0, 1])
    link = ModbusLink("sim", spec=SPEC, register_map=MAP, client=ContextClient(context))
    tele = link.telemetry()
    reference = {
        **client_pia(context.read(4, 0x1000, 0x12)),
        **client_pib(context.read(4, 0x1100, 0x1A)),
    }
    for name, value in reference.items():
        assert getattr(tele, name) == pytest.approx(value), name
    status = link.status()
    pic = client_pic(context.read(1, 0x1200, 0x90))
    assert (status.discharge_fet, status.charge_fet) == (pic["discharge_fet"], pic["charge_fet"])
    # a parameter written through the link is what the twin then holds
    link.write_parameters({5: 3.62, 72: 6.0}, switches={10: False})
    block = world.twin.read_block()
    assert block.values[5] == pytest.approx(3.62) and block.values[72] == pytest.approx(6.0)
    assert block.switches[10] is False


def test_the_simulator_answers_only_the_v3_function_codes_and_blocks(world: World):
    context = TwinModbusContext(world, SPEC, SimRegisterMap.load(spec=SPEC), [0, 1])
    with pytest.raises(LookupError):
        context.read(3, 0x1300, 1)  # holding registers: exception 01
    with pytest.raises(KeyError):
        context.read(4, 0x1200, 1)  # between the blocks: exception 02
    assert context.read(4, 0x1004, 1) == [0]  # total discharged capacity: not in the twin
    with pytest.raises(ValueError):
        context.write(16, 0x1312, [2000])  # a V3 setting this twin keeps none of
    with pytest.raises(KeyError):
        context.write(16, 0x1000, [0])  # telemetry is read-only
