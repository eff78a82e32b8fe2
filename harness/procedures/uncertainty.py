"""The uncertainty budget of one measurement (GUM) and the decision rule that judges it.

Every contribution is turned into a standard uncertainty ``u``: a rectangular bound of
half-width ``a`` (a search bracket, a resolution, an instrument's accuracy stated as a
limit) gives ``a / sqrt(3)``; a normal one stated at coverage factor ``k`` gives ``a / k``.
They combine root-sum-square (uncorrelated) into ``u_c``, and the expanded uncertainty is
``U = k * u_c`` with ``k = 2`` (about 95 %). A contribution the bench file does not give is
kept as *not given* (value None), never counted as zero: the budget is then incomplete and
says which (``Budget.missing``).

A search reports the edge of its final bracket (the lowest value that acted, the poll at
which the event was seen), not its middle, so the true value lies anywhere within one
bracket width of the reported one: its half-width is the whole width (``bracket``).

The decision (ILAC-G8:2019, statement with a guard band w = U):

| where the interval ``measured +- U`` lies | decision |
|---|---|
| inside the limits | ``pass`` |
| straddles a limit, ``measured`` inside | ``conditional pass`` |
| straddles a limit, ``measured`` outside | ``conditional fail`` |
| outside the limits | ``fail`` |

The rule decides what each means for the outcome (``accepted``): *simple acceptance*
(w = 0, the default) accepts a value inside the limits, so a conditional pass is passed and
a conditional fail failed, both reported as conditional; *guarded acceptance* (w = U)
accepts only a plain pass, so a conditional pass is not passed (and reads conditional,
never failed as a defect). Under guarded acceptance an incomplete budget cannot guard: a
value that would pass is a conditional pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Coverage factor of the expanded uncertainty (about 95 % for a normal distribution).
K = 2.0
SIMPLE = "simple"
GUARDED = "guarded"
RULES = (SIMPLE, GUARDED)
#: How each rule is named in run.json and the report.
RULE_TEXT = {
    SIMPLE: "ILAC-G8:2019 simple acceptance (w = 0): accepted when the measured value lies "
    "within the limits; an interval measured ± U that straddles a limit is reported as "
    "conditional",
    GUARDED: "ILAC-G8:2019 guarded acceptance (w = U): accepted only when measured ± U lies "
    "within the limits; failed only when it lies outside them; otherwise conditional",
}
PASS = "pass"
FAIL = "fail"
CONDITIONAL_PASS = "conditional pass"
CONDITIONAL_FAIL = "conditional fail"
DECISIONS = (PASS, CONDITIONAL_PASS, CONDITIONAL_FAIL, FAIL)
CONDITIONAL = (CONDITIONAL_PASS, CONDITIONAL_FAIL)
RECTANGULAR = "rectangular"
NORMAL = "normal"
NOT_GIVEN = "not given"
#: Slack of the comparisons with the limits (the verdict's, ``record.Measurement``).
EPS = 1e-9


@dataclass(frozen=True)
class Contribution:
    """One source of uncertainty: ``value`` is the half-width (rectangular) or the stated
    uncertainty at ``k`` (normal), in the measurement's unit; None when not given."""

    source: str
    value: float | None
    distribution: str = RECTANGULAR
    k: float = 1.0
    note: str = ""

    @property
    def standard(self) -> float | None:
        if self.value is None:
            return None
        if self.distribution == RECTANGULAR:
            return abs(self.value) / math.sqrt(3.0)
        return abs(self.value) / self.k

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "value": _round(self.value),
            "distribution": NOT_GIVEN if self.value is None else self.distribution,
            "standard": _round(self.standard),
        }
        if self.distribution == NORMAL and self.value is not None:
            out["k"] = self.k
        if self.note:
            out["note"] = self.note
        return out


def bracket(source: str, width: float, note: str = "") -> Contribution:
    """A search bracket or a polling/sampling step: the reported value is at its edge, so
    the half-width is the whole ``width``."""
    return Contribution(source, abs(width), RECTANGULAR, note=note)


def resolution(source: str, step: float, note: str = "") -> Contribution:
    """A quantisation step (a reading known to one count): half a step either way."""
    return Contribution(source, abs(step) / 2.0, RECTANGULAR, note=note)


def not_given(source: str, why: str) -> Contribution:
    return Contribution(source, None, NOT_GIVEN, note=why)


def _round(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")


@dataclass(frozen=True)
class Budget:
    """The contributions, their root-sum-square ``combined`` standard uncertainty and the
    ``expanded`` U = k x combined (over the contributions given)."""

    contributions: tuple[Contribution, ...]
    k: float = K

    @property
    def combined(self) -> float:
        return math.sqrt(sum(c.standard**2 for c in self.contributions if c.standard is not None))

    @property
    def expanded(self) -> float:
        return self.k * self.combined

    @property
    def missing(self) -> list[str]:
        """The sources not given (the budget is incomplete when any)."""
        return [c.source for c in self.contributions if c.value is None]

    @property
    def complete(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "contributions": [c.to_dict() for c in self.contributions],
            "combined": _round(self.combined),
            "k": self.k,
            "expanded": _round(self.expanded),
            "complete": self.complete,
            "not_given": self.missing,
        }


def decide(
    measured: float | None,
    expected: float | None,
    tolerance: float | None,
    expanded: float,
    *,
    checks_ok: bool,
    complete: bool = True,
    rule: str = SIMPLE,
) -> str:
    """The decision for one measurement (module docstring). A failed check is a plain
    fail (an observation the interval says nothing about); so is nothing measured."""
    if not checks_ok:
        return FAIL
    if expected is None or tolerance is None:
        return PASS
    if measured is None or math.isnan(measured):
        return FAIL
    d = abs(measured - expected)
    if d <= tolerance + EPS:
        if d + expanded > tolerance + EPS:
            return CONDITIONAL_PASS
        return PASS if complete or rule == SIMPLE else CONDITIONAL_PASS
    if d - expanded <= tolerance + EPS:
        return CONDITIONAL_FAIL
    return FAIL


def accepted(decision: str, rule: str) -> bool | None:
    """What ``rule`` makes of ``decision``: True passed, False failed, None conditional
    (guarded acceptance neither accepts nor rejects a conditional decision)."""
    if rule not in RULES:
        raise ValueError(f"unknown decision rule {rule!r} (choose from {', '.join(RULES)})")
    if decision == PASS:
        return True
    if decision == FAIL:
        return False
    if rule == SIMPLE:
        return decision == CONDITIONAL_PASS
    return None
