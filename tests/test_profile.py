"""The device profiles of the simulated bench (bmssim/twin/profile.py): the realistic board
errs within the stated accuracy, seeded and reproducible; the ideal one is exact."""

from __future__ import annotations

import pytest

from bmssim.control import ControlError, _profile
from bmssim.twin import TwinConfig
from bmssim.twin.profile import DEFAULT_LINE_ERROR_RATE, IDEAL, REALISTIC, make
from bmssim.world import World
from bmsspec import load_spec

#: The stated accuracy (test_plans/tolerances.yaml), less half a quantum of the protocol.
CELL_V = 0.010 - 0.0005
TEMP_C = 2.0 - 0.05


def test_ideal_is_exact_and_has_no_line_errors() -> None:
    p = make(IDEAL, 7)
    assert not p.active
    assert p.cell_v(3, 3.3, 12345) == pytest.approx(3.3)
    assert p.confirm_jitter_ms(500) == 0
    assert all(p.line_error(n) is None for n in range(1000))


def test_realistic_readings_stay_within_the_stated_accuracy() -> None:
    for seed in range(20):
        p = make(REALISTIC, seed)
        for t in range(0, 60_000, 700):
            for i in range(16):
                for v in (2.5, 3.65, 5.0):
                    assert abs(p.cell_v(i, v, t) - v) <= CELL_V
            for k in range(6):
                for c in (-20.0, 25.0, 100.0):
                    assert abs(p.temp_c(k, c, t) - c) <= TEMP_C
            for amps in (0.0, 10.0, -100.0):
                assert abs(p.current_a(amps, t) - amps) <= max(0.5, 0.01 * abs(amps)) - 0.005
            assert 0 <= p.confirm_jitter_ms(t) <= p.allocation.confirm_jitter_ms


def test_realistic_is_seeded_and_reproducible() -> None:
    a, b, c = make(REALISTIC, 3), make(REALISTIC, 3), make(REALISTIC, 4)
    assert a == b
    assert a.cell_offset != c.cell_offset
    assert [a.cell_v(0, 3.3, t) for t in range(0, 5000, 100)] == [
        b.cell_v(0, 3.3, t) for t in range(0, 5000, 100)
    ]
    # noise differs from window to window (it is noise, not a second offset)
    assert len({round(a.cell_v(0, 3.3, t), 6) for t in range(0, 5000, 100)}) > 10


def test_line_errors_at_the_configured_rate() -> None:
    p = make(REALISTIC, 1, line_error_rate=0.05)
    errors = [p.line_error(n) for n in range(20_000)]
    assert 0.04 < sum(e is not None for e in errors) / len(errors) < 0.06
    assert {"drop", "corrupt"} <= set(errors)
    assert make(REALISTIC, 1).line_error_rate == DEFAULT_LINE_ERROR_RATE


@pytest.mark.parametrize(
    ("name", "rate", "says"),
    [("noisy", None, "unknown device profile 'noisy'"), (REALISTIC, 1.5, "line_error_rate 1.5")],
)
def test_bad_profile_is_refused_naming_the_value(name: str, rate: float, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        make(name, 0, rate)


def test_control_request_refuses_a_bad_seed() -> None:
    with pytest.raises(ControlError, match="seed"):
        _profile({"op": "profile", "profile": REALISTIC, "seed": "three"})
    with pytest.raises(ControlError, match="unknown device profile"):
        _profile({"op": "profile", "profile": "noisy", "seed": 1})


def _twin_readings(config: TwinConfig) -> tuple:
    w = World(load_spec(), twin_config=config)
    w.advance(3000)
    m = w.twin.measurements()
    return tuple(m.cell_v), tuple(m.temps_c), m.current_a


def test_the_twin_measures_as_its_profile_says() -> None:
    ideal = _twin_readings(TwinConfig())
    real = _twin_readings(TwinConfig(profile=REALISTIC, seed=5))
    assert real == _twin_readings(TwinConfig(profile=REALISTIC, seed=5))
    assert real != ideal
    assert real[2] == 0.0  # at rest: inside the firmware's zero deadband, whatever the offset
    for got, exact in zip(real[0], ideal[0], strict=True):
        assert abs(got - exact) <= CELL_V
    for got, exact in zip(real[1], ideal[1], strict=True):
        assert abs(got - exact) <= TEMP_C
