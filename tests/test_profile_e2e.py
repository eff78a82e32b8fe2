"""End to end under the realistic device profile (cheap: one trip case per run): the same
seed gives the same results; a firmware deviation beyond the tolerance is still caught and
one well inside it still passes; the profile is recorded in run.json; a bad profile name is
a usage error; a resumed run refuses another profile or seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.run_inputs import UsageProblem, resumed_profile
from tests.e2e_support import ROOT, bmshil_run, run_by_id

CASE = "P01-cell-high-voltage-alarm-trip"
REALISTIC = ("--sim-profile", "realistic", "--sim-seed", "1")
BENCH = ROOT / "fixtures" / "sim-realistic.yaml"


def _same(record: dict) -> dict:
    return {k: record.get(k) for k in ("outcome", "measured", "uncertainty", "probes", "checks")}


def test_the_same_seed_gives_the_same_results(tmp_path: Path) -> None:
    """Once through --sim-profile/--sim-seed, once through a bench file that launches the
    simulator with the same profile and seed: the same device, the same results."""
    code_a, text_a, a = run_by_id(tmp_path / "a", "-k", CASE, *REALISTIC)
    code_b, text_b, b = run_by_id(tmp_path / "b", "-k", CASE, "--bench", str(BENCH))
    assert code_a == code_b == 0, text_a + text_b
    assert _same(a[CASE]) == _same(b[CASE])
    for run, requested in (("a", {"profile": "realistic", "seed": 1}), ("b", None)):
        info = json.loads((tmp_path / run / "run.json").read_text())
        assert info["sim_profile"]["profile"] == "realistic" and info["sim_profile"]["seed"] == 1
        assert info["sim_profile_requested"] == requested


@pytest.mark.parametrize(("offset", "outcome"), [(0.025, "failed"), (0.002, "passed")])
def test_deviations_are_judged_through_the_noise(
    tmp_path: Path, offset: float, outcome: str
) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(f"firmware:\n  - {{item: P1, kind: offset, value: {offset}}}\n")
    _, text, records = run_by_id(
        tmp_path / "run", "-k", CASE, "--sim-faults", str(faults), *REALISTIC
    )
    assert records[CASE]["outcome"] == outcome, text


def test_an_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    code, text, _ = bmshil_run(tmp_path / "run", "-k", CASE, "--sim-profile", "noisy")
    assert code == 2
    assert "--sim-profile: unknown profile 'noisy'" in text


def test_a_resumed_run_keeps_its_profile() -> None:
    recorded = {"sim_profile_requested": {"profile": "realistic", "seed": 3}}
    assert resumed_profile(recorded, Path("r"), None, None) == ("realistic", 3)
    assert resumed_profile(recorded, Path("r"), "realistic", 3) == ("realistic", 3)
    with pytest.raises(UsageProblem, match="ran with profile realistic seed 3"):
        resumed_profile(recorded, Path("r"), "realistic", 4)
    with pytest.raises(UsageProblem, match="one run has one device profile"):
        resumed_profile({"sim_profile": {"profile": "ideal", "seed": 0}}, Path("r"), "realistic", 0)
