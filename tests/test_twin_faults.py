"""Firmware and link faults: parsing (errors name file, entry and value) and that every
firmware kind changes the twin's behaviour as it claims."""

from __future__ import annotations

from pathlib import Path

import pytest
from twin_support import configure

from bmssim.faults import Faults, LinkFaults
from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()


def world_with(*entries: dict) -> World:
    w = World(SPEC, faults=Faults.from_dict({"firmware": list(entries)}, SPEC))
    w.advance(1000)
    return w


def edges(world: World, signal: str, since: int = 0) -> list[tuple[int, float]]:
    return [(t, v) for t, s, v in world.bench.trace.events if s == signal and t >= since]


# ---------------------------------------------------------------------- parsing


def test_parses_items_kinds_and_link() -> None:
    f = Faults.from_dict(
        {
            "firmware": [
                {"item": "P5", "kind": "offset", "value": 0.05},
                {"item": "charging-overcurrent-delay", "kind": "scale", "value": 1.5},
                {"item": "s10", "kind": "ignored"},
                {"item": "transient-current-protection", "kind": "no_action"},
            ],
            "link": {"drop_every": 3, "late_every": 2, "late_s": 0.5},
        },
        SPEC,
    )
    assert f.offset(5) == 0.05 and f.offset(6) == 0.0
    assert f.scale(67) == 1.5 and f.scale(68) == 1.0
    assert f.ignored(10) and not f.ignored(9)
    assert f.has("no_action", (), 37)
    assert f.link == LinkFaults(drop_every=3, corrupt_every=0, late_every=2, late_s=0.5)
    assert Faults.from_dict(f.to_dict(), SPEC).to_dict() == f.to_dict()


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"item": "P88", "kind": "latch"}, r"firmware\[0\].*'P88'"),
        ({"item": "no-such-row", "kind": "latch"}, r"firmware\[0\].*'no-such-row'"),
        ({"item": "P5", "kind": "melt"}, r"firmware\[0\].*'melt'"),
        ({"item": "P5", "kind": "offset"}, r"firmware\[0\].*numeric 'value'.*None"),
        ({"item": "P5", "kind": "offset", "value": "x"}, r"firmware\[0\].*'x'"),
        ({"item": "P5", "kind": "latch", "value": 1}, r"firmware\[0\].*takes no 'value'"),
        ({"item": "P5", "kind": "ignored"}, r"firmware\[0\].*'ignored'.*P5"),
        ({"item": "S10", "kind": "offset", "value": 1}, r"firmware\[0\].*'offset'.*S10"),
        ({"item": "P5"}, r"firmware\[0\].*needs 'item' and 'kind'"),
    ],
)
def test_bad_entries_name_source_entry_and_value(entry: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        Faults.from_dict({"firmware": [entry]}, SPEC, source="f.yaml")
    assert str(err.value).startswith("f.yaml:")


def test_bad_link_and_sections() -> None:
    with pytest.raises(ValueError, match=r"link.drop_every.*-1"):
        Faults.from_dict({"link": {"drop_every": -1}})
    with pytest.raises(ValueError, match=r"unknown key.*'drop'"):
        Faults.from_dict({"link": {"drop": 1}})
    with pytest.raises(ValueError, match=r"unknown section.*'links'"):
        Faults.from_dict({"links": {}})


def test_load_from_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text("firmware:\n  - {item: P5, kind: offset, value: 0.05}\nlink: {drop_every: 2}\n")
    f = Faults.load(path, SPEC)
    assert f.offset(5) == 0.05 and f.link.drop_every == 2
    path.write_text(
        "firmware:\n  - {item: P5, kind: offset, value: 0.05}\n  - {item: Q1, kind: latch}\n"
    )
    with pytest.raises(ValueError, match=rf"{path}: firmware\[1\].*'Q1'"):
        Faults.load(path, SPEC)


def test_empty_faults_are_healthy() -> None:
    assert not Faults.empty()
    assert Faults.from_dict(None).firmware == []


# ---------------------------------------------------------------------- behaviour


def test_offset_moves_the_trip() -> None:
    w = world_with({"item": "P5", "kind": "offset", "value": 0.05})
    w.charge(10.0)
    w.set_cells_v(3.69, 0)
    w.advance(2000)
    assert "cell_overvoltage_protection" not in w.flags()
    w.set_cells_v(3.70, 0)
    w.advance(1100)
    assert "cell_overvoltage_protection" in w.flags()
    assert w.twin.read_block().values[5] == 3.65  # read-back unchanged


def test_offset_on_a_count_moves_the_lockout() -> None:
    w = world_with({"item": "P71", "kind": "offset", "value": 1})
    configure(w, switches={39: True})
    t0 = w.clock.now_ms
    w.discharge(250.0)
    w.advance(10 * 62_030)
    assert len([v for _, v in edges(w, "discharge_fet", t0) if v == 0.0]) == 6


def test_scale_stretches_the_delay() -> None:
    w = world_with({"item": "P67", "kind": "scale", "value": 1.5})
    configure(w, switches={56: False})
    t0 = w.clock.now_ms
    w.charge(115.0)
    w.advance(20_000)
    ((t_open, _),) = [e for e in edges(w, "charge_fet", t0) if e[1] == 0.0]
    assert 15_000 <= t_open - t0 <= 15_010


def test_ignored_switch_keeps_the_factory_behaviour() -> None:
    w = world_with({"item": "S10", "kind": "ignored"}, {"item": "S31", "kind": "ignored"})
    configure(w, switches={10: False, 31: True})
    assert w.twin.read_block().switches[10] is False  # the bit reads back as written
    w.charge(10.0)
    w.set_cells_v(3.7, 0)
    w.set_ntc_c(0, -5.0)
    w.advance(1100)
    assert "cell_overvoltage_protection" in w.flags()  # S10 off has no effect
    assert "cell_heating" not in w.flags()  # S31 on has no effect


def test_no_flag_acts_without_reporting() -> None:
    w = world_with({"item": "P5", "kind": "no_flag"})
    w.charge(10.0)
    w.set_cells_v(3.7, 0)
    w.advance(1100)
    assert "cell_overvoltage_protection" not in w.flags()
    assert w.supply_current_a() == 0.0


def test_no_flag_on_an_alarm() -> None:
    w = world_with({"item": "P1", "kind": "no_flag"})
    w.set_cells_v(3.6, 0)
    w.advance(1100)
    assert "cell_high_voltage_alarm" not in w.flags()


def test_no_action_reports_but_keeps_the_fet_closed() -> None:
    w = world_with({"item": "P5", "kind": "no_action"})
    w.charge(10.0)
    w.set_cells_v(3.7, 0)
    w.advance(1100)
    assert "cell_overvoltage_protection" in w.flags()
    assert w.supply_current_a() == 10.0


def test_no_action_on_the_transient_protection() -> None:
    w = world_with({"item": "S37", "kind": "no_action"})
    w.discharge(260.0)
    w.advance(100)
    assert "transient_overcurrent_protection" in w.flags()
    assert w.load_current_a() == 260.0


def test_latch_never_recovers() -> None:
    w = world_with({"item": "P5", "kind": "latch"})
    w.charge(10.0)
    w.set_cells_v(3.7, 0)
    w.advance(1100)
    w.set_cells_v(3.3, 0)
    w.advance(60_000)
    assert "cell_overvoltage_protection" in w.flags()
    assert w.supply_current_a() == 0.0


def test_latch_on_the_transient_stops_the_p70_retry() -> None:
    w = world_with({"item": "P57", "kind": "latch"})
    w.discharge(250.0)
    w.advance(10 * 60_000)
    assert not w.twin.outputs().discharge_fet
    assert len([v for _, v in edges(w, "discharge_fet") if v == 0.0]) == 1


def test_faults_can_change_at_run_time() -> None:
    w = world_with()
    w.set_faults(Faults.from_dict({"firmware": [{"item": "P5", "kind": "no_action"}]}, SPEC))
    w.charge(10.0)
    w.set_cells_v(3.7, 0)
    w.advance(1100)
    assert w.supply_current_a() == 10.0
    w.set_faults(Faults.empty())
    assert w.supply_current_a() == 0.0


def test_removing_a_latch_lets_the_retry_come() -> None:
    w = world_with({"item": "P57", "kind": "latch"})
    w.discharge(250.0)
    w.advance(70_000)
    w.idle()
    w.set_faults(Faults.empty())
    w.advance(1)
    assert w.twin.outputs().discharge_fet
    assert "transient_overcurrent_protection" not in w.flags()
