"""What a bench can apply: a case whose stimulus lies beyond it is untestable, with numbers.

A bench file's envelope is the bench's reach: the supply's voltage and current, the load's
current, the cell simulator's voltage range and the resistor module's range (which, through
the NTC model the resistors emulate, is a temperature range). The bench file no longer
refuses an envelope smaller than the spec asks; the plan asks :meth:`Reach.reason` about
each stimulus value a case needs and makes a case that needs more untestable, saying
``needs 176 A of charge current, the supply is rated 150 A``.

Stimulus names are the plan's and the procedures' (``harness.procedures.rig.Rig.apply``):
``cell``, ``pack``, ``port``, ``ntc:<channel>``, ``charge_current``, ``discharge_current``,
``transient``, ``cell_difference``, ``balance_difference``, ``soc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.benchfile import BenchFile, Envelope, LaunchFile, load_bench_file
from instruments.ntc import BetaNtc, NtcModel

#: Cells in series (DOMAIN.md: a 16S pack); a pack voltage is spread over them.
CELLS = 16
#: The voltage of the cells that do not move in a difference stimulus (the nominal bench).
NOMINAL_CELL_V = 3.300
#: SOC is written to the device over the link: any percentage it can hold is reachable.
SOC_RANGE_PCT = (0.0, 100.0)
#: Float slack when a value sits exactly at a rating.
_EPS = 1e-9


@dataclass(frozen=True)
class Reach:
    """The limits of one bench, in the units of the stimuli."""

    bench: str
    supply_max_v: float
    supply_max_a: float
    load_max_a: float
    cells_min_v: float
    cells_max_v: float
    resistors_min_ohm: float
    resistors_max_ohm: float
    ntc: NtcModel = BetaNtc()

    @classmethod
    def from_envelope(cls, bench: str, envelope: Envelope, ntc: NtcModel | None = None) -> Reach:
        return cls(
            bench=bench,
            supply_max_v=envelope.supply.max_voltage_v,
            supply_max_a=envelope.supply.max_current_a,
            load_max_a=envelope.load.max_current_a,
            cells_min_v=envelope.cells.min_voltage_v,
            cells_max_v=envelope.cells.max_voltage_v,
            resistors_min_ohm=envelope.resistors.min_ohm,
            resistors_max_ohm=envelope.resistors.max_ohm,
            ntc=ntc or BetaNtc(),
        )

    def reason(self, stimulus: str, value: float) -> str | None:
        """Why ``value`` of ``stimulus`` is beyond this bench (a sentence with the numbers),
        or None when the bench can apply it. An unknown stimulus name is a ValueError."""
        if stimulus == "cell":
            return self._cell(value, f"needs {value:g} V on a cell")
        if stimulus == "pack":
            per_cell = value / CELLS
            return self._cell(
                per_cell, f"needs {value:g} V of pack voltage ({per_cell:.4g} V a cell)"
            )
        if stimulus == "port":
            if value > self.supply_max_v + _EPS:
                return (
                    f"needs {value:g} V at the charge port, the supply is rated "
                    f"{self.supply_max_v:g} V"
                )
            return None
        if stimulus == "charge_current":
            return self._amps(value, "charge current", "supply", self.supply_max_a)
        if stimulus in ("discharge_current", "transient"):
            what = "discharge current" if stimulus == "discharge_current" else "transient current"
            return self._amps(value, what, "load", self.load_max_a)
        if stimulus in ("cell_difference", "balance_difference"):
            low = NOMINAL_CELL_V - abs(value)
            return self._cell(low, f"needs a cell {abs(value):g} V below the others ({low:.4g} V)")
        if stimulus.startswith("ntc:"):
            return self._temperature(stimulus.split(":", 1)[1], value)
        if stimulus == "soc":
            lo, hi = SOC_RANGE_PCT
            if not lo <= value <= hi:
                return f"needs {value:g} % state of charge, the device holds {lo:g} .. {hi:g} %"
            return None
        raise ValueError(f"unknown stimulus {stimulus!r}")

    def _cell(self, volts: float, needs: str) -> str | None:
        if volts > self.cells_max_v + _EPS:
            return f"{needs}, the cell simulator is rated up to {self.cells_max_v:g} V"
        if volts < self.cells_min_v - _EPS:
            return f"{needs}, the cell simulator is rated down to {self.cells_min_v:g} V"
        return None

    @staticmethod
    def _amps(value: float, what: str, instrument: str, rated: float) -> str | None:
        if abs(value) > rated + _EPS:
            return f"needs {abs(value):g} A of {what}, the {instrument} is rated {rated:g} A"
        return None

    def _temperature(self, channel: str, celsius: float) -> str | None:
        try:
            ohm = self.ntc.ohm_at(celsius)
        except ValueError as exc:
            return f"needs {celsius:g} °C at NTC {channel}: {exc}"
        if ohm > self.resistors_max_ohm + _EPS:
            return (
                f"needs {celsius:g} °C at NTC {channel} ({ohm:.0f} Ohm), the resistor module "
                f"is rated up to {self.resistors_max_ohm:g} Ohm"
            )
        if ohm < self.resistors_min_ohm - _EPS:
            return (
                f"needs {celsius:g} °C at NTC {channel} ({ohm:.1f} Ohm), the resistor module "
                f"is rated down to {self.resistors_min_ohm:g} Ohm"
            )
        return None


def reach_of(path: Path | str) -> Reach | None:
    """The reach of the bench file ``path``; None when the file does not say (a launch file
    that declares no envelope: its reach is known once it is up). Raises ``BenchFileError``
    for a bad file."""
    bench = load_bench_file(path)
    if isinstance(bench, LaunchFile):
        if bench.envelope is None:
            return None
        return Reach.from_envelope(bench.bench, bench.envelope)
    assert isinstance(bench, BenchFile)
    return Reach.from_envelope(bench.bench, bench.envelope)
