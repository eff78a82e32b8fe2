"""The deviation kinds of issue 10 item 9 at the twin: parsing (a kind that makes no sense
for an item is refused with the file, the item and the kind) and, for each kind, that the
deviation does what it says and nothing else: the same scenario on a healthy twin and on
the deviating one differ exactly where the deviation claims."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from twin_support import configure

from bmssim.faults import Faults
from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()

Scenario = Callable[[World], None]


def world_with(faults: dict | None = None) -> World:
    w = World(SPEC, faults=Faults.from_dict(faults or {}, SPEC, source="dev.yaml"))
    w.advance(1000)
    return w


def pair(faults: dict, scenario: Scenario) -> tuple[World, World]:
    """(healthy, deviating) worlds after the same ``scenario``."""
    healthy, deviating = world_with(), world_with(faults)
    scenario(healthy)
    scenario(deviating)
    return healthy, deviating


def firmware(*entries: dict) -> dict:
    return {"firmware": list(entries)}


#: Flags that follow the FETs and the current rather than a function's decision.
STATE_FLAGS = {"charge_fet", "discharge_fet", "charging", "discharging", "standby"}


def events(w: World) -> set[str]:
    """The flags the functions raise (not the FET and operating-state bits)."""
    return w.flags() - STATE_FLAGS


def fets(w: World) -> tuple[bool, bool]:
    out = w.twin.outputs()
    return out.charge_fet, out.discharge_fet


# ---------------------------------------------------------------------- parsing


def test_new_kinds_parse_and_round_trip() -> None:
    data = {
        "firmware": [
            {"item": "P5", "kind": "channel_ignored", "channel": 16},
            {"item": "P25", "kind": "condition_ignored"},
            {"item": "P47", "kind": "extra_action", "value": "both"},
            {"item": "P43", "kind": "wrong_fet", "value": "discharge"},
            {"item": "P24", "kind": "no_hysteresis"},
            {"item": "P67", "kind": "timer_not_reset"},
        ],
        "telemetry": [
            {"quantity": "cell_voltage", "channel": 7, "kind": "offset", "value": 0.030},
            {"quantity": "cell_temperature", "channel": 3, "kind": "offset", "value": 4.0},
            {"quantity": "current", "kind": "scale", "value": -1.0},
            {"quantity": "pack_voltage", "kind": "offset", "value": 0.8},
        ],
    }
    f = Faults.from_dict(data, SPEC)
    assert f.ignored_channels((5, 6)) == {16}
    assert f.ignored_channels((1, 2)) == set()
    assert f.deviation("extra_action", (47, 48)).value == "both"
    assert f.deviation("wrong_fet", (5, 6)) is None
    assert f.reported("cell_voltage", 3.3, 7) == pytest.approx(3.33)
    assert f.reported("cell_voltage", 3.3, 6) == 3.3
    assert f.reported("current", 5.0) == -5.0
    again = f.to_dict()
    assert again["firmware"] == data["firmware"]
    assert again["telemetry"] == data["telemetry"]
    assert Faults.from_dict(again, SPEC).to_dict() == again
    assert "telemetry" not in Faults.empty().to_dict()  # the healthy answer is unchanged


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"item": "P39", "kind": "channel_ignored", "channel": 1}, r"P39.*per-channel"),
        ({"item": "P49", "kind": "channel_ignored", "channel": 1}, r"P49.*per-channel"),
        ({"item": "P5", "kind": "channel_ignored", "channel": 17}, r"P5.*cell 1\.\.16.*17"),
        ({"item": "P25", "kind": "channel_ignored", "channel": 5}, r"P25.*NTC 1\.\.4.*5"),
        ({"item": "P5", "kind": "channel_ignored"}, r"P5.*'channel'.*None"),
        ({"item": "P5", "kind": "latch", "channel": 3}, r"'latch' takes no 'channel'"),
        ({"item": "P5", "kind": "condition_ignored"}, r"P5.*no operating condition"),
        ({"item": "P55", "kind": "condition_ignored"}, r"P55.*no operating condition"),
        ({"item": "P5", "kind": "extra_action", "value": "charge"}, r"P5.*charge already"),
        ({"item": "P5", "kind": "extra_action", "value": "up"}, r"P5.*'value'.*'up'"),
        ({"item": "P5", "kind": "extra_action"}, r"P5.*'value'.*None"),
        ({"item": "P84", "kind": "extra_action", "value": "both"}, r"P84.*no protection"),
        ({"item": "P1", "kind": "wrong_fet", "value": "charge"}, r"P1.*alarm opens no FET"),
        ({"item": "P5", "kind": "wrong_fet", "value": "charge"}, r"P5.*its own FET"),
        ({"item": "P5", "kind": "wrong_fet", "value": "both"}, r"P5.*'value'.*'both'"),
        ({"item": "P79", "kind": "no_hysteresis"}, r"P79.*no recovery value"),
        ({"item": "P67", "kind": "no_hysteresis"}, r"P67.*no recovery value"),
        ({"item": "P5", "kind": "no_hysteresis", "value": 1}, r"takes no 'value'"),
        ({"item": "P84", "kind": "timer_not_reset"}, r"P84.*no confirmation or delay"),
        ({"item": "S10", "kind": "timer_not_reset"}, r"'timer_not_reset'.*S10"),
        ({"item": "S10", "kind": "channel_ignored", "channel": 1}, r"'channel_ignored'.*S10"),
    ],
)
def test_a_kind_that_makes_no_sense_is_refused_naming_file_item_and_kind(
    entry: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match) as err:
        Faults.from_dict({"firmware": [entry]}, SPEC, source="dev.yaml")
    text = str(err.value)
    assert text.startswith("dev.yaml: firmware[0]")
    assert repr(entry["kind"]) in text


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"quantity": "port_voltage", "kind": "offset", "value": 1}, r"unknown quantity 'port_v"),
        ({"quantity": "current", "channel": 1, "kind": "offset", "value": 1}, r"no channels"),
        ({"quantity": "cell_voltage", "kind": "offset", "value": 1}, r"channel' 1\.\.16"),
        ({"quantity": "cell_temperature", "channel": 5, "kind": "offset", "value": 1}, r"1\.\.4"),
        ({"quantity": "current", "kind": "drift", "value": 1}, r"'drift'.*current"),
        ({"quantity": "current", "kind": "scale", "value": "x"}, r"numeric 'value'.*'x'"),
        ({"quantity": "current", "kind": "scale"}, r"needs \['value'\]"),
        ({"quantity": "current", "kind": "scale", "value": 1, "x": 1}, r"unknown key.*'x'"),
    ],
)
def test_bad_telemetry_entries_are_refused(entry: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        Faults.from_dict({"telemetry": [entry]}, SPEC, source="dev.yaml")
    assert str(err.value).startswith("dev.yaml: telemetry[0]")


# ---------------------------------------------------------------------- firmware kinds


def test_channel_ignored_cell_is_never_seen_by_that_function_only() -> None:
    def cell16_high(w: World) -> None:
        w.charge(10.0)
        w.set_cells_v(3.70, 15)
        w.advance(1500)

    healthy, dev = pair(
        firmware({"item": "P5", "kind": "channel_ignored", "channel": 16}), cell16_high
    )
    assert "cell_overvoltage_protection" in healthy.flags()
    assert not fets(healthy)[0]
    assert "cell_overvoltage_protection" not in dev.flags()
    assert fets(dev) == (True, True)
    # every other function still sees cell 16 (the alarm P1), nothing else differs
    assert "cell_high_voltage_alarm" in dev.flags()
    assert events(dev) == events(healthy) - {"cell_overvoltage_protection"}
    # and P5 still sees the other cells
    dev.set_cells_v(3.30, 15)
    dev.set_cells_v(3.70, 0)
    dev.advance(1500)
    assert "cell_overvoltage_protection" in dev.flags()


def test_channel_ignored_ntc_is_never_seen_by_that_function_only() -> None:
    def ntc4_hot(w: World) -> None:
        w.charge(10.0)
        w.set_ntc_c(3, 58.0)
        w.advance(1500)

    healthy, dev = pair(
        firmware({"item": "P25", "kind": "channel_ignored", "channel": 4}), ntc4_hot
    )
    assert "charge_overtemperature_protection" in healthy.flags()
    assert "charge_overtemperature_protection" not in dev.flags()
    assert "charge_high_temperature_alarm" in dev.flags()  # P21 still sees NTC 4
    assert fets(dev) == (True, True)
    dev.set_ntc_c(3, 25.0)
    dev.set_ntc_c(0, 58.0)
    dev.advance(1500)
    assert "charge_overtemperature_protection" in dev.flags()


def test_channel_ignored_on_balancing_never_bleeds_that_cell() -> None:
    def cell16_above(w: World) -> None:
        w.set_cells_v(3.45)
        w.set_cells_v(3.50, 15)
        w.advance(2000)

    healthy, dev = pair(
        firmware({"item": "P63", "kind": "channel_ignored", "channel": 16}), cell16_above
    )
    assert healthy.twin.status().balancing[15]
    assert not any(dev.twin.status().balancing)
    assert dev.flags() == healthy.flags()


def test_condition_ignored_acts_outside_its_operating_condition() -> None:
    def hot_while_discharging(w: World) -> None:
        configure(w, switches={21: False, 22: False})  # the discharge rows stay out of it
        w.discharge(10.0)
        w.set_ntc_c(0, 58.0)
        w.advance(1500)

    healthy, dev = pair(
        firmware({"item": "P25", "kind": "condition_ignored"}), hot_while_discharging
    )
    assert "charge_overtemperature_protection" not in healthy.flags()
    assert "charge_overtemperature_protection" in dev.flags()
    assert fets(healthy) == (True, True)
    assert fets(dev) == (False, True)  # it opens its own FET, the charge FET
    assert events(dev) - events(healthy) == {"charge_overtemperature_protection"}
    assert events(healthy) - events(dev) == set()


def test_extra_action_also_opens_the_named_fets() -> None:
    def power_hot(w: World) -> None:
        w.set_ntc_c(5, 92.0)
        w.advance(1500)

    healthy, dev = pair(
        firmware({"item": "P47", "kind": "extra_action", "value": "both"}), power_hot
    )
    assert "power_high_temperature_alarm" in healthy.flags() & dev.flags()
    assert fets(healthy) == (True, True)
    assert fets(dev) == (False, False)
    assert healthy.flags() - dev.flags() == {"charge_fet", "discharge_fet"}
    assert dev.flags() - healthy.flags() == set()


def test_extra_action_on_a_one_sided_protection_adds_the_other_side() -> None:
    def cell_high(w: World) -> None:
        w.charge(10.0)
        w.set_cells_v(3.70, 0)
        w.advance(1500)

    healthy, dev = pair(
        firmware({"item": "P5", "kind": "extra_action", "value": "discharge"}), cell_high
    )
    assert fets(healthy) == (False, True)
    assert fets(dev) == (False, False)


def test_wrong_fet_opens_only_that_fet_instead_of_its_own() -> None:
    def ambient_hot(w: World) -> None:
        w.set_ntc_c(4, 62.0)
        w.advance(1500)

    healthy, dev = pair(
        firmware({"item": "P43", "kind": "wrong_fet", "value": "discharge"}), ambient_hot
    )
    assert "ambient_overtemperature_protection" in healthy.flags() & dev.flags()
    assert fets(healthy) == (False, False)
    assert fets(dev) == (True, False)
    assert dev.flags() - healthy.flags() == {"charge_fet"}


def test_wrong_fet_on_the_charge_overcurrent() -> None:
    def overcurrent(w: World) -> None:
        configure(w, switches={56: False})
        w.charge(115.0)
        w.advance(11_000)

    healthy, dev = pair(
        firmware({"item": "P55", "kind": "wrong_fet", "value": "discharge"}), overcurrent
    )
    assert "charge_overcurrent_protection" in healthy.flags() & dev.flags()
    assert fets(healthy) == (False, True)
    assert fets(dev) == (True, False)


def test_no_hysteresis_recovers_at_the_trip_value() -> None:
    def cold_then_between(w: World) -> None:
        w.charge(10.0)
        w.set_ntc_c(0, 1.0)  # below P23 = 2.0 degC
        w.advance(1500)
        w.set_ntc_c(0, 3.5)  # between the trip (2.0) and the recovery P24 (5.0)
        w.advance(1500)

    healthy, dev = pair(firmware({"item": "P24", "kind": "no_hysteresis"}), cold_then_between)
    assert "charge_low_temperature_alarm" in healthy.flags()  # held inside the band
    assert "charge_low_temperature_alarm" not in dev.flags()  # recovered at the trip
    assert healthy.flags() - dev.flags() == {"charge_low_temperature_alarm"}
    assert dev.flags() - healthy.flags() == set()
    # it still trips where it should
    dev.set_ntc_c(0, 2.0)
    dev.advance(1500)
    assert "charge_low_temperature_alarm" in dev.flags()


def _open_times(w: World, since: int) -> list[int]:
    return [t for t, s, v in w.bench.trace.events if s == "charge_fet" and v == 0.0 and t >= since]


def test_timer_not_reset_keeps_counting_when_the_overcurrent_falls_back() -> None:
    starts: dict[int, int] = {}

    def interrupted_overcurrent(w: World) -> None:
        configure(w, switches={56: False})
        w.charge(115.0)
        w.advance(6000)  # 6 s of the 10 s delay
        w.charge(50.0)
        w.advance(2000)  # falls back
        starts[id(w)] = w.clock.now_ms
        w.charge(115.0)
        w.advance(12_000)

    healthy, dev = pair(
        firmware({"item": "P67", "kind": "timer_not_reset"}), interrupted_overcurrent
    )
    (t_healthy,) = _open_times(healthy, starts[id(healthy)])
    (t_dev,) = _open_times(dev, starts[id(dev)])
    assert 10_000 <= t_healthy - starts[id(healthy)] <= 10_010  # a fresh 10 s delay
    # the timer started 8 s before the second excursion and was never reset
    assert 2000 <= t_dev - starts[id(dev)] <= 2010
    assert "charge_overcurrent_protection" in healthy.flags() & dev.flags()


def test_timer_not_reset_on_a_row_keeps_its_confirmation() -> None:
    def brief_excursions(w: World) -> None:
        w.set_cells_v(3.56, 0)
        w.advance(600)
        w.set_cells_v(3.30, 0)
        w.advance(600)
        w.set_cells_v(3.56, 0)
        w.advance(200)

    healthy, dev = pair(firmware({"item": "P1", "kind": "timer_not_reset"}), brief_excursions)
    assert "cell_high_voltage_alarm" not in healthy.flags()
    assert "cell_high_voltage_alarm" in dev.flags()
    assert dev.flags() - healthy.flags() == {"cell_high_voltage_alarm"}


def test_timer_not_reset_does_not_trip_without_the_stimulus() -> None:
    dev = world_with(firmware({"item": "P67", "kind": "timer_not_reset"}))
    configure(dev, switches={56: False})
    dev.charge(115.0)
    dev.advance(3000)
    dev.charge(50.0)
    dev.advance(60_000)  # the kept timer runs out while the current is normal
    assert "charge_overcurrent_protection" not in dev.flags()
    assert fets(dev) == (True, True)


# ---------------------------------------------------------------------- telemetry


def _telemetry(*entries: dict) -> dict:
    return {"telemetry": list(entries)}


def test_cell_voltage_telemetry_changes_what_is_reported_not_what_acts() -> None:
    def near_alarm(w: World) -> None:
        w.set_cells_v(3.53, 6)
        w.advance(1500)

    healthy, dev = pair(
        _telemetry({"quantity": "cell_voltage", "channel": 7, "kind": "offset", "value": 0.030}),
        near_alarm,
    )
    hm, dm = healthy.twin.measurements(), dev.twin.measurements()
    assert dm.cell_v[6] == pytest.approx(3.56)
    assert hm.cell_v[6] == 3.53
    assert dm.cell_v[:6] + dm.cell_v[7:] == hm.cell_v[:6] + hm.cell_v[7:]
    assert dm.pack_v == hm.pack_v
    assert dev.flags() == healthy.flags()  # it acts on 3.53 V: no alarm
    assert "cell_high_voltage_alarm" not in dev.flags()


def test_cell_temperature_telemetry_on_one_ntc() -> None:
    healthy, dev = pair(
        _telemetry({"quantity": "cell_temperature", "channel": 3, "kind": "offset", "value": 4.0}),
        lambda w: w.advance(500),
    )
    hm, dm = healthy.twin.measurements(), dev.twin.measurements()
    assert dm.temps_c[2] == pytest.approx(hm.temps_c[2] + 4.0)
    assert [t for k, t in enumerate(dm.temps_c) if k != 2] == [
        t for k, t in enumerate(hm.temps_c) if k != 2
    ]


def test_current_telemetry_scale_flips_the_reported_sign_only() -> None:
    def charging(w: World) -> None:
        w.charge(20.0)
        w.advance(500)

    healthy, dev = pair(
        _telemetry({"quantity": "current", "kind": "scale", "value": -1.0}), charging
    )
    assert healthy.twin.measurements().current_a == 20.0
    assert dev.twin.measurements().current_a == -20.0
    assert "charging" in dev.flags() and dev.flags() == healthy.flags()
    assert dev.twin.measurements().remaining_ah == healthy.twin.measurements().remaining_ah


def test_pack_voltage_telemetry_offset() -> None:
    healthy, dev = pair(
        _telemetry({"quantity": "pack_voltage", "kind": "offset", "value": 0.8}),
        lambda w: w.advance(500),
    )
    hm, dm = healthy.twin.measurements(), dev.twin.measurements()
    assert dm.pack_v == pytest.approx(hm.pack_v + 0.8)
    assert dm.cell_v == hm.cell_v
    assert dev.twin.status().voltage_level == healthy.twin.status().voltage_level


def test_ambient_power_and_soc_telemetry_change_only_what_is_reported() -> None:
    healthy, dev = pair(
        _telemetry(
            {"quantity": "ambient_temperature", "kind": "offset", "value": -3.0},
            {"quantity": "power_temperature", "kind": "offset", "value": 2.5},
            {"quantity": "soc", "kind": "offset", "value": 2.0},
        ),
        lambda w: w.advance(500),
    )
    hm, dm = healthy.twin.measurements(), dev.twin.measurements()
    assert dm.temps_c[4] == pytest.approx(hm.temps_c[4] - 3.0)
    assert dm.temps_c[5] == pytest.approx(hm.temps_c[5] + 2.5)
    assert dm.temps_c[:4] == hm.temps_c[:4]
    assert dm.soc_permille == hm.soc_permille + 20
    assert dm.remaining_ah == hm.remaining_ah  # the counter itself is untouched
    assert dev.flags() == healthy.flags()
