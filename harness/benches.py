"""Several benches in one run: which benches, and the bench sessions of the processes.

``bmshil run --bench A.yaml --bench B.yaml`` (or ``--sim-benches N``) runs the plan through
pytest-xdist, one worker per bench: worker ``gwK`` opens bench K (``--worker-bench``, given
once per bench, in order). The processes share one results directory:

* each worker (:class:`WorkerSession`) appends its records to ``results.jsonl`` under a
  lock (``harness.results.SharedResultsWriter``), each stamped with its bench (``worker``,
  ``bench_file``, ``bench_sha256``), and keeps its own entry of ``run.json`` ``sessions``
  (bench identity, device, how its part ended), written under ``run_info_lock``;
* the controller (:class:`ControllerSession`, the process that started the workers) writes
  the rest of ``run.json`` (``planned``, ``benches``, ``end``), and, when every worker has
  gone, a ``not_run`` record for every planned case nobody recorded (naming the bench it was
  dispatched to, if any). ``end`` is ``complete`` only when every worker completed and every
  planned case has a final record.

The scheduling (longest work first across benches, sequence groups kept together) is in
``harness.xdist_hooks``.
"""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path
from typing import Any

from harness.procedures.uncertainty import RULE_TEXT
from harness.results import (
    NOT_RUN,
    SharedResultsWriter,
    decision_counts,
    final_records,
    read_results,
    read_run_info,
    run_info_lock,
    write_run_info,
)
from harness.session import BenchSession, ConfigError, _end, _file_sha256, _now

#: workerinput key carrying the controller's invocation id to the workers.
INVOCATION_KEY = "bmshil_invocation"
#: user property a worker puts on a case's report once its bench is lost.
LOST_PROPERTY = "bmshil_bench_lost"

_LABEL: list[str] = []


def bench_label() -> str | None:
    """``gwK <bench file>`` in a worker of a several-bench run, else None (Allure label)."""
    return _LABEL[-1] if _LABEL else None


def addoption(group: Any) -> None:
    group.addoption(
        "--worker-bench",
        action="append",
        default=None,
        help="several benches, one pytest-xdist worker each: worker gwK opens the K-th "
        "(what bmshil run passes for --bench A --bench B or --sim-benches N)",
    )


def worker_id(config: Any) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return workerinput.get("workerid") if workerinput else None


def session_factory(config: Any, bench: str) -> tuple[Any, str]:
    """The session class (or factory) for this process and the bench it stands for."""
    benches = config.getoption("worker_bench") or []
    if not benches:
        return BenchSession, bench
    wid = worker_id(config)
    if wid is None:
        return partial(ControllerSession, benches=[Path(b) for b in benches]), benches[0]
    index = int(wid[2:]) if wid.startswith("gw") and wid[2:].isdigit() else -1
    if not 0 <= index < len(benches):
        raise ConfigError(
            f"--worker-bench: worker {wid} has no bench ({len(benches)} benches given)"
        )
    invocation = config.workerinput.get(INVOCATION_KEY) or uuid.uuid4().hex
    return partial(WorkerSession, worker=wid, invocation=invocation), benches[index]


def _entries(info: dict[str, Any], invocation: str) -> list[dict[str, Any]]:
    return [
        s
        for s in info.get("sessions") or []
        if isinstance(s, dict) and s.get("invocation") == invocation
    ]


class WorkerSession(BenchSession):
    """The bench session of one worker: its bench, its records, its ``sessions`` entry.

    A lost bench does not stop the run (``stop_on_lost``): the controller stops sending this
    worker cases, the ones already sent are recorded ``not_run``, the other benches go on."""

    stop_on_lost = False

    def __init__(
        self,
        bench_file: Path,
        suite: str | None,
        results_dir: Path | None,
        sim_faults: Path | None = None,
        *,
        worker: str,
        invocation: str,
        resume: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(bench_file, suite, None, sim_faults, resume=False, **kwargs)
        if results_dir is None:
            raise ConfigError("--worker-bench: a run on several benches needs --results-dir")
        self.results_dir = Path(results_dir)
        self.resume = resume
        self.worker = worker
        self.invocation = invocation
        self.previous = read_run_info(self.results_dir) or {}
        self.run_id = self.previous.get("run_id") or self.run_id
        self.planned = list(self.previous.get("planned") or [])
        if resume:
            self.done = set(final_records(read_results(self.results_dir)))
        self.bench_sha256 = _file_sha256(self.bench_file)
        self.writer = SharedResultsWriter(
            self.results_dir,
            stamp={
                "worker": worker,
                "bench_file": str(self.bench_file),
                "bench_sha256": self.bench_sha256,
            },
        )
        self._closed = False
        _LABEL.append(f"{worker} {self.bench_file}")

    def open_bench(self) -> Any:
        try:
            return super().open_bench()
        except Exception as exc:
            if self.bench is None:  # could not be opened: this bench refuses the run
                self.refused = True
                self.end = _end("aborted", f"refused before the first case: {exc}")
            raise

    def set_planned(self, ids: list[str]) -> list[str]:
        if not self.resume:
            self.planned = list(ids)  # the controller records the plan
            return list(ids)
        return super().set_planned(ids)

    def _end_of_run(self) -> dict[str, Any]:
        """How this worker's part ended; whether the run is complete is the controller's."""
        stopped = self._end_said_or_stopped()
        if stopped is not None:
            return stopped
        if self.interrupted:
            return _end("aborted", self.interrupted)
        return _end("complete", "")

    def _record_not_run(self) -> None:
        """The controller records what nobody ran (it knows what went where)."""

    def _write_timing(self) -> None:
        timing = self._timing()
        self._update_entry(
            {
                "timing": {
                    "cases": timing["cases"],
                    "cases_s": round(timing["cases_s"], 4),
                    "plots_wait_s": timing.get("plots_wait_s"),
                }
            }
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            super().close()
        finally:
            _LABEL.clear()

    def _write_run_info(self, final: bool = False) -> None:
        entry: dict[str, Any] = {
            "invocation": self.invocation,
            "worker": self.worker,
            "bench_file": str(self.bench_file),
            "bench_sha256": self.bench_sha256,
            "started_at": self.started.isoformat(timespec="seconds"),
            "finished_at": _now() if final else None,
            "end": self.end,
            "resumed": self.resume,
            "refused": self.refused,
            "sim_faults_in_force": self.faults_in_force,
            "overdue_accepted": self.overdue_accepted,
            **self.bench_info,
        }
        if final:
            entry["bench_s"] = round(self.bench_s_total, 3)
            entry["counts"] = {k: v for k, v in self.counts.items() if v}
            if self.close_problems:
                entry["close_problems"] = list(self.close_problems)
        self._update_entry(entry, replace=True)

    def _update_entry(self, values: dict[str, Any], replace: bool = False) -> None:
        with run_info_lock(self.results_dir):
            info = read_run_info(self.results_dir) or dict(self.previous)
            sessions = [s for s in info.get("sessions") or [] if isinstance(s, dict)]
            mine = next(
                (
                    s
                    for s in sessions
                    if s.get("invocation") == self.invocation and s.get("worker") == self.worker
                ),
                None,
            )
            if mine is None:
                mine = {"invocation": self.invocation, "worker": self.worker}
                sessions.append(mine)
            if replace:
                keep = {k: v for k, v in mine.items() if k == "timing"}
                mine.clear()
                mine.update({**keep, **values})
            else:
                mine.update(values)
            info["sessions"] = sessions
            write_run_info(self.results_dir, info)


class ControllerSession(BenchSession):
    """The run on several benches as a whole, in the process that started the workers.

    It never opens a bench. ``planned`` comes from the workers' collection (after -k/-m);
    at the end it combines the workers' ``sessions`` entries into the run's ``end`` and
    records ``not_run`` for every planned case without a record of this invocation."""

    def __init__(
        self,
        bench_file: Path,
        suite: str | None,
        results_dir: Path | None,
        sim_faults: Path | None = None,
        *,
        benches: list[Path],
        resume: bool = False,
        **kwargs: Any,
    ) -> None:
        if results_dir is None:
            raise ConfigError("--worker-bench: a run on several benches needs --results-dir")
        super().__init__(bench_file, suite, results_dir, sim_faults, resume=resume, **kwargs)
        assert self.writer is not None and self.results_dir is not None
        self.writer.close()  # the file exists now; the workers append to it
        self.writer = SharedResultsWriter(self.results_dir)
        self.benches = list(benches)
        self.invocation = uuid.uuid4().hex
        self.records_before = len(read_results(self.results_dir))
        #: test id -> worker it was sent to (the scheduler notes it)
        self.dispatched: dict[str, str] = {}
        #: worker -> why it went down, when it did not finish normally
        self.node_errors: dict[str, str] = {}
        #: worker -> its bench was refused before the first case (its reason)
        self.refusals: dict[str, str] = {}
        self._closed = False
        self._write_run_info()

    def bench_of(self, worker: str) -> Path | None:
        index = int(worker[2:]) if worker[2:].isdigit() else -1
        return self.benches[index] if 0 <= index < len(self.benches) else None

    def case_lookup(self) -> dict[str, Any]:
        """Plan case by id (estimates and sequence groups for the scheduler)."""
        return {c.id: c for c in self.cases()}

    def note_collection(self, ids: list[str]) -> None:
        """The first worker's collection: the plan of a new run (a resumed run keeps its
        recorded plan; each worker checked its collection against it)."""
        if not self.resume and not self.planned:
            self.set_planned(ids)

    def open_bench(self) -> Any:
        raise ConfigError("the controller of a run on several benches opens no bench")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._note_unfinished_workers()
        self.end = self._end_of_run()
        self._record_not_run()
        self._write_run_info(final=True)
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _this_invocation(self) -> list[dict[str, Any]]:
        return _entries(read_run_info(self.results_dir) or {}, self.invocation)

    def _note_unfinished_workers(self) -> None:
        """A worker that never wrote its end (it died, or never started) gets one saying so."""
        with run_info_lock(self.results_dir):
            info = read_run_info(self.results_dir) or {}
            sessions = [s for s in info.get("sessions") or [] if isinstance(s, dict)]
            seen = {s.get("worker"): s for s in sessions if s.get("invocation") == self.invocation}
            for k, bench in enumerate(self.benches):
                worker = f"gw{k}"
                entry = seen.get(worker)
                status = ((entry or {}).get("end") or {}).get("status")
                if entry is not None and status not in (None, "running"):
                    continue
                why = self.node_errors.get(worker) or "it ended without closing its session"
                end = _end("aborted", f"worker {worker} ({bench}) stopped: {why}")
                if entry is None:
                    entry = {
                        "invocation": self.invocation,
                        "worker": worker,
                        "bench_file": str(bench),
                        "bench_sha256": _file_sha256(bench),
                        "started_at": self.started.isoformat(timespec="seconds"),
                        "resumed": self.resume,
                    }
                    sessions.append(entry)
                entry.update({"end": end, "finished_at": _now()})
            info["sessions"] = sessions
            write_run_info(self.results_dir, info)

    def _end_of_run(self) -> dict[str, Any]:
        if self.interrupted in ("SIGINT", "SIGTERM"):
            return _end("interrupted", f"interrupted by {self.interrupted}", self.interrupted)
        entries = self._this_invocation()

        def said(e: dict[str, Any]) -> str:
            reason = (e.get("end") or {}).get("reason")
            return f"{e.get('worker')} ({e.get('bench_file')}): {reason}"

        by_status: dict[str, list[dict[str, Any]]] = {}
        for e in entries:
            by_status.setdefault(str((e.get("end") or {}).get("status")), []).append(e)
        if self.refusals:
            listed = "; ".join(f"{w}: {r}" for w, r in self.refusals.items())
            return _end("aborted", f"refused before the first case: {listed}")
        if by_status.get("bench_lost"):
            return _end("bench_lost", "; ".join(said(e) for e in by_status["bench_lost"]))
        if by_status.get("interrupted"):
            first = by_status["interrupted"][0]
            sig = (first.get("end") or {}).get("signal")
            return _end("interrupted", "; ".join(said(e) for e in by_status["interrupted"]), sig)
        others = [e for s, es in by_status.items() if s != "complete" for e in es]
        if others:
            return _end("aborted", "; ".join(said(e) for e in others))
        finals = final_records(read_results(self.results_dir))
        missing = [t for t in self.planned if t not in finals]
        if self.interrupted or missing:
            why = self.interrupted or "the run stopped early"
            return _end("aborted", f"{why}; {len(missing)} planned cases without a record")
        return _end("complete", "")

    def _record_not_run(self) -> None:
        if self.writer is None or self.end["status"] == "complete":
            return
        records = read_results(self.results_dir)
        finals = final_records(records)
        this_run = records[self.records_before :]
        said = {r.get("test_id") for r in this_run if r.get("outcome") == NOT_RUN}
        reason = f"not run: {self.end['status'].replace('_', ' ')}: {self.end['reason']}"
        for tid in self.planned:
            if tid in finals or tid in said:
                continue
            record: dict[str, Any] = {
                "test_id": tid,
                "item": tid.split("-", 1)[0],
                "kind": None,
                "outcome": NOT_RUN,
                "bench_s": 0.0,
                "wall_s": 0.0,
                "finished_at": _now(),
            }
            worker = self.dispatched.get(tid)
            bench = self.bench_of(worker) if worker else None
            if worker:
                where = f" (dispatched to {worker}, {bench}, which recorded no verdict)"
                record.update(
                    worker=worker, bench_file=str(bench), bench_sha256=_file_sha256(bench)
                )
            else:
                where = " (never dispatched to a bench)"
            record["message"] = record["reason"] = reason + where
            self.writer.write(record)

    def _write_run_info(self, final: bool = False) -> None:
        if self.results_dir is None:
            return
        with run_info_lock(self.results_dir):
            info = read_run_info(self.results_dir) or dict(self.previous)
            info.update(
                {
                    "harness_version": _version(),
                    "run_id": self.run_id,
                    "suite": self.suite,
                    "selection": {"suite": self.suite, **self.selection},
                    "bench_file": str(self.benches[0]),
                    "bench_sha256": _file_sha256(self.benches[0]),
                    "benches": [
                        {"worker": f"gw{k}", "bench_file": str(b), "bench_sha256": _file_sha256(b)}
                        for k, b in enumerate(self.benches)
                    ],
                    "spec_sha256": getattr(self.spec, "sha256", None),
                    "operator": self.operator_name,
                    "attended": self.operator is not None,
                    "started_at": self.previous.get("started_at")
                    or self.started.isoformat(timespec="seconds"),
                    "sim_faults": str(self.sim_faults) if self.sim_faults else None,
                    "sim_faults_sha256": _file_sha256(self.sim_faults) if self.sim_faults else None,
                    "sim_profile_requested": self.sim_profile,
                    "decision_rule": self.decision_rule,
                    "decision_rule_text": RULE_TEXT[self.decision_rule],
                    "planned": self.planned,
                    "end": self.end,
                }
            )
            info.setdefault("sessions", list(self.previous.get("sessions") or []))
            info.pop("finished_at", None)
            if final:
                self._final_info(info)
            write_run_info(self.results_dir, info)

    def _final_info(self, info: dict[str, Any]) -> None:
        """Counts, bench time, the benches' identity and problems, once every worker is done."""
        entries = _entries(info, self.invocation)
        info["finished_at"] = _now()
        finals = final_records(read_results(self.results_dir))
        counts: dict[str, int] = {}
        for rec in finals.values():
            counts[rec["outcome"]] = counts.get(rec["outcome"], 0) + 1
        counts[NOT_RUN] = sum(1 for i in self.planned if i not in finals)
        info["counts"] = {k: v for k, v in counts.items() if v}
        info["decisions"] = decision_counts(finals)
        this_bench_s = sum(float(e.get("bench_s") or 0.0) for e in entries)
        info["bench_s"] = round(float(self.previous.get("bench_s") or 0.0) + this_bench_s, 3)
        opened = [e for e in entries if e.get("bench_id") is not None]
        if opened:
            ids = sorted({str(e["bench_id"]) for e in opened})
            info["bench_id"] = "+".join(ids)
            first = min(opened, key=lambda e: str(e.get("worker")))
            for key in ("instruments", "device", "sim_faults_in_force"):
                if first.get(key) is not None:
                    info[key] = first[key]
            info["overdue_accepted"] = [o for e in opened for o in e.get("overdue_accepted") or []]
        problems = [
            f"{e.get('worker')} ({e.get('bench_file')}): {p}"
            for e in entries
            for p in e.get("close_problems") or []
        ]
        if problems or self.close_problems:
            info["close_problems"] = [*self.close_problems, *problems]


def _version() -> str:
    import harness

    return harness.__version__
