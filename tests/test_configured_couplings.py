"""The flags a case may see beside its own follow the device configuration under test.

- A coupling gated on a switch (``{flag: waiting_manual_activation, when: S54}``) is in force
  when that switch is: the captured 160 Ah pack runs manual activation (S54 on, S53 off), so
  its undervoltage cases expect the manual wait, the spec defaults the automatic one.
- A configuration that moves another row of the same stimulus into a case's search range
  adds that row's flag (the pack's P1 at 3.500 V is the top of P9's balancing search).
- A case whose isolation overrides the configuration pushes out of the spec's ranges is
  untestable naming the override and the broken bound (the device would refuse its block).
- A bad gated coupling is refused naming the file, the row, the key and the value.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bmsspec import TEST_PLANS_DIR, SpecError, load_spec
from bmsspec.config import configured_spec
from harness.plan import DEFAULT_CAPABILITIES, build_plan

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "test_plans" / "configs" / "pack-1101-ZA11-160Ah.yaml"
P10_TRIP = "P10-cell-low-voltage-prohibition-of-charging-trip"
P09_TRIP = "P09-balancing-activation-voltage-trip"
P35_QUIET = "P35-discharging-undertemperature-protection-quiet"


def _plan(spec) -> dict:
    return {c.id: c for c in build_plan(spec, DEFAULT_CAPABILITIES, suite="regression")}


@pytest.fixture(scope="module")
def defaults() -> dict:
    return _plan(load_spec())


@pytest.fixture(scope="module")
def pack() -> dict:
    spec, _config = configured_spec(load_spec(), PACK)
    return _plan(spec)


def test_the_activation_wait_follows_the_activation_switches(defaults, pack) -> None:
    assert "waiting_auto_activation" in defaults[P10_TRIP].params["couplings"]
    assert "waiting_manual_activation" not in defaults[P10_TRIP].params["couplings"]
    assert "waiting_manual_activation" in pack[P10_TRIP].params["couplings"]
    assert "waiting_auto_activation" not in pack[P10_TRIP].params["couplings"]


def test_a_row_moved_into_the_search_range_adds_its_flag(defaults, pack) -> None:
    assert pack[P09_TRIP].params["stop"] >= 3.5  # the pack's P1
    assert "cell_high_voltage_alarm" in pack[P09_TRIP].params["couplings"]
    # at the spec defaults P1 (3.550 V) lies beyond the search: nothing is added
    assert defaults[P09_TRIP].params["stop"] < 3.55
    assert "cell_high_voltage_alarm" not in defaults[P09_TRIP].params["couplings"]


def test_a_row_of_another_condition_adds_nothing(pack) -> None:
    # P9's search runs in standby: the charge-only rows of the cell stimulus never act there
    assert pack[P09_TRIP].condition == "standby"
    assert all("charg" not in f for f in pack[P09_TRIP].params["couplings"])


def test_an_isolation_the_configuration_breaks_is_untestable_with_the_numbers(
    defaults, pack
) -> None:
    assert defaults[P35_QUIET].testable
    case = pack[P35_QUIET]
    assert not case.testable and case.est_bench_s == 0.0
    assert case.reason == (
        "its isolation (P27 = -25 °C) breaks the parameter block: P27 "
        "(charging-undertemperature-protection) = -25.0 below min -20.0"
    )


def test_the_conforming_plan_has_no_refused_isolation(defaults) -> None:
    assert [c.id for c in defaults.values() if "isolation" in (c.reason or "")] == []


@pytest.mark.parametrize(
    ("coupling", "message"),
    [
        (
            "{flag: waiting_auto_activation, when: S99}",
            "key 'recipe.threshold.couplings.2.when' value 'S99': no such row",
        ),
        (
            "{flag: waiting_auto_activation, when: P5}",
            "key 'recipe.threshold.couplings.2.when' value 'P5': String should match pattern",
        ),
        (
            "{flag: waiting_for_nobody, when: S53}",
            "key 'recipe.threshold.couplings.2.flag' value 'waiting_for_nobody': not a name "
            "in status_flags.yaml",
        ),
    ],
)
def test_a_bad_gated_coupling_names_file_row_key_and_value(
    tmp_path: Path, coupling: str, message: str
) -> None:
    tables = tmp_path / "test_plans"
    shutil.copytree(TEST_PLANS_DIR, tables)
    params = tables / "parameters.yaml"
    text = params.read_text(encoding="utf-8")
    old = (
        "        couplings: [cell_low_voltage_alarm, cell_difference_fault,\n"
        "                    {flag: waiting_auto_activation, when: S53},\n"
    )
    assert text.count(old) == 1
    new = old.replace("{flag: waiting_auto_activation, when: S53}", coupling)
    params.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(tables)
    assert "parameters.yaml row 7 (cell-undervoltage-protection)" in str(err.value)
    assert message in str(err.value)
