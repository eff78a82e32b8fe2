"""Simulated bench instruments: one SCPI dialect per module, all acting on one World.

Each instrument holds a reference to the world, reads and writes its own part of
``world.bench`` (the dataclasses of ``bmssim/state.py``), and calls ``world.settle()`` after
every command that may change state, so that a query in the same message (``OUTP 1;MEAS:CURR?``)
already sees the currents and FET states of the new setting at the same virtual instant.

The instruments depend on the world only through :class:`WorldLike`, so they can be tested
with a small fake and the World can be written without importing them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from bmssim.scpi import ScpiInstrument
from bmssim.state import BenchState


class ClockLike(Protocol):
    """The virtual clock as the instruments see it."""

    @property
    def now_ms(self) -> int: ...


class WorldLike(Protocol):
    """What the simulated instruments need from ``bmssim.world.World``."""

    bench: BenchState

    @property
    def clock(self) -> ClockLike: ...

    def settle(self) -> None:
        """Recompute currents and FETs at the current instant after a setting changed."""

    def trigger_load(self) -> None:
        """A bus trigger reached the electronic load: start its transient now."""

    def supply_current_a(self) -> float:
        """Current delivered by the supply (A, >= 0)."""
        ...

    def load_current_a(self) -> float:
        """Current sunk by the load (A, positive when sinking)."""
        ...

    def port_voltage_v(self) -> float:
        """Voltage at P+/P- (what the supply and the load terminals see)."""
        ...

    def pack_voltage_v(self) -> float:
        """Voltage of the pack (B+/B-), the sum of the cell voltages."""
        ...

    def cell_current_a(self, index: int) -> float:
        """Current of cell channel ``index`` (0-based), + = sourced; may be 0.0."""
        ...


def reset_in_place(obj: Any) -> None:
    """Set every field of a dataclass instance back to its default, keeping the object.

    ``*RST`` must not replace the state objects: the World (and anything else) may hold a
    reference to ``world.bench.supply`` and would keep reading a stale copy.
    """
    fresh = type(obj)()
    for f in dataclasses.fields(obj):
        setattr(obj, f.name, getattr(fresh, f.name))


class WorldInstrument(ScpiInstrument):
    """A SCPI instrument wired to the world: settles the world after state changes."""

    def __init__(self, world: WorldLike) -> None:
        self.world = world
        super().__init__()

    def on_change(self) -> None:
        self.world.settle()


__all__ = ["ClockLike", "WorldLike", "WorldInstrument", "reset_in_place"]
