"""Bench capabilities: the hardware a bench has, declared once for the whole project.

The bench-file model (``harness/benchfile.py``), the plan, the simulated bench and the spec
tables' ``needs: hardware:<name>`` all take the names and the defaults from here. A bench
file that does not declare a capability has the default below.
"""

from __future__ import annotations

#: Every capability a bench file may declare, with its default (what a bench that says
#: nothing about it is taken to have).
DEFAULTS: dict[str, bool] = {
    "heater": False,
    "secondary_trip": False,
    #: A cell simulator instead of real cells (disabling a protection is only safe with one).
    "simulated_cells": True,
    "scope": False,
    "button": False,
    "short_circuit": False,
    "switch": False,
    "lcd": False,
    "bluetooth": False,
    "parallel": False,
    #: The BMS's own supply can be cut and restored (a power-cycle clears latched states).
    "bms_power": False,
    #: A known series resistance can be put in one cell's sense lead (P83, S47).
    "connection_fault": False,
}
CAPABILITIES: tuple[str, ...] = tuple(DEFAULTS)
#: Hardware a spec switch may name in ``needs: hardware:<name>``.
SWITCH_HARDWARE: tuple[str, ...] = (
    "heater",
    "secondary_trip",
    "button",
    "short_circuit",
    "switch",
    "lcd",
    "bluetooth",
    "parallel",
)
if not set(SWITCH_HARDWARE) <= set(DEFAULTS):  # a switch can only need a declared capability
    raise AssertionError(f"SWITCH_HARDWARE names {set(SWITCH_HARDWARE) - set(DEFAULTS)}")
