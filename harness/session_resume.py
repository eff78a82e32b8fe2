"""Resuming a run (``--resume``): the recorded run read back, the plan and the device
configuration and firmware checked against it, and the cases still to run."""

from __future__ import annotations

from harness.results import final_records, read_results, read_run_info
from harness.session_errors import ConfigError


class SessionResume:
    """Resume side of a :class:`~harness.session.BenchSession`."""

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
