"""Synthetic results directories, written through the harness's own record code.

The reports are tested (and can be demonstrated) without a bench: this module takes the real
plan (``harness.plan.build_plan``), makes a ``Measurement`` per case, and writes it through
``harness.session.CaseOutcome.record()``, ``ResultsWriter`` and ``write_run_info``, so the
files have exactly the format a real run has and follow it when the session changes.

Example::

    make_results_dir(tmp / "run1", firmware=(16, 4))                     # everything passes
    make_results_dir(tmp / "run2", measured={"P05-cell-overvoltage-protection-trip": 3.70})
"""

from __future__ import annotations

import datetime as dt
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
) -> SyntheticRun:
    """Write ``results.jsonl`` + ``run.json`` for the plan's cases of ``suite`` (None: all).

    Every testable case passes at its expected value unless ``measured`` gives another value
    (the verdict then follows the harness's own tolerance rule) or ``outcomes`` forces
    ``error``/``skipped``; untestable cases are skipped with the plan's reason. ``drop``
    leaves test ids out (a coverage hole); ``select`` filters cases.
    """
    import harness
    from harness.plan import build_plan
    from harness.procedures.record import ERROR, SKIPPED, Measurement
    from harness.results import ResultsWriter, write_run_info
    from harness.session import CaseOutcome
    from harness.spec import load_spec

    spec = load_spec()
    measured = dict(measured or {})
    outcomes = dict(outcomes or {})
    dropped = set(drop)
    cases = [
        c
        for c in build_plan(spec, None, suite=suite)
        if c.id not in dropped and (select is None or select(c))
    ]
    unknown = (set(measured) | set(outcomes)) - {c.id for c in cases}
    unknown |= dropped - {c.id for c in build_plan(spec, None, suite=suite)}
    if unknown:
        raise KeyError(f"no such case in the selection: {sorted(unknown)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    started = started_at or dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    writer = ResultsWriter(directory)
    run = SyntheticRun(directory)
    counts: dict[str, int] = {}
    try:
        for case in cases:
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
            result = CaseOutcome(
                case=case,
                outcome=outcome,
                measurement=measurement,
                message=message,
                bench_s=30.0,
                wall_s=0.01,
            )
            record = result.record()
            writer.write(record)
            run.records.append(record)
            counts[outcome] = counts.get(outcome, 0) + 1
    finally:
        writer.close()
    if plots:
        (directory / "plots").mkdir(exist_ok=True)
        for test_id, png in plots.items():
            (directory / "plots" / f"{test_id}.png").write_bytes(png)
    info = {
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
        "finished_at": (started + dt.timedelta(hours=2)).isoformat(timespec="seconds"),
        "counts": counts,
        "bench_s": round(30.0 * len(cases), 3),
    }
    write_run_info(directory, info)
    return run
