"""Bench capabilities are declared once (``bmsspec/capabilities.py``): the bench-file model,
the simulated bench and the spec's ``needs: hardware:<name>`` take them from there."""

from __future__ import annotations

import yaml

from bmssim.bench import CAPABILITIES as SIM_CAPABILITIES
from bmssim.bench import RELAY_CAPABILITIES
from bmsspec import load_spec
from bmsspec.capabilities import DEFAULTS, SWITCH_HARDWARE
from bmsspec.tables import _NEEDS_RE
from harness import FIXTURES_DIR
from harness.benchfile import Capabilities, bench_capabilities


def test_the_bench_file_model_is_the_declaration():
    assert Capabilities().model_dump() == DEFAULTS
    assert list(Capabilities.model_fields) == list(DEFAULTS)


def test_the_simulated_bench_declares_the_same_names():
    assert set(SIM_CAPABILITIES) == set(DEFAULTS)
    assert set(RELAY_CAPABILITIES) <= set(DEFAULTS)
    launch = yaml.safe_load((FIXTURES_DIR / "sim.yaml").read_text(encoding="utf-8"))
    # The launch file (what `bmshil plan` reads) says what the simulator with its relay card has.
    assert launch["capabilities"] == {**SIM_CAPABILITIES, **RELAY_CAPABILITIES}
    assert bench_capabilities(FIXTURES_DIR / "sim.yaml") == {
        **SIM_CAPABILITIES,
        **RELAY_CAPABILITIES,
    }


def test_a_switch_may_need_exactly_the_declared_hardware():
    for name in SWITCH_HARDWARE:
        assert _NEEDS_RE.match(f"hardware:{name}")
    assert not _NEEDS_RE.match("hardware:scope")  # a capability no switch needs
    assert not _NEEDS_RE.match("hardware:laser")
    needed = {s.hardware for s in load_spec().switches if s.hardware}
    assert needed <= set(SWITCH_HARDWARE)
