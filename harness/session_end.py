"""How a session ends and what it leaves: the end record (complete, interrupted, bench lost,
aborted), a ``not_run`` record for every planned case it did not get to, the case plots,
run.json's description of the run and its ``timing``."""

from __future__ import annotations

import datetime as dt
import hashlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness.procedures.record import SKIPPED, Measurement, Recorder
from harness.procedures.uncertainty import RULE_TEXT
from harness.results import (
    NOT_RUN,
    decision_counts,
    final_records,
    read_results,
    read_run_info,
    write_run_info,
)


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
            "uncertainty_budget": m.budget.to_dict() if m and m.budget is not None else None,
            # pass, conditional pass, conditional fail or fail; None without a verdict.
            "decision": m.decision if m and self.outcome != NOT_RUN else None,
            "tolerance": m.tolerance if m else c.tolerance,
            "unit": c.unit,
            "margin": m.margin if m else None,
            "probes": m.probes if m else 0,
            "naive_probes": m.naive_probes if m else None,
            "channel_probes": m.channel_probes if m else 0,
            "checks": m.check_records() if m else [],
            # The channel(s) the case drove: the measurement's, else the plan's reference.
            "channel": (m.channel if m else None)
            or (getattr(c, "params", None) or {}).get("channel"),
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


class SessionEnd:
    """The end of a :class:`~harness.session.BenchSession`: its end record, the ``not_run``
    records, the plots, and run.json (description and timing)."""

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

    def _end_said_or_stopped(self) -> dict[str, Any] | None:
        """The end already said, or a lost bench, or a signal; None: the run ran its course."""
        if self.end.get("status") not in (None, "running"):
            return {**self.end, "at": _now()}
        if self.lost is not None:
            return _end("bench_lost", str(self.lost))
        if self.interrupted in ("SIGINT", "SIGTERM"):
            return _end("interrupted", f"interrupted by {self.interrupted}", self.interrupted)
        return None

    def _end_of_run(self) -> dict[str, Any]:
        stopped = self._end_said_or_stopped()
        if stopped is not None:
            return stopped
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
                "sim_profile": self.profile_in_force,
                "sim_profile_requested": self.sim_profile,
                "overdue_accepted": self.overdue_accepted,
                "decision_rule": self.decision_rule,
                "decision_rule_text": RULE_TEXT[self.decision_rule],
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
            info["decisions"] = decision_counts(finals)
            info["bench_s"] = round(
                float(self.previous.get("bench_s") or 0.0) + self.bench_s_total, 3
            )
            if self.close_problems:
                info["close_problems"] = list(self.close_problems)
        write_run_info(self.results_dir, info)
