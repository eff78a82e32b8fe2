"""The gate's verdict as data: its exit codes, the findings (regression, coverage gap, drift,
waived), and the result that collects them."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from reports.runs import RunData

EXIT_PASS, EXIT_FAIL, EXIT_CANNOT_COMPARE = 0, 1, 2

DEFAULT_DRIFT = 0.5

_ITEM_RE = re.compile(r"^[PS]\d{1,2}$")

_TEST_ID_RE = re.compile(r"^[PS]\d{2}-[a-z0-9-]+$")

EXECUTED = ("passed", "failed")


class IncompatibleRuns(Exception):
    """The two runs must not be compared (spec or bench differ); exit code 2."""


@dataclass
class Finding:
    """One reason the gate fails (unless waived)."""

    rule: str
    item: str
    test_id: str
    detail: str
    waived_by: Waiver | None = None


@dataclass
class GateResult:
    """Everything the gate found, for the exit code and the Markdown summary."""

    baseline: RunData
    candidate: RunData
    baseline_label: str
    candidate_label: str
    drift_share: float
    findings: list[Finding] = field(default_factory=list)
    known_failures: list[Finding] = field(default_factory=list)
    expired_waivers: list[Waiver] = field(default_factory=list)
    unused_waivers: list[Waiver] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    covered: int = 0
    required: int = 0
    #: "candidate run INCOMPLETE: ..." when the candidate is not complete (fails the gate).
    incomplete: str | None = None

    @property
    def failures(self) -> list[Finding]:
        """Findings that are not waived: any one fails the gate."""
        return [f for f in self.findings if f.waived_by is None]

    @property
    def waived(self) -> list[Finding]:
        return [f for f in self.findings if f.waived_by is not None]

    @property
    def exit_code(self) -> int:
        return EXIT_FAIL if self.failures or self.incomplete else EXIT_PASS


@dataclass(frozen=True)
class Waiver:
    """An accepted deviation for an item (``P5``) or one test id, until ``expires``."""

    item: str
    reason: str
    owner: str
    expires: dt.date
    entry: int

    def covers(self, finding: Finding) -> bool:
        return self.item in (finding.item, finding.test_id)

    def active(self, today: dt.date) -> bool:
        """Valid through its expiry day."""
        return today <= self.expires
