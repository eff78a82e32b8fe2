"""Synthetic results directories, written through the harness's own record code.

The reports are tested (and can be demonstrated) without a bench: this module takes the real
plan (``harness.plan.build_plan``), makes a ``Measurement`` per case, and writes it through
``harness.session.CaseOutcome.record()``, ``ResultsWriter`` and ``write_run_info``, so the
files have exactly the format a real run has and follow it when the session changes.

``run.json`` follows the completion contract (``run_id``, ``planned``, ``end``,
``sessions``, ``sim_faults_in_force``, ``overdue_accepted``); ``legacy=True`` writes the
older format without them. Incomplete runs are made with ``end=`` and ``stop_after=`` /
``unrecorded=`` / ``not_run=``; a resumed run with ``rerun=``.

Example::

    make_results_dir(tmp / "run1", firmware=(16, 4))                     # everything passes
    make_results_dir(tmp / "run2", measured={"P05-cell-overvoltage-protection-trip": 3.70})
    make_results_dir(tmp / "run3", end="interrupted", signal="SIGTERM", stop_after=72)
    make_results_dir(tmp / "run4", end="bench_lost", not_run={"P07-...": "bench lost"})
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Instruments as a simulated bench's run.json records them (one dict per identity).
SIM_INSTRUMENTS = [
    {
        "name": "supply",
        "manufacturer": "Agilent Technologies",
        "model": "N5767A",
        "serial": "SIM0001",
        "firmware": "sim",
        "address": "TCPIP0::127.0.0.1::40002::SOCKET",
        "calibration_due": "2027-06-30",
    },
    {
        "name": "load",
        "manufacturer": "ITECH",
        "model": "IT8512+",
        "serial": "SIM0002",
        "firmware": "sim",
        "address": "TCPIP0::127.0.0.1::40003::SOCKET",
        "calibration_due": "2027-01-15",
    },
]


@dataclass
class SyntheticRun:
    """What :func:`make_results_dir` wrote, for assertions."""

    directory: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    #: The test ids ``run.json`` lists as planned (every selected case).
    planned: list[str] = field(default_factory=list)


def make_results_dir(
    directory: Path,
    *,
    select: Callable[[Any], bool] | None = None,
    measured: Mapping[str, float] | None = None,
    outcomes: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
    firmware: tuple[int, int] = (16, 4),
    bench_id: str = "sim",
    spec_sha256: str | None = None,
    started_at: dt.datetime | None = None,
    suite: str | None = "regression",
    plots: Mapping[str, bytes] | None = None,
    end: str | None = "complete",
    end_reason: str | None = None,
    signal: str | None = None,
    legacy: bool = False,
    stop_after: int | None = None,
    unrecorded: Iterable[str] = (),
    not_run: Mapping[str, str] | Iterable[str] = (),
    lost_after: int | None = None,
    rerun: Mapping[str, str] | None = None,
    run_id: str | None = None,
    sim_faults_in_force: Mapping[str, Any] | None = None,
    overdue_accepted: Iterable[Mapping[str, str]] = (),
) -> SyntheticRun:
    """Write ``results.jsonl`` + ``run.json`` for the plan's cases of ``suite`` (None: all).

        Every testable case passes at its expected value unless ``measured`` gives another value
        (the verdict then follows the harness's own tolerance rule) or ``outcomes`` forces
        ``error``/``skipped``; untestable cases are skipped with the plan's reason. ``drop``
        leaves test ids out of the selection (not planned: a coverage hole); ``select`` filters
        cases.

        Completion (``run.json``'s ``planned`` is every selected case): ``end`` is the end
        status (``complete``, ``interrupted``, ``bench_lost``, ``aborted``; ``running`` for a
        crashed run; None for a run with ``planned`` but no ``end`` at all), with ``end_reason``
        and ``signal``. ``stop_after=N`` records only the first N planned cases (the process
        stopped there), ``unrecorded`` leaves planned ids without a record, ``not_run`` writes
        ``not_run`` records (ids, or ``{id: why}``), and ``lost_after=N`` writes one for every
    planned case from the N-th on (the bench was lost there). ``rerun={id: first_outcome}`` makes a
        resumed run: the first session recorded ``first_outcome`` for those ids, the second
        session (``resumed: true``) appended the final record. ``legacy`` writes the format from
        before the contract (no ``run_id``/``planned``/``end``/``sessions``).
    """
    import harness
    from bmsspec import load_spec
    from harness.plan import build_plan
    from harness.results import ResultsWriter, write_run_info
    from harness.session import CaseOutcome

    spec = load_spec()
    measured = dict(measured or {})
    outcomes = dict(outcomes or {})
    dropped = set(drop)
    cases = [
        c
        for c in build_plan(spec, None, suite=suite)
        if c.id not in dropped and (select is None or select(c))
    ]
    not_run_why = (
        dict(not_run)
        if isinstance(not_run, Mapping)
        else dict.fromkeys(not_run, "not run: the bench was lost before this case")
    )
    rerun = dict(rerun or {})
    left_out = set(unrecorded)
    unknown = (set(measured) | set(outcomes) | set(not_run_why) | set(rerun) | left_out) - {
        c.id for c in cases
    }
    unknown |= dropped - {c.id for c in build_plan(spec, None, suite=suite)}
    if unknown:
        raise KeyError(f"no such case in the selection: {sorted(unknown)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    started = started_at or dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    # A synthetic run replaces whatever the directory held (the harness's writer refuses to
    # overwrite an earlier run's records).
    (directory / "results.jsonl").unlink(missing_ok=True)
    writer = ResultsWriter(directory)
    run = SyntheticRun(directory, planned=[c.id for c in cases])
    counts: dict[str, int] = {}
    reruns: list[Any] = []
    try:
        for n, case in enumerate(cases):
            if case.id in left_out or (stop_after is not None and n >= stop_after):
                continue
            if lost_after is not None and n >= lost_after:
                not_run_why.setdefault(case.id, LOST_MESSAGE)
            if case.id in not_run_why:
                record = CaseOutcome(
                    case=case, outcome="not_run", measurement=None, message=not_run_why[case.id]
                ).record()
                writer.write(record)
                run.records.append(record)
                counts["not_run"] = counts.get("not_run", 0) + 1
                continue
            if case.id in rerun:
                first = rerun[case.id]
                record = CaseOutcome(
                    case=case,
                    outcome=first,
                    measurement=None,
                    message=f"first session: {first}",
                    bench_s=30.0,
                ).record()
                writer.write(record)
                run.records.append(record)
                reruns.append(case)
                continue
            _write_case(case, writer, run, counts, measured, outcomes)
        for case in reruns:
            _write_case(case, writer, run, counts, measured, outcomes)
    finally:
        writer.close()
    if plots:
        (directory / "plots").mkdir(exist_ok=True)
        for test_id, png in plots.items():
            (directory / "plots" / f"{test_id}.png").write_bytes(png)
    finished = started + dt.timedelta(hours=2)
    info: dict[str, Any] = {
        "harness_version": harness.__version__,
        "suite": suite,
        "bench_file": str(harness.FIXTURES_DIR / f"{bench_id}.yaml"),
        "spec_sha256": spec_sha256 or spec.sha256,
        "operator": "synthetic",
        "started_at": started.isoformat(timespec="seconds"),
        "sim_faults": None,
        "bench_id": bench_id,
        "instruments": SIM_INSTRUMENTS,
        "device": {"name": "1101-HIL1", "firmware": list(firmware), "manufacturer": "bms-hil twin"},
    }
    crashed = end in (None, "running")
    if not legacy:
        end_record = {
            "status": end or "running",
            "reason": end_reason
            if end_reason is not None
            else (
                f"{signal} received"
                if end == "interrupted" and signal
                else _END_REASONS.get(end or "", "")
            ),
            "signal": signal,
            "at": None if crashed else finished.isoformat(timespec="seconds"),
        }
        at_end = None if crashed else finished.isoformat(timespec="seconds")
        if rerun:
            middle = (started + dt.timedelta(hours=1)).isoformat(timespec="seconds")
            first_end = {"status": "interrupted", "reason": "SIGINT received", "signal": "SIGINT"}
            sessions = [
                {
                    "started_at": started.isoformat(timespec="seconds"),
                    "finished_at": middle,
                    "end": {**first_end, "at": middle},
                    "resumed": False,
                },
                {"started_at": middle, "finished_at": at_end, "end": end_record, "resumed": True},
            ]
        else:
            sessions = [
                {
                    "started_at": started.isoformat(timespec="seconds"),
                    "finished_at": at_end,
                    "end": end_record,
                    "resumed": False,
                }
            ]
        info.update(
            {
                "run_id": run_id
                or hashlib.sha256(f"{directory.name}|{started}".encode()).hexdigest()[:32],
                "planned": [c.id for c in cases],
                "sessions": sessions,
                "sim_faults_in_force": dict(sim_faults_in_force) if sim_faults_in_force else None,
                "overdue_accepted": [dict(o) for o in overdue_accepted],
            }
        )
        if end is not None:
            info["end"] = end_record
    if not crashed:
        info["finished_at"] = finished.isoformat(timespec="seconds")
        info["counts"] = counts
        info["bench_s"] = round(30.0 * len(cases), 3)
    write_run_info(directory, info)
    return run


LOST_MESSAGE = "not run: the bench was lost (supply did not answer) before this case"

#: The reason the harness would give for each end status (``end_reason`` overrides).
_END_REASONS = {
    "complete": "all planned cases run",
    "interrupted": "SIGTERM received",
    "bench_lost": "the bench stopped answering (simulator not reachable)",
    "aborted": "aborted by the operator",
    "running": "",
}


def _write_case(
    case: Any,
    writer: Any,
    run: SyntheticRun,
    counts: dict[str, int],
    measured: Mapping[str, float],
    outcomes: Mapping[str, str],
) -> None:
    """One case's final record, through the harness's own verdict and record code."""
    from harness.procedures.record import ERROR, SKIPPED, Measurement
    from harness.session import CaseOutcome

    forced = outcomes.get(case.id)
    measurement = None
    message = ""
    if not case.testable or forced == SKIPPED:
        outcome = SKIPPED
        message = case.reason or "not testable on this bench"
    elif forced == ERROR:
        outcome, message = ERROR, "bench: supply did not answer *OPC?"
    else:
        value = measured.get(case.id, case.expected)
        measurement = Measurement(
            name=case.kind,
            unit=case.unit,
            expected=case.expected,
            tolerance=case.tolerance,
            measured=value,
            uncertainty=(case.params.get("resolution") if case.params else None),
            probes=12,
        )
        ok = case.kind not in ("switch-on", "switch-off") or value == case.expected
        measurement.check("flag", ok, "" if ok else "flag did not follow the switch")
        outcome = measurement.outcome
        message = "; ".join(measurement.failures())
    record = CaseOutcome(
        case=case,
        outcome=outcome,
        measurement=measurement,
        message=message,
        bench_s=30.0,
        wall_s=0.01,
    ).record()
    writer.write(record)
    run.records.append(record)
    counts[outcome] = counts.get(outcome, 0) + 1
