"""What the bench's BMS link carries decides which cases run on it: on a Modbus bench (the
Seplos V3 layout) a case that needs what V3 does not report is untestable, naming it; a
selection of regression cases passes on the simulated Modbus bench end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bmsspec import load_spec
from harness.benchfile import bench_capabilities
from harness.link_coverage import coverage_of, protocol_of
from harness.plan import build_plan
from harness.plan.link import LINK_OPERATIONS, link_reason
from harness.procedures.registry import PROCEDURES
from instruments.bms.modbus_map import load_register_map

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "fixtures" / "sim.yaml"
SIM_MODBUS = ROOT / "fixtures" / "sim-modbus.yaml"
SPEC = load_spec()
MAP = load_register_map(spec=SPEC)


def plans() -> tuple[dict, dict]:
    caps = bench_capabilities(SIM)
    v2 = {c.id: c for c in build_plan(SPEC, caps, link=coverage_of(SIM, SPEC))}
    v3 = {c.id: c for c in build_plan(SPEC, caps, link=coverage_of(SIM_MODBUS, SPEC))}
    return v2, v3


def test_the_seplos_bench_carries_everything_the_modbus_bench_the_v3_layout():
    assert protocol_of(SIM) == "seplos_v2" and coverage_of(SIM, SPEC) is None
    assert protocol_of(SIM_MODBUS) == "modbus_rtu"
    cov = coverage_of(SIM_MODBUS, SPEC)
    assert cov is not None and set(cov.flags) == set(MAP.flags())
    assert cov.parameters[55] == 1.0 and cov.parameters[72] == pytest.approx(1 / 600)
    assert "port_v" not in cov.telemetry and {"cell_v", "rated_ah"} <= cov.telemetry


def test_only_what_the_link_lacks_makes_a_case_untestable_with_the_reason():
    v2, v3 = plans()
    assert v2.keys() == v3.keys()
    lost = [i for i in v2 if v2[i].testable and not v3[i].testable]
    assert lost and all(v3[i].reason for i in lost)
    cov = coverage_of(SIM_MODBUS, SPEC)
    for i in lost:
        assert "Modbus link (Seplos V3 register layout)" in v3[i].reason, (i, v3[i].reason)
    # every case the link carries stays as it was, the same count as the plan derives
    kept = [i for i in v2 if v2[i].testable and v3[i].testable]
    assert len(kept) + len(lost) == sum(c.testable for c in v2.values())
    assert all(link_reason(SPEC, v2[i], cov) is None for i in kept)
    charger = v3["P19-charger-overvoltage-protection-trip"]
    assert "does not report charger_overvoltage_protection" in charger.reason
    assert "neither sets nor reads P58" in v3["P58-output-soft-start-delay-readback"].reason
    assert "in steps of 1 A; the case writes 70.01 A" in (
        v3["P51-charging-overcurrent-alarm-readback"].reason
    )
    assert v3["P05-cell-overvoltage-protection-trip"].testable
    assert v3["S10-cell-overvoltage-protection-switch-off"].testable


def test_an_unreported_coupling_does_not_cost_a_case():
    """Couplings are flags a case may see beside its own: a link that cannot show one
    leaves the case testable (the undervoltage rows' activation waits are not in V3)."""
    v2, v3 = plans()
    with_wait = [
        i
        for i, c in v2.items()
        if c.testable
        and "waiting_auto_activation" in (c.params.get("couplings") or [])
        and c.params.get("flag") in MAP.flags()
        and not c.switch_overrides
    ]
    assert with_wait and all(v3[i].testable for i in with_wait)


def test_the_link_operations_name_registered_procedures():
    assert set(LINK_OPERATIONS) <= set(PROCEDURES)


def test_a_bad_map_row_is_refused_naming_file_row_key_and_value(tmp_path: Path):
    data = yaml.safe_load((ROOT / "test_plans" / "modbus_registers.yaml").read_text())
    data["registers"][3]["scal"] = 0.1
    bad = tmp_path / "modbus_registers.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"modbus_registers.yaml: registers\[3\] .*'scal' = 0.1"):
        load_register_map(bad)
    data["registers"][3].pop("scal")
    row = next(r for r in data["registers"] if r["source"] == "parameter.P72")
    row["unit"] = "h"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"unit 'h' for P72 whose spec unit is 'minute'"):
        load_register_map(bad, SPEC)


def test_a_regression_selection_passes_on_the_simulated_modbus_bench(tmp_path: Path):
    out = tmp_path / "out"
    sel = (
        "P05-cell-overvoltage-protection-trip or P60-battery-remaining-capacity-report-soc or "
        "S10-cell-overvoltage-protection-switch-off or P19-charger-overvoltage-protection-trip"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--bench", str(SIM_MODBUS), "--out", str(out)]
        + ["--suite", "regression", "-k", sel],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "PASS" in text
    records = {
        r["test_id"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())
    }
    assert records["P05-cell-overvoltage-protection-trip"]["outcome"] == "passed"
    assert records["P60-battery-remaining-capacity-report-soc"]["outcome"] == "passed"
    assert records["S10-cell-overvoltage-protection-switch-off"]["outcome"] == "passed"
    skipped = records["P19-charger-overvoltage-protection-trip"]
    assert skipped["outcome"] == "skipped"
    assert "does not report charger_overvoltage_protection" in skipped["reason"]
    run = json.loads((out / "run.json").read_text())
    assert run["device"]["manufacturer"] == "bms-hil twin"  # from VIA over Modbus RTU


def test_the_simulated_modbus_bench_opens_the_modbus_link_on_its_rtu_pty():
    from harness.bench import Bench
    from instruments.bms.modbus_link import ModbusLink

    with Bench.open(SIM_MODBUS) as bench:
        assert bench.config.bms.protocol == "modbus_rtu"
        assert isinstance(bench.bms, ModbusLink) and bench.bms.transport == "rtu"
        assert bench.config.bms.port == bench.config.bms_endpoints["modbus_rtu"]
        tele = bench.bms.telemetry()
        assert len(tele.cell_v) == 16 and tele.port_v is None
        assert bench.bms.status().charge_fet
