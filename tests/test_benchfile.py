"""Bench files are refused before anything touches an instrument, with messages naming the
file, the key and the value; the editor schema is current."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import FIXTURES_DIR
from harness.benchfile import (
    SCHEMA_PATH,
    BenchFile,
    BenchFileError,
    LaunchFile,
    bench_relays,
    load_bench_file,
    read_capabilities,
    schema_text,
)

EXAMPLE = FIXTURES_DIR / "example-lab.yaml"
BASE: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def refused(tmp_path: Path, change) -> str:
    data = copy.deepcopy(BASE)
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(BenchFileError) as err:
        load_bench_file(path)
    message = str(err.value)
    assert str(path) in message
    return message


def test_example_lab_is_valid_and_complete():
    bench = load_bench_file(EXAMPLE)
    assert isinstance(bench, BenchFile) and bench.clock.kind == "real"
    assert set(bench.instruments_of("cells")) == {"cells_a", "cells_b"}
    assert bench.channels.cells[9] == ("cells_b", 1)
    assert bench.instruments["supply"].idn.model == "N5767A"
    assert str(bench.instruments["supply"].calibration_due) == "2027-06-30"


def test_every_key_of_the_example_is_commented():
    key = re.compile(r"^\s*[A-Za-z_]\w*:")  # numeric cell-map rows share the `cells:` comment
    for number, line in enumerate(EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        if key.match(line):
            assert "#" in line, f"example-lab.yaml line {number} has no comment: {line}"


def test_typo_key_is_refused_naming_key_and_value(tmp_path: Path):
    def typo(d):
        d["envelope"]["supply"]["max_voltge_v"] = d["envelope"]["supply"].pop("max_voltage_v")

    message = refused(tmp_path, typo)
    assert "unknown key envelope.supply.max_voltge_v (value 65.0)" in message
    assert "envelope.supply.max_voltage_v is missing" in message


def test_typo_top_level_key(tmp_path: Path):
    message = refused(tmp_path, lambda d: d.update(capabilites=d.pop("capabilities")))
    assert "unknown key capabilites" in message


def test_missing_instrument(tmp_path: Path):
    message = refused(tmp_path, lambda d: d["instruments"].pop("load"))
    assert "instruments.load is missing" in message


def test_cell_map_names_a_missing_unit(tmp_path: Path):
    message = refused(tmp_path, lambda d: d["instruments"].pop("cells_b"))
    assert "channels.cells names instrument 'cells_b', not in instruments" in message


def test_unknown_driver(tmp_path: Path):
    message = refused(
        tmp_path, lambda d: d["instruments"]["supply"].update(driver="keysight_n5800")
    )
    assert "instruments.supply" in message and "'keysight_n5800'" in message
    assert "unknown driver" in message and "keysight_n5700" in message


def test_driver_in_the_wrong_role(tmp_path: Path):
    message = refused(tmp_path, lambda d: d["instruments"]["supply"].update(driver="itech_it8500"))
    assert "instruments.supply uses driver for a load" in message


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("supply", "max_voltage_v", 62.0),
        ("load", "max_current_a", 200.0),
        ("cells", "max_voltage_v", 3.6),
    ],
)
def test_an_envelope_smaller_than_the_spec_asks_is_accepted(tmp_path: Path, section, key, value):
    """What it cannot reach is decided case by case (``harness.reach``), not by refusing."""
    data = copy.deepcopy(BASE)
    data["envelope"][section][key] = value
    bench = load_bench_file(write(tmp_path, data))
    assert getattr(getattr(bench.envelope, section), key) == value


def test_an_envelope_whose_minimum_is_not_below_its_maximum_is_refused(tmp_path: Path):
    message = refused(tmp_path, lambda d: d["envelope"]["cells"].update(min_voltage_v=6.0))
    assert "key envelope.cells.min_voltage_v = 6 is not below max_voltage_v" in message
    message = refused(tmp_path, lambda d: d["envelope"]["resistors"].update(min_ohm=2e6))
    assert "key envelope.resistors.min_ohm = 2e+06 is not below max_ohm" in message


def test_bad_value_names_key_and_value(tmp_path: Path):
    message = refused(tmp_path, lambda d: d["bms"].update(baud=115200))
    assert "key bms.baud = 115200" in message


def test_sim_clock_needs_an_address(tmp_path: Path):
    message = refused(tmp_path, lambda d: d.update(clock={"kind": "sim"}))
    assert "clock" in message and "needs an address" in message


def test_incomplete_cell_map(tmp_path: Path):
    message = refused(tmp_path, lambda d: d["channels"]["cells"].pop(16))
    assert "missing [16]" in message


def test_capabilities_alone(tmp_path: Path):
    assert read_capabilities(EXAMPLE)["scope"] is True
    path = write(tmp_path, {"capabilities": {"heatr": True}})
    with pytest.raises(BenchFileError, match=r"unknown key capabilities.heatr"):
        read_capabilities(path)


def test_schema_is_current():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "fixtures/bench.schema.json is stale: run python -m harness.benchfile"
    )
    schema = json.loads(schema_text())
    assert schema["$defs"]["BenchFile"]["additionalProperties"] is False
    assert schema["$defs"]["LaunchFile"]["additionalProperties"] is False
    assert "keysight_n5700" in schema["$defs"]["Instrument"]["properties"]["driver"]["enum"]


def test_launch_file(tmp_path: Path):
    path = write(tmp_path, {"bench": "sim", "launch": {"command": ["{python}", "-m", "x"]}})
    assert isinstance(load_bench_file(path), LaunchFile)
    path = write(tmp_path, {"bench": "sim", "launch": {"comand": ["x"]}})
    with pytest.raises(BenchFileError, match=r"unknown key launch.comand"):
        load_bench_file(path)
    assert isinstance(load_bench_file(FIXTURES_DIR / "sim.yaml"), LaunchFile)


# --------------------------------------------------------------------------- relays

RELAY_CARD = {
    "driver": "keysight_34972a",
    "address": "TCPIP0::127.0.0.1::5025::SOCKET",
    "idn": {"manufacturer": "Keysight Technologies", "model": "34972A"},
}
RELAYS = {
    "button": {"instrument": "relays", "channel": 101},
    "bms_power": {"instrument": "relays", "channel": 102},
    "connection_fault": {"instrument": "relays", "channel": 106, "ohm": 0.020, "cell": 8},
}


def with_relays(d: dict[str, Any]) -> None:
    d["instruments"]["relays"] = copy.deepcopy(RELAY_CARD)
    d["relays"] = copy.deepcopy(RELAYS)


def test_relays_are_optional_and_validated(tmp_path: Path):
    assert load_bench_file(EXAMPLE).relays == {}
    data = copy.deepcopy(BASE)
    with_relays(data)
    bench = load_bench_file(write(tmp_path, data))
    assert list(bench.relays) == ["button", "bms_power", "connection_fault"]
    assert bench.relays["button"].safe == "open" and bench.relays["button"].channel == 101
    assert bench.relays["connection_fault"].ohm == 0.020
    assert bench.instruments["relays"].role == "relays"
    assert bench_relays(write(tmp_path, data)) == ["button", "bms_power", "connection_fault"]
    assert bench_relays(EXAMPLE) == []


@pytest.mark.parametrize(
    ("change", "wanted"),
    [
        (
            lambda d: d["relays"].update(buton={"instrument": "relays", "channel": 107}),
            "unknown key relays.buton",
        ),
        (
            lambda d: d["relays"]["button"].update(instrument="relay"),
            "key relays.button.instrument = 'relay': not in instruments (relay instruments: "
            "relays)",
        ),
        (
            lambda d: d["relays"]["button"].update(instrument="supply"),
            "key relays.button.instrument = 'supply': a supply (driver keysight_n5700), not a "
            "relay card",
        ),
        (lambda d: d["relays"]["button"].update(channel="101"), "key relays.button.channel"),
        (lambda d: d["relays"]["button"].update(channel=1.5), "key relays.button.channel = 1.5"),
        (
            lambda d: d["relays"]["bms_power"].update(channel=101),
            "key relays.bms_power.channel = 101: already used by relays.button",
        ),
        (
            lambda d: d["relays"]["connection_fault"].pop("ohm"),
            "key relays.connection_fault.ohm is missing",
        ),
        (
            lambda d: d["relays"]["connection_fault"].pop("cell"),
            "key relays.connection_fault.cell is missing",
        ),
        (
            lambda d: d["relays"]["button"].update(cell=3),
            "ohm and cell belong to relays.connection_fault only",
        ),
        (lambda d: d["relays"]["button"].update(safe="shut"), "key relays.button.safe = 'shut'"),
    ],
)
def test_bad_relays_are_refused_naming_key_and_value(tmp_path: Path, change, wanted):
    def both(d):
        with_relays(d)
        change(d)

    assert wanted in refused(tmp_path, both)


def test_new_capabilities_default_false_and_launch_file_relays(tmp_path: Path):
    caps = read_capabilities(EXAMPLE)
    assert caps["bms_power"] is False and caps["connection_fault"] is False
    sim = FIXTURES_DIR / "sim.yaml"
    assert read_capabilities(sim)["bms_power"] is True
    assert "button" in bench_relays(sim)
    path = write(tmp_path, {"bench": "x", "launch": {"command": ["x"]}})
    assert bench_relays(path) is None
    path = write(tmp_path, {"bench": "x", "launch": {"command": ["x"]}, "relays": ["buttn"]})
    with pytest.raises(BenchFileError, match=r"relays.0"):
        load_bench_file(path)
