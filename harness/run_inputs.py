"""The run's input validation: everything ``bmshil run`` refuses before anything touches the
bench (bench file, spec tables, device configuration, faults file, the results directory,
what ``--resume`` may continue). Each refusal is one :class:`UsageProblem` message: exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from harness import multi_run


class UsageProblem(Exception):
    """A usage or configuration error found before anything ran: exit 2, one message."""


def _validate_inputs(
    bench: Path, suite: str, sim_faults: Path | None, parameters: Path | None = None
) -> None:
    """Everything that can be refused without touching the bench: bench file (same loader as
    the bench itself), spec tables, the device configuration, faults file syntax."""
    import yaml

    from bmsspec import SpecError, load_spec
    from harness.benchfile import BenchFileError, load_bench_file
    from harness.session import SUITES

    if suite not in SUITES:
        raise UsageProblem(f"--suite: unknown suite {suite!r} (choose from {', '.join(SUITES)})")
    if not bench.exists():
        raise UsageProblem(f"--bench: bench file {bench} does not exist")
    try:
        load_bench_file(bench)
    except BenchFileError as exc:
        raise UsageProblem(str(exc)) from None
    try:
        spec = load_spec()
    except SpecError as exc:
        raise UsageProblem(f"spec tables: {exc}") from None
    if parameters is not None:
        from bmsspec.config import load_configuration

        try:
            load_configuration(parameters, spec)
        except SpecError as exc:
            raise UsageProblem(f"--parameters: {exc}") from None
    if sim_faults is not None:
        if not sim_faults.is_file():
            raise UsageProblem(f"--sim-faults: file {sim_faults} does not exist")
        try:
            data = yaml.safe_load(sim_faults.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UsageProblem(f"--sim-faults {sim_faults}: cannot read as YAML: {exc}") from None
        if data is not None and not isinstance(data, dict):
            raise UsageProblem(
                f"--sim-faults {sim_faults}: a faults file is a mapping, got {type(data).__name__}"
            )


def _prepare_new_out(out: Path) -> bool:
    """A fresh results directory; refuse one that holds anything (an earlier run's results
    are never overwritten). Returns whether the directory was created here."""
    if out.exists() and not out.is_dir():
        raise UsageProblem(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise UsageProblem(
            f"--out {out}: the directory is not empty (an earlier run's results would be "
            f"overwritten); choose another --out, or continue that run with --resume {out}"
        )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise UsageProblem(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    return created


def _check_resumable(
    out: Path,
    bench: Path,
    suite: str,
    keyword: str | None,
    marker: str | None,
    sim_faults: Path | None,
    parameters: Path | None = None,
    benches: list[Path] | None = None,
) -> None:
    """``--resume DIR``: the same bench(es), spec, device configuration, selection and
    faults, or a refusal naming what differs (the device firmware is compared once the
    bench is open)."""
    from bmsspec import load_spec
    from bmsspec.config import configured_spec
    from harness.session import _file_sha256

    info = _recorded_run(out)
    status = (info.get("end") or {}).get("status")
    if status == "complete":
        raise UsageProblem(f"--resume {out}: that run is complete; nothing to resume")
    differs = []
    bench_differs = multi_run.resume_difference(info, benches or [bench])
    if bench_differs:
        differs.append(bench_differs)
    if info.get("spec_sha256") != load_spec().sha256:
        differs.append("spec tables (spec_sha256 differs)")
    then = info.get("configuration") or {}
    now_config = configured_spec(load_spec(), parameters)[1]
    if then.get("sha256") is not None and then.get("sha256") != now_config.sha256:
        differs.append(
            f"device configuration ({then.get('name')!r} then, {now_config.name!r} now, "
            "content differs)"
        )
    selection = info.get("selection") or {}
    now = {"suite": suite, "keyword": keyword or None, "marker": marker or None}
    for key, value in now.items():
        if selection.get(key) != value:
            differs.append(f"{key} ({selection.get(key)!r} then, {value!r} now)")
    if info.get("sim_faults_sha256") != (_file_sha256(sim_faults) if sim_faults else None):
        differs.append(f"sim faults ({info.get('sim_faults')!r} then, {sim_faults} now)")
    if differs:
        raise UsageProblem(f"--resume {out}: cannot resume, it differs in: {'; '.join(differs)}")


def _recorded_run(out: Path) -> dict[str, Any]:
    from harness.results import read_run_info

    if not out.is_dir():
        raise UsageProblem(f"--resume {out}: no such results directory")
    info = read_run_info(out)
    if info is None or not info.get("planned"):
        raise UsageProblem(f"--resume {out}: no run.json with a planned case list there")
    return info


#: The simulated device profiles ``--sim-profile`` names (bmssim/twin/profile.py).
SIM_PROFILES = ("ideal", "realistic")


def check_profile(profile: str | None) -> None:
    """``--sim-profile``: a known profile name, or a usage problem naming it."""
    if profile is not None and profile not in SIM_PROFILES:
        raise UsageProblem(
            f"--sim-profile: unknown profile {profile!r} (choose from {', '.join(SIM_PROFILES)})"
        )


def resumed_profile(
    recorded: dict[str, Any], resume: Path, profile: str | None, seed: int | None
) -> tuple[str | None, int | None]:
    """The profile and seed a resumed run uses: the recorded ones; another one given again
    is refused (one run has one device profile, as it has one decision rule)."""
    then = recorded.get("sim_profile_requested") or None
    if profile is None and seed is None:
        return (then["profile"], then["seed"]) if then else (None, None)
    forced = recorded.get("sim_profile") or {}
    base = then or {"profile": forced.get("profile", "ideal"), "seed": forced.get("seed", 0)}
    now = {"profile": profile or "ideal", "seed": int(seed or 0)}
    if (base.get("profile"), base.get("seed")) != (now["profile"], now["seed"]):
        raise UsageProblem(
            f"--sim-profile {now['profile']} --sim-seed {now['seed']}: the run in {resume} ran "
            f"with profile {base.get('profile')} seed {base.get('seed')}; one run has one "
            "device profile"
        )
    return profile, seed
