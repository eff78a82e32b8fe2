"""Evidence reads true: every check records what was seen, and only a failed check carries
a failure sentence.

A lab signs the compliance report from these records, so a passing check must never read
like a failure ("... not reported when the function acted", ok=true). The unit tests pin
``Measurement.check``'s semantics; the end-to-end tests run a small regression on the
simulated bench through the wire and read the results directory it leaves.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from e2e_support import bmshil_run

from harness.procedures.record import Check, Measurement
from harness.procedures.rig import Observation, Rig
from harness.procedures.threshold import ThresholdSetup, find_recovery, find_trip, judge_action

ROOT = Path(__file__).resolve().parent.parent
#: Words of a failure sentence; none may appear in what a passing check saw.
FAILURE_WORDS = re.compile(r"not reported|did not|still|never|failed|expected", re.IGNORECASE)

# -- Measurement.check ----------------------------------------------------------------------


def test_a_passing_check_keeps_what_was_seen_and_drops_the_failure_sentence() -> None:
    m = Measurement(name="P5", unit="V")
    assert m.check("flag reported", True, "cell_high_voltage_alarm reported", "not reported")
    assert m.checks == [
        Check("flag reported", True, "cell_high_voltage_alarm reported", "not reported")
    ]
    assert m.check_records() == [
        {"name": "flag reported", "ok": True, "detail": "cell_high_voltage_alarm reported"}
    ]
    assert m.to_dict()["checks"] == m.check_records()
    assert m.failures() == []
    assert m.outcome == "passed"


def test_a_failed_check_keeps_what_was_seen_and_adds_its_failure_sentence() -> None:
    m = Measurement(name="P5", unit="V")
    ok = m.check(
        "charge current stopped",
        0,
        "charge current 5.00 A, charge FET closed",
        "charge current not stopped by the protection",
    )
    assert ok is False
    assert m.check_records() == [
        {
            "name": "charge current stopped",
            "ok": False,
            "detail": "charge current 5.00 A, charge FET closed",
            "failure": "charge current not stopped by the protection",
        }
    ]
    assert m.failures() == ["charge current stopped: charge current not stopped by the protection"]
    assert m.outcome == "failed"


def test_a_failed_check_without_a_failure_sentence_falls_back_to_what_was_seen() -> None:
    m = Measurement(name="S10", unit="")
    m.check("flag", False, "flag clear with the switch on")
    (record,) = m.check_records()
    assert record == {
        "name": "flag",
        "ok": False,
        "detail": "flag clear with the switch on",
        "failure": "flag clear with the switch on",
    }
    assert m.failures() == ["flag: flag clear with the switch on"]


def test_the_result_record_stores_checks_in_the_same_format() -> None:
    from harness.session import CaseOutcome

    m = Measurement(name="P5", unit="V", expected=3.65, tolerance=0.01, measured=3.65)
    m.check("flag reported", True, "cell_overvoltage_protection reported at 3.65 V", "missing")
    m.check("charge current stopped", False, "charge current 5.00 A", "current not stopped")
    case = SimpleNamespace(
        id="P05-cell-overvoltage-protection-trip",
        item="P5",
        kind="trip",
        unit="V",
        expected=3.65,
        tolerance=0.01,
    )
    record = CaseOutcome(case=case, outcome=m.outcome, measurement=m).record()
    assert record["checks"] == [
        {
            "name": "flag reported",
            "ok": True,
            "detail": "cell_overvoltage_protection reported at 3.65 V",
        },
        {
            "name": "charge current stopped",
            "ok": False,
            "detail": "charge current 5.00 A",
            "failure": "current not stopped",
        },
    ]


# -- procedures: what a check saw is true whatever the verdict --------------------------------


def obs(*, flag: bool, charge_fet: bool, supply_a: float, stimulus: float = 3.65) -> Observation:
    return Observation(
        t_s=0.0,
        stimulus=stimulus,
        flag=flag,
        flags={},
        charge_fet=charge_fet,
        discharge_fet=True,
        supply_a=supply_a,
        load_a=0.0,
    )


def setup(**kw: object) -> ThresholdSetup:
    base: dict[str, object] = dict(
        stimulus="cell",
        direction="high",
        flag="cell_overvoltage_protection",
        action="charge",
        safe=3.3,
        far=3.75,
        resolution=0.001,
        dwell_s=1.5,
        condition="charging",
    )
    base.update(kw)
    return ThresholdSetup(**base)  # type: ignore[arg-type]


def test_judge_action_describes_the_observation_in_both_verdicts() -> None:
    good = Measurement(name="P5", unit="V")
    judge_action(good, setup(), obs(flag=True, charge_fet=False, supply_a=0.0), tripped=True)
    assert [c.ok for c in good.checks] == [True, True]
    assert good.checks[0].seen == "cell_overvoltage_protection reported at 3.65 V"
    assert good.checks[1].seen == "charge current 0.00 A, charge FET open at 3.65 V"
    for c in good.check_records():
        assert "failure" not in c and not FAILURE_WORDS.search(c["detail"]), c

    bad = Measurement(name="P5", unit="V")
    judge_action(bad, setup(), obs(flag=False, charge_fet=True, supply_a=5.0), tripped=True)
    assert [c.ok for c in bad.checks] == [False, False]
    flag, current = bad.check_records()
    assert flag["detail"] == "cell_overvoltage_protection not reported at 3.65 V"
    assert "when the function acted" in flag["failure"]
    assert current["detail"] == "charge current 5.00 A, charge FET closed at 3.65 V"
    assert "not stopped" in current["failure"] and "5.00 A" in current["failure"]


class Device:
    """Cell overvoltage that trips at ``trip`` (never, when None) and recovers below
    ``recovery`` (never, when ``latched``); instant, so one probe tells."""

    def __init__(self, trip: float | None, recovery: float = 3.38, latched: bool = False):
        self.trip, self.recovery, self.latched = trip, recovery, latched
        self.t = 0.0
        self.active = False

    def set_cell_v(self, cell: int, volts: float) -> None:
        if cell != 1:
            return
        if self.trip is not None and volts >= self.trip:
            self.active = True
        elif volts <= self.recovery and not self.latched:
            self.active = False

    def bench(self) -> SimpleNamespace:
        def sleep(s: float) -> None:
            self.t += s

        status = lambda: SimpleNamespace(  # noqa: E731
            flags={"cell_overvoltage_protection": self.active},
            charge_fet=not self.active,
            discharge_fet=True,
            balancing=[False] * 16,
            heater=False,
            system_states=[],
        )
        return SimpleNamespace(
            clock=SimpleNamespace(now=lambda: self.t, sleep=sleep),
            cells=SimpleNamespace(set_cell_v=self.set_cell_v, set_all_v=lambda v: None),
            supply=SimpleNamespace(measure_current_a=lambda: 0.0 if self.active else 5.0),
            load=SimpleNamespace(measure_current_a=lambda: 0.0),
            bms=SimpleNamespace(status=status),
        )


def test_no_trip_in_range_records_what_the_last_probe_saw() -> None:
    dev = Device(trip=None)
    m = Measurement(name="P5", unit="V", expected=3.65, tolerance=0.01)
    assert find_trip(Rig(dev.bench(), spec=None), setup(condition="any"), m) is None
    (c,) = m.check_records()
    assert c["name"] == "acts within the search range" and c["ok"] is False
    assert c["detail"].startswith("at 3.75 V: cell_overvoltage_protection clear")
    assert "charge FET closed" in c["detail"] and "charge current 5.00 A" in c["detail"]
    assert c["failure"] == "did not act up to 3.75 V"


def test_active_at_the_safe_value_records_the_observation() -> None:
    dev = Device(trip=3.2)
    m = Measurement(name="P5", unit="V")
    assert find_trip(Rig(dev.bench(), spec=None), setup(condition="any"), m) is None
    (c,) = m.check_records()
    assert c["detail"].startswith("at 3.3 V: cell_overvoltage_protection set, charge FET open")
    assert c["failure"] == "already active at 3.3 V"


def test_a_latched_protection_records_what_was_seen_after_the_reset_timeout() -> None:
    dev = Device(trip=3.65, latched=True)
    m = Measurement(name="P6", unit="V", expected=3.38, tolerance=0.01)
    assert find_recovery(Rig(dev.bench(), spec=None), setup(condition="any"), 3.68, m) is None
    (c,) = m.check_records()
    assert c["name"] == "recovers" and c["ok"] is False
    assert "cell_overvoltage_protection set" in c["detail"]
    assert "still active" in c["failure"]


def test_a_device_that_does_not_recover_is_reported_with_its_last_observation() -> None:
    from harness.procedures.threshold import DeviceDidNotRecover

    dev = Device(trip=3.65, latched=True)
    m = Measurement(name="P5", unit="V")
    with pytest.raises(DeviceDidNotRecover) as caught:
        find_trip(Rig(dev.bench(), spec=None), setup(condition="any", reset_timeout_s=5.0), m)
    exc = caught.value
    assert str(exc).startswith("cell_overvoltage_protection still active 5 s after")
    assert exc.seen.startswith("5 s after the stimulus returned to 3.3: ")
    assert "cell_overvoltage_protection set, charge FET open" in exc.seen


# -- end to end: a small regression on the simulated bench ------------------------------------

#: ~30 cases: alarm and protection trips and recoveries (charging and discharging),
#: temperature, the charger voltage, two delays, switches on and off, every read-back mode
#: and the capacity functions.
SELECTION = (
    "P01- or P02- or P05- or P06- or P07- or P08- or P19- or P25- or P26- or P67- or P69- "
    "or S10- or S12- or P60-"
)


def assert_checks_read_true(records: list[dict]) -> int:
    """Every check has what was seen; a passing one carries no failure text. Returns how
    many checks were read."""
    n = 0
    for r in records:
        for c in r.get("checks") or []:
            n += 1
            where = f"{r['test_id']}: {c}"
            assert set(c) <= {"name", "ok", "detail", "failure", "channel"}, where
            assert c["name"] and c["detail"], where
            if c["ok"]:
                assert "failure" not in c, where
                assert not FAILURE_WORDS.search(c["detail"]), where
            else:
                assert c.get("failure"), where
    return n


@pytest.fixture(scope="module")
def clean_records(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    code, text, records = bmshil_run(tmp_path_factory.mktemp("evidence"), "-k", SELECTION)
    assert code == 0, text
    return records


def test_a_clean_regression_records_only_observations(clean_records: list[dict]) -> None:
    assert len(clean_records) >= 25
    assert {r["outcome"] for r in clean_records} <= {"passed", "skipped"}
    assert assert_checks_read_true(clean_records) >= 30
    by_id = {r["test_id"]: r for r in clean_records}
    trip = {c["name"]: c for c in by_id["P05-cell-overvoltage-protection-trip"]["checks"]}
    assert trip["flag reported"]["detail"].startswith("cell_overvoltage_protection reported")
    assert "charge FET open" in trip["charge current stopped"]["detail"]
    alarm = {c["name"]: c for c in by_id["P01-cell-high-voltage-alarm-trip"]["checks"]}
    assert "charge FET closed" in alarm["current keeps flowing"]["detail"]


def test_an_injected_fault_fails_with_what_was_seen_and_why(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("firmware:\n  - {item: P5, kind: no_flag}\n")
    code, text, records = bmshil_run(
        tmp_path / "out",
        "-k",
        "P05-cell-overvoltage-protection-trip or P06-cell-overvoltage-recovery",
        "--sim-faults",
        str(faults),
    )
    assert code == 1, text
    assert_checks_read_true(records)
    trip = {r["test_id"]: r for r in records}["P05-cell-overvoltage-protection-trip"]
    assert trip["outcome"] == "failed"
    checks = {c["name"]: c for c in trip["checks"]}
    flag = checks["flag reported"]
    assert flag["ok"] is False
    # What was seen: the flag named, absent, at the trip value the search found.
    assert "cell_overvoltage_protection" in flag["detail"] and "3.65" in flag["detail"]
    # Why it fails: its own sentence, also in the case's message.
    assert flag["failure"] != flag["detail"]
    assert "not reported when the function acted" in flag["failure"]
    assert flag["failure"] in trip["message"]
    # The protection did act, and the passing check in the same case says so plainly.
    current = checks["charge current stopped"]
    assert current["ok"] is True and "failure" not in current
    assert current["detail"].startswith("charge current 0.00 A, charge FET open")
