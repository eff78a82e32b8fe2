"""The release gate names each run's device configuration and refuses to compare runs of
different configurations unless ``--allow-config-change``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from synthetic import make_results_dir

from reports.gate import EXIT_CANNOT_COMPARE, EXIT_PASS, run_gate
from reports.runs import load_run

TODAY = dt.date(2026, 2, 1)
PACK = {
    "file": "test_plans/configs/pack-1101-ZA11-160Ah.yaml",
    "name": "pack-1101-ZA11-160Ah.yaml",
    "sha256": "c2391a129bc08749e6fd7665d4bfba9192947a574c38ee492c13038fa7dda734",
}


def _with_configuration(directory: Path, configuration: dict | None) -> Path:
    path = directory / "run.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    if configuration is None:
        info.pop("configuration", None)
    else:
        info["configuration"] = configuration
    path.write_text(json.dumps(info), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gate-config")
    make_results_dir(root / "defaults", suite=None)
    make_results_dir(root / "defaults-again", suite=None)
    _with_configuration(
        make_results_dir(root / "recorded-defaults", suite=None).directory,
        {"file": None, "name": "spec defaults", "sha256": "ab" * 32},
    )
    for name in ("pack", "pack-again"):
        _with_configuration(make_results_dir(root / name, suite=None).directory, PACK)
    _with_configuration(
        make_results_dir(root / "pack-edited", suite=None).directory,
        {**PACK, "sha256": "0" * 64},
    )
    return root


def test_runs_of_the_same_configuration_compare(runs: Path):
    code, md = run_gate(runs / "pack", runs / "pack-again", today=TODAY)
    assert code == EXIT_PASS, md
    assert "pack-1101-ZA11-160Ah.yaml (sha256 c2391a129bc0)" in md
    code, md = run_gate(runs / "defaults", runs / "recorded-defaults", today=TODAY)
    assert code == EXIT_PASS, md
    assert "spec defaults" in md


@pytest.mark.parametrize(("baseline", "candidate"), [("defaults", "pack"), ("pack", "pack-edited")])
def test_different_configurations_are_refused_unless_allowed(runs: Path, baseline, candidate):
    code, md = run_gate(runs / baseline, runs / candidate, today=TODAY)
    assert code == EXIT_CANNOT_COMPARE
    assert "device configurations differ" in md and "--allow-config-change" in md
    code, md = run_gate(runs / baseline, runs / candidate, today=TODAY, allow_config_change=True)
    assert code == EXIT_PASS, md
    assert "compared anyway (--allow-config-change)" in md


def test_the_gate_cli_takes_allow_config_change(runs: Path):
    from typer.testing import CliRunner

    from harness.cli import app

    args = ["gate", "--baseline", str(runs / "defaults"), "--candidate", str(runs / "pack")]
    assert CliRunner().invoke(app, args).exit_code == EXIT_CANNOT_COMPARE
    res = CliRunner().invoke(app, [*args, "--allow-config-change"])
    assert "--allow-config-change" in res.output


def test_a_run_without_a_configuration_record_ran_on_the_spec_defaults(runs: Path):
    run = load_run(runs / "defaults")
    assert run.configuration["name"] == "spec defaults"
    assert run.configuration_name == "spec defaults"
    assert load_run(runs / "pack").configuration_name.startswith("pack-1101-ZA11-160Ah.yaml")
