"""What a procedure produces: a measurement with its verdict, a trace and named steps.

The verdict and the margin are computed here and nowhere else, so every test kind judges the
same way: a measured value passes when it lies within ``expected +- tolerance``, and the
margin is the distance to the nearer limit (positive inside, negative outside).

Procedures receive a ``Recorder`` and never import pytest or allure: the pytest plugin
supplies a recorder that also writes Allure steps and attachments, and a script can use the
plain one.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"
ERROR = "error"


def margin_to_limits(expected: float, tolerance: float, measured: float) -> float:
    """Distance from ``measured`` to the nearer of ``expected +- tolerance`` (+ inside)."""
    return tolerance - abs(measured - expected)


@dataclass
class Measurement:
    """One verdict-bearing observation of a case.

    ``checks`` holds the independent observations the verdict needs (DOMAIN.md: the flag the
    BMS reports and the current at the terminals); each is ``(name, ok, detail)``. The
    outcome is ``passed`` only when the value is within tolerance and every check holds.
    """

    name: str
    unit: str
    expected: float | None = None
    tolerance: float | None = None
    measured: float | None = None
    uncertainty: float | None = None
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    probes: int = 0
    note: str = ""
    #: Probes a naive ramp in resolution steps would have needed (threshold cases).
    naive_probes: int | None = None

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((name, bool(ok), detail))
        return bool(ok)

    @property
    def margin(self) -> float | None:
        if self.expected is None or self.tolerance is None or self.measured is None:
            return None
        return margin_to_limits(self.expected, self.tolerance, self.measured)

    @property
    def within_tolerance(self) -> bool:
        if self.expected is None or self.tolerance is None:
            return True
        if self.measured is None or math.isnan(self.measured):
            return False
        return abs(self.measured - self.expected) <= self.tolerance + 1e-9

    @property
    def outcome(self) -> str:
        ok = self.within_tolerance and all(ok for _n, ok, _d in self.checks)
        return PASSED if ok else FAILED

    def failures(self) -> list[str]:
        """Human-readable reasons the measurement failed (empty when it passed)."""
        out = []
        if not self.within_tolerance:
            if self.measured is None:
                out.append(
                    f"{self.name}: nothing measured (expected {self.expected:g} {self.unit})"
                )
            else:
                out.append(
                    f"{self.name}: measured {self.measured:g} {self.unit}, expected "
                    f"{self.expected:g} +- {self.tolerance:g} {self.unit}"
                )
        out.extend(f"{n}: {d}" for n, ok, d in self.checks if not ok)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "expected": self.expected,
            "tolerance": self.tolerance,
            "measured": self.measured,
            "uncertainty": self.uncertainty,
            "margin": self.margin,
            "probes": self.probes,
            "naive_probes": self.naive_probes,
            "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in self.checks],
            "note": self.note,
        }


class Recorder:
    """Collects steps and trace rows of one case; subclasses add reporting back ends."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.trace: list[dict[str, Any]] = []
        self.attachments: list[tuple[str, bytes, str]] = []

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.steps.append(title)
        yield

    def sample(self, **row: Any) -> None:
        """Add one row of the stimulus/response trace (t_s, stimulus, flag, current...)."""
        self.trace.append(row)

    def attach(self, name: str, data: bytes, mime: str) -> None:
        self.attachments.append((name, data, mime))


class CaseNotTestable(Exception):
    """The case cannot run on this bench; the message says why (reported as skipped)."""


class BenchFault(Exception):
    """The bench, not the device, misbehaved (a setpoint refused, nominal state unreachable)."""
