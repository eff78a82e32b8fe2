"""``bmshil run`` on several benches: which benches, whether they may share a run, the
pytest-xdist arguments, and bench time per bench for the summary.

Rules (one message each, exit 2, before anything runs):
* ``--bench`` may be given several times; ``--sim-benches N`` starts N simulated benches
  (N copies of the one ``--bench`` given, which must have a ``launch`` command, else of
  ``fixtures/sim.yaml``);
* a bench file without ``launch`` (real instruments) may appear only once: two workers
  cannot share one bench;
* every bench must give the same plan (same cases, same testability): the run's verdict
  must not depend on which bench a case happened to land on;
* a resumed run takes its recorded benches unless given again, and refuses other bench
  files (compared by content, any number of workers each).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import harness


class BenchSetError(ValueError):
    """The benches given cannot make one run (the message names option, file and value)."""


def resolve(
    bench_list: list[Path] | None, sim_benches: int | None, recorded: dict[str, Any] | None
) -> list[Path]:
    """The benches of this run, in worker order (worker gwK opens the K-th)."""
    given = [Path(b) for b in bench_list or []]
    if sim_benches is not None:
        if sim_benches < 1:
            raise BenchSetError(
                f"--sim-benches: expected a number of benches >= 1, got {sim_benches}"
            )
        if len(given) > 1:
            raise BenchSetError(
                f"--sim-benches {sim_benches} with {len(given)} --bench files: give one bench "
                "file to start N times, or several --bench files without --sim-benches"
            )
        base = given[0] if given else harness.FIXTURES_DIR / "sim.yaml"
        return [base] * sim_benches
    if given:
        return given
    if recorded:
        recorded_benches = recorded.get("benches") or []
        listed = [Path(b["bench_file"]) for b in recorded_benches if b.get("bench_file")]
        if listed:
            return listed
        if recorded.get("bench_file"):
            return [Path(recorded["bench_file"])]
    return [harness.FIXTURES_DIR / "sim.yaml"]


def validate(benches: list[Path], suite: str) -> None:
    """Several benches may share one run (see the module rules); one bench: nothing to do."""
    if len(benches) < 2:
        return
    from bmsspec import load_spec
    from harness.benchfile import BenchFileError, bench_relays, load_bench_file
    from harness.plan import build_plan

    seen: dict[Path, Any] = {}
    plans: dict[Path, list[tuple[str, bool, str | None]]] = {}
    spec = load_spec()
    for bench in benches:
        key = bench.resolve()
        if key in seen:
            if getattr(seen[key], "launch", None) is None:
                raise BenchSetError(
                    f"--bench {bench}: given twice, but it is not a launched (simulated) bench; "
                    "two workers cannot share one bench's instruments"
                )
            continue
        try:
            config = load_bench_file(bench)
            from harness.benchfile import bench_capabilities

            caps = bench_capabilities(bench)
            relays = bench_relays(bench)
            from harness.link_coverage import coverage_of

            link = coverage_of(bench, spec)
        except BenchFileError as exc:
            raise BenchSetError(str(exc)) from None
        seen[key] = config
        cases = build_plan(spec, caps, suite=suite, relays=relays, link=link)
        plans[key] = [
            (c.id, bool(getattr(c, "testable", True)), getattr(c, "reason", None)) for c in cases
        ]
    first_path, first = next(iter(plans.items()))
    for path, plan in plans.items():
        if plan != first:
            ids, other = {p[0] for p in first}, {p[0] for p in plan}
            diff = sorted(ids ^ other) or sorted(
                a[0] for a, b in zip(first, plan, strict=False) if a != b
            )
            raise BenchSetError(
                f"--bench {path}: its plan differs from {first_path}'s ({len(plan)} cases "
                f"against {len(first)}; first differences: {', '.join(diff[:5])}); benches "
                "of one run must have the same capabilities and relays"
            )


def resume_difference(info: dict[str, Any], benches: list[Path]) -> str | None:
    """What differs between the recorded run's bench files and these (None: the same)."""
    from harness.session import _file_sha256

    recorded = [b for b in info.get("benches") or [] if isinstance(b, dict)]
    then = {b.get("bench_sha256") for b in recorded} or {info.get("bench_sha256")}
    now = {_file_sha256(b) for b in benches}
    if then == now:
        return None
    files = ", ".join(sorted({str(b.get("bench_file")) for b in recorded})) or str(
        info.get("bench_file")
    )
    given = ", ".join(sorted({str(b) for b in benches}))
    return f"bench file ({files} then, {given} now, content differs)"


def pytest_args(benches: list[Path]) -> list[str]:
    """pytest-xdist: one worker per bench, no worker restarts (a bench is not restartable
    behind the run's back), the benches in worker order."""
    if len(benches) < 2:
        return []
    args = ["-n", str(len(benches)), "--max-worker-restart", "0"]
    for bench in benches:
        args += ["--worker-bench", str(bench)]
    return args


def bench_time_by_worker(records: list[dict[str, Any]]) -> dict[str, float]:
    """Summed bench time of the final records per worker (empty for a one-bench run)."""
    out: dict[str, float] = {}
    for rec in records:
        worker = rec.get("worker")
        if worker:
            out[worker] = out.get(worker, 0.0) + float(rec.get("bench_s") or 0.0)
    return dict(sorted(out.items()))
