"""What the BMS reports (``test_plans/reported.yaml``): each entry is one case comparing a
reported quantity with what the bench applied, within the device's stated accuracy.

The accuracy is not written here: it is the row of ``tolerances.yaml`` of each channel's
quantity (cell voltage +-10 mV, temperature +-2 C, current +-1 % with its floor, pack
voltage, SOC), declared there once. An entry names the spec row its case is filed under
(``item``, for traceability, with ``filed``: why that row), the settings the bench applies
one after the other, and in each setting the channels with their levels. Levels may be
relative to a row (:class:`~bmsspec.recipes.Ref`), so a device configuration moves them.

Validated on load (``bmsspec.tables.load_spec``); every error names the file, the entry, the
key and the value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import Field, ValidationError, model_validator

from bmsspec.capabilities import CAPABILITIES
from bmsspec.models import REPORTED_FILE, SpecError
from bmsspec.recipes import ITEM_PATTERN, Ref, Suite, Value, _Model

#: The quantity of ``tolerances.yaml`` each stimulus (``harness/procedures/rig.py`` ``apply``)
#: is reported as: its channel's accuracy. A stimulus not listed here is not reported.
REPORTED_AS: dict[str, str] = {
    "cell": "cell_voltage",
    "pack": "pack_voltage",
    "ntc:cell1": "cell_temperature",
    "ntc:cell2": "cell_temperature",
    "ntc:cell3": "cell_temperature",
    "ntc:cell4": "cell_temperature",
    "ntc:ambient": "ambient_temperature",
    "ntc:power": "power_temperature",
    "charge_current": "charge_current",
    "discharge_current": "discharge_current",
    "soc": "soc",
}
#: The cells of a cell-voltage setting (``cells``: one level per cell).
CELLS = 16


class ReportChannel(_Model):
    """One channel of a setting: the stimulus and its level (``cell``: which cell, for the
    ``cell`` stimulus). Discharge currents are negative, as in the spec."""

    stimulus: str
    level: Value
    cell: int | None = Field(default=None, ge=1, le=CELLS)

    @model_validator(mode="after")
    def _known(self) -> ReportChannel:
        if self.stimulus not in REPORTED_AS:
            raise ValueError(
                f"stimulus {self.stimulus!r} is not reported (one of {', '.join(REPORTED_AS)})"
            )
        if (self.stimulus == "cell") != (self.cell is not None):
            raise ValueError("a 'cell' channel names its cell (1..16); no other channel does")
        return self


class CellSequence(_Model):
    """Sixteen distinct cell levels: cell k at ``first + ((k - 1 + rotate) mod 16) x step``,
    so neighbours differ by ``step`` (a swapped or offset channel reads off by more than
    its accuracy) and a second, rotated setting gives each cell a level far from its first."""

    first: Value
    step: float = Field(gt=0)
    rotate: int = Field(default=0, ge=0, lt=CELLS)


class ReportSetting(_Model):
    """What the bench applies at one time: its channels, or the 16 cells as a sequence."""

    channels: list[ReportChannel] = Field(default_factory=list)
    cells: CellSequence | None = None

    @model_validator(mode="after")
    def _one(self) -> ReportSetting:
        if bool(self.channels) == (self.cells is not None):
            raise ValueError("a setting gives either 'channels' or 'cells', not both or neither")
        currents = [c for c in self.channels if c.stimulus.endswith("_current")]
        if currents and len(self.channels) > 1:
            raise ValueError("a current flows in one direction at a time: one channel a setting")
        return self


class ReportRecipe(_Model):
    """One case: a reported quantity against the bench's stimulus."""

    name: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    item: str = Field(pattern=ITEM_PATTERN)
    #: Why the case is filed under ``item`` (shown with the case).
    filed: str = Field(min_length=1)
    settings: list[ReportSetting] = Field(min_length=1)
    #: Bench capability -> why the case needs it (untestable without).
    needs: dict[str, str] = Field(default_factory=dict)
    #: How long each setting is held before the report is read (past the sampling, s).
    dwell_s: float = Field(default=1.5, gt=0)
    suites: list[Suite] = Field(default_factory=lambda: ["regression"])

    @model_validator(mode="after")
    def _check(self) -> ReportRecipe:
        unknown = [c for c in self.needs if c not in CAPABILITIES]
        if unknown:
            raise ValueError(f"needs: unknown capability {unknown[0]!r}")
        return self

    def stimuli(self) -> list[str]:
        """Every stimulus the case applies."""
        out = []
        for s in self.settings:
            out += ["cell"] if s.cells is not None else [c.stimulus for c in s.channels]
        return out

    def refs(self) -> Iterator[tuple[str, Ref]]:
        """(key, Ref) of every relative level, for the loader's cross-check."""
        for i, s in enumerate(self.settings):
            if s.cells is not None and isinstance(s.cells.first, Ref):
                yield f"settings.{i}.cells.first", s.cells.first
            for j, c in enumerate(s.channels):
                if isinstance(c.level, Ref):
                    yield f"settings.{i}.channels.{j}.level", c.level


def load_reported(
    doc: Any,
    exists: Callable[[str], bool],
    units: dict[str, str | None],
) -> list[ReportRecipe]:
    """The entries of ``reported.yaml`` (its parsed YAML), validated: each against its
    model, its item and every row a level refers to against the spec (``exists``), each
    channel's quantity against ``tolerances.yaml`` (``units``: quantity -> unit) and one unit
    per case. Raises ValueError naming the file, the entry, the key and the value."""
    if not isinstance(doc, dict) or not isinstance(doc.get("reported"), list):
        raise SpecError(f"{REPORTED_FILE}: key 'reported' value None: a list of entries")
    out: list[ReportRecipe] = []
    names: set[str] = set()
    for position, raw in enumerate(doc["reported"], start=1):
        where = f"{REPORTED_FILE} entry {position}"
        if isinstance(raw, dict) and "name" in raw:
            where += f" ({raw['name']})"
        if not isinstance(raw, dict):
            raise SpecError(f"{where}: key '(entry)' value {raw!r}: an entry must be a mapping")
        try:
            r = ReportRecipe.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(part) for part in err["loc"]) or "(entry)"
            value = None if err["type"] == "missing" else err.get("input")
            raise SpecError(f"{where}: key '{loc}' value {value!r}: {err['msg']}") from None
        if r.name in names:
            raise SpecError(f"{where}: key 'name' value {r.name!r}: twice")
        names.add(r.name)
        if not exists(r.item):
            raise SpecError(f"{where}: key 'item' value {r.item!r}: no such row")
        for key, ref in r.refs():
            for item in ref.items():
                if not exists(item):
                    raise SpecError(f"{where}: key '{key}' value {item!r}: no such row")
        seen_units = set()
        for stimulus in r.stimuli():
            quantity = REPORTED_AS[stimulus]
            if quantity not in units:
                raise SpecError(
                    f"{where}: key 'settings' value {stimulus!r}: tolerances.yaml gives no "
                    f"accuracy of {quantity}"
                )
            seen_units.add(units[quantity])
        if len(seen_units) > 1:
            raise SpecError(
                f"{where}: key 'settings' value {sorted(map(str, seen_units))}: one case "
                "reports in one unit"
            )
        out.append(r)
    return out
