"""Searches that survive noise (harness/procedures/stability.py): each edge of the bracket
repeated until stable; chattering reported with its counts; an unstable function failed
with the band where it chatters."""

from __future__ import annotations

import pytest

from harness.procedures import stability
from harness.procedures.record import Measurement


def _decider(decisions: dict[float, list[bool]]):
    """decide(value): the next scripted decision at value (the threshold rule otherwise)."""
    calls: list[float] = []

    def decide(value: float):
        calls.append(value)
        script = decisions.get(value)
        acted = script.pop(0) if script else value >= 3.55
        return acted, f"obs at {value}"

    return decide, calls


def _m() -> Measurement:
    return Measurement(name="c", unit="V", expected=3.55, tolerance=0.01)


def test_a_clean_threshold_costs_one_more_decision_per_edge() -> None:
    decide, calls = _decider({})
    edges = stability.stabilise(decide, 3.549, 3.55, 0.001, repeats=2, chatter_steps=10)
    assert (edges.quiet, edges.acting, edges.final) == (3.549, 3.55, "obs at 3.55")
    assert calls == [3.549, 3.55]
    m = _m()
    assert stability.report(m, edges, 2)
    assert m.measured == 3.55
    assert "chatters" not in m.checks[-1].seen


def test_a_chattering_edge_moves_out_and_is_reported() -> None:
    # 3.55 acted in the search, then not; 3.551 acts every time; 3.549 acted once
    decide, calls = _decider({3.55: [False], 3.549: [True], 3.548: [False]})
    edges = stability.stabilise(decide, 3.549, 3.55, 0.001, repeats=2, chatter_steps=10)
    assert (edges.quiet, edges.acting) == (3.548, 3.551)
    m = _m()
    assert stability.report(m, edges, 2)
    assert m.measured == 3.551
    detail = m.checks[-1].seen
    assert "acted 1 of 2 at 3.549 V" in detail and "acted 1 of 2 at 3.55 V" in detail
    # the band between the stable edges is the method's contribution, not one step
    assert m.method[-1].value == pytest.approx(0.003)


def test_a_function_that_never_settles_is_failed_with_its_band() -> None:
    flips = {round(3.55 + k * 0.001, 10): [False] for k in range(12)}
    decide, _ = _decider(flips)
    edges = stability.stabilise(decide, 3.549, 3.55, 0.001, repeats=2, chatter_steps=3)
    assert edges.unstable is not None
    m = _m()
    assert not stability.report(m, edges, 2)
    assert m.measured is None
    assert "unstable: chatters over 3.549..3.553 V" in m.checks[-1].failure
