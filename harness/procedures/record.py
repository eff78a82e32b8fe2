"""What a procedure produces: a measurement with its verdict, a trace and named steps.

The verdict and the margin are computed here and nowhere else, so every test kind judges the
same way: a measured value passes when it lies within ``expected +- tolerance``, and the
margin is the distance to the nearer limit (positive inside, negative outside). The value's
uncertainty budget (``harness/procedures/uncertainty.py``) and the run's decision rule turn
that into a decision: pass, conditional pass, conditional fail or fail.

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

from harness.procedures import uncertainty as unc

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"
ERROR = "error"
#: A conditional decision the rule neither accepts nor rejects (guarded acceptance only).
CONDITIONAL = "conditional"


def margin_to_limits(expected: float, tolerance: float, measured: float) -> float:
    """Distance from ``measured`` to the nearer of ``expected +- tolerance`` (+ inside)."""
    return tolerance - abs(measured - expected)


@dataclass(frozen=True)
class Check:
    """One independent observation the verdict needs.

    ``seen`` says what was observed (values, flag names, FET states, times) and reads true
    whether the check held or not; ``failure`` is the sentence shown when it did not hold.
    """

    name: str
    ok: bool
    seen: str
    failure: str | None = None
    #: The channel the observation drove ("cell 16", "cell NTC 4"), when it drove one.
    channel: str | None = None

    @property
    def reason(self) -> str:
        """Why the check failed: its failure sentence, or what was seen when it has none."""
        return self.failure or self.seen

    def to_dict(self) -> dict[str, Any]:
        """The stored form: ``{name, ok, detail}``, plus ``channel`` when it drove one and
        ``failure`` only when it failed."""
        out: dict[str, Any] = {"name": self.name, "ok": self.ok, "detail": self.seen}
        if self.channel is not None:
            out["channel"] = self.channel
        if not self.ok:
            out["failure"] = self.reason
        return out


@dataclass
class Measurement:
    """One verdict-bearing observation of a case.

    ``checks`` holds the independent observations the verdict needs (DOMAIN.md: the flag the
    BMS reports and the current at the terminals), as :class:`Check`. The outcome is
    ``passed`` only when every check holds and the decision rule accepts the value
    (``decision``; simple acceptance: the value is within tolerance).

    A procedure states what its own method contributes to the uncertainty (the search
    bracket, the polling period: :meth:`bracket`); the runner adds the bench's and the
    device's contributions (``harness/procedures/budget.py``) and sets ``budget``.
    ``uncertainty`` is then the expanded uncertainty U.
    """

    name: str
    unit: str
    expected: float | None = None
    tolerance: float | None = None
    measured: float | None = None
    uncertainty: float | None = None
    checks: list[Check] = field(default_factory=list)
    probes: int = 0
    note: str = ""
    #: Probes a naive ramp in resolution steps would have needed (threshold cases).
    naive_probes: int | None = None
    #: The channel(s) the case drove, when its stimulus has channels: "cell 1" for the
    #: search, "cell 1 (search), cells 2-16 (go/no-go)" with the sweep
    #: (``harness/procedures/channels.py``); None: the plan's ``params.channel`` stands.
    channel: str | None = None
    #: Of ``probes``, those the go/no-go pairs on the other channels took (with their resets).
    channel_probes: int = 0
    #: What the procedure's method contributes (``uncertainty.Contribution``).
    method: list[unc.Contribution] = field(default_factory=list)
    #: The whole budget, set by the runner once the case has run.
    budget: unc.Budget | None = None
    #: The decision rule of the run (``uncertainty.RULES``).
    rule: str = unc.SIMPLE
    #: The measured time was taken on the scope (its time base enters the budget).
    timed_on_scope: bool = False

    def bracket(self, width: float, source: str) -> None:
        """The method's own contribution: a search bracket or a timing step of ``width``
        (in the measurement's unit), the value reported at its edge. Until the budget is
        complete ``uncertainty`` is the width, as a procedure saw it."""
        self.method.append(unc.bracket(source, width))
        self.uncertainty = abs(width) if self.uncertainty is None else self.uncertainty

    def set_budget(self, budget: unc.Budget) -> None:
        self.budget = budget
        self.uncertainty = budget.expanded

    def check(
        self,
        name: str,
        ok: bool,
        seen: str,
        failure: str | None = None,
        channel: str | None = None,
    ) -> bool:
        """Record one observation; returns ``ok``.

        ``seen`` describes what was observed and is stored as the check's ``detail`` whether
        it held or not, so it must read true either way (``"charge current 0.00 A, charge
        FET open"``, never ``"... not stopped"``). ``failure`` is the sentence a failed
        check reports (:meth:`failures`, the record's ``failure``); it is dropped when the
        check held.
        """
        self.checks.append(Check(name, bool(ok), seen, failure, channel))
        return bool(ok)

    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check_records(self) -> list[dict[str, Any]]:
        """The checks as stored in a result record (``Check.to_dict``)."""
        return [c.to_dict() for c in self.checks]

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
    def decision(self) -> str:
        """pass, conditional pass, conditional fail or fail (``uncertainty.decide``)."""
        budget = self.budget
        return unc.decide(
            self.measured,
            self.expected,
            self.tolerance,
            budget.expanded if budget is not None else 0.0,
            checks_ok=all(c.ok for c in self.checks),
            complete=budget.complete if budget is not None else True,
            rule=self.rule,
        )

    @property
    def outcome(self) -> str:
        accepted = unc.accepted(self.decision, self.rule)
        if accepted is None:
            return CONDITIONAL
        return PASSED if accepted else FAILED

    def failures(self) -> list[str]:
        """Human-readable reasons the measurement failed or is conditional (empty when it
        passed plainly)."""
        out = []
        u = self.uncertainty or 0.0
        if not self.within_tolerance:
            if self.measured is None:
                out.append(
                    f"{self.name}: nothing measured (expected {self.expected:g} {self.unit})"
                )
            else:
                text = (
                    f"{self.name}: measured {self.measured:g} {self.unit}, expected "
                    f"{self.expected:g} +- {self.tolerance:g} {self.unit}"
                )
                if self.decision == unc.CONDITIONAL_FAIL:
                    text += f" (conditional fail: ± {u:.3g} {self.unit} reaches the limits)"
                out.append(text)
        elif self.decision == unc.CONDITIONAL_PASS and self.expected is not None:
            reason = (
                f"measured {self.measured:g} ± {u:.3g} {self.unit} straddles a limit of "
                f"{self.expected:g} +- {self.tolerance:g} {self.unit}"
            )
            budget = self.budget
            if budget is not None and not budget.complete and self.margin is not None:
                if self.margin >= u:
                    reason = f"uncertainty budget incomplete: {', '.join(budget.missing)} not given"
            out.append(f"{self.name}: conditional pass: {reason}")
        out.extend(f"{c.name}: {c.reason}" for c in self.failed_checks())
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "expected": self.expected,
            "tolerance": self.tolerance,
            "measured": self.measured,
            "uncertainty": self.uncertainty,
            "uncertainty_budget": self.budget.to_dict() if self.budget is not None else None,
            "decision": self.decision,
            "margin": self.margin,
            "probes": self.probes,
            "naive_probes": self.naive_probes,
            "checks": self.check_records(),
            "channel": self.channel,
            "channel_probes": self.channel_probes,
            "note": self.note,
        }


class Recorder:
    """Collects steps and trace rows of one case; subclasses add reporting back ends."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.trace: list[dict[str, Any]] = []
        self.attachments: list[tuple[str, bytes, str]] = []
        #: Operator evidence: one entry per prompt answered (or not) by a person
        #: (``harness.operator.Answer.to_dict``: prompt, answer, who, at, waited_s).
        self.operator: list[dict[str, Any]] = []

    def operator_answer(self, entry: dict[str, Any]) -> None:
        """Keep one operator answer as evidence of the case (the result record's
        ``operator``)."""
        self.operator.append(dict(entry))

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
