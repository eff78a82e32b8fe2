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

OUTCOMES = ("passed", "failed", "error", "skipped", "not_run")
#: ``run.json`` ``end.status`` values the harness writes.
END_STATUSES = ("running", "complete", "interrupted", "bench_lost", "aborted")
#: Completion statuses beyond the harness's: a run that died without an end record, and a
#: run directory from before ``planned``/``end`` existed that finished.
CRASHED, LEGACY = "crashed", "legacy"
CRASHED_REASON = "no end record (the run process died)"
LEGACY_CRASHED_REASON = (
    "the run did not finish (run.json has no finished_at and no end record; "
    "its plan was not recorded)"
)
COMPLETE_WITH_GAPS_REASON = "the end record says complete, but planned cases lack a final record"
#: Keys every record must carry for any report to make sense of it.
REQUIRED_KEYS = ("test_id", "item", "outcome")
RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
PLOTS_DIR = "plots"


class ReportInputError(ValueError):
    """A results directory, waiver file or option that cannot be used; the message says where."""


@dataclass
class Instrument:
    """One instrument identity as recorded in ``run.json`` (fields may be missing), with its
    calibration record from the bench file: ``calibration_due`` and ``calibrated_on`` as
    ISO dates (``YYYY-MM-DD``), ``calibration_certificate`` the certificate id."""

    name: str
    manufacturer: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    address: str = ""
    calibration_due: str = ""
    calibration_certificate: str = ""
    calibrated_on: str = ""

    def overdue_on(self, day: str) -> bool:
        """Whether the calibration was past due on ``day`` (an ISO date or date-time; only
        its date counts). False when either date is missing or not a date."""
        import datetime as dt

        try:
            due = dt.date.fromisoformat(self.calibration_due[:10])
            then = dt.date.fromisoformat(str(day)[:10])
        except ValueError:
            return False
        return due < then


@dataclass(frozen=True)
class Completion:
    """Did the run execute every case it planned, and what may the reports conclude?

    ``status`` is the harness's ``end.status`` (``complete``, ``interrupted``, ``bench_lost``,
    ``aborted``), ``crashed`` (no end record, or one still saying ``running``: the process
    died), or ``legacy`` (a directory from before the contract that finished; one that did
    not is ``crashed`` with ``legacy`` set). ``planned`` counts the planned cases, ``final``
    those with a final record (the last record of their test id, ``not_run`` included);
    ``missing`` lists planned ids without any record, ``not_run`` those whose final record
    says the run did not get to them. ``verdict`` is what every report shows:

    * ``FAIL`` when any final record failed (a product defect, whether or not complete);
    * ``INCOMPLETE`` when the run is not complete;
    * else ``FAIL`` on a bench error or when nothing passed (the rule the compliance report
      always had), and ``PASS`` only when every final record passed or was skipped.
    """

    status: str
    reason: str
    planned: int
    final: int
    missing: list[str]
    not_run: list[str]
    complete: bool
    verdict: str
    verdict_reasons: list[str] = field(default_factory=list)
    #: Why each not-run or missing case was not run (the record's message, else the end reason).
    not_run_reasons: dict[str, str] = field(default_factory=dict)
    #: Ids with a record that the run did not plan (kept, and warned about).
    unplanned: list[str] = field(default_factory=list)
    signal: str | None = None
    at: str | None = None
    legacy: bool = False
    run_id: str | None = None
    sessions: int = 1
    resumed: bool = False

    @property
    def not_run_count(self) -> int:
        """Planned cases without a verdict-bearing final record (missing + not run)."""
        return len(self.missing) + len(self.not_run)

    @property
    def unfinished(self) -> list[str]:
        """Planned ids not run, in plan order (not-run records and missing cases)."""
        return list(self.not_run_reasons)

    @property
    def summary(self) -> str:
        """``<status>: <reason>; N of M planned cases not run``."""
        reason = self.reason or "no reason recorded"
        return (
            f"{self.status}: {reason}; {self.not_run_count} of {self.planned} planned cases not run"
        )

    @property
    def banner(self) -> str:
        """The line every report shows for an incomplete run ("" for a complete one)."""
        return "" if self.complete else f"INCOMPLETE \u2014 {self.summary}"

    @property
    def end_text(self) -> str:
        """How the run ended, for a header: ``interrupted (SIGTERM, at ...): reason``."""
        extra = ", ".join(p for p in (self.signal, f"at {self.at}" if self.at else "") if p)
        text = f"{self.status} ({extra})" if extra else self.status
        return f"{text}: {self.reason}" if self.reason else text


def completion(info: dict[str, Any], records: list[dict[str, Any]]) -> Completion:
    """The :class:`Completion` of a run from its ``run.json`` and its (final) records.

    ``records`` are the final records (``load_run`` keeps the last record of a test id); a
    list with repeats is reduced the same way here.
    """
    final: dict[str, dict[str, Any]] = {}
    for rec in records:
        final.pop(rec["test_id"], None)
        final[rec["test_id"]] = rec
    planned_raw = info.get("planned")
    end = info.get("end")
    legacy = planned_raw is None and end is None
    signal = at = None
    if legacy:
        planned = list(final)
        if info.get("finished_at"):
            status, reason = LEGACY, "run from before end records; run.json has finished_at"
        else:
            status, reason = CRASHED, LEGACY_CRASHED_REASON
    else:
        planned = list(dict.fromkeys(planned_raw or []))
        if not isinstance(end, dict) or end.get("status") in (None, "running"):
            status, reason = CRASHED, CRASHED_REASON
        else:
            status = str(end.get("status"))
            reason = str(end.get("reason") or "")
            signal = end.get("signal") or None
            at = end.get("at") or None
    planned_set = set(planned)
    missing = [t for t in planned if t not in final]
    not_run = [t for t in planned if t in final and final[t]["outcome"] == "not_run"]
    unplanned = [t for t in final if t not in planned_set]
    complete = status in ("complete", LEGACY) and not missing and not not_run
    if status in ("complete", LEGACY) and not complete:
        reason = COMPLETE_WITH_GAPS_REASON
    reasons: dict[str, str] = {}
    for t in planned:
        if t in final and final[t]["outcome"] == "not_run":
            reasons[t] = str(final[t].get("message") or final[t].get("reason") or "") or (
                reason or "not run"
            )
        elif t not in final:
            reasons[t] = f"no record ({status}" + (f": {reason})" if reason else ")")
    outcomes = [r["outcome"] for r in final.values()]
    n_failed, n_error = outcomes.count("failed"), outcomes.count("error")
    n_passed = outcomes.count("passed")
    summary_reason = (
        f"the run is INCOMPLETE: {status}: {reason or 'no reason recorded'}; "
        f"{len(missing) + len(not_run)} of {len(planned)} planned cases not run"
    )
    verdict_reasons = []
    if n_failed:
        verdict_reasons.append(f"{n_failed} test(s) failed (product defect)")
    if not complete:
        verdict_reasons.append(summary_reason)
    if n_error:
        verdict_reasons.append(f"{n_error} test(s) hit a bench error (no verdict)")
    if not n_passed:
        verdict_reasons.append("no test passed")
    if n_failed:
        verdict = "FAIL"
    elif not complete:
        verdict = "INCOMPLETE"
    elif n_error or not n_passed:
        verdict = "FAIL"
    else:
        verdict = "PASS"
    sessions = info.get("sessions")
    n_sessions = _invocations(sessions) if isinstance(sessions, list) and sessions else 1
    resumed = isinstance(sessions, list) and any(
        isinstance(s, dict) and s.get("resumed") for s in sessions
    )
    run_id = info.get("run_id")
    return Completion(
        status=status,
        reason=reason,
        planned=len(planned),
        final=len(planned) - len(missing),
        missing=missing,
        not_run=not_run,
        complete=complete,
        verdict=verdict,
        verdict_reasons=verdict_reasons,
        not_run_reasons=reasons,
        unplanned=unplanned,
        signal=signal,
        at=at,
        legacy=legacy,
        run_id=str(run_id) if run_id else None,
        sessions=n_sessions,
        resumed=resumed,
    )


def _invocations(sessions: list[Any]) -> int:
    """How many times the run was invoked: a run on several benches has one ``sessions``
    entry per bench, sharing the invocation's ``invocation`` id."""
    seen: set[Any] = set()
    for k, s in enumerate(sessions):
        seen.add(s.get("invocation") or ("entry", k) if isinstance(s, dict) else ("entry", k))
    return len(seen)


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


_IDENTITY_RE = re.compile(r"(\w+)=(?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"|([^,)]+))")
_INSTRUMENT_FIELDS = (
    "manufacturer",
    "model",
    "serial",
    "firmware",
    "address",
    "calibration_due",
    "calibration_certificate",
    "calibrated_on",
)


def parse_instruments(value: Any) -> list[Instrument]:
    """Instrument identities in any of the shapes ``run.json`` may hold.

    The harness writes ``bench.identities``; depending on the bench that is a list or a
    mapping of identities, and an ``Identity`` dataclass that the JSON writer did not know
    arrives as its ``repr`` (``Identity(name='supply', ..., calibration_due=datetime.date(
    2027, 6, 30), calibration_certificate='C-1', calibrated_on=datetime.date(2026, 6, 30))``).
    All three are read so the signed header never loses a calibration date or certificate.
    """
    if not value:
        return []
    items: list[tuple[str | None, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = [(None, v) for v in value]
    else:
        items = [(None, value)]
    out = []
    for key, raw in items:
        fields: dict[str, str] = {}
        if isinstance(raw, dict):
            fields = {k: "" if v is None else str(v) for k, v in raw.items()}
        elif isinstance(raw, str):
            text = re.sub(
                r"datetime\.date\((\d+),\s*(\d+),\s*(\d+)\)",
                lambda m: f"'{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}'",
                raw,
            )
            for m in _IDENTITY_RE.finditer(text):
                val = next((g for g in m.groups()[1:] if g is not None), "")
                fields[m.group(1)] = "" if val == "None" else val.strip()
            if not fields:
                fields = {"model": raw}
        name = fields.get("name") or (str(key) if key is not None else "")
        out.append(Instrument(name=name, **{k: fields.get(k, "") for k in _INSTRUMENT_FIELDS}))
    return out


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
