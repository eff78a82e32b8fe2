"""Bloomy Advanced Battery Simulator: 8 cells per unit; 16 cells from two units.

``BloomyAbsUnit`` is one 8-channel SCPI instrument. ``BloomyAbsCells`` is the
``CellSimulator`` the procedures use: it maps pack cells 1..16 onto (unit, channel) pairs
as the bench file's ``channels.cells`` says, so re-wiring a bench is a bench-file edit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from instruments.cellsim import CELL_COUNT, NOMINAL_CELL_V, CellFault, CellSimulator
from instruments.scpi_instrument import Identity, ScpiInstrument


def channel_list(channels: Sequence[int]) -> str:
    """SCPI channel list: ``[1,2,3,5]`` -> ``(@1:3,5)``."""
    ordered = sorted(set(channels))
    parts: list[str] = []
    start = prev = ordered[0]
    for ch in [*ordered[1:], None]:
        if ch is not None and ch == prev + 1:
            prev = ch
            continue
        parts.append(f"{start}:{prev}" if prev > start else f"{start}")
        if ch is not None:
            start = prev = ch
    return f"(@{','.join(parts)})"


class BloomyAbsUnit(ScpiInstrument):
    """One ABS unit, channels 1..8, bounded by ``envelope.cells``."""

    ENVELOPE: ClassVar[str] = "cells"
    CHANNELS: ClassVar[int] = 8
    SET_VOLTAGE = "SOUR{ch}:VOLT {v}"
    SET_VOLTAGES = "SOUR:VOLT {v},{chans}"
    MEASURE_VOLTAGE = "MEAS{ch}:VOLT?"
    OUTPUT = "OUTP {on},{chans}"
    FAULT = "OUTP{ch}:FAUL {kind}"

    def _check_channel(self, ch: int) -> None:
        if not 1 <= ch <= self.CHANNELS:
            raise ValueError(f"{self.name}: channel {ch} is not 1..{self.CHANNELS}")

    def _volts(self, volts: float) -> str:
        self.within("cell voltage", volts, "V", low_key="min_voltage_v", high_key="max_voltage_v")
        return f"{volts:.4f}"

    def set_voltage(self, ch: int, volts: float) -> None:
        self._check_channel(ch)
        self.send(self.SET_VOLTAGE.format(ch=ch, v=self._volts(volts)))

    def set_voltages(self, channels: Sequence[int], volts: float) -> None:
        for ch in channels:
            self._check_channel(ch)
        self.send(self.SET_VOLTAGES.format(v=self._volts(volts), chans=channel_list(channels)))

    def measure_voltage(self, ch: int) -> float:
        self._check_channel(ch)
        return self.ask_float(self.MEASURE_VOLTAGE.format(ch=ch))

    def output(self, channels: Sequence[int], on: bool) -> None:
        self.send(self.OUTPUT.format(on=1 if on else 0, chans=channel_list(channels)))

    def fault(self, ch: int, kind: CellFault) -> None:
        self._check_channel(ch)
        self.send(self.FAULT.format(ch=ch, kind=kind.value))


class BloomyAbsCells(CellSimulator):
    """Pack cells 1..16 over several ABS units, per the bench's cell map."""

    def __init__(self, units: Mapping[str, BloomyAbsUnit], cell_map: Mapping[int, tuple[str, int]]):
        if sorted(cell_map) != list(range(1, CELL_COUNT + 1)):
            raise ValueError(
                f"the cell map must name cells 1..{CELL_COUNT}, got {sorted(cell_map)}"
            )
        missing = {unit for unit, _ in cell_map.values()} - set(units)
        if missing:
            raise ValueError(f"the cell map names units that are not open: {sorted(missing)}")
        self.units = dict(units)
        self.cell_map = {cell: (unit, int(ch)) for cell, (unit, ch) in cell_map.items()}

    def _locate(self, cell: int) -> tuple[BloomyAbsUnit, int]:
        if cell not in self.cell_map:
            raise ValueError(f"cell {cell} is not 1..{CELL_COUNT}")
        unit, ch = self.cell_map[cell]
        return self.units[unit], ch

    def _by_unit(self) -> dict[str, list[int]]:
        grouped: dict[str, list[int]] = {}
        for unit, ch in self.cell_map.values():
            grouped.setdefault(unit, []).append(ch)
        return grouped

    def set_cell_v(self, cell: int, volts: float) -> None:
        unit, ch = self._locate(cell)
        unit.set_voltage(ch, volts)

    def set_all_v(self, volts: float | Sequence[float]) -> None:
        if isinstance(volts, int | float):
            # Check once against every unit's envelope before any unit moves.
            for unit in self.units.values():
                unit.within(
                    "cell voltage", volts, "V", low_key="min_voltage_v", high_key="max_voltage_v"
                )
            for name, channels in self._by_unit().items():
                self.units[name].set_voltages(channels, float(volts))
            return
        values = list(volts)
        if len(values) != CELL_COUNT:
            raise ValueError(f"set_all_v needs {CELL_COUNT} voltages, got {len(values)}")
        for cell, value in enumerate(values, start=1):
            unit, _ = self._locate(cell)
            unit.within(
                f"cell {cell} voltage",
                value,
                "V",
                low_key="min_voltage_v",
                high_key="max_voltage_v",
            )
        if len(set(values)) == 1:
            self.set_all_v(values[0])
            return
        # Unit by unit, one error check per unit (its batch) rather than one per cell.
        by_unit: dict[str, list[tuple[int, float]]] = {}
        for cell, value in enumerate(values, start=1):
            unit_name, ch = self.cell_map[cell]
            by_unit.setdefault(unit_name, []).append((ch, value))
        for unit_name, settings in by_unit.items():
            unit = self.units[unit_name]
            with unit.batch():
                for ch, value in settings:
                    unit.set_voltage(ch, value)

    def read_cell_v(self, cell: int) -> float:
        unit, ch = self._locate(cell)
        return unit.measure_voltage(ch)

    def enable(self, on: bool = True) -> None:
        for name, channels in self._by_unit().items():
            self.units[name].output(channels, on)

    def fault(self, cell: int, kind: CellFault | str) -> None:
        unit, ch = self._locate(cell)
        unit.fault(ch, CellFault(str(kind).upper()))

    def safe_state(self) -> None:
        errors: list[Exception] = []
        steps = [lambda c=cell: self.fault(c, CellFault.NONE) for cell in sorted(self.cell_map)]
        steps += [lambda: self.set_all_v(NOMINAL_CELL_V), lambda: self.enable(True)]
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - every step is attempted
                errors.append(exc)
        if errors:
            raise errors[0]

    def close(self) -> None:
        for unit in self.units.values():
            unit.close()

    @property
    def identities(self) -> list[Identity]:
        return [unit.identity for unit in self.units.values()]
