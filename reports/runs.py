"""A results directory as the reports read it: ``run.json`` plus ``results.jsonl``.

Every report (compliance HTML, Allure, history, gate) starts here, so a missing or corrupt
results directory is refused once, with a message naming the file, the line, the key and
the value, instead of surfacing later as a KeyError in a template. The format is the one
``harness/session.py`` writes (``CaseOutcome.record()`` and ``BenchSession._write_run_info``).

The harness's own ``read_results`` silently drops unparsable lines because it runs while a
bench may crash mid-write; a report that a lab signs must not, so only a truncated *last*
line (a crash during the final write) is tolerated here, and it is reported in ``warnings``.

Whether the run did everything it planned is answered once, by :func:`completion`
(``RunData.completion``), from ``run.json``'s ``planned``/``end``/``sessions`` and the final
record of each case (the last one with its test id); every report takes its verdict from it.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.completion import COMPLETE_WITH_GAPS_REASON as COMPLETE_WITH_GAPS_REASON
from reports.completion import CRASHED, END_STATUSES, LEGACY, Completion, completion
from reports.completion import CRASHED_REASON as CRASHED_REASON
from reports.completion import LEGACY_CRASHED_REASON as LEGACY_CRASHED_REASON
from reports.completion import _invocations as _invocations
from reports.instrument_info import _IDENTITY_RE as _IDENTITY_RE
from reports.instrument_info import _INSTRUMENT_FIELDS as _INSTRUMENT_FIELDS
from reports.instrument_info import Instrument, parse_instruments

#: ``conditional``: a decision guarded acceptance neither accepts nor rejects.
OUTCOMES = ("passed", "failed", "conditional", "error", "skipped", "not_run")
#: A record's ``decision`` (``harness/procedures/uncertainty.py``); absent in older runs.
DECISIONS = ("pass", "conditional pass", "conditional fail", "fail")
#: Keys every record must carry for any report to make sense of it.
REQUIRED_KEYS = ("test_id", "item", "outcome")
RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
PLOTS_DIR = "plots"


class ReportInputError(ValueError):
    """A results directory, waiver file or option that cannot be used; the message says where."""


@dataclass
class RunData:
    """One results directory, loaded and checked."""

    directory: Path
    info: dict[str, Any]
    records: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    _allure_plots: dict[str, Path] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        done = self.completion
        if done.unplanned:
            shown = ", ".join(done.unplanned[:5]) + (" ..." if len(done.unplanned) > 5 else "")
            self.warnings.append(
                f"{len(done.unplanned)} record(s) of test ids the run did not plan (kept): {shown}"
            )
        if done.status not in (*END_STATUSES, CRASHED, LEGACY):
            self.warnings.append(
                f"run.json: end status {done.status!r} is not one of "
                f"{', '.join(END_STATUSES)}: the run is treated as incomplete"
            )

    # -- completion: the one place every report asks "did the run do what it planned?" -----
    @property
    def completion(self) -> Completion:
        """See :class:`Completion` (computed from ``info`` and ``records`` on each access)."""
        return completion(self.info, self.records)

    @property
    def run_id(self) -> str | None:
        value = self.info.get("run_id")
        return str(value) if value else None

    @property
    def sim_faults_in_force(self) -> Any | None:
        """What the simulator said was in force at the start, as it said it (normally an
        object such as ``{"firmware": [...], "link": {...}, "version": ...}``); None when the
        bench is no simulator (nothing recorded)."""
        return self.info.get("sim_faults_in_force")

    @property
    def active_sim_faults(self) -> Any | None:
        """The faults in force without the entries that are off (empty, zero, null): None
        when nothing was in force."""
        return _active(self.sim_faults_in_force)

    @property
    def overdue_accepted(self) -> list[dict[str, str]]:
        """Instruments past calibration due that the operator accepted (``--allow-overdue``)."""
        value = self.info.get("overdue_accepted")
        if not isinstance(value, list):
            return []
        return [
            {
                "instrument": str(v.get("instrument") or ""),
                "calibration_due": str(v.get("calibration_due") or ""),
            }
            for v in value
            if isinstance(v, dict)
        ]

    # -- run description, tolerant of a run that ended before the bench opened ----------
    @property
    def bench_id(self) -> str | None:
        return self.info.get("bench_id")

    @property
    def spec_sha256(self) -> str | None:
        return self.info.get("spec_sha256")

    @property
    def configuration(self) -> dict[str, Any]:
        """The device configuration under test (run.json ``configuration``: file, name,
        sha256); a run recorded before configurations existed ran on the spec defaults."""
        value = self.info.get("configuration")
        if isinstance(value, dict):
            return value
        return {"file": None, "name": "spec defaults", "sha256": None}

    @property
    def configuration_name(self) -> str:
        """``pack.yaml (sha256 c2391a129bc0)`` / ``spec defaults``."""
        c = self.configuration
        name = str(c.get("name") or "spec defaults")
        if c.get("file") is None:
            return name
        return f"{name} (sha256 {str(c.get('sha256') or '-')[:12]})"

    @property
    def device(self) -> dict[str, Any]:
        dev = self.info.get("device")
        return dev if isinstance(dev, dict) else {}

    @property
    def device_name(self) -> str:
        return str(self.device.get("name") or "").strip()

    @property
    def device_manufacturer(self) -> str:
        return str(self.device.get("manufacturer") or "").strip()

    @property
    def firmware(self) -> str:
        return firmware_text(self.device.get("firmware"))

    @property
    def started_at(self) -> str:
        return str(self.info.get("started_at") or "")

    @property
    def instruments(self) -> list[Instrument]:
        return parse_instruments(self.info.get("instruments"))

    def counts(self) -> dict[str, int]:
        """Records per outcome, from the records (run.json's counts may be absent or stale)."""
        out = dict.fromkeys(OUTCOMES, 0)
        for r in self.records:
            out[r["outcome"]] = out.get(r["outcome"], 0) + 1
        return out

    def plot(self, test_id: str) -> Path | None:
        """The saved trace plot of a test: ``plots/<test_id>.png``, else the ``trace.png``
        the run attached to its Allure result (same image, see harness/allure_recorder.py)."""
        path = self.directory / PLOTS_DIR / f"{test_id}.png"
        if path.is_file():
            return path
        if self._allure_plots is None:
            self._allure_plots = allure_plots(self.directory / "allure-results")
        return self._allure_plots.get(test_id)


@functools.lru_cache(maxsize=1)
def plan_cases() -> dict[str, Any]:
    """{test id: plan case} of this checkout's whole plan (every suite), to label a planned
    case whose record has no kind or category (the harness's ``not_run`` records, or no
    record at all). {} when the spec cannot be loaded: the reports then show the id alone."""
    try:
        from bmsspec import load_spec
        from harness.plan import build_plan

        return {c.id: c for c in build_plan(load_spec(), None, suite=None)}
    except Exception:  # a label is an illustration; never stop a report for it
        return {}


def allure_plots(results: Path) -> dict[str, Path]:
    """{test_id: trace.png} from an ``allure-results`` folder.

    Each case's Allure result carries a ``result`` JSON attachment (the record, with its
    ``test_id``) and, for thresholds and delays, a ``trace.png``; unreadable files are
    skipped, since a plot is an illustration, never part of the verdict.
    """
    plots: dict[str, Path] = {}
    if not results.is_dir():
        return plots
    for result_file in results.glob("*-result.json"):
        try:
            result = json.loads(result_file.read_text(encoding="utf-8"))
            attachments = {a["name"]: results / a["source"] for a in result.get("attachments", [])}
            png = attachments.get("trace.png")
            record = attachments.get("result")
            if png is None or record is None or not png.is_file():
                continue
            test_id = json.loads(record.read_text(encoding="utf-8"))["test_id"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        plots[str(test_id)] = png
    return plots


def _active(value: Any) -> Any | None:
    """``value`` without its empty/zero/null/false parts (recursively); None if nothing is left."""
    if isinstance(value, dict):
        kept = {k: a for k, v in value.items() if (a := _active(v)) is not None}
        return kept or None
    if isinstance(value, list):
        items = [a for v in value if (a := _active(v)) is not None]
        return items or None
    if value in (None, "", 0, False):
        return None
    return value


def firmware_text(value: Any) -> str:
    """The BMS firmware as people write it: ``(16, 4)`` / ``[16, 4]`` -> ``16.4``."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ".".join(str(v) for v in value)
    text = str(value).strip()
    m = re.fullmatch(r"[\[(]\s*(\d+)\s*,\s*(\d+)\s*[\])]", text)
    return f"{m.group(1)}.{m.group(2)}" if m else text


def load_run(directory: Path | str) -> RunData:
    """Load and check a results directory; raises :class:`ReportInputError` naming the problem."""
    directory = Path(directory)
    if not directory.exists():
        raise ReportInputError(f"{directory}: results directory does not exist")
    if not directory.is_dir():
        raise ReportInputError(f"{directory}: not a directory (expected a results directory)")
    info = _load_info(directory / RUN_FILE)
    records, warnings = _load_records(directory / RESULTS_FILE)
    return RunData(directory=directory, info=info, records=records, warnings=warnings)


def _load_info(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ReportInputError(f"{path}: missing (a results directory holds run.json)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ReportInputError(f"{path}: not UTF-8 text: {exc}") from exc
    if not isinstance(info, dict):
        raise ReportInputError(f"{path}: expected a JSON object, got {type(info).__name__}")
    for key in ("spec_sha256", "bench_id", "suite", "operator", "started_at", "finished_at"):
        value = info.get(key)
        if value is not None and not isinstance(value, str):
            raise ReportInputError(f"{path}: key {key!r}: expected a string, got {value!r}")
    if "device" in info and info["device"] is not None and not isinstance(info["device"], dict):
        raise ReportInputError(f"{path}: key 'device': expected an object, got {info['device']!r}")
    _check_contract(path, info)
    return info


def _check_contract(path: Path, info: dict[str, Any]) -> None:
    """The completion keys (``run_id``, ``planned``, ``end``, ``sessions``, ...): a wrong
    type would make the completion silently wrong, so it is refused, naming key and value."""
    run_id = info.get("run_id")
    if run_id is not None and not isinstance(run_id, str):
        raise ReportInputError(f"{path}: key 'run_id': expected a string, got {run_id!r}")
    planned = info.get("planned")
    if planned is not None:
        if not isinstance(planned, list):
            raise ReportInputError(
                f"{path}: key 'planned': expected a list of test ids, got {planned!r}"
            )
        for n, test_id in enumerate(planned):
            if not isinstance(test_id, str) or not test_id:
                raise ReportInputError(
                    f"{path}: key 'planned'[{n}]: expected a test id, got {test_id!r}"
                )
    end = info.get("end")
    if end is not None:
        if not isinstance(end, dict):
            raise ReportInputError(f"{path}: key 'end': expected an object, got {end!r}")
        if not isinstance(end.get("status"), str) or not end.get("status"):
            raise ReportInputError(
                f"{path}: key 'end.status': missing or not a string (value {end.get('status')!r})"
            )
        for key in ("reason", "signal", "at"):
            value = end.get(key)
            if value is not None and not isinstance(value, str):
                raise ReportInputError(
                    f"{path}: key 'end.{key}': expected a string or null, got {value!r}"
                )
    sessions = info.get("sessions")
    if sessions is not None and (
        not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions)
    ):
        raise ReportInputError(
            f"{path}: key 'sessions': expected a list of objects, got {sessions!r}"
        )
    overdue = info.get("overdue_accepted")
    if overdue is not None and (
        not isinstance(overdue, list) or not all(isinstance(o, dict) for o in overdue)
    ):
        raise ReportInputError(
            f"{path}: key 'overdue_accepted': expected a list of objects, got {overdue!r}"
        )


def _load_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    if not path.exists():
        raise ReportInputError(f"{path}: missing (a results directory holds results.jsonl)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ReportInputError(f"{path}: not UTF-8 text: {exc}") from exc
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    records: list[dict[str, Any]] = []
    warnings: list[str] = []
    seen: dict[str, int] = {}
    for i, (n, line) in enumerate(numbered):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(numbered) - 1:
                warnings.append(f"{path}:{n}: truncated last record ignored ({exc.msg})")
                continue
            raise ReportInputError(f"{path}:{n}: not valid JSON: {exc.msg}") from exc
        if not isinstance(rec, dict):
            raise ReportInputError(f"{path}:{n}: expected a JSON object, got {rec!r}")
        for key in REQUIRED_KEYS:
            if not isinstance(rec.get(key), str) or not rec.get(key):
                raise ReportInputError(
                    f"{path}:{n}: key {key!r}: missing or not a string (value {rec.get(key)!r})"
                )
        if rec["outcome"] not in OUTCOMES:
            raise ReportInputError(
                f"{path}:{n}: key 'outcome': {rec['outcome']!r} is not one of {', '.join(OUTCOMES)}"
            )
        decision = rec.get("decision")
        if decision is not None and decision not in DECISIONS:
            raise ReportInputError(
                f"{path}:{n}: key 'decision': {decision!r} is not one of {', '.join(DECISIONS)}"
            )
        for key in ("expected", "measured", "uncertainty", "tolerance", "margin"):
            value = rec.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise ReportInputError(f"{path}:{n}: key {key!r}: not a number: {value!r}")
        if rec["test_id"] in seen:
            # A rerun of the same case appended to the file: the later record is the verdict.
            # A case recorded as not run and then run by a resume is the expected sequence.
            earlier = next(r for r in records if r["test_id"] == rec["test_id"])
            if earlier["outcome"] != "not_run":
                warnings.append(
                    f"{path}:{n}: {rec['test_id']} recorded again (line "
                    f"{seen[rec['test_id']]}); the later record counts"
                )
            records = [r for r in records if r["test_id"] != rec["test_id"]]
        seen[rec["test_id"]] = n
        records.append(rec)
    return records, warnings
