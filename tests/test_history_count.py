"""Counting the device's history records (0x4B) in few exchanges: a bisection from scratch,
and one exchange per poll when a count read earlier in the case is given."""

from __future__ import annotations

import pytest

from harness.procedures.rig import count_history


def device(held: int) -> tuple[list[int], object]:
    asked: list[int] = []

    def record(index: int) -> str | None:
        asked.append(index)
        return f"record {index}" if index < held else None

    return asked, record


@pytest.mark.parametrize("held", [0, 1, 2, 3, 37, 64, 65, 500])
def test_the_count_is_exact_in_few_exchanges(held: int) -> None:
    asked, record = device(held)
    assert count_history(record) == held
    assert len(asked) <= 2 * max(1, held).bit_length() + 2


@pytest.mark.parametrize(("known", "held"), [(37, 37), (37, 38), (37, 40), (1, 200)])
def test_a_known_count_starts_the_search(known: int, held: int) -> None:
    asked, record = device(held)
    assert count_history(record, known) == held
    if held == known:
        assert asked == [known]  # one exchange when nothing was added
    assert min(asked) >= known
