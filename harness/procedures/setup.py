"""Typed reads of the setup the plan produced for a case (``case.params``).

A procedure reads every device value it needs from here, never from the device by row
number: the plan computed it from the row's recipe and the Spec it was given (a device
configuration moves it). A missing or mistyped value is a bench error naming the case and
the key, not a silent default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.procedures.record import BenchFault


class Setup:
    """The ``params`` of one case, read by key with a type."""

    def __init__(self, case_id: str, params: Mapping[str, Any]) -> None:
        self.case_id = case_id
        self.params = dict(params)

    def _raw(self, key: str) -> Any:
        if key not in self.params:
            raise BenchFault(f"{self.case_id}: the plan gives no {key!r} (recipe params)")
        return self.params[key]

    def num(self, key: str) -> float:
        raw = self._raw(key)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise BenchFault(f"{self.case_id}: params key {key!r} value {raw!r}: not a number")
        return float(raw)

    def count(self, key: str) -> int:
        out = self.num(key)
        if out != int(out):
            raise BenchFault(f"{self.case_id}: params key {key!r} value {out!r}: not a count")
        return int(out)

    def text(self, key: str) -> str:
        return str(self._raw(key))

    def level(self, stimulus: str | None = None) -> float:
        """The level of ``stimulus`` the case applies: ``level`` (its ``stimulus``), or the
        entry of ``stimuli`` of that name (a case that applies more than one)."""
        if stimulus is None or self.params.get("stimulus") == stimulus:
            return self.num("level")
        for entry in self.params.get("stimuli") or []:
            if entry.get("stimulus") == stimulus:
                return Setup(self.case_id, entry).num("level")
        raise BenchFault(f"{self.case_id}: the plan gives no level of stimulus {stimulus!r}")


@dataclass(frozen=True)
class Nominal:
    """What a case's nominal state uses (``params.nominal``, from the rows' ``recipe.nominal``)."""

    #: The rated capacity in force (Ah): the SOC stimulus is a share of it.
    rated_ah: float
    #: Remaining capacity to bring the device to (Ah); None when the case writes its own.
    remaining_ah: float | None
    #: How long a latched state may take to clear after a block write (s).
    clear_after_write_s: float
    #: How long the output may take to come back after a power-cycle (s).
    clear_after_power_cycle_s: float

    @classmethod
    def from_case(cls, case: Any) -> Nominal:
        raw = (case.params or {}).get("nominal")
        if not isinstance(raw, Mapping):
            raise BenchFault(f"{case.id}: the plan gives no nominal state (params.nominal)")
        s = Setup(case.id, raw)
        return cls(
            rated_ah=s.num("rated_ah"),
            remaining_ah=s.num("remaining_ah") if "remaining_ah" in raw else None,
            clear_after_write_s=s.num("clear_after_write_s"),
            clear_after_power_cycle_s=s.num("clear_after_power_cycle_s"),
        )
