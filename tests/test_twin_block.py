"""The Twin contract's parameter side: read/write of the whole block with validation,
remaining capacity, 0x45 controls, device info."""

from __future__ import annotations

import pytest

from bmssim.twin import BmsTwin, ParameterBlock
from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()


@pytest.fixture
def twin() -> BmsTwin:
    return World(SPEC).twin


def test_factory_block_is_the_spec_defaults(twin: BmsTwin) -> None:
    block = twin.read_block()
    assert block.values == {n: SPEC.param(n).default for n in range(1, 88)}
    assert block.switches == {n: SPEC.switch(n).default for n in range(1, 65)}
    assert block.model_name == "1101-HIL1 "
    assert block.values[59] == 100.0 and block.values[60] == 50.0


def test_block_round_trips_quantised(twin: BmsTwin) -> None:
    block = twin.read_block()
    block.values[5] = 3.6004  # 1 mV resolution on the wire
    block.values[25] = 54.96  # 0.1 K
    block.values[57] = -260.0
    block.switches[31] = True
    block.model_name = "TEST"
    twin.write_block(block)
    back = twin.read_block()
    assert back.values[5] == 3.6
    assert back.values[25] == 55.0
    assert back.values[57] == -260.0
    assert back.switches[31] is True
    assert back.model_name == "TEST      "
    assert twin.device_info().name == "TEST      "


def _refused(twin: BmsTwin, match: str, values=None, switches=None, name=None) -> None:
    before = twin.read_block()
    block = twin.read_block()
    block.values.update(values or {})
    block.switches.update(switches or {})
    if name is not None:
        block.model_name = name
    with pytest.raises(ValueError, match=match):
        twin.write_block(block)
    assert twin.read_block() == before  # nothing changed


def test_out_of_range_value_is_refused_naming_item_and_value(twin: BmsTwin) -> None:
    _refused(twin, r"P5 .*4\.6", values={5: 4.6})
    _refused(twin, r"P59 .*250", values={59: 250.0})
    _refused(twin, r"P66 .*17", values={66: 17})


def test_recovery_on_the_wrong_side_is_refused(twin: BmsTwin) -> None:
    _refused(twin, r"P6 .*3\.7", values={6: 3.7})  # above its trip P5 = 3.65
    _refused(twin, r"P28 .*-12", values={28: -12.0})  # below its trip P27 = -10
    _refused(twin, r"P52 .*75", values={52: 75.0})  # above its trip P51 = 70


def test_value_the_wire_cannot_carry_is_refused(twin: BmsTwin) -> None:
    _refused(twin, r"P61", values={61: 3.0})  # 1 byte of 0.01 V
    _refused(twin, r"P1 .*not a finite", values={1: float("nan")})


def test_remaining_above_rated_is_refused(twin: BmsTwin) -> None:
    _refused(twin, r"P60", values={60: 120.0})


def test_incomplete_block_and_bad_switch_and_name(twin: BmsTwin) -> None:
    block = twin.read_block()
    del block.values[40]
    with pytest.raises(ValueError, match="P40"):
        twin.write_block(block)
    _refused(twin, r"S12", switches={12: 2})
    _refused(twin, r"model name", name="01234567890")
    _refused(twin, r"model name", name="caf\u00e9")


def test_p60_in_the_block_is_the_live_remaining_capacity(twin: BmsTwin) -> None:
    twin.set_remaining_capacity(73.21)
    assert twin.read_block().values[60] == 73.21
    block = twin.read_block()
    block.values[60] = 20.0
    twin.write_block(block)
    assert twin.measurements().remaining_ah == 20.0
    assert twin.measurements().soc_permille == 200


def test_rated_capacity_change_moves_full_and_soc(twin: BmsTwin) -> None:
    block = twin.read_block()
    block.values[59] = 200.0
    twin.write_block(block)
    m = twin.measurements()
    assert (m.full_ah, m.rated_ah, m.remaining_ah, m.soc_permille) == (200.0, 200.0, 50.0, 250)


def test_control_fets(twin: BmsTwin) -> None:
    twin.control(1, 0x1F)
    assert "charge_fet" not in twin.flags()
    twin.control(1, 0x10)
    assert "charge_fet" in twin.flags()
    twin.control(0, 0x1F)
    assert "discharge_fet" not in twin.flags()
    twin.control(2, 0x10)
    assert "current_limit_fet" in twin.flags()
    twin.control(2, 0x1F)
    assert "current_limit_fet" not in twin.flags()


@pytest.mark.parametrize(
    ("item", "action"), [(6, 0x00), (0, 0x00), (1, 0x20), (4, 0x10), (5, 0x1F), (99, 0x10)]
)
def test_control_refuses_unknown_items_and_actions(twin: BmsTwin, item: int, action: int) -> None:
    with pytest.raises(ValueError, match=f"item {item}"):
        twin.control(item, action)


def test_factory_reset_restores_parameters_and_keeps_charge(twin: BmsTwin) -> None:
    block = twin.read_block()
    block.values[5] = 3.7
    block.values[6] = 3.5
    block.switches[10] = False
    twin.write_block(block)
    twin.set_remaining_capacity(80.0)
    twin.control(0, 0x1F)
    twin.control(5, 0x00)
    back = twin.read_block()
    assert back.values[5] == 3.65 and back.switches[10] is True
    assert back.values[60] == 80.0
    assert "discharge_fet" in twin.flags()


def test_device_info(twin: BmsTwin) -> None:
    info = twin.device_info()
    assert (info.name, tuple(info.version), info.manufacturer) == (
        "1101-HIL1 ",
        (16, 4),
        "bms-hil twin",
    )


def test_status_levels_and_flags_are_named_in_the_spec(twin: BmsTwin) -> None:
    names = {f.name for f in SPEC.flags}
    st = twin.status()
    assert st.flags <= names
    assert len(st.cell_levels) == 16 and len(st.temp_levels) == 6


def test_block_type_is_the_contracts(twin: BmsTwin) -> None:
    block = twin.read_block()
    assert isinstance(block, ParameterBlock)
    twin.write_block(ParameterBlock(dict(block.values), dict(block.switches), "X"))
    assert twin.read_block().model_name == "X         "


def test_read_modify_write_keeps_the_exact_remaining_charge() -> None:
    world = World(SPEC)
    world.advance(1000)
    world.charge(1.0)
    world.advance(1000)  # 1 A for 1 s: 50.000278 Ah, read back as 50.00
    world.idle()
    assert world.twin.read_block().values[60] == 50.0
    world.advance(1000)
    world.twin.write_block(world.twin.read_block())
    world.charge(1.0)
    world.advance(359_000)  # 360 s of 1 A in all: exactly 50.1 Ah, SOC 501
    assert world.twin.measurements().soc_permille == 501
