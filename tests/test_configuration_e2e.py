"""``bmshil run --parameters`` on the simulated bench: the configuration is written to the
device, every case is judged against it, run.json and the report name it, and a resumed
run inherits it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bmsspec import load_spec
from bmsspec.config import load_configuration

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "test_plans" / "configs" / "pack-1101-ZA11-160Ah.yaml"
P01_TRIP = "P01-cell-high-voltage-alarm-trip"
P02_RECOVERY = "P02-cell-high-voltage-recovery"


def bmshil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def records(out: Path) -> dict[str, dict]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["test_id"]: r for r in map(json.loads, filter(None, lines))}


@pytest.fixture(scope="module")
def pack_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pack") / "run"
    sel = f"{P01_TRIP} or {P02_RECOVERY}"
    proc = bmshil("run", "--out", str(out), "--parameters", str(PACK), "-k", sel)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_cases_are_judged_against_the_configuration(pack_run: Path):
    recs = records(pack_run)
    trip = recs[P01_TRIP]
    assert trip["outcome"] == "passed" and trip["expected"] == 3.5
    # Measured near the captured 3.500 V, not the spec default 3.550 V.
    assert abs(trip["measured"] - 3.5) <= trip["tolerance"] < 0.05
    assert recs[P02_RECOVERY]["expected"] == 3.4


def test_run_json_names_the_configuration(pack_run: Path):
    info = json.loads((pack_run / "run.json").read_text(encoding="utf-8"))
    expected = load_configuration(PACK, load_spec())
    cfg = info["configuration"]
    assert cfg["file"] == str(PACK) and cfg["name"] == PACK.name
    assert cfg["sha256"] == expected.sha256
    assert "P1" in cfg["items"] and "S53" in cfg["items"]
    # The simulated device starts at the spec defaults: the session's start wrote the block.
    assert cfg["written_at_start"] is True


def test_the_report_names_the_configuration(pack_run: Path):
    from reports.compliance import render_html
    from reports.runs import load_run

    html = render_html(load_run(pack_run))
    assert str(PACK) in html
    assert load_configuration(PACK, load_spec()).sha256 in html


def test_a_resumed_run_inherits_the_configuration(pack_run: Path, tmp_path: Path):
    # Cut the run: drop the last record and mark it aborted, as a crash would leave it.
    results = pack_run / "results.jsonl"
    lines = results.read_text(encoding="utf-8").splitlines()
    last = json.loads(lines[-1])["test_id"]
    results.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    info = json.loads((pack_run / "run.json").read_text(encoding="utf-8"))
    info["end"] = {"status": "aborted", "reason": "test", "signal": None, "at": None}
    (pack_run / "run.json").write_text(json.dumps(info), encoding="utf-8")
    other = tmp_path / "other.yaml"
    other.write_text("P1: 3.52\n", encoding="utf-8")
    refused = bmshil("run", "--resume", str(pack_run), "--parameters", str(other))
    assert refused.returncode == 2
    assert "device configuration" in refused.stdout + refused.stderr
    proc = bmshil("run", "--resume", str(pack_run))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert records(pack_run)[last]["outcome"] == "passed"
    info = json.loads((pack_run / "run.json").read_text(encoding="utf-8"))
    assert info["configuration"]["name"] == PACK.name
