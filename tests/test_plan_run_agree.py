"""`bmshil plan --suite S --json` and `bmshil run --suite S` agree case for case.

The run side is what the run records as its plan (run.json ``planned``): the pytest plugin's
collection on the default bench, exactly as ``bmshil run`` invokes it, stopped after
collection. The configuration under test changes values, never which cases there are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.session import SUITES

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "test_plans" / "configs" / "pack-1101-ZA11-160Ah.yaml"


def planned_by_the_run(out: Path, *args: str) -> list[str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "test_plans" / "parameters.yaml"),
            "--results-dir",
            str(out),
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((out / "run.json").read_text(encoding="utf-8"))["planned"]


def planned_by_the_plan(*args: str) -> list[str]:
    res = CliRunner().invoke(app, ["plan", "--json", *args])
    assert res.exit_code == 0, res.output
    return [c["id"] for c in json.loads(res.stdout)]


@pytest.mark.parametrize("suite", SUITES)
def test_plan_and_run_list_the_same_cases(tmp_path: Path, suite: str):
    plan = planned_by_the_plan("--suite", suite)
    run = planned_by_the_run(tmp_path / "run", "--suite", suite)
    assert len(plan) == len(set(plan))
    assert sorted(plan) == sorted(run), (sorted(set(run) - set(plan)), sorted(set(plan) - set(run)))


def test_the_configuration_under_test_changes_no_case(tmp_path: Path):
    plan = planned_by_the_plan("--suite", "regression", "--parameters", str(PACK))
    run = planned_by_the_run(tmp_path / "run", "--suite", "regression", "--parameters", str(PACK))
    assert sorted(plan) == sorted(run)
    assert sorted(plan) == sorted(planned_by_the_plan("--suite", "regression"))
