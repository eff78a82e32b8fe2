"""A test session on one bench: plan, bench lifetime, running cases, writing results.

The pytest plugin is a thin adapter over this class; a script can drive it directly. The
bench is opened on first use and kept for the session; the safe state is restored between
cases by the procedures and on every exit by the ``Bench`` itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import hashlib
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness.procedures.record import (
    ERROR,
    SKIPPED,
    BenchFault,
    CaseNotTestable,
    Measurement,
    Recorder,
)
from harness.results import (
    NOT_RUN,
    ResultsWriter,
    final_records,
    read_results,
    read_run_info,
    write_run_info,
)
from instruments.errors import BenchLost

SUITES = ("smoke", "regression", "soak")


class ConfigError(Exception):
    """A usage or configuration error (bad option, bench file, faults file): exit code 2."""


@dataclass
class CaseOutcome:
    """What one case produced, ready for the results file and the reports."""

    case: Any
    outcome: str
    measurement: Measurement | None
    message: str = ""
    bench_s: float = 0.0
    wall_s: float = 0.0
    recorder: Recorder = field(default_factory=Recorder)

    def record(self) -> dict[str, Any]:
        c = self.case
        m = self.measurement
        return {
            "test_id": c.id,
            "item": c.item,
            "kind": c.kind,
            "category": getattr(c, "category", None),
            "quantity": getattr(c, "quantity", None),
            "name": _case_name(c),
            "outcome": self.outcome,
            "expected": m.expected if m else c.expected,
            "measured": m.measured if m else None,
            "uncertainty": m.uncertainty if m else None,
            "tolerance": m.tolerance if m else c.tolerance,
            "unit": c.unit,
            "margin": m.margin if m else None,
            "probes": m.probes if m else 0,
            "naive_probes": m.naive_probes if m else None,
            "checks": m.check_records() if m else [],
            "message": self.message,
            # A skip decided while running (no relay and nobody to ask) says why in its message.
            "reason": (getattr(c, "reason", None) or self.message or None)
            if self.outcome == SKIPPED
            else None,
            "note": m.note if m else "",
            "bench_s": round(self.bench_s, 3),
            "wall_s": round(self.wall_s, 4),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            # Operator evidence: one entry per prompt (prompt, answer, who, at, waited_s).
            **(
                {"operator": list(self.recorder.operator)}
                if getattr(self.recorder, "operator", None)
                else {}
            ),
        }


def _case_name(case: Any) -> str:
    return getattr(case, "name", None) or case.id


class BenchSession:
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

    # -- resume -------------------------------------------------------------------------
    def _load_previous(self) -> None:
        if self.results_dir is None:
            raise ConfigError("--resume needs a results directory")
        info = read_run_info(self.results_dir)
        if info is None or not info.get("planned"):
            raise ConfigError(
                f"--resume {self.results_dir}: no run.json with a planned case list there"
            )
        self.previous = info
        self.done = set(final_records(read_results(self.results_dir)))

    def set_planned(self, ids: list[str]) -> list[str]:
        """The selected cases of this invocation. A new run records them as its plan; a
        resumed run checks they are the plan it recorded, and returns the ids still to run
        (no final record yet: a case cut mid-way runs again)."""
        if not self.resume:
            self.planned = list(ids)
            self._write_run_info()
            return list(ids)
        from bmsspec import load_spec
        from bmsspec.config import spec_defaults

        # A run recorded before configurations existed ran on the spec defaults.
        recorded = (self.previous.get("configuration") or {}).get("sha256") or (
            spec_defaults(load_spec()).sha256
        )
        if recorded != self.configuration.sha256:
            raise ConfigError(
                f"--resume {self.results_dir}: the device configuration differs from the "
                f"recorded run ({(self.previous.get('configuration') or {}).get('name')!r} "
                f"then, {self.configuration.name!r} now)"
            )
        if list(ids) != self.planned:
            extra = sorted(set(ids) - set(self.planned))[:5]
            gone = sorted(set(self.planned) - set(ids))[:5]
            raise ConfigError(
                f"--resume {self.results_dir}: the plan differs from the recorded run "
                f"({len(ids)} cases now, {len(self.planned)} recorded; new {extra}, "
                f"missing {gone})"
            )
        return [i for i in ids if i not in self.done]

    # -- plan ---------------------------------------------------------------------------
    def capabilities(self) -> dict[str, bool]:
        from harness.benchfile import BenchFileError, bench_capabilities

        try:
            return bench_capabilities(self.bench_file)
        except BenchFileError as exc:
            raise ConfigError(str(exc)) from None

    def cases(self) -> list[Any]:
        from harness.benchfile import BenchFileError, bench_relays
        from harness.plan import build_plan
        from harness.reach import reach_of

        try:
            relays = bench_relays(self.bench_file)
            reach = reach_of(self.bench_file)
        except BenchFileError as exc:
            raise ConfigError(str(exc)) from None
        return build_plan(
            self.spec, self.capabilities(), suite=self.suite, relays=relays, reach=reach
        )

    # -- bench --------------------------------------------------------------------------
    def open_bench(self) -> Any:
        if self.bench is None:
            from harness.bench import Bench
            from harness.benchfile import BenchFileError

            try:
                self._bench_cm = Bench.open(self.bench_file)
                bench = self._bench_cm.__enter__()
            except BenchFileError as exc:
                self._bench_cm = None
                raise ConfigError(str(exc)) from None
            self.bench = bench
            try:
                self._preflight()
                self._write_configuration()
                self.faults_in_force = self._ask_faults_in_force()
                if self.sim_faults is not None:
                    self._inject_faults()
                # After the faults: a deviating simulated build reports its own version.
                self.bench_info = _bench_info(self.bench)
                self._check_resume_device()
            except BaseException as exc:
                self.end = _end("aborted", f"refused before the first case: {exc}")
                self.refused = True
                raise
            self._write_run_info()
        return self.bench

    def _preflight(self) -> None:
        """Before the first stimulus: no instrument past its calibration due date (unless
        accepted with --allow-overdue, which is recorded), and the safe state applies."""
        from harness.preflight import overdue_instruments

        overdue = overdue_instruments(self.bench)
        if overdue and not self.allow_overdue:
            listed = ", ".join(f"{o['instrument']} (due {o['calibration_due']})" for o in overdue)
            raise ConfigError(
                f"{self.bench_file}: calibration past due: {listed}; "
                "run with --allow-overdue to accept (recorded in run.json and the report)"
            )
        self.overdue_accepted = overdue
        self.bench.safe_state()

    def _write_configuration(self) -> None:
        """The configuration under test as the device's nominal state, before the first
        case: one whole-block write of every configured value (and of every spec default a
        device left elsewhere), only when the block differs. Each case's own nominal state
        then starts from it (``harness.procedures.runner`` writes ``spec`` defaults)."""
        from harness.procedures.record import Recorder
        from harness.procedures.rig import Rig

        rig = Rig(self.bench, self.spec, Recorder())
        values = {p.number: p.default for p in self.spec.parameters}
        switches = {s.number: s.default for s in self.spec.switches}
        # Remaining capacity is live: written only when the configuration names it.
        explicit = frozenset(self.configuration.values)
        self.configuration_written = rig.configure(values, switches, explicit)

    def _check_resume_device(self) -> None:
        if not self.resume:
            return
        before = (self.previous.get("device") or {}).get("firmware")
        now = (self.bench_info.get("device") or {}).get("firmware")
        if before != now:
            raise ConfigError(
                f"--resume {self.results_dir}: device firmware differs: recorded "
                f"{before!r}, the bench's device reports {now!r}"
            )

    def _ask_faults_in_force(self) -> Any:
        control = getattr(self.bench, "sim_control", None)
        if control is None:
            return None
        reply = control.request({"op": "faults_in_force"})
        return reply.get("faults") if reply.get("ok") else None

    def _inject_faults(self) -> None:
        control = getattr(self.bench, "sim_control", None)
        if control is None:
            raise ConfigError(
                f"--sim-faults {self.sim_faults}: the bench {self.bench_file} is not a simulated "
                "bench (its clock has no simulator control channel)"
            )
        import yaml

        try:
            faults = yaml.safe_load(self.sim_faults.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"--sim-faults {self.sim_faults}: not valid YAML: {exc}") from exc
        reply = control.request({"op": "faults", "faults": faults})
        if not reply.get("ok"):
            raise ConfigError(
                f"--sim-faults {self.sim_faults}: refused by the simulator: {reply.get('error')}"
            )
        self.injected_faults = True
        self.faults_in_force = self._ask_faults_in_force() or faults

    def _clear_faults(self) -> None:
        """Faults belong to their run: what it injected is cleared when it ends."""
        if not self.injected_faults or self.bench is None:
            return
        try:
            reply = self.bench.sim_control.request({"op": "faults", "faults": {}})
            if not reply.get("ok"):
                self.close_problems.append(f"faults not cleared: {reply.get('error')}")
        except Exception as exc:  # noqa: BLE001 - a lost simulator has nothing left to clear
            self.close_problems.append(f"faults not cleared: {exc}")

    def note_interrupt(self, exc: BaseException) -> None:
        """Called by the plugin when pytest stops on Ctrl-C/SIGTERM (or our own stop)."""
        if self.lost is not None:
            return
        signum = getattr(exc, "signum", None)
        if signum is not None:
            self.interrupted = signal.Signals(signum).name
        elif isinstance(exc, KeyboardInterrupt) and type(exc) is KeyboardInterrupt:
            self.interrupted = "SIGINT"
        else:
            self.interrupted = self.interrupted or "stopped"

    def close(self) -> None:
        try:
            self._clear_faults()
            if self._bench_cm is not None:
                try:
                    self._bench_cm.__exit__(None, None, None)
                except Exception as exc:  # noqa: BLE001 - said in run.json and the summary
                    self.close_problems.append(str(exc))
        finally:
            self._bench_cm = None
            self._finish_plots()
            self.end = self._end_of_run()
            self._record_not_run()
            self._write_run_info(final=True)
            if self.writer is not None:
                self.writer.close()
                self.writer = None
            self._write_timing()

    def _end_of_run(self) -> dict[str, Any]:
        if self.end.get("status") not in (None, "running"):
            return {**self.end, "at": _now()}
        if self.lost is not None:
            return _end("bench_lost", str(self.lost))
        if self.interrupted in ("SIGINT", "SIGTERM"):
            return _end("interrupted", f"interrupted by {self.interrupted}", self.interrupted)
        missing = [i for i in self.planned if i not in self.done and i not in self.recorded]
        if self.interrupted or missing:
            why = self.interrupted or "the run stopped early"
            return _end("aborted", f"{why}; {len(missing)} planned cases without a record")
        return _end("complete", "")

    def _record_not_run(self) -> None:
        """Every planned case this run did not get to gets a ``not_run`` record saying why."""
        if self.writer is None or self.end["status"] == "complete" or self.refused:
            return
        reason = f"not run: {self.end['status'].replace('_', ' ')}: {self.end['reason']}"
        for tid in self.planned:
            if tid in self.done or tid in self.recorded or tid in self.said_not_run:
                continue
            self.writer.write(
                {
                    "test_id": tid,
                    "item": tid.split("-", 1)[0],
                    "kind": None,
                    "outcome": NOT_RUN,
                    "message": reason,
                    "reason": reason,
                    "bench_s": 0.0,
                    "wall_s": 0.0,
                    "finished_at": _now(),
                }
            )
            self.counts[NOT_RUN] = self.counts.get(NOT_RUN, 0) + 1

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
                )
                outcome = measurement.outcome
                message = "; ".join(measurement.failures())
            except CaseNotTestable as exc:
                outcome, message = SKIPPED, str(exc)
            except BenchLost as exc:
                outcome, message, measurement = NOT_RUN, f"not run: {exc}", None
                self.lost = exc
            except BenchFault as exc:
                outcome, message = ERROR, f"bench: {exc}"
                measurement = None
                self._check_alive()
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a driver or link error is a bench error, not a verdict
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
        if self.writer is not None:
            self.writer.write(result.record())
            if outcome != NOT_RUN:
                self._save_plots(result)
        return result

    def _check_alive(self) -> bool:
        """After a bench error: does the bench still answer? If not, the bench is lost."""
        if self.bench is None or self.lost is not None:
            return self.lost is None
        from harness.preflight import unresponsive

        what = unresponsive(self.bench)
        if what is not None:
            self.lost = BenchLost(what[0], what[1])
            return False
        return True

    def _save_plots(self, result: CaseOutcome) -> None:
        """Keep each case's plot beside the results (the compliance report embeds them).

        The trace plot is drawn off the case loop by the plot worker (``harness.plots``):
        the recorder's ``render_job`` goes to it here with ``plots/<id>.png`` as one more
        target. Also notes the case in run.json ``timing``."""
        from harness import plots as plot_worker

        now = time.monotonic()
        timing = self._timing()
        timing.setdefault("first_case_started_mono", round(now - result.wall_s, 4))
        timing["cases"] += 1
        timing["cases_s"] += result.wall_s
        if self.results_dir is not None:
            plots = self.results_dir / "plots"
            for name, data, mime in result.recorder.attachments:
                if mime == "image/png":
                    plots.mkdir(exist_ok=True)
                    suffix = "" if name == "trace.png" else "-" + name.rsplit(".", 1)[0]
                    (plots / f"{result.case.id}{suffix}.png").write_bytes(data)
            job = getattr(result.recorder, "render_job", None)
            if job is not None:
                if job.plot:
                    job.png_targets.append(str(plots / f"{result.case.id}.png"))
                plot_worker.worker().submit(job)
        timing["last_case_finished_mono"] = round(time.monotonic(), 4)

    def _timing(self) -> dict[str, Any]:
        """run.json ``timing`` of this session, on ``time.monotonic()``."""
        timing = getattr(self, "_timing_data", None)
        if timing is None:
            timing = self._timing_data = {"cases": 0, "cases_s": 0.0}
        return timing

    def _finish_plots(self) -> None:
        """Wait (bounded) for the plots still being drawn and stop the worker; a plot that
        could not be written is said once in ``close_problems``, never raised."""
        from harness import plots as plot_worker

        t0 = time.monotonic()
        try:
            self.close_problems.extend(plot_worker.finish())
        except BaseException as exc:  # noqa: BLE001 - the results must still be written
            self.close_problems.append(f"plots: {type(exc).__name__}: {exc}")
        self._timing()["plots_wait_s"] = round(time.monotonic() - t0, 4)

    def _write_timing(self) -> None:
        """Where this session's wall time went, into run.json (``timing``): monotonic
        instants of this machine, comparable between processes (the benchmark's)."""
        if self.results_dir is None:
            return
        now = time.monotonic()
        timing = self._timing()
        info = read_run_info(self.results_dir)
        if info is None:
            return
        info["timing"] = {
            "clock": "time.monotonic() (CLOCK_MONOTONIC), seconds",
            "process_started_mono": self._process_started_mono(),
            "session_started_mono": round(
                now - (dt.datetime.now(dt.UTC) - self.started).total_seconds(), 4
            ),
            "first_case_started_mono": timing.get("first_case_started_mono"),
            "last_case_finished_mono": timing.get("last_case_finished_mono"),
            "close_finished_mono": round(now, 4),
            "cases": timing["cases"],
            "cases_s": round(timing["cases_s"], 4),
            "plots_wait_s": timing.get("plots_wait_s"),
            "note": (
                "this session only; process start from /proc/self/stat (10 ms steps), "
                "session start from started_at; first case start = its record time minus "
                "its wall_s; last case end = after its record and plot hand-over; "
                "close end = run.json final; cases_s = sum of wall_s"
            ),
        }
        write_run_info(self.results_dir, info)

    @staticmethod
    def _process_started_mono() -> float | None:
        """When this process started, on ``time.monotonic()`` (Linux; None elsewhere)."""
        import os

        try:
            stat = Path("/proc/self/stat").read_text()
            ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime
            boot = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
            return round(time.monotonic() - boot, 3)
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    # -- run description ----------------------------------------------------------------
    def _write_run_info(self, final: bool = False) -> None:
        if self.results_dir is None:
            return
        info: dict[str, Any] = dict(self.previous)
        session = {
            "started_at": self.started.isoformat(timespec="seconds"),
            "finished_at": None,
            "end": self.end,
            "resumed": self.resume,
        }
        if final:
            session["finished_at"] = _now()
        sessions = list(self.previous.get("sessions") or []) + [session]
        info.update(
            {
                "harness_version": harness.__version__,
                "run_id": self.run_id,
                "suite": self.suite,
                "selection": {"suite": self.suite, **self.selection},
                "bench_file": str(self.bench_file),
                "bench_sha256": _file_sha256(self.bench_file),
                "spec_sha256": getattr(self.spec, "sha256", None),
                "configuration": {
                    **self.configuration.describe(),
                    "written_at_start": self.configuration_written,
                },
                "operator": self.operator_name,
                "attended": self.operator is not None,
                "started_at": self.previous.get("started_at")
                or self.started.isoformat(timespec="seconds"),
                "sim_faults": str(self.sim_faults) if self.sim_faults else None,
                "sim_faults_sha256": _file_sha256(self.sim_faults) if self.sim_faults else None,
                "sim_faults_in_force": self.faults_in_force,
                "overdue_accepted": self.overdue_accepted,
                "planned": self.planned,
                "end": self.end,
                "sessions": sessions,
            }
        )
        info.update(self.bench_info)
        info.pop("finished_at", None)
        if final:
            info["finished_at"] = _now()
            finals = final_records(read_results(self.results_dir))
            counts: dict[str, int] = {}
            for rec in finals.values():
                counts[rec["outcome"]] = counts.get(rec["outcome"], 0) + 1
            counts[NOT_RUN] = sum(1 for i in self.planned if i not in finals)
            info["counts"] = {k: v for k, v in counts.items() if v}
            info["bench_s"] = round(
                float(self.previous.get("bench_s") or 0.0) + self.bench_s_total, 3
            )
            if self.close_problems:
                info["close_problems"] = list(self.close_problems)
        write_run_info(self.results_dir, info)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _end(status: str, reason: str, sig: str | None = None) -> dict[str, Any]:
    return {"status": status, "reason": reason, "signal": sig, "at": _now()}


def _file_sha256(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _bench_info(bench: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"bench_id": getattr(bench, "bench_id", None)}
    with contextlib.suppress(Exception):
        info["instruments"] = bench.identities
    with contextlib.suppress(Exception):
        dev = bench.bms.device_info()
        info["device"] = {
            "name": dev.name.strip(),
            "firmware": dev.version,
            "manufacturer": dev.manufacturer,
        }
    return info


def default_bench_file() -> Path:
    return harness.FIXTURES_DIR / "sim.yaml"
