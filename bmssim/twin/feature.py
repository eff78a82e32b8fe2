"""The one protocol every device behaviour of the twin implements.

A feature is one function of the firmware (threshold rows, overcurrent, balancing, ...). It
keeps its own state, reads and signals shared state only through the ``Board`` it was
given, and answers four questions the twin combines (``BmsTwin`` in core.py):

- ``next_event_ms(now)``: the earliest instant after ``now`` it needs to run with the inputs
  held (None: nothing pending); the twin's next event is the minimum over the features;
- ``flags()``: the 0x44 flag names it raises; the twin reports their union;
- ``holds()``: ``(charge_held, discharge_held)``, which FETs it holds open; a FET is open
  when any feature holds it;
- ``signature()``: a value that changes whenever its observable state does (the twin then
  samples again at the next grid instant).

Work happens in the firmware's order within one instant: the twin calls, for every phase of
``PHASES`` and every feature in its order that has that method, ``feature.<phase>(t)``:

=============  =====================================================================
``integrate``  time since the last instant passes (coulomb counting, balancing time)
``sample``     after a current sample (10 ms grid; ``board.state_changed`` is fresh)
``timers``     timers due at ``t``
``inputs``     hand-step inputs read at once (the button)
``comparator`` the 1 ms comparators (transient overcurrent, short circuit)
``current``    current-sampled decisions (10 ms grid)
``vt``         voltage/temperature-sampled decisions (100 ms grid, ``board.q`` fresh)
``after``      the last decisions before the FETs are set (the power switch)
=============  =====================================================================

Optional hooks besides the phases: ``compensate()`` (corrects a fresh voltage sample before
anything sees it), ``factory(t)`` (non-volatile state from the factory), ``power_off(t)``,
``block_written()`` (after a 0xA1 write or a factory reset), ``fets_set(t, was_dsg)``.
Every feature has ``restart(t)``: its volatile state as the firmware starts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bmssim.twin.board import Board

PHASES = ("integrate", "sample", "timers", "inputs", "comparator", "current", "vt", "after")
#: Phases run only on their sampling grid.
SAMPLED = {"sample": "cur", "current": "cur", "vt": "vt"}
HOOKS = ("compensate", "factory", "power_off", "block_written", "fets_set")


class Feature(Protocol):
    board: Board

    def restart(self, t: int) -> None: ...

    def next_event_ms(self, now: int) -> int | None: ...

    def flags(self) -> set[str]: ...

    def holds(self) -> tuple[bool, bool]: ...

    def signature(self) -> tuple: ...


NOT_HELD = (False, False)


class BaseFeature:
    """Defaults for a feature that raises no flag, holds no FET and has no timer."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def restart(self, t: int) -> None:
        return None

    def next_event_ms(self, now: int) -> int | None:
        return None

    def flags(self) -> set[str]:
        return set()

    def holds(self) -> tuple[bool, bool]:
        return NOT_HELD

    def signature(self) -> tuple:
        return ()


def overriding(features: Sequence[Feature], name: str) -> tuple[Callable[..., Any], ...]:
    """The bound ``name`` methods of the features that answer it (not ``BaseFeature``'s
    default answer), in order: the twin asks only those."""
    default = getattr(BaseFeature, name)
    return tuple(getattr(f, name) for f in features if getattr(type(f), name, None) is not default)
