"""``bmshil run`` end to end on the simulated bench, through the real wire.

Each run starts the simulator as a child process, runs a selection of plan cases through
pytest, and leaves a results directory. Firmware deviations injected into the twin must
fail the tests of the item they touch, with measured against expected, and deviations well
inside tolerance must not fail anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from e2e_support import bmshil_run

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = (
    "test_id",
    "item",
    "kind",
    "outcome",
    "expected",
    "measured",
    "tolerance",
    "unit",
    "margin",
    "bench_s",
    "wall_s",
)


def by_id(records: list[dict]) -> dict[str, dict]:
    return {r["test_id"]: r for r in records}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, list[dict], Path]:
    out = tmp_path_factory.mktemp("clean")
    sel = (
        "P05-cell-overvoltage-protection-trip or P06-cell-overvoltage-recovery or "
        "P67-charging-overcurrent-delay or P69-transient-overcurrent-delay or "
        "P70-overcurrent-recovery-delay or P71-overcurrent-recovery-count-lockout or "
        "S10-cell-overvoltage-protection-switch-off or P83-connection-fault"
    )
    code, text, records = bmshil_run(out, "-k", sel)
    return code, text, records, out


def test_clean_run_passes_and_leaves_every_artifact(clean_run) -> None:
    code, text, records, out = clean_run
    assert code == 0, text
    ids = by_id(records)
    assert set(ids) >= {
        "P05-cell-overvoltage-protection-trip",
        "P06-cell-overvoltage-recovery",
        "P67-charging-overcurrent-delay",
        "P69-transient-overcurrent-delay",
        "P70-overcurrent-recovery-delay",
        "P71-overcurrent-recovery-count-lockout",
        "S10-cell-overvoltage-protection-switch-off",
    }
    for r in records:
        for key in REQUIRED:
            assert key in r, f"{r['test_id']} lacks {key}"
    # The connection-fault row runs through the simulated bench's relay card.
    assert ids["P83-connection-fault-impedance-function"]["outcome"] == "passed"
    junit = ET.parse(out / "junit.xml").getroot()
    assert int(junit.find("testsuite").get("tests")) == len(records)
    allure = list((out / "allure-results").glob("*-attachment.png"))
    assert len(allure) >= 5  # a plot for every threshold and delay case
    assert (out / "plots" / "P05-cell-overvoltage-protection-trip.png").exists()
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["device"]["name"] == "1101-HIL1" and run_info["counts"]["passed"] >= 7


def test_the_three_named_timings_are_measured(clean_run) -> None:
    _code, _text, records, _out = clean_run
    ids = by_id(records)
    transient = ids["P69-transient-overcurrent-delay"]
    assert transient["unit"] == "mS" and transient["measured"] == pytest.approx(30.0, abs=1.0)
    assert "scope" in transient["note"]
    charge = ids["P67-charging-overcurrent-delay"]
    assert charge["measured"] == pytest.approx(10.0, abs=0.05)
    recovery = ids["P70-overcurrent-recovery-delay"]
    assert recovery["measured"] == pytest.approx(60.0, abs=1.0)
    assert ids["P71-overcurrent-recovery-count-lockout"]["measured"] == 5.0


def test_threshold_search_costs_tens_of_probes(clean_run) -> None:
    _code, _text, records, _out = clean_run
    trip = by_id(records)["P05-cell-overvoltage-protection-trip"]
    assert trip["measured"] == pytest.approx(3.65, abs=0.002)
    # the search's probes: the go/no-go pairs on cells 2-16 come on top (channel_probes)
    search = trip["probes"] - trip["channel_probes"]
    assert trip["channel_probes"] >= 2 * 15
    assert 5 <= search <= 40
    assert trip["naive_probes"] > 5 * search


FAULTS_BEYOND = """\
firmware:
  - {item: P5, kind: offset, value: 0.050}
  - {item: P67, kind: scale, value: 1.5}
  - {item: S18, kind: ignored}
  - {item: P1, kind: no_flag}
  - {item: P7, kind: no_action}
"""


def test_deviations_beyond_tolerance_fail_their_items(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(FAULTS_BEYOND)
    sel = (
        "P05-cell-overvoltage-protection-trip or P67-charging-overcurrent-delay or "
        "S18-charging-overtemperature-protection-switch-off or P01-cell-high-voltage-alarm-trip or "
        "P07-cell-undervoltage-protection-trip or P03-cell-low-voltage-alarm-trip"
    )
    code, text, records = bmshil_run(tmp_path / "out", "-k", sel, "--sim-faults", str(faults))
    assert code == 1, text
    ids = by_id(records)
    offset = ids["P05-cell-overvoltage-protection-trip"]
    assert offset["outcome"] == "failed"
    assert offset["measured"] == pytest.approx(3.70, abs=0.003)
    assert "expected 3.65" in offset["message"]
    scaled = ids["P67-charging-overcurrent-delay"]
    assert scaled["outcome"] == "failed" and scaled["measured"] == pytest.approx(15.0, abs=0.1)
    ignored = ids["S18-charging-overtemperature-protection-switch-off"]
    assert ignored["outcome"] == "failed" and ignored["measured"] == 1.0  # acted while off
    assert ids["P01-cell-high-voltage-alarm-trip"]["outcome"] == "failed"
    no_action = ids["P07-cell-undervoltage-protection-trip"]
    assert no_action["outcome"] == "failed" and "current" in no_action["message"]
    # An item without a deviation is untouched.
    assert ids["P03-cell-low-voltage-alarm-trip"]["outcome"] == "passed"
    assert "P05-cell-overvoltage" in text and "3.7" in text  # the summary shows measured


def test_a_latching_protection_fails_its_trip_and_recovery(tmp_path: Path) -> None:
    """A protection that never recovers fails both cases of its item. (Every case after it
    then reports the nominal state unreachable, as a bench error: on a real bench the BMS
    would have to be power-cycled, so this kind runs on its own.)"""
    faults = tmp_path / "faults.yaml"
    faults.write_text("firmware:\n  - {item: P25, kind: latch}\n")
    sel = "P25-charging-overtemperature-protection-trip or P26-charging-overtemperature-recovery"
    code, text, records = bmshil_run(tmp_path / "out", "-k", sel, "--sim-faults", str(faults))
    assert code == 1, text
    ids = by_id(records)
    trip = ids["P25-charging-overtemperature-protection-trip"]
    assert trip["outcome"] == "failed" and "still active" in trip["message"]
    recovery = ids["P26-charging-overtemperature-recovery"]
    assert recovery["outcome"] in ("failed", "error")
    assert (
        "charge_overtemperature_protection" in recovery["message"]
        or "still active" in recovery["message"]
    )


def test_deviations_well_inside_tolerance_fail_nothing(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(
        "firmware:\n"
        "  - {item: P5, kind: offset, value: 0.003}\n"
        "  - {item: P67, kind: scale, value: 1.02}\n"
        "  - {item: P25, kind: offset, value: 0.5}\n"
    )
    sel = (
        "P05-cell-overvoltage-protection-trip or P67-charging-overcurrent-delay or "
        "P25-charging-overtemperature-protection-trip"
    )
    code, text, records = bmshil_run(tmp_path / "out", "-k", sel, "--sim-faults", str(faults))
    assert code == 0, text
    assert {r["outcome"] for r in records} == {"passed"}
    assert by_id(records)["P05-cell-overvoltage-protection-trip"]["measured"] == pytest.approx(
        3.653, abs=0.0021
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--suite", "nightly"], "unknown suite 'nightly'"),
        (["--bench", "fixtures/no-such-bench.yaml"], "no-such-bench.yaml does not exist"),
        (["-k", "no-case-has-this-name"], "matched no case"),
        (["--sim-faults", "no-such-faults.yaml"], "no-such-faults.yaml does not exist"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, text, _records = bmshil_run(tmp_path / "out", *args)
    assert code == 2, text
    assert message in text


def test_a_faults_file_naming_an_unknown_item_is_refused(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("firmware:\n  - {item: P99, kind: offset, value: 1}\n")
    code, text, _records = bmshil_run(
        tmp_path / "out", "-k", "P05-cell-overvoltage-protection-trip", "--sim-faults", str(faults)
    )
    assert code == 2, text
    assert "P99" in text and str(faults) in text


def test_sigterm_stops_the_run_and_keeps_what_ran(tmp_path: Path) -> None:
    """SIGTERM ends the whole run (not just the case it hits), the bench is left safe, and
    every record written before it stays."""
    import signal
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 20:
            break
        time.sleep(0.05)
    try:
        proc.send_signal(signal.SIGTERM)
        text, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, text
    assert "interrupted" in text and "INCOMPLETE" in text
    kept = [json.loads(x) for x in results.read_text().splitlines() if x.strip()]
    ran = [r for r in kept if r["outcome"] != "not_run"]
    assert 20 <= len(ran) < 300
    assert all(r["outcome"] in ("passed", "skipped") for r in ran)
    # Every planned case the run did not get to is recorded as not run, saying why.
    not_run = [r for r in kept if r["outcome"] == "not_run"]
    planned = json.loads((out / "run.json").read_text())["planned"]
    assert len(planned) > 300
    assert sorted(r["test_id"] for r in ran + not_run) == sorted(planned)
    assert all("SIGTERM" in r["message"] for r in not_run)


@pytest.mark.parametrize("suite", ["smoke", "soak"])
def test_smoke_and_soak_suites_pass_on_the_simulated_bench(tmp_path: Path, suite: str) -> None:
    """Soak runs the default long delays (48 h standby shutdown, 10 h static balancing) on
    the virtual clock; its cases idle for hours, which the BMS's own timers must not see
    leaking from one case into the next."""
    code, text, records = bmshil_run(tmp_path / "out", "--suite", suite)
    assert code == 0, text
    assert records and {r["outcome"] for r in records} <= {"passed", "skipped"}
    if suite == "soak":
        shutdown = by_id(records)["P78-standby-shutdown-delay"]
        assert shutdown["measured"] == pytest.approx(48.0, abs=0.5)
