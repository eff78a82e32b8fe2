"""Driver names a bench file may use, the role each plays, and where its class lives.

Kept as strings so validating a bench file does not import pyvisa.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Literal

Role = Literal["supply", "load", "cells", "resistors", "scope", "relays"]


@dataclass(frozen=True)
class DriverInfo:
    """A driver's role on the bench and its class (``module:Class``)."""

    role: Role
    target: str
    #: For units that together make one interface (two 8-cell units -> 16 cells): the class
    #: that assembles them from the bench's channel map.
    assembler: str | None = None

    def load(self) -> type:
        return _resolve(self.target)

    def load_assembler(self) -> type | None:
        return _resolve(self.assembler) if self.assembler else None


def _resolve(target: str) -> type:
    module, _, cls = target.partition(":")
    return getattr(import_module(module), cls)


DRIVERS: dict[str, DriverInfo] = {
    "keysight_n5700": DriverInfo("supply", "instruments.keysight_n5700:KeysightN5700"),
    "itech_it8500": DriverInfo("load", "instruments.itech_it8500:ItechIt8500"),
    "bloomy_abs": DriverInfo(
        "cells", "instruments.bloomy_abs:BloomyAbsUnit", "instruments.bloomy_abs:BloomyAbsCells"
    ),
    "resistor_module": DriverInfo("resistors", "instruments.resistor_module:ResistorModule"),
    "keysight_infiniivision": DriverInfo(
        "scope", "instruments.keysight_infiniivision:KeysightInfiniiVision"
    ),
    "keysight_34972a": DriverInfo("relays", "instruments.keysight_34970:Keysight34972A"),
}

BMS_PROTOCOLS = ("seplos_v2", "modbus_rtu", "modbus_tcp")
