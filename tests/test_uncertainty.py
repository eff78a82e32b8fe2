"""The uncertainty budget (GUM, k = 2) and the decision rule (ILAC-G8 simple acceptance by
default, guarded acceptance by option): contributions, the four decisions, what each rule
makes of them, a bench file's accuracy per instrument and range ("not given" without it),
the readers (completion, gate), and end to end a measurement straddling its limit reported
as conditional in results.jsonl and in the compliance report."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from harness.benchfile import BenchFileError, load_bench_file
from harness.procedures import budget
from harness.procedures import uncertainty as unc
from harness.procedures.record import CONDITIONAL, FAILED, PASSED, Measurement
from reports.completion import completion
from reports.gate import judged

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "fixtures" / "example-lab.yaml"


def test_contributions_are_standard_uncertainties_combined_root_sum_square() -> None:
    rect = unc.bracket("search bracket", 0.002)
    assert rect.standard == pytest.approx(0.002 / math.sqrt(3))
    res = unc.resolution("device resolution", 0.001)
    assert res.value == pytest.approx(0.0005) and res.standard == pytest.approx(0.0005 / 3**0.5)
    cert = unc.Contribution("certificate", 0.004, unc.NORMAL, k=2.0)
    assert cert.standard == pytest.approx(0.002)
    b = unc.Budget((rect, res, cert))
    assert b.combined == pytest.approx(math.sqrt(rect.standard**2 + res.standard**2 + 0.002**2))
    assert b.expanded == pytest.approx(2 * b.combined) and b.k == 2.0
    assert b.complete and b.to_dict()["not_given"] == []


def test_a_contribution_not_given_is_never_zero() -> None:
    b = unc.Budget((unc.bracket("bracket", 0.002), unc.not_given("cells accuracy", "no entry")))
    d = b.to_dict()
    assert not b.complete and d["complete"] is False and d["not_given"] == ["cells accuracy"]
    given = [c for c in d["contributions"] if c["source"] == "cells accuracy"][0]
    assert given["value"] is None and given["standard"] is None
    assert given["distribution"] == "not given" and given["note"] == "no entry"


@pytest.mark.parametrize(
    ("measured", "expanded", "decision"),
    [
        (3.650, 0.002, unc.PASS),
        (3.658, 0.001, unc.PASS),
        (3.659, 0.002, unc.CONDITIONAL_PASS),
        (3.660, 0.002, unc.CONDITIONAL_PASS),  # on the limit: within, interval beyond
        (3.661, 0.002, unc.CONDITIONAL_FAIL),
        (3.663, 0.002, unc.FAIL),
        (3.641, 0.002, unc.CONDITIONAL_PASS),  # the lower limit counts the same
    ],
)
def test_the_four_decisions(measured: float, expanded: float, decision: str) -> None:
    assert unc.decide(measured, 3.650, 0.010, expanded, checks_ok=True) == decision


def test_a_failed_check_or_nothing_measured_is_a_plain_fail() -> None:
    assert unc.decide(3.650, 3.650, 0.010, 0.002, checks_ok=False) == unc.FAIL
    assert unc.decide(None, 3.650, 0.010, 0.002, checks_ok=True) == unc.FAIL
    assert unc.decide(1.0, None, None, 0.5, checks_ok=True) == unc.PASS


def test_what_each_rule_makes_of_a_decision() -> None:
    assert unc.accepted(unc.CONDITIONAL_PASS, unc.SIMPLE) is True
    assert unc.accepted(unc.CONDITIONAL_FAIL, unc.SIMPLE) is False
    assert unc.accepted(unc.CONDITIONAL_PASS, unc.GUARDED) is None
    assert unc.accepted(unc.CONDITIONAL_FAIL, unc.GUARDED) is None
    assert unc.accepted(unc.PASS, unc.GUARDED) is True
    assert unc.accepted(unc.FAIL, unc.GUARDED) is False
    with pytest.raises(ValueError, match="unknown decision rule 'lenient'"):
        unc.accepted(unc.PASS, "lenient")


def test_guarded_acceptance_cannot_guard_with_an_incomplete_budget() -> None:
    args = (3.650, 3.650, 0.010, 0.002)
    assert unc.decide(*args, checks_ok=True, complete=False, rule=unc.SIMPLE) == unc.PASS
    got = unc.decide(*args, checks_ok=True, complete=False, rule=unc.GUARDED)
    assert got == unc.CONDITIONAL_PASS


def _measurement(measured: float, rule: str) -> Measurement:
    m = Measurement("P05-trip", "V", expected=3.650, tolerance=0.010, measured=measured)
    m.check("flag reported", True, "cell_overvoltage_protection reported")
    m.bracket(0.002, "search bracket")
    m.rule = rule
    m.set_budget(unc.Budget(tuple(m.method)))
    return m


def test_a_straddling_value_is_conditional_never_a_plain_pass() -> None:
    simple = _measurement(3.660, unc.SIMPLE)
    assert simple.decision == unc.CONDITIONAL_PASS and simple.outcome == PASSED
    assert simple.uncertainty == pytest.approx(2 * 0.002 / 3**0.5)
    assert any("conditional pass" in f and "straddles" in f for f in simple.failures())
    guarded = _measurement(3.660, unc.GUARDED)
    assert guarded.decision == unc.CONDITIONAL_PASS and guarded.outcome == CONDITIONAL
    beyond = _measurement(3.661, unc.SIMPLE)
    assert beyond.decision == unc.CONDITIONAL_FAIL and beyond.outcome == FAILED
    assert _measurement(3.661, unc.GUARDED).outcome == CONDITIONAL
    assert _measurement(3.650, unc.GUARDED).outcome == PASSED
    d = simple.to_dict()
    assert d["decision"] == "conditional pass" and d["uncertainty_budget"]["k"] == 2.0


# -- the bench file's accuracy -------------------------------------------------------------


def _lab(tmp_path: Path, accuracy: dict[str, list[dict]] | None) -> Path:
    data = yaml.safe_load(LAB.read_text(encoding="utf-8"))
    for entry in data["instruments"].values():
        entry.pop("accuracy", None)
    for name, entries in (accuracy or {}).items():
        data["instruments"][name]["accuracy"] = entries
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


CELLS_ACC = [
    {"function": "voltage", "max": 5.0, "of_reading": 0.0002, "offset": 0.001, "source": "t"}
]


def test_a_bench_file_without_accuracy_loads_and_a_bad_entry_is_refused(tmp_path) -> None:
    bench = load_bench_file(_lab(tmp_path, None))
    assert all(i.accuracy == [] for i in bench.instruments.values())
    bad = [{"function": "voltage", "min": 5.0, "max": 1.0, "offset": 0.001, "source": "x"}]
    with pytest.raises(BenchFileError, match=r"instruments\.cells_a\.accuracy\.0.*min 5 is not"):
        load_bench_file(_lab(tmp_path, {"cells_a": bad}))
    zero = [{"function": "voltage", "max": 5.0, "source": "x"}]
    with pytest.raises(BenchFileError, match="accuracy of zero"):
        load_bench_file(_lab(tmp_path, {"cells_a": zero}))


def _case(stimulus: str, quantity: str, **params) -> SimpleNamespace:
    return SimpleNamespace(quantity=quantity, params={"stimulus": stimulus, **params})


def _bench(tmp_path: Path, accuracy: dict[str, list[dict]] | None) -> SimpleNamespace:
    from instruments.bmslink import BmsLink

    config = load_bench_file(_lab(tmp_path, accuracy))
    return SimpleNamespace(
        config=config, bms=SimpleNamespace(**{"REPORTING_RESOLUTION": BmsLink.REPORTING_RESOLUTION})
    )


def test_the_budget_takes_the_stimulus_instrument_and_the_device_resolution(tmp_path) -> None:
    bench = _bench(tmp_path, {"cells_a": CELLS_ACC, "cells_b": CELLS_ACC})
    m = Measurement("P05", "V", expected=3.65, tolerance=0.01, measured=3.65)
    m.bracket(0.002, "search bracket")
    b = budget.build(bench, _case("cell", "cell_voltage"), m)
    sources = [c.source for c in b.contributions]
    assert sources[0] == "search bracket" and "cells voltage accuracy" in sources[1]
    assert b.contributions[1].value == pytest.approx(0.0002 * 3.65 + 0.001)
    assert b.contributions[2].value == pytest.approx(0.0005)  # 1 mV, half a count
    assert b.complete
    pack = budget.build(
        bench, _case("pack", "pack_voltage"), Measurement("P11", "V", measured=57.6)
    )
    summed = pack.contributions[0]
    assert "16 channels" in summed.source
    assert summed.value == pytest.approx(16 * (0.0002 * 3.6 + 0.001))


def test_an_ntc_stimulus_turns_the_ohm_accuracy_into_kelvin(tmp_path) -> None:
    res = [{"function": "resistance", "max": 1e6, "of_reading": 0.001, "source": "t"}]
    bench = _bench(tmp_path, {"resistors": res})
    m = Measurement("P21", "°C", measured=50.0)
    b = budget.build(bench, _case("ntc:cell1", "cell_temperature"), m)
    # 0.1 % of R at 50 C is about 0.001 / (B / T^2) = 0.03 K for B = 3435 K.
    assert b.contributions[0].value == pytest.approx(0.001 * 323.15**2 / 3435, rel=0.01)


def test_missing_accuracy_is_not_given_naming_instrument_and_range(tmp_path) -> None:
    bench = _bench(
        tmp_path,
        {
            "load": [
                {
                    "function": "current",
                    "max": 30.0,
                    "of_reading": 0.0005,
                    "offset": 0.015,
                    "source": "t",
                }
            ]
        },
    )
    m = Measurement("P56", "A", expected=-100.0, tolerance=1.0, measured=-100.0)
    b = budget.build(bench, _case("discharge_current", "discharge_current"), m)
    gap = [c for c in b.contributions if c.value is None][0]
    assert "100 lies outside the current ranges of instruments.load (IT8512+): 0-30" in gap.note
    m2 = Measurement("P55", "A", expected=100.0, tolerance=1.0, measured=100.0)
    b2 = budget.build(bench, _case("charge_current", "charge_current"), m2)
    assert "instruments.supply (N5767A) gives no current accuracy" in b2.contributions[0].note
    assert not b2.complete


def test_a_count_or_a_state_has_no_instrument_contribution(tmp_path) -> None:
    bench = _bench(tmp_path, {"cells_a": CELLS_ACC})
    state = Measurement("S10-on", "V", expected=1.0, tolerance=0.0, measured=1.0)
    assert budget.build(bench, _case("cell", "cell_voltage"), state).contributions == ()
    count = Measurement("P71", "count", expected=3.0, tolerance=0.0, measured=3.0)
    assert budget.build(bench, _case("discharge_current", "count"), count).contributions == ()


# -- the readers ---------------------------------------------------------------------------


def _rec(test_id: str, outcome: str, decision: str | None) -> dict:
    return {"test_id": test_id, "item": "P5", "outcome": outcome, "decision": decision}


def _info(planned: list[str], rule: str = "simple") -> dict:
    return {"planned": planned, "end": {"status": "complete"}, "decision_rule": rule}


def test_the_run_verdict_is_conditional_never_pass() -> None:
    recs = [_rec("a", "passed", "pass"), _rec("b", "passed", "conditional pass")]
    done = completion(_info(["a", "b"]), recs)
    assert done.verdict == "CONDITIONAL" and done.conditional == {"b": "conditional pass"}
    assert any("1 test(s) conditional" in r for r in done.verdict_reasons)
    guarded = [_rec("a", "passed", "pass"), _rec("b", "conditional", "conditional fail")]
    assert completion(_info(["a", "b"], "guarded"), guarded).verdict == "CONDITIONAL"
    simple_fail = [_rec("a", "passed", "pass"), _rec("b", "failed", "conditional fail")]
    assert completion(_info(["a", "b"]), simple_fail).verdict == "FAIL"
    assert completion(_info(["a"]), [_rec("a", "passed", "pass")]).verdict == "PASS"


def test_the_gate_rejects_a_conditional_verdict_unless_told_to_accept() -> None:
    cond = _rec("b", "passed", "conditional pass")
    assert judged(cond)["outcome"] == "failed"
    assert "rejected by --conditional reject" in judged(cond)["message"]
    assert judged(cond, "accept")["outcome"] == "passed"
    assert judged(_rec("b", "conditional", "conditional fail"), "accept")["outcome"] == "passed"
    # The run's simple rule failed a conditional fail: accepting conditionals does not pass it.
    assert judged(_rec("b", "failed", "conditional fail"), "accept")["outcome"] == "failed"
    plain = _rec("a", "passed", "pass")
    assert judged(plain) is plain


# -- end to end ----------------------------------------------------------------------------


def test_a_measurement_straddling_its_limit_is_conditional_in_results_and_report(
    tmp_path,
) -> None:
    """P5 trips 9.5 mV late (tolerance 10 mV): the search reports 3.660 V, inside the limit
    by the measured value, but its interval (bracket 2 mV, device resolution 1 mV) reaches
    beyond it: a conditional pass under simple acceptance, and the run is CONDITIONAL."""
    faults = tmp_path / "late.yaml"
    faults.write_text("firmware:\n  - {item: P5, kind: offset, value: 0.0095}\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--out",
            str(out),
            "--sim-faults",
            str(faults),
            "-k",
            "P05-cell-overvoltage-protection-trip",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text
    assert "CONDITIONAL" in text and "conditional pass" in text
    rec = json.loads((out / "results.jsonl").read_text().splitlines()[-1])
    assert rec["test_id"] == "P05-cell-overvoltage-protection-trip"
    assert rec["decision"] == "conditional pass" and rec["outcome"] == "passed"
    assert rec["measured"] == pytest.approx(3.660)
    budget_rec = rec["uncertainty_budget"]
    assert rec["uncertainty"] == pytest.approx(budget_rec["expanded"], rel=1e-5)
    assert abs(rec["measured"] - rec["expected"]) + rec["uncertainty"] > rec["tolerance"]
    assert [c["source"] for c in budget_rec["contributions"]][0].startswith("search bracket")
    info = json.loads((out / "run.json").read_text())
    assert info["decision_rule"] == "simple" and info["decisions"] == {"conditional pass": 1}
    from reports.compliance import write_report

    html = write_report(out)[0].read_text(encoding="utf-8")
    assert 'id="verdict">CONDITIONAL' in html
    assert "simple acceptance" in html and 'id="decision-rule"' in html
    assert 'id="cond-P05-cell-overvoltage-protection-trip"' in html
    assert "CONDITIONAL PASS" in html and "search bracket" in html
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert 'type="conditional"' in junit
