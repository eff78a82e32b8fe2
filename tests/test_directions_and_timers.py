"""Both directions, onsets and timer restarts (issue 10 items 4 and 6).

Each new plan case is run twice over:

- in process, through ``runner.run_case`` on a bench made of the simulator's ``World``
  (the twin itself behind the instrument interfaces the procedures use), on the conforming
  twin (it passes) and on a twin with one feature altered to the firmware mistake no
  deviation kind expresses (it fails, saying measured against expected): busbar
  compensation with the wrong sign while charging, a counter that counts down while
  charging, pack undervoltage released by voltage while waiting for manual activation,
  passive limiting starting at P52, the static-balancing time not restarted by a charge;
- end to end (``bmshil run --sim-faults``) where a deviation kind exists: the overcurrent
  ``timer_not_reset`` on P67 / P68, and the reported current's sign (telemetry scale -1).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from e2e_support import run_by_id

from bmssim.twin import activation as twin_activation
from bmssim.twin.balancing import Balancing
from bmssim.twin.busbar import BUSBARS, BusbarCompensation
from bmssim.twin.coulomb import CoulombCounter
from bmssim.twin.limiting import CurrentLimiting
from bmssim.world import World
from bmsspec import load_spec
from harness.plan import build_plan
from harness.procedures.runner import run_case
from instruments.bms.types import Status, Telemetry

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec()
CAPS = yaml.safe_load((ROOT / "fixtures" / "sim.yaml").read_text())["capabilities"]
RELAYS = ["button", "bms_power", "power_switch", "secondary_trip", "short_circuit"]
NTC = {"cell1": 0, "cell2": 1, "cell3": 2, "cell4": 3, "ambient": 4, "power": 5}
SYSTEM_STATES = (
    "discharging",
    "charging",
    "float_charging",
    "fully_charged",
    "standby",
    "shutdown",
)

ONSET = "P51-charging-overcurrent-alarm-limit-onset"
COULOMB_UP = "P60-battery-remaining-capacity-coulomb-charging"
COULOMB_DOWN = "P60-battery-remaining-capacity-function"
BUSBAR_CHARGING = "P85-compensation-point-1-impedance-charging"
BUSBAR_DISCHARGING = "P85-compensation-point-1-impedance-function"
PACK_ACTIVATION = "P73-charging-activation-delay-after-pack-undervoltage"
CELL_ACTIVATION = "P73-charging-activation-delay"
STATIC_RESTART = "P65-static-balancing-time-delay-shortened"
OC_RESTART = {
    67: "P67-charging-overcurrent-delay-restart",
    68: "P68-discharging-overcurrent-delay-restart",
}
OC_DELAY = {67: "P67-charging-overcurrent-delay", 68: "P68-discharging-overcurrent-delay"}


class WorldBench:
    """The simulator's World behind the instrument interfaces the procedures call (no wire,
    no processes): virtual time moves only when a procedure waits."""

    def __init__(self, world: World) -> None:
        self.world = w = world
        self.poll_interval_s = 0.05
        self.scope = None
        b = w.bench

        def now() -> float:
            return w.clock.now_ms / 1000.0

        def settled(fn):
            def call(*a: Any, **k: Any) -> Any:
                out = fn(*a, **k)
                w.settle()
                return out

            return call

        def set_cell(cell: int, v: float) -> None:
            b.cells[cell - 1].voltage_set_v = float(v)

        def set_all(volts: Any) -> None:
            values = volts if isinstance(volts, list | tuple) else [volts] * len(b.cells)
            for ch, v in zip(b.cells, values, strict=False):
                ch.voltage_set_v = float(v)

        def set_temp(channel: str, c: float) -> None:
            w.set_ntc_c(NTC[channel], c)

        def normal(channel: str) -> None:
            b.ntc[NTC[channel]].state = "NORMAL"

        def transient(on: bool) -> None:
            b.load.transient_on = bool(on)

        self.clock = SimpleNamespace(now=now, sleep=lambda s: w.advance_s(s))
        self.supply = SimpleNamespace(
            set_voltage_v=settled(lambda v: setattr(b.supply, "voltage_set_v", float(v))),
            set_current_limit_a=settled(lambda a: setattr(b.supply, "current_limit_a", float(a))),
            output=settled(lambda on: setattr(b.supply, "output", bool(on))),
            measure_current_a=w.supply_current_a,
        )
        self.load = SimpleNamespace(
            set_current_a=settled(lambda a: setattr(b.load, "current_set_a", float(a))),
            input=settled(lambda on: setattr(b.load, "input_on", bool(on))),
            transient=settled(transient),
            measure_current_a=w.load_current_a,
        )
        self.cells = SimpleNamespace(set_cell_v=settled(set_cell), set_all_v=settled(set_all))
        self.resistors = SimpleNamespace(
            set_temperature_c=set_temp, normal=settled(normal), batch=contextlib.nullcontext
        )
        self.relays = SimpleNamespace(
            has=lambda name: name in RELAYS,
            activate=lambda name: w.set_relay(name, True),
            release=lambda name: w.set_relay(name, False),
            wiring=lambda name: None,
        )
        self.bms = SimpleNamespace(
            telemetry=self._telemetry,
            status=self._status,
            set_remaining_capacity=settled(w.twin.set_remaining_capacity),
            read_parameters=w.twin.read_block,
            write_parameters=settled(self._write),
            write_block=settled(w.twin.write_block),
            control=settled(w.twin.control),
        )

    def _write(self, values: dict[int, float], switches: dict[int, bool] | None = None) -> None:
        block = self.world.twin.read_block()
        block.values.update(values)
        block.switches.update(switches or {})
        self.world.twin.write_block(block)

    def _telemetry(self) -> Telemetry:
        m = self.world.twin.measurements()
        return Telemetry(
            cell_v=list(m.cell_v),
            cell_temp_c=list(m.temps_c[:4]),
            ambient_c=m.temps_c[4],
            power_c=m.temps_c[5],
            current_a=m.current_a,
            pack_v=m.pack_v,
            port_v=m.port_v,
            remaining_ah=m.remaining_ah,
            full_ah=m.full_ah,
            rated_ah=m.rated_ah,
            soc_pct=m.soc_permille / 10.0,
            cycles=m.cycles,
            soh_pct=m.soh_permille / 10.0,
        )

    def _status(self) -> Status:
        st = self.world.twin.status()
        flags = {f.name: f.name in st.flags for f in SPEC.flags}
        return Status(
            flags=flags,
            charge_fet="charge_fet" in st.flags,
            discharge_fet="discharge_fet" in st.flags,
            current_limit_fet="current_limit_fet" in st.flags,
            heater="heater" in st.flags,
            balancing=list(st.balancing),
            disconnected=list(st.disconnected),
            system_states=[s for s in SYSTEM_STATES if s in st.flags],
            cell_levels=list(st.cell_levels),
            temperature_levels=list(st.temp_levels),
            current_level=st.current_level,
            voltage_level=st.voltage_level,
        )


@pytest.fixture(scope="module")
def cases() -> dict[str, Any]:
    return {c.id: c for c in build_plan(SPEC, CAPS, "regression", relays=RELAYS)}


def run(case: Any) -> Any:
    world = World(SPEC)
    world.advance(1000)
    return run_case(WorldBench(world), SPEC, case)


def failed_with(m: Any, *words: str) -> str:
    assert m.outcome == "failed", m.to_dict()
    text = "; ".join(m.failures())
    for w in words:
        assert w in text, text
    return text


NEW_CASES = [
    ONSET,
    COULOMB_UP,
    BUSBAR_CHARGING,
    PACK_ACTIVATION,
    STATIC_RESTART,
    *OC_RESTART.values(),
]


def test_the_new_cases_are_in_the_regression_with_their_recipes(cases) -> None:
    for cid in NEW_CASES:
        c = cases[cid]
        assert c.testable, (cid, c.reason)
        assert "regression" in c.suites
    assert cases[ONSET].expected == SPEC.param(51).default  # the onset is P51's current
    assert cases[ONSET].params["start"] == SPEC.param(52).default  # searched up from P52
    assert cases[OC_RESTART[68]].params["first_s"] < cases[OC_RESTART[68]].params["delay_s"]
    assert cases[PACK_ACTIVATION].params["trigger_flag"] == "pack_undervoltage_protection"


@pytest.mark.parametrize("cid", [*NEW_CASES, COULOMB_DOWN, BUSBAR_DISCHARGING, CELL_ACTIVATION])
def test_each_case_passes_on_the_conforming_twin(cases, cid) -> None:
    m = run(cases[cid])
    assert m.outcome == "passed", m.failures()


def test_busbar_compensation_with_the_wrong_sign_while_charging_fails(cases, monkeypatch) -> None:
    def always_plus(self: BusbarCompensation) -> None:  # + |I| x R whatever the direction
        b = self.board
        for pos_n, imp_n in BUSBARS:
            pos, r_ohm = int(round(b.values[pos_n])), b.eff(imp_n) / 1000.0
            if 1 <= pos <= b.n_cells() and r_ohm:
                b.cells[pos - 1] = round(b.cells[pos - 1] + abs(b.i_ca / 100.0) * r_ohm, 3)

    monkeypatch.setattr(BusbarCompensation, "compensate", always_plus)
    m = run(cases[BUSBAR_CHARGING])
    assert m.measured == pytest.approx(-5.0, abs=0.1)
    failed_with(m, "measured -5", "expected 5", "cell 9", "lower while charging")
    assert run(cases[BUSBAR_DISCHARGING]).outcome == "passed"  # discharging cannot see it


def test_a_counter_counting_down_while_charging_fails(cases, monkeypatch) -> None:
    plain = CoulombCounter.integrate

    def down_always(self: CoulombCounter, t: int) -> None:
        b = self.board
        i = b.i_ca
        b.i_ca = -abs(i)
        try:
            plain(self, t)
        finally:
            b.i_ca = i

    monkeypatch.setattr(CoulombCounter, "integrate", down_always)
    m = run(cases[COULOMB_UP])
    assert m.measured == pytest.approx(-0.5, abs=0.02)
    failed_with(m, "measured -0.5", "expected 0.5")
    assert run(cases[COULOMB_DOWN]).outcome == "passed"  # the discharge case cannot see it


def test_pack_undervoltage_released_by_voltage_while_waiting_fails(cases, monkeypatch) -> None:
    # Only cell undervoltage starts the wait for manual activation: the pack protection
    # recovers by voltage as if S54 were off.
    monkeypatch.setattr(twin_activation, "MANUAL_ROWS", (7,))
    monkeypatch.setattr("bmssim.twin.thresholds.MANUAL_ROWS", (7,))
    m = run(cases[PACK_ACTIVATION])
    failed_with(m, "waits for manual activation", "discharge FET closed again without the button")
    assert run(cases[CELL_ACTIVATION]).outcome == "passed"


def test_passive_limiting_starting_at_the_recovery_value_fails(cases, monkeypatch) -> None:
    plain = CurrentLimiting.current

    def at_p52(self: CurrentLimiting, t: int) -> None:
        b = self.board
        eff = b.eff
        b.eff = lambda n: eff(52) if n == 51 else eff(n)
        try:
            plain(self, t)
        finally:
            del b.eff

    monkeypatch.setattr(CurrentLimiting, "current", at_p52)
    m = run(cases[ONSET])
    assert m.measured == pytest.approx(65.0)
    failed_with(m, "measured 65 A, expected 70 +- 0.7 A")


def test_static_balancing_time_not_restarted_by_a_charge_fails(cases, monkeypatch) -> None:
    monkeypatch.setattr(Balancing, "sample", lambda self, t: None)
    m = run(cases[STATIC_RESTART])
    assert m.measured == pytest.approx(1.0, abs=0.1)  # the first stop is on time
    failed_with(m, "balancing resumes after a charge", "not restarted")


# -- end to end, where a deviation kind exists ----------------------------------------------


@pytest.mark.parametrize("row", [67, 68])
def test_overcurrent_timer_not_reset_fails_the_restart_only(tmp_path: Path, row: int) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(f"firmware:\n  - {{item: P{row}, kind: timer_not_reset}}\n")
    sel = f"{OC_RESTART[row]} or {OC_DELAY[row]}"
    code, text, ids = run_by_id(tmp_path / "out", "-k", sel, "--sim-faults", str(faults))
    assert code == 1, text
    restart = ids[OC_RESTART[row]]
    assert restart["outcome"] == "failed", restart
    # 3 s of the 5 s delay ran in the first excursion, 1 s back at 5 A: the kept timer
    # trips the second excursion after the remaining second.
    assert restart["measured"] == pytest.approx(1.0, abs=0.2)
    assert "expected 5 +- 0.5 second" in restart["message"]
    assert ids[OC_DELAY[row]]["outcome"] == "passed"  # a single excursion cannot see it


def test_a_reported_current_with_the_wrong_sign_fails_the_direction_checks(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("telemetry:\n  - {quantity: current, kind: scale, value: -1.0}\n")
    sel = f"{COULOMB_UP} or {BUSBAR_CHARGING}"
    code, text, ids = run_by_id(tmp_path / "out", "-k", sel, "--sim-faults", str(faults))
    assert code == 1, text
    for cid in (COULOMB_UP, BUSBAR_CHARGING):
        r = ids[cid]
        assert r["outcome"] == "failed", r
        assert "reported current -" in r["message"] and "expected +" in r["message"], r
    # The counter and the compensation themselves are right: measured from the terminals.
    assert ids[COULOMB_UP]["measured"] == pytest.approx(0.5, abs=0.02)
    assert ids[BUSBAR_CHARGING]["measured"] == pytest.approx(5.0, abs=0.1)
