"""The session's bench: opening it (preflight, the configuration under test, simulator faults),
the device identity for run.json, and telling a bench error from a lost bench."""

from __future__ import annotations

import contextlib
from typing import Any

from harness.procedures.record import Recorder
from harness.session_end import _end
from harness.session_errors import ConfigError
from instruments.errors import BenchLost


class SessionBench:
    """Bench side of a :class:`~harness.session.BenchSession`: open, refuse, inject and clear
    faults, and whether the bench still answers after an error."""

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
                if self.sim_profile is not None:
                    self._set_profile()
                self.profile_in_force = self._ask_profile_in_force()
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
        from harness.procedures.rig import Rig

        rig = Rig(self.bench, self.spec, Recorder())
        values = {p.number: p.default for p in self.spec.parameters}
        switches = {s.number: s.default for s in self.spec.switches}
        # Remaining capacity is live: written only when the configuration names it.
        explicit = frozenset(self.configuration.values)
        self.configuration_written = rig.configure(values, switches, explicit)

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

    def _set_profile(self) -> None:
        """--sim-profile/--sim-seed: the simulated device measures as that profile says."""
        control = getattr(self.bench, "sim_control", None)
        asked = f"--sim-profile {self.sim_profile['profile']} --sim-seed {self.sim_profile['seed']}"
        if control is None:
            raise ConfigError(
                f"{asked}: the bench {self.bench_file} is not a simulated bench (its clock has "
                "no simulator control channel)"
            )
        reply = control.request({"op": "profile", **self.sim_profile})
        if not reply.get("ok"):
            raise ConfigError(f"{asked}: refused by the simulator: {reply.get('error')}")

    def _ask_profile_in_force(self) -> dict[str, Any] | None:
        """The simulator's device profile (set by a bench file's launch command or by
        --sim-profile); None on a real bench."""
        control = getattr(self.bench, "sim_control", None)
        if control is None:
            return None
        reply = control.request({"op": "profile_in_force"})
        return reply.get("profile") if reply.get("ok") else None

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
