"""The threshold search on its own: a tiny in-memory device with a trip, a recovery and a
confirmation time, behind the same bench interfaces the procedures use."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.procedures.record import Measurement
from harness.procedures.rig import Rig
from harness.procedures.threshold import ThresholdSetup, find_recovery, find_trip, naive_ramp_probes


class FakeDevice:
    """Cell overvoltage: trips when cell 1 >= trip for ``confirm_s``, clears <= recovery."""

    def __init__(self, trip: float, recovery: float, confirm_s: float = 1.0) -> None:
        self.trip, self.recovery, self.confirm_s = trip, recovery, confirm_s
        self.t = 0.0
        self.cell = 3.3
        self.active = False
        self.pending_since: float | None = None

    def _evaluate(self) -> None:
        wants = self.cell <= self.recovery if self.active else self.cell >= self.trip
        if wants:
            if self.pending_since is None:
                self.pending_since = self.t
            if self.t - self.pending_since >= self.confirm_s:
                self.active = not self.active
                self.pending_since = None
        else:
            self.pending_since = None

    def sleep(self, s: float) -> None:
        steps = max(1, int(round(s / 0.1)))
        for _ in range(steps):
            self.t += s / steps
            self._evaluate()


def fake_bench(dev: FakeDevice) -> SimpleNamespace:
    def set_cell_v(cell: int, v: float) -> None:
        if cell == 1:
            dev.cell = v
            dev.pending_since = None
            dev._evaluate()

    status = lambda: SimpleNamespace(  # noqa: E731
        flags={"cell_overvoltage_protection": dev.active},
        charge_fet=not dev.active,
        discharge_fet=True,
        balancing=[False] * 16,
        heater=False,
        system_states=["charging"],
    )
    return SimpleNamespace(
        clock=SimpleNamespace(now=lambda: dev.t, sleep=dev.sleep),
        cells=SimpleNamespace(set_cell_v=set_cell_v, set_all_v=lambda v: None),
        supply=SimpleNamespace(measure_current_a=lambda: 0.0 if dev.active else 5.0),
        load=SimpleNamespace(measure_current_a=lambda: 0.0),
        bms=SimpleNamespace(status=status),
    )


def setup_for(**kw: object) -> ThresholdSetup:
    base = dict(
        stimulus="cell",
        direction="high",
        flag="cell_overvoltage_protection",
        action="charge",
        safe=3.3,
        far=3.75,
        resolution=0.001,
        dwell_s=1.5,
        condition="any",
    )
    base.update(kw)
    return ThresholdSetup(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("trip", [3.650, 3.6005, 3.712])
def test_trip_found_within_resolution_in_tens_of_probes(trip: float) -> None:
    dev = FakeDevice(trip=trip, recovery=3.38)
    rig = Rig(fake_bench(dev), spec=None)
    m = Measurement(name="P5", unit="V", expected=3.65, tolerance=0.01)
    obs = find_trip(rig, setup_for(), m)
    assert obs is not None and obs.flag
    assert m.measured is not None and m.measured >= trip - 1e-9
    assert m.measured - trip <= 0.001 + 1e-9
    assert m.uncertainty is not None and m.uncertainty <= 0.001 + 1e-9
    assert rig.probes <= 30
    assert naive_ramp_probes(3.3, m.measured, 0.001) > 5 * rig.probes


def test_trip_beyond_tolerance_fails_the_verdict() -> None:
    dev = FakeDevice(trip=3.700, recovery=3.38)
    rig = Rig(fake_bench(dev), spec=None)
    m = Measurement(name="P5", unit="V", expected=3.65, tolerance=0.01)
    find_trip(rig, setup_for(), m)
    assert m.measured == pytest.approx(3.700, abs=0.0011)
    assert m.outcome == "failed"
    assert "expected 3.65" in m.failures()[0]


def test_no_trip_in_range_is_reported_not_invented() -> None:
    dev = FakeDevice(trip=3.9, recovery=3.38)
    rig = Rig(fake_bench(dev), spec=None)
    m = Measurement(name="P5", unit="V", expected=3.65, tolerance=0.01)
    assert find_trip(rig, setup_for(), m) is None
    assert m.measured is None
    assert m.outcome == "failed"


def test_recovery_found_between_drive_and_safe() -> None:
    dev = FakeDevice(trip=3.65, recovery=3.381)
    rig = Rig(fake_bench(dev), spec=None)
    m = Measurement(name="P6", unit="V", expected=3.38, tolerance=0.01)
    obs = find_recovery(rig, setup_for(), drive=3.68, m=m)
    assert obs is not None and not obs.flag
    assert m.measured is not None and m.measured <= 3.381 + 1e-9
    assert 3.381 - m.measured <= 0.001 + 1e-9
    assert m.outcome == "passed"


class BalancingDevice(FakeDevice):
    """Balancing-like: the function starts at ``trip`` and stops at ``recovery`` (each after
    the confirmation time), but what it reports (the per-cell bits) is the function AND the
    stimulus above ``recovery``: the bits drop as soon as the stimulus falls, the function
    a confirmation time later (as on the twin: P63/P64)."""

    def reported(self) -> bool:
        return self.active and self.cell > self.recovery


def balancing_bench(dev: BalancingDevice) -> SimpleNamespace:
    bench = fake_bench(dev)
    bench.bms = SimpleNamespace(
        status=lambda: SimpleNamespace(
            flags={},
            charge_fet=True,
            discharge_fet=True,
            balancing=[dev.reported()] + [False] * 15,
            heater=False,
            system_states=["standby"],
        )
    )
    bench.supply = SimpleNamespace(measure_current_a=lambda: 0.0)
    return bench


def test_a_report_that_clears_before_the_function_does_not_lower_the_trip() -> None:
    """After a probe that acted, the search returns to the safe value; the reported bits clear
    at once while the function still runs for its confirmation time. Probing inside the
    hysteresis band at that moment would read as acting: the reset holds the safe value one
    more dwell, so the trip is found where it is (was: 0.022-0.024 V for P63's 0.030 V)."""
    dev = BalancingDevice(trip=0.030, recovery=0.020)
    rig = Rig(balancing_bench(dev), spec=None)
    setup = setup_for(
        stimulus="cell", flag="balancing", action=None, safe=0.0, far=0.08, resolution=0.002
    )
    m = Measurement(name="P63", unit="V", expected=0.030, tolerance=0.01)
    obs = find_trip(rig, setup, m)
    assert obs is not None and obs.flag, m.failures()
    assert m.measured == pytest.approx(0.030, abs=0.002 + 1e-9)
    assert m.measured >= 0.030 - 1e-9


def _torn_bench(supply_reads: list[float]) -> SimpleNamespace:
    """Charge FET reported closed; the supply's current reads come from ``supply_reads``."""
    dev = FakeDevice(trip=3.65, recovery=3.38)
    bench = fake_bench(dev)
    reads = iter(supply_reads)
    bench.supply = SimpleNamespace(measure_current_a=lambda: next(reads))
    return bench


def test_a_torn_observation_is_read_once_more() -> None:
    # the FET moved between the status read and the current read: read again
    rig = Rig(_torn_bench([0.0, 5.0]), spec=None)
    rig._condition = "charging"
    assert rig.observe(None).supply_a == 5.0
    # an inconsistency that stays is returned as it is (the whole-state check sees it)
    rig = Rig(_torn_bench([0.0, 0.0, 7.0]), spec=None)
    rig._condition = "charging"
    assert rig.observe(None).supply_a == 0.0
