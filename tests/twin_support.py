"""Helpers shared by the twin and World tests."""

from __future__ import annotations

from bmssim.world import World
from bmsspec import load_spec

SPEC = load_spec()


def configure(world: World, values=None, switches=None) -> None:
    """Write parameters and switches into the twin's block (as a whole-block write would)."""
    block = world.twin.read_block()
    block.values.update(values or {})
    block.switches.update(switches or {})
    world.twin.write_block(block)


def fresh_world() -> World:
    """A factory-state World one second after start (past the first samples)."""
    w = World(SPEC)
    w.advance(1000)
    return w
