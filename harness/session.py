"""A test session on one bench: plan, bench lifetime, running cases, writing results.

The pytest plugin is a thin adapter over this class; a script can drive it directly. The
bench is opened on first use and kept for the session; the safe state is restored between
cases by the procedures and on every exit by the ``Bench`` itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import time
import uuid
from pathlib import Path
from typing import Any

import harness
from harness import bench_signals
from harness.procedures.record import (
    ERROR,
    SKIPPED,
    BenchFault,
    CaseNotTestable,
    Recorder,
)
from harness.results import (
    NOT_RUN,
    ResultsWriter,
    final_records,
    read_results,
)
from harness.session_bench import SessionBench
from harness.session_bench import _bench_info as _bench_info
from harness.session_end import CaseOutcome, SessionEnd
from harness.session_end import _case_name as _case_name
from harness.session_end import _end as _end
from harness.session_end import _file_sha256 as _file_sha256
from harness.session_end import _now as _now
from harness.session_errors import ConfigError
from harness.session_resume import SessionResume
from instruments.errors import BenchLost

SUITES = ("smoke", "regression", "soak")


class BenchSession(SessionResume, SessionBench, SessionEnd):
    """One bench, one plan, one results directory.

    How the run ended is part of its result (``run.json`` ``end``): ``complete``,
    ``interrupted`` (which signal), ``bench_lost`` (what stopped answering) or ``aborted``;
    ``running`` until then, so a run whose process died reads as crashed. Planned cases the
    run did not get to are recorded as ``not_run``.
    """

    def __init__(
        self,
        bench_file: Path,
        suite: str | None,
        results_dir: Path | None,
        sim_faults: Path | None = None,
        *,
        resume: bool = False,
        allow_overdue: bool = False,
        selection: dict[str, Any] | None = None,
        operator: str | None = None,
        unattended: bool = False,
        parameters: Path | None = None,
        decision_rule: str = "simple",
        sim_profile: str | None = None,
        sim_seed: int | None = None,
    ) -> None:
        if suite is not None and suite not in SUITES:
            raise ConfigError(f"--suite: unknown suite {suite!r} (choose from {', '.join(SUITES)})")
        self.bench_file = Path(bench_file)
        if not self.bench_file.exists():
            raise ConfigError(f"--bench: bench file {self.bench_file} does not exist")
        self.suite = suite
        self.results_dir = Path(results_dir) if results_dir else None
        self.sim_faults = Path(sim_faults) if sim_faults else None
        if self.sim_faults is not None and not self.sim_faults.exists():
            raise ConfigError(f"--sim-faults: file {self.sim_faults} does not exist")
        from bmsspec import SpecError, load_spec
        from bmsspec.config import configured_spec

        try:
            self.spec, self.configuration = configured_spec(load_spec(), parameters)
        except SpecError as exc:
            raise ConfigError(str(exc)) from None
        self._bench_cm: Any = None
        self.bench: Any = None
        #: Bench and device identity, read once while the bench is open (run.json, reports).
        self.bench_info: dict[str, Any] = {}
        self.resume = resume
        #: The decision rule every measurement is judged by (``uncertainty.RULES``).
        self.decision_rule = decision_rule
        #: The simulated device profile asked for (--sim-profile/--sim-seed), set over the
        #: control channel like the faults; and the one in force as the simulator reports it.
        self.sim_profile: dict[str, Any] | None = None
        if sim_profile is not None or sim_seed is not None:
            self.sim_profile = {"profile": sim_profile or "ideal", "seed": int(sim_seed or 0)}
        self.profile_in_force: dict[str, Any] | None = None
        self.allow_overdue = allow_overdue
        self.selection = dict(selection or {})
        from harness.operator import Operator, availability, operator_name

        #: Who answers the operator prompts (``--operator``, else the login name); None when
        #: nobody can be asked, and ``operator_absent`` says why ("unattended run").
        self.operator_name = operator_name(operator)
        self.operator_absent = availability(unattended)
        self.operator = None if self.operator_absent else Operator(self.operator_name)
        self.previous: dict[str, Any] = {}
        self.done: set[str] = set()
        if resume:
            self._load_previous()
        self.run_id = self.previous.get("run_id") or uuid.uuid4().hex
        self.planned: list[str] = list(self.previous.get("planned") or [])
        self.recorded: set[str] = set()
        #: This session's final records by test id (the evidence of a later case).
        self._finals: dict[str, dict[str, Any]] = {}
        self.said_not_run: set[str] = set()
        try:
            self.writer = (
                ResultsWriter(self.results_dir, resume=resume) if self.results_dir else None
            )
        except FileExistsError:
            raise ConfigError(
                f"--results-dir {self.results_dir}: already holds results.jsonl of another "
                "run; choose a new directory or resume that run"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"--results-dir {self.results_dir}: cannot write there: {exc.strerror or exc}"
            ) from None
        self.started = dt.datetime.now(dt.UTC)
        self.counts: dict[str, int] = {}
        self.bench_s_total = 0.0
        #: Set when the bench stopped answering: the run stops, later cases are not run.
        self.lost: BenchLost | None = None
        #: The signal that interrupted the run (``SIGINT``/``SIGTERM``), or another reason.
        self.interrupted: str | None = None
        self.end: dict[str, Any] = {"status": "running", "reason": "", "signal": None, "at": None}
        self.overdue_accepted: list[dict[str, str]] = []
        self.faults_in_force: Any = None
        self.injected_faults = False
        #: Problems met while leaving (safe state incomplete, faults not cleared): printed by
        #: ``bmshil run`` and kept in run.json; never a traceback.
        self.close_problems: list[str] = []
        #: The bench was opened but the run refused before its first case (preflight).
        self.refused = False
        #: Whether the session's start wrote the configuration to the device.
        self.configuration_written: bool | None = None

    # -- plan ---------------------------------------------------------------------------
    def capabilities(self) -> dict[str, bool]:
        from harness.benchfile import BenchFileError, bench_capabilities

        try:
            return bench_capabilities(self.bench_file)
        except BenchFileError as exc:
            raise ConfigError(str(exc)) from None

    def cases(self) -> list[Any]:
        from harness.benchfile import BenchFileError, bench_relays
        from harness.link_coverage import coverage_of
        from harness.plan import build_plan
        from harness.reach import reach_of

        try:
            relays = bench_relays(self.bench_file)
            reach = reach_of(self.bench_file)
            link = coverage_of(self.bench_file, self.spec)
        except BenchFileError as exc:
            raise ConfigError(str(exc)) from None
        return build_plan(
            self.spec,
            self.capabilities(),
            suite=self.suite,
            relays=relays,
            reach=reach,
            link=link,
        )

    # -- cases --------------------------------------------------------------------------
    def run(
        self, case: Any, recorder: Recorder | None = None, on_finish: Any = None
    ) -> CaseOutcome:
        """Run one case; never raises for a device failure or an untestable case.

        A case during which the bench stopped answering is recorded as ``not_run`` (no
        verdict rests on it) and ``self.lost`` is set: the caller stops the run.

        ``on_finish(outcome)`` runs before the record is written (the Allure recorder
        attaches the trace and makes the plot there, which the results directory keeps)."""
        from harness.procedures.runner import run_case

        recorder = recorder or Recorder()
        wall0 = time.perf_counter()
        bench_s = 0.0
        measurement = None
        message = ""
        if self.lost is not None:
            outcome, message = NOT_RUN, f"not run: {self.lost}"
        elif not getattr(case, "testable", True):
            outcome = SKIPPED
            message = case.reason or "not testable on this bench"
        else:
            bench = self.open_bench()
            t0 = None
            try:
                t0 = bench.clock.now()
                measurement = run_case(
                    bench,
                    self.spec,
                    case,
                    recorder,
                    operator=self.operator,
                    operator_absent=self.operator_absent,
                    evidence=self.evidence_record,
                    rule=self.decision_rule,
                )
                outcome = measurement.outcome
                message = "; ".join(measurement.failures())
            except CaseNotTestable as exc:
                _raise_pending_interrupt(exc)
                outcome, message = SKIPPED, str(exc)
            except BenchLost as exc:
                _raise_pending_interrupt(exc)
                outcome, message, measurement = NOT_RUN, f"not run: {exc}", None
                self.lost = exc
            except BenchFault as exc:
                _raise_pending_interrupt(exc)
                outcome, message = ERROR, f"bench: {exc}"
                measurement = None
                self._check_alive()
            except KeyboardInterrupt:
                bench_signals.forget_interrupt()
                raise
            except Exception as exc:  # a driver or link error is a bench error, not a verdict
                _raise_pending_interrupt(exc)
                outcome, message = ERROR, f"{type(exc).__name__}: {exc}"
                measurement = None
                if self._check_alive():
                    with contextlib.suppress(Exception):
                        bench.safe_state()
            if self.lost is not None and outcome != NOT_RUN:
                outcome, message = NOT_RUN, f"not run: {self.lost}"
            if t0 is not None and self.lost is None:
                with contextlib.suppress(Exception):
                    bench_s = bench.clock.now() - t0
        result = CaseOutcome(
            case=case,
            outcome=outcome,
            measurement=measurement,
            message=message,
            bench_s=bench_s,
            wall_s=time.perf_counter() - wall0,
            recorder=recorder,
        )
        if on_finish is not None and outcome != NOT_RUN:
            on_finish(result)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.bench_s_total += bench_s
        if outcome != NOT_RUN:
            self.recorded.add(case.id)
        else:
            self.said_not_run.add(case.id)
        record = result.record()
        if outcome != NOT_RUN:
            self._finals[case.id] = record
        if self.writer is not None:
            self.writer.write(record)
            if outcome != NOT_RUN:
                self._save_plots(result)
        return result

    def evidence_record(self, test_id: str) -> dict[str, Any] | None:
        """The final record of ``test_id`` in this run: from ``results.jsonl`` (every
        session of a resumed run, every bench of a run on several), else this session's."""
        if self.results_dir is not None and (self.results_dir / "results.jsonl").exists():
            return final_records(read_results(self.results_dir)).get(test_id)
        return self._finals.get(test_id)


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def default_bench_file() -> Path:
    return harness.FIXTURES_DIR / "sim.yaml"


def _raise_pending_interrupt(exc: BaseException) -> None:
    """A signal came during the case and a cleanup step then failed (``exc``): the signal
    stops the run; the failure it caused is no verdict on the device."""
    interrupt = bench_signals.interrupt_pending()
    if interrupt is not None:
        raise interrupt from exc
