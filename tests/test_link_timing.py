"""The link at the line's pace: the simulator's line time on the virtual clock (with no
rounding loss), the bench file's link keys, and a lost reply's cost at the line's rate."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from bmssim.line import LinePace
from harness import FIXTURES_DIR
from harness.benchfile import BenchFileError, load_bench_file
from instruments.bms.line import LATE_GUARD_S, REPLY_MARGIN_S

EXAMPLE = FIXTURES_DIR / "example-lab.yaml"


class FakeWorld:
    def __init__(self) -> None:
        self.now_ms = 0

    def advance(self, dt_ms: int) -> None:
        assert isinstance(dt_ms, int) and dt_ms > 0
        self.now_ms += dt_ms


def test_line_time_goes_on_the_virtual_clock_without_rounding_loss():
    world, pace = FakeWorld(), LinePace(19200)
    for _ in range(1000):  # 1000 status exchanges: 20 + 116 characters each
        assert pace.spend(world, pace.line_s(20)) == 0.0
        assert pace.spend(world, pace.turnaround_s + pace.line_s(116)) == 0.0
    exact_ms = 1000 * ((20 + 116) * 10 / 19200 + pace.turnaround_s) * 1000
    assert abs(world.now_ms - exact_ms) < 1.0  # integer ms, the rest carried
    assert pace.total_s == pytest.approx(exact_ms / 1000)


def test_in_real_time_the_line_time_is_a_hold_not_a_clock_move():
    world, pace = FakeWorld(), LinePace(9600, realtime=lambda: True)
    assert pace.spend(world, pace.line_s(356)) == pytest.approx(356 * 10 / 9600)
    assert world.now_ms == 0


def test_line_pace_refuses_a_line_without_a_rate():
    with pytest.raises(ValueError, match="baud 0"):
        LinePace(0)


def _refused(tmp_path: Path, **bms: Any) -> str:
    data = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    data["bms"].update(bms)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(BenchFileError) as err:
        load_bench_file(path)
    message = str(err.value)
    assert str(path) in message
    return message


@pytest.mark.parametrize(
    ("key", "value"), [("timeout_s", 0), ("timeout_s", 30), ("late_guard_s", -1.0)]
)
def test_bench_file_link_keys_are_validated_with_file_key_and_value(tmp_path, key, value):
    message = _refused(tmp_path, **{key: value})
    assert key in message and str(value) in message


def test_bench_file_link_defaults_are_the_links(tmp_path):
    data = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    for key in ("timeout_s", "late_guard_s"):
        data["bms"].pop(key, None)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    bms = load_bench_file(path).bms
    assert bms.timeout_s == REPLY_MARGIN_S and bms.late_guard_s == LATE_GUARD_S
