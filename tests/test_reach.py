"""``harness.reach``: what a bench can apply, and why a stimulus value lies beyond it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from bmssim.bench import ENVELOPE
from harness import FIXTURES_DIR
from harness.benchfile import BenchFileError, load_bench_file
from harness.reach import Reach, reach_of
from harness.session import default_bench_file
from instruments.ntc import BetaNtc

EXAMPLE = FIXTURES_DIR / "example-lab.yaml"


@pytest.fixture
def reach() -> Reach:
    """A bench smaller than the spec asks: a 150 A supply, a 200 A load, cells to 3.6 V."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["envelope"] = {
        "supply": {"max_voltage_v": 60.0, "max_current_a": 150.0},
        "load": {"max_current_a": 200.0},
        "cells": {"min_voltage_v": 1.0, "max_voltage_v": 3.6},
        "resistors": {"min_ohm": 1000.0, "max_ohm": 100_000.0},
    }
    return Reach.from_envelope("small", load_bench_file_from(data).envelope)


def load_bench_file_from(data: dict):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return load_bench_file(path)


@pytest.mark.parametrize(
    ("stimulus", "value", "reason"),
    [
        ("charge_current", 176.0, "needs 176 A of charge current, the supply is rated 150 A"),
        ("discharge_current", -210.0, "needs 210 A of discharge current, the load is rated 200 A"),
        ("transient", -250.0, "needs 250 A of transient current, the load is rated 200 A"),
        ("port", 63.5, "needs 63.5 V at the charge port, the supply is rated 60 V"),
        ("cell", 3.75, "needs 3.75 V on a cell, the cell simulator is rated up to 3.6 V"),
        ("cell", 0.5, "needs 0.5 V on a cell, the cell simulator is rated down to 1 V"),
        (
            "pack",
            60.0,
            "needs 60 V of pack voltage (3.75 V a cell), the cell simulator is rated up to 3.6 V",
        ),
        (
            "cell_difference",
            2.5,
            "needs a cell 2.5 V below the others (0.8 V), the cell simulator is rated down to 1 V",
        ),
        ("soc", 120.0, "needs 120 % state of charge, the device holds 0 .. 100 %"),
    ],
)
def test_beyond_the_bench_says_the_numbers(reach: Reach, stimulus, value, reason):
    assert reach.reason(stimulus, value) == reason


@pytest.mark.parametrize(
    ("stimulus", "value"),
    [
        ("charge_current", 150.0),
        ("charge_current", 5.0),
        ("discharge_current", -200.0),
        ("transient", 199.0),
        ("port", 60.0),
        ("cell", 3.6),
        ("cell", 1.0),
        ("pack", 57.6),
        ("cell_difference", 0.3),
        ("balance_difference", 0.05),
        ("soc", 0.0),
        ("ntc:cell1", 25.0),
        ("ntc:power", 60.0),
    ],
)
def test_within_the_bench_is_none(reach: Reach, stimulus, value):
    assert reach.reason(stimulus, value) is None


def test_temperatures_go_through_the_ntc_model(reach: Reach):
    ntc = BetaNtc()
    # 100 kOhm is about -19 °C on a 10 k B3435 NTC; 1 kOhm about 88 °C.
    cold = reach.reason("ntc:ambient", -30.0)
    assert cold is not None
    assert f"({ntc.ohm_at(-30.0):.0f} Ohm)" in cold
    assert cold.startswith("needs -30 °C at NTC ambient")
    assert "the resistor module is rated up to 100000 Ohm" in cold
    hot = reach.reason("ntc:power", 100.0)
    assert hot is not None and "rated down to 1000 Ohm" in hot
    assert reach.reason("ntc:cell1", -300.0).startswith("needs -300 °C at NTC cell1:")


def test_an_unknown_stimulus_is_an_error(reach: Reach):
    with pytest.raises(ValueError, match="unknown stimulus 'voltage'"):
        reach.reason("voltage", 1.0)


def test_reach_of_the_default_bench_is_the_simulators_envelope():
    """`bmshil plan` without --bench plans for fixtures/sim.yaml: its declared envelope is
    the one the simulator serves (bmssim/bench.py)."""
    reach = reach_of(default_bench_file())
    assert reach is not None and reach.bench == "sim"
    assert reach.supply_max_a == ENVELOPE["supply"]["max_current_a"]
    assert reach.supply_max_v == ENVELOPE["supply"]["max_voltage_v"]
    assert reach.load_max_a == ENVELOPE["load"]["max_current_a"]
    assert (reach.cells_min_v, reach.cells_max_v) == (
        ENVELOPE["cells"]["min_voltage_v"],
        ENVELOPE["cells"]["max_voltage_v"],
    )
    assert reach.resistors_max_ohm == ENVELOPE["resistors"]["max_ohm"]
    # The captured pack's 160 A charging overcurrent protection is beyond the simulated bench.
    assert reach.reason("charge_current", 160.0) == (
        "needs 160 A of charge current, the supply is rated 120 A"
    )


def test_reach_of_a_bench_file_and_of_a_launch_file_without_envelope(tmp_path: Path):
    assert reach_of(EXAMPLE).bench == load_bench_file(EXAMPLE).bench
    launch = yaml.safe_load((FIXTURES_DIR / "sim.yaml").read_text(encoding="utf-8"))
    bare = copy.deepcopy(launch)
    del bare["envelope"]
    path = tmp_path / "launch.yaml"
    path.write_text(yaml.safe_dump(bare), encoding="utf-8")
    assert reach_of(path) is None
    launch["envelope"]["supply"]["max_current_a"] = -1
    path.write_text(yaml.safe_dump(launch), encoding="utf-8")
    with pytest.raises(BenchFileError, match="envelope.supply.max_current_a"):
        reach_of(path)


def test_the_plan_makes_cases_beyond_reach_untestable_with_the_numbers():
    """The captured 160 Ah pack asks for 160 A of charge overcurrent: the simulated supply
    (120 A) cannot give it, so those cases are untestable and say so; on the spec defaults
    nothing of the default bench's plan is beyond its reach."""
    from bmsspec import load_spec
    from bmsspec.config import configured_spec
    from harness import TEST_PLANS_DIR
    from harness.plan import build_plan

    bench = default_bench_file()
    reach = reach_of(bench)
    spec = load_spec()
    plain = build_plan(spec, None, reach=reach)
    assert not [c.id for c in plain if c.reason and "is rated" in c.reason]
    pack, _ = configured_spec(spec, TEST_PLANS_DIR / "configs" / "pack-1101-ZA11-160Ah.yaml")
    cases = {c.id: c for c in build_plan(pack, None, reach=reach)}
    p55 = cases["P55-charging-overcurrent-protection-trip"]
    assert not p55.testable and p55.est_bench_s == 0.0
    assert p55.reason.startswith("needs ") and "A of charge current, the supply is rated" in (
        p55.reason
    )
    assert f"rated {reach.supply_max_a:g} A" in p55.reason
    # the same plan without a reach judges nothing beyond it
    unjudged = {c.id: c for c in build_plan(pack, None)}
    assert unjudged["P55-charging-overcurrent-protection-trip"].testable
    # a case inside the reach stays testable (P1 at the pack's 3.500 V)
    assert cases["P01-cell-high-voltage-alarm-trip"].testable
    assert cases["P01-cell-high-voltage-alarm-trip"].expected == 3.5
