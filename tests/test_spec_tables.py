"""The spec tables against independent readings of their sources, and the loader's refusals.

Sources read here without going through bmsspec/tables.py: the spec text (test_plans/source/,
a copy of the workplace seed), the 0x44 flag table of docs/ARCHITECTURE.md and the captured 0x47
block of protocols/seplos-v2.md 7.4 (copied below as literals, so that test runs anywhere).
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bmsspec import TABLE_FILES, Parameter, SpecError, load_spec
from harness import PROJECT_ROOT, TEST_PLANS_DIR

SEED = PROJECT_ROOT / "test_plans" / "source" / "spec-seplos-v2-16s.txt"
ARCHITECTURE = PROJECT_ROOT / "docs" / "ARCHITECTURE.md"


@pytest.fixture(scope="module")
def spec():
    return load_spec()


# --------------------------------------------------------------------------- spec text


def _read_seed() -> tuple[list[tuple[int, str, str]], list[tuple[str, str]], list[tuple]]:
    """Independent parser: parameter name lines, value lines, switch lines, in file order."""
    names, values, switches = [], [], []
    for line in SEED.read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) == 3 and cols[0].isdigit():
            names.append((int(cols[0]), cols[1].strip(), cols[2].strip()))
        elif len(cols) == 3 and re.fullmatch(r"-?\d+\.\d+", cols[0]):
            values.append((cols[0], cols[1]))
        elif len(cols) == 3 and cols[2] in ("Open", "Close"):
            switches.append((cols[0].strip(), cols[1].strip(), cols[2]))
    return names, values, switches


def needs_seed(test):  # the spec text is part of the tree: a missing copy fails, never skips
    return test


@needs_seed
def test_parameter_defaults_units_and_names_match_the_spec_text(spec):
    names, values, _ = _read_seed()
    assert len(names) == 87 and len(values) == 87
    for (number, name, alias), (value_text, unit) in zip(names, values, strict=True):
        p = spec.param(number)
        row = f"P{number}"
        assert p.default_text == value_text, row
        assert p.default == pytest.approx(float(value_text)), row
        assert p.unit == unit, row
        assert (p.name, p.alias) == (name, alias), row


@needs_seed
def test_switch_defaults_and_names_match_the_spec_text(spec):
    _, _, switches = _read_seed()
    assert len(switches) == 64
    for number, (name, alias, default) in enumerate(switches, start=1):
        s = spec.switch(number)
        assert s.default_text == default, f"S{number}"
        assert s.default is (default == "Open"), f"S{number}"
        assert (s.name, s.alias) == (name, alias), f"S{number}"


@needs_seed
def test_sha256_covers_the_spec_source(spec):
    assert spec.source == SEED.resolve()
    assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)


# --------------------------------------------------------------------------- flags


def _architecture_flags() -> dict[str, tuple[int, int]]:
    """The 0x44 flag table of ARCHITECTURE.md, parsed from the markdown."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## 0x44 flag names", 1)[1].split("\n## ", 1)[0]
    out: dict[str, tuple[int, int]] = {}
    for line in section.splitlines():
        m = re.match(r"\| (\d+) [^|]*\| (.*) \|$", line)
        if not m:
            continue
        offset = int(m.group(1))
        for bit, item in enumerate(part.strip() for part in m.group(2).split(",")):
            explicit = re.fullmatch(r"bit (\d) (\w+)", item)
            if explicit:
                out[explicit.group(2)] = (offset, int(explicit.group(1)))
            else:
                out[item] = (offset, bit)
    return out


def test_status_flags_are_exactly_the_architecture_table(spec):
    expected = _architecture_flags()
    assert len(expected) == 66
    assert {f.name: (f.offset, f.bit) for f in spec.flags} == expected


# --------------------------------------------------------------------------- encoding

#: protocols/seplos-v2.md 7.4: the 60 two-byte and 27 one-byte parameters of the captured
#: 0x47 answer, and 7.2's decoded column for them.
CAPTURED_2B = (
    "0DAC0D480B540C1C0E420D480A8C0C1C0D4805DC15E01518122012C01680151810E012C0189C17D4"
    "0C9F0C810ABF0ADD0CD10C9F0A470AAB0CB30C810A470AC90CD10C9F0A150AAB0AAB0B0F0C9F0C81"
    "0AAB0AC90D030CD10A470AAB0E2F0DFD0E930DFD3A9838A4C374C43C3E80C1808AD007D03E801D4C"
)
CAPTURED_1B = "321E1E140A100A0A1E3C0505010A0A1EF0300F0560506409000D00"
CAPTURED_SWITCH_BYTES = "FFFFFF3FBF9FAF1E"
DECODED = {
    1: 3.5,
    2: 3.4,
    3: 2.9,
    4: 3.1,
    5: 3.65,
    6: 3.4,
    7: 2.7,
    8: 3.1,
    9: 3.4,
    10: 1.5,
    11: 56.0,
    12: 54.0,
    13: 46.4,
    14: 48.0,
    15: 57.6,
    16: 54.0,
    17: 43.2,
    18: 48.0,
    19: 63.0,
    20: 61.0,
    21: 50.0,
    22: 47.0,
    23: 2.0,
    24: 5.0,
    25: 55.0,
    26: 50.0,
    27: -10.0,
    28: 0.0,
    29: 52.0,
    30: 47.0,
    31: -10.0,
    32: 3.0,
    33: 55.0,
    34: 50.0,
    35: -15.0,
    36: 0.0,
    37: 0.0,
    38: 10.0,
    39: 50.0,
    40: 47.0,
    41: 0.0,
    42: 3.0,
    43: 60.0,
    44: 55.0,
    45: -10.0,
    46: 0.0,
    47: 90.0,
    48: 85.0,
    49: 100.0,
    50: 85.0,
    51: 150.0,
    52: 145.0,
    53: -155.0,
    54: -153.0,
    55: 160.0,
    56: -160.0,
    57: -300.0,
    58: 2000.0,
    59: 160.0,
    60: 75.0,
    61: 0.5,
    62: 0.3,
    63: 0.03,
    64: 0.02,
    65: 10.0,
    66: 16.0,
    67: 10.0,
    68: 10.0,
    69: 30.0,
    70: 60.0,
    71: 5.0,
    72: 5.0,
    73: 1.0,
    74: 10.0,
    75: 10.0,
    76: 30.0,
    77: 240.0,
    78: 48.0,
    79: 15.0,
    80: 5.0,
    81: 96.0,
    82: 80.0,
    83: 10.0,
    84: 9.0,
    85: 0.0,
    86: 13.0,
    87: 0.0,
}
#: 7.3's "Capture" column: the switch bits of the same answer.
CAPTURED_SWITCH_BITS = (
    [1] * 30
    + [0, 0]
    + [1] * 6
    + [0, 1]
    + [1] * 5
    + [0, 0, 1]
    + [1, 1, 1, 1, 0, 1, 0, 1]
    + [0, 1, 1, 1, 1, 0, 0, 0]
)


def _captured_raws() -> dict[int, int]:
    two = bytes.fromhex(CAPTURED_2B)
    one = bytes.fromhex(CAPTURED_1B)
    assert len(two) == 120 and len(one) == 27
    raws = {k + 1: int.from_bytes(two[2 * k : 2 * k + 2], "big") for k in range(60)}
    raws.update({61 + k: one[k] for k in range(27)})
    return raws


@pytest.mark.parametrize(
    ("number", "raw", "value"),
    [
        (51, 0x3A98, 150.00),
        (53, 0xC374, -155.00),
        (21, 0x0C9F, 50.0),
        (57, 0x8AD0, -300.0),
        (35, 0x0A15, -15.0),
        (83, 0x64, 10.0),
        (63, 0x1E, 0.030),
    ],
)
def test_decode_and_encode_the_documented_examples(spec, number, raw, value):
    p = spec.param(number)
    assert p.decode(raw) == pytest.approx(value, abs=1e-9)
    assert p.encode(value) == raw


def test_the_whole_captured_block_decodes_to_the_documented_values(spec):
    raws = _captured_raws()
    for number, raw in raws.items():
        p = spec.param(number)
        assert p.encoding.index == number - 1
        assert p.decode(raw) == pytest.approx(DECODED[number], abs=1e-9), f"P{number}"
        assert p.encode(p.decode(raw)) == raw, f"P{number}"


def test_switch_bits_decode_the_captured_bytes(spec):
    data = bytes.fromhex(CAPTURED_SWITCH_BYTES)
    assert len(CAPTURED_SWITCH_BITS) == 64
    for s in spec.switches:
        assert (s.byte, s.bit_in_byte) == divmod(s.bit, 8)
        bit = (data[s.byte] >> s.bit_in_byte) & 1
        assert bit == CAPTURED_SWITCH_BITS[s.bit], s.item


def test_encoding_rules_per_row(spec):
    for p in spec.parameters:
        e = p.encoding
        assert e.bytes == (2 if p.number <= 60 else 1), p.item
        assert e.signed is (51 <= p.number <= 57), p.item
        assert e.offset == (2731 if 21 <= p.number <= 50 else 0), p.item
        if p.unit == "°C":
            assert e.scale == 0.1
        if p.unit in ("hours", "minute", "second", "count", "%"):
            assert e.scale == 1, p.item
    assert spec.param(58).encoding.scale == 1
    assert [spec.param(n).encoding.scale for n in (61, 62, 63, 64)] == [0.01, 0.01, 0.001, 0.001]
    assert {spec.param(n).encoding.scale for n in (83, 85, 87)} == {0.1}


def test_every_default_round_trips_and_out_of_field_values_are_refused(spec):
    for p in spec.parameters:
        assert p.decode(p.encode(p.default)) == pytest.approx(p.default), p.item
    assert spec.param(53).encode(-105.0) == 0xD6FC  # two's complement of -10500
    with pytest.raises(ValueError):
        spec.param(61).encode(2.56)  # 256 counts do not fit one byte
    with pytest.raises(ValueError):
        spec.param(57).encode(-330.0)  # below -32768 counts
    with pytest.raises(ValueError):
        spec.param(21).encode(-280.0)  # below 0 K: negative raw in an unsigned field
    with pytest.raises(ValueError):
        spec.param(1).decode(0x10000)


# --------------------------------------------------------------------------- semantics


def test_lookups_by_number_item_and_slug(spec):
    p = spec.param(5)
    assert p is spec.param("P5") is spec.param("P05") is spec.param("cell-overvoltage-protection")
    s = spec.switch(10)
    assert s is spec.switch("S10") is spec.switch("cell-overvoltage-protection")
    assert spec.item("S10") is s and spec.item("P5") is p
    for bad in (0, 88, "P88", "nonsense"):
        with pytest.raises(KeyError):
            spec.param(bad)
    with pytest.raises(KeyError):
        spec.switch(65)


def test_pairs_ranges_and_references_hold(spec):
    for p in spec.parameters:
        if p.kind == "recovery":
            trip = spec.param(p.partner)
            assert trip.partner == p.number
            if p.direction == "high":
                assert p.default < trip.default, p.item
            else:
                assert p.default > trip.default, p.item
        if p.range is not None:
            lo, hi = p.range
            assert lo <= p.default <= hi, p.item
        if p.encoding.bytes == 1:
            assert p.range is not None, p.item
    assert spec.block_violations(spec.defaults()) == []
    assert spec.param(55).delay == 67 and spec.param(56).delay == 68
    assert spec.param(57).delay == 69


def test_rows_follow_behaviour_md(spec):
    switch_of = {
        1: 9,
        2: 9,
        19: 41,
        20: 41,
        79: 43,
        80: 44,
        10: 45,
        61: 5,
        62: 5,
        37: 31,
        38: 31,
        5: 10,
        7: 12,
        55: 34,
        56: 36,
        57: 37,
        58: 48,
        78: 58,
    }
    for number, switch in switch_of.items():
        assert spec.param(number).switch == switch, f"P{number}"
    assert spec.param(5).flag == "cell_overvoltage_protection"
    assert spec.param(5).bench_condition == "charging"
    assert spec.param(7).bench_condition == "discharging"
    assert spec.param(21).condition == "charging" and spec.param(29).condition == "discharging"
    assert spec.param(53).direction == "low" and spec.param(53).default < 0
    unused = {s.number for s in spec.switches if s.needs == "unused"}
    assert unused == {1, 3, 6, 7, 8, 46, 47}
    hardware = {s.number: s.hardware for s in spec.switches if s.hardware}
    assert hardware == {
        4: "button",
        31: "heater",
        32: "secondary_trip",
        38: "short_circuit",
        40: "short_circuit",
        57: "switch",
        60: "lcd",
        61: "bluetooth",
        62: "parallel",
        63: "parallel",
    }
    assert spec.switch(64).needs == "inverter"


def test_tolerances(spec):
    assert spec.tolerance_for(5).band(3.65) == pytest.approx(0.010)
    assert spec.tolerance_for(15).band(57.6) == pytest.approx(0.3)
    assert spec.tolerance_for(25).band(55.0) == pytest.approx(2.0)
    assert spec.tolerance_for(55).band(110.0) == pytest.approx(1.1)  # 1 % of reading
    assert spec.tolerance_for(51).band(20.0) == pytest.approx(0.5)  # the absolute floor
    assert spec.tolerance_for(79).band(10.0) == pytest.approx(1.0)
    assert spec.tolerance_for(67).band(10.0) == pytest.approx(1.0)  # 10 % of a delay
    assert spec.tolerance_for(58).abs == pytest.approx(100.0)  # 0.1 s floor in mS
    assert spec.tolerance_for(69).band(30.0) == pytest.approx(3.0)  # row override
    assert spec.tolerance_for(69).abs == pytest.approx(1.0)
    assert spec.tolerance_for(62).unit == "V"
    assert spec.tolerance_for(5).accepts(3.659, 3.65)
    assert not spec.tolerance_for(5).accepts(3.661, 3.65)


def test_load_is_cached_and_fast():
    load_spec()
    start = time.perf_counter()
    for _ in range(100):
        spec = load_spec()
    assert time.perf_counter() - start < 0.1
    assert load_spec(TEST_PLANS_DIR) is spec


# --------------------------------------------------------------------------- broken copies


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _copy(tmp_path: Path) -> Path:
    for name in TABLE_FILES:
        shutil.copy(TEST_PLANS_DIR / name, tmp_path / name)
    return tmp_path


def _edit(directory: Path, file: str, change) -> None:
    path = directory / file
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    change(doc)
    text = yaml.dump(doc, Dumper=_DUMPER, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")


def _row(doc: dict[str, Any], key: str, number: int) -> dict[str, Any]:
    return next(r for r in doc[key] if r["number"] == number)


def _refused(directory: Path, *fragments: str) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(directory)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_missing_row_is_refused(tmp_path):
    d = _copy(tmp_path)
    _edit(d, "parameters.yaml", lambda doc: doc["parameters"].pop(39))  # P40
    _refused(d, "parameters.yaml", "row 40", "'number'", "value 40", "missing")


def test_a_recovery_on_the_wrong_side_is_refused(tmp_path):
    d = _copy(tmp_path)
    _edit(
        d,
        "parameters.yaml",
        lambda doc: _row(doc, "parameters", 6).update(default=3.70, default_text="3.700"),
    )
    _refused(
        d,
        "parameters.yaml",
        "row 6 (cell-overvoltage-recovery)",
        "'default'",
        "3.7",
        "below its trip",
    )


def test_a_low_side_recovery_below_its_trip_is_refused(tmp_path):
    d = _copy(tmp_path)
    _edit(
        d,
        "parameters.yaml",
        lambda doc: _row(doc, "parameters", 54).update(default=-106.0, default_text="-106.000"),
    )
    _refused(d, "row 54 (discharging-overcurrent-recovery)", "'default'", "-106.0", "above")


@pytest.mark.parametrize(
    ("file", "number", "key", "value", "fragments"),
    [
        (
            "parameters.yaml",
            5,
            "switch",
            99,
            ("row 5 (cell-overvoltage-protection)", "'switch'", "99", "no such switch"),
        ),
        (
            "parameters.yaml",
            5,
            "flag",
            "cell_overvoltage",
            ("row 5", "'flag'", "'cell_overvoltage'"),
        ),
        ("parameters.yaml", 55, "delay", 120, ("row 55", "'delay'", "120")),
        ("parameters.yaml", 1, "partner", 4, ("row 1 (cell-high-voltage-alarm)", "'partner'", "4")),
        ("switches.yaml", 10, "governs", [5, 200], ("switches.yaml", "row 10", "'governs'", "200")),
        ("switches.yaml", 9, "flag", "nope", ("switches.yaml", "row 9", "'flag'", "'nope'")),
    ],
)
def test_an_unknown_reference_is_refused(tmp_path, file, number, key, value, fragments):
    d = _copy(tmp_path)
    top = "parameters" if file == "parameters.yaml" else "switches"
    _edit(d, file, lambda doc: _row(doc, top, number).update({key: value}))
    _refused(d, file, *fragments)


@pytest.mark.parametrize(
    ("file", "number", "key", "value", "fragments"),
    [
        (
            "parameters.yaml",
            5,
            "default",
            "high",
            ("row 5 (cell-overvoltage-protection)", "'default'", "'high'"),
        ),
        ("parameters.yaml", 21, "unit", "degC", ("row 21", "'unit'", "'degC'")),
        ("parameters.yaml", 60, "kind", "capacitance", ("row 60", "'kind'", "'capacitance'")),
        (
            "switches.yaml",
            31,
            "default",
            "maybe",
            ("switches.yaml", "row 31", "'default'", "'maybe'"),
        ),
        ("switches.yaml", 2, "needs", "hardware:toaster", ("row 2", "'needs'", "toaster")),
    ],
)
def test_a_wrong_type_is_refused(tmp_path, file, number, key, value, fragments):
    d = _copy(tmp_path)
    top = "parameters" if file == "parameters.yaml" else "switches"
    _edit(d, file, lambda doc: _row(doc, top, number).update({key: value}))
    _refused(d, file, *fragments)


def test_a_wrong_nested_type_names_the_nested_key(tmp_path):
    d = _copy(tmp_path)
    _edit(
        d, "parameters.yaml", lambda doc: _row(doc, "parameters", 7)["encoding"].update(bytes="two")
    )
    _refused(d, "row 7 (cell-undervoltage-protection)", "'encoding.bytes'", "'two'")


def test_a_doubled_number_is_refused(tmp_path):
    d = _copy(tmp_path)
    _edit(d, "switches.yaml", lambda doc: _row(doc, "switches", 12).update(number=11))
    _refused(
        d,
        "switches.yaml",
        "row 11 (cell-undervoltage-protection)",
        "'number'",
        "value 11",
        "doubled",
    )


def test_a_default_outside_its_range_is_refused(tmp_path):
    d = _copy(tmp_path)
    _edit(
        d,
        "parameters.yaml",
        lambda doc: _row(doc, "parameters", 66).update(default=17.0, default_text="17.000"),
    )
    _refused(d, "row 66 (battery-series-cell-count)", "'default'", "17.0", "range")


def test_an_encoding_that_cannot_hold_the_default_is_refused(tmp_path):
    d = _copy(tmp_path)
    _edit(
        d,
        "parameters.yaml",
        lambda doc: _row(doc, "parameters", 77).update(
            default=300.0, default_text="300.000", range={"min": 0, "max": 300}
        ),
    )
    _refused(d, "row 77 (standby-recording-interval)", "300", "does not fit")


def test_a_default_that_contradicts_its_text_is_refused(tmp_path):
    d = _copy(tmp_path)
    _edit(d, "parameters.yaml", lambda doc: _row(doc, "parameters", 3).update(default=2.95))
    _refused(d, "row 3 (cell-low-voltage-alarm)", "'default'", "2.95", "default_text")


def test_a_flag_bit_named_twice_is_refused(tmp_path):
    d = _copy(tmp_path)
    _edit(d, "status_flags.yaml", lambda doc: doc["flags"][1].update(bit=0))
    _refused(d, "status_flags.yaml", "temperature_sensor_fault", "'bit'")


def test_an_edited_table_is_reloaded_with_a_new_hash(tmp_path):
    d = _copy(tmp_path)
    first = load_spec(d)
    assert load_spec(d) is first
    _edit(d, "parameters.yaml", lambda doc: _row(doc, "parameters", 1).update(explanation="x"))
    second = load_spec(d)
    assert second is not first and second.sha256 != first.sha256
    assert second.param(1).explanation == "x"


def test_parameter_model_rejects_unknown_keys():
    raw = yaml.safe_load((TEST_PLANS_DIR / "parameters.yaml").read_text(encoding="utf-8"))
    row = dict(raw["parameters"][0], colour="blue")
    with pytest.raises(ValueError):
        Parameter.model_validate(row)
