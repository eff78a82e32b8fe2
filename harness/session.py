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
from harness.results import ResultsWriter, write_run_info

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
            "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in (m.checks if m else [])],
            "message": self.message,
            "reason": getattr(c, "reason", None) if self.outcome == SKIPPED else None,
            "note": m.note if m else "",
            "bench_s": round(self.bench_s, 3),
            "wall_s": round(self.wall_s, 4),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }


def _case_name(case: Any) -> str:
    return getattr(case, "name", None) or case.id


class BenchSession:
    """One bench, one plan, one results directory."""

    def __init__(
        self,
        bench_file: Path,
        suite: str | None,
        results_dir: Path | None,
        sim_faults: Path | None = None,
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
        from harness.spec import load_spec

        self.spec = load_spec()
        self._bench_cm: Any = None
        self.bench: Any = None
        #: Bench and device identity, read once while the bench is open (run.json, reports).
        self.bench_info: dict[str, Any] = {}
        self.writer = ResultsWriter(self.results_dir) if self.results_dir else None
        self.started = dt.datetime.now(dt.UTC)
        self.counts: dict[str, int] = {}
        self.bench_s_total = 0.0

    # -- plan ---------------------------------------------------------------------------
    def capabilities(self) -> dict[str, bool]:
        from harness.benchfile import read_capabilities

        return read_capabilities(self.bench_file)

    def cases(self) -> list[Any]:
        from harness.plan import build_plan

        return build_plan(self.spec, self.capabilities(), suite=self.suite)

    # -- bench --------------------------------------------------------------------------
    def open_bench(self) -> Any:
        if self.bench is None:
            from harness.bench import Bench

            self._bench_cm = Bench.open(self.bench_file)
            self.bench = self._bench_cm.__enter__()
            if self.sim_faults is not None:
                self._inject_faults()
            # After the faults: a deviating simulated build reports its own version.
            self.bench_info = _bench_info(self.bench)
            self._write_run_info(final=False)
        return self.bench

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

    def close(self) -> None:
        try:
            if self._bench_cm is not None:
                self._bench_cm.__exit__(None, None, None)
        finally:
            self._bench_cm = None
            self._write_run_info(final=True)
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    # -- cases --------------------------------------------------------------------------
    def run(
        self, case: Any, recorder: Recorder | None = None, on_finish: Any = None
    ) -> CaseOutcome:
        """Run one case; never raises for a device failure or an untestable case.

        ``on_finish(outcome)`` runs before the record is written (the Allure recorder
        attaches the trace and makes the plot there, which the results directory keeps)."""
        from harness.procedures.runner import run_case

        recorder = recorder or Recorder()
        wall0 = time.perf_counter()
        bench_s = 0.0
        measurement = None
        message = ""
        if not getattr(case, "testable", True):
            outcome = SKIPPED
            message = case.reason or "not testable on this bench"
        else:
            bench = self.open_bench()
            t0 = bench.clock.now()
            try:
                measurement = run_case(bench, self.spec, case, recorder)
                outcome = measurement.outcome
                message = "; ".join(measurement.failures())
            except CaseNotTestable as exc:
                outcome, message = SKIPPED, str(exc)
            except BenchFault as exc:
                outcome, message = ERROR, f"bench: {exc}"
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a driver or link error is a bench error, not a verdict
                outcome, message = ERROR, f"{type(exc).__name__}: {exc}"
                with contextlib.suppress(Exception):
                    bench.safe_state()
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
        if on_finish is not None:
            on_finish(result)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.bench_s_total += bench_s
        if self.writer is not None:
            self.writer.write(result.record())
            self._save_plots(result)
        return result

    def _save_plots(self, result: CaseOutcome) -> None:
        """Keep each case's plot beside the results (the compliance report embeds them)."""
        for name, data, mime in result.recorder.attachments:
            if mime == "image/png" and self.results_dir is not None:
                plots = self.results_dir / "plots"
                plots.mkdir(exist_ok=True)
                suffix = "" if name == "trace.png" else "-" + name.rsplit(".", 1)[0]
                (plots / f"{result.case.id}{suffix}.png").write_bytes(data)

    # -- run description ----------------------------------------------------------------
    def _write_run_info(self, final: bool) -> None:
        if self.results_dir is None:
            return
        info: dict[str, Any] = {
            "harness_version": harness.__version__,
            "suite": self.suite,
            "bench_file": str(self.bench_file),
            "spec_sha256": getattr(self.spec, "sha256", None),
            "operator": _operator(),
            "started_at": self.started.isoformat(timespec="seconds"),
            "sim_faults": str(self.sim_faults) if self.sim_faults else None,
        }
        info.update(self.bench_info)
        if final:
            info["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            info["counts"] = dict(self.counts)
            info["bench_s"] = round(self.bench_s_total, 3)
        write_run_info(self.results_dir, info)


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
