"""Every channel (issue 10 item 1): a protection or alarm on a per-channel quantity is proven
on every cell and every cell NTC, not only on the one its search drives.

The plan gives a trip case on a per-channel stimulus its reference channel, the other
channels and the go/no-go margin (from the stimulus's ``every_channel`` in
parameters.yaml); the threshold procedure then probes each other channel just short of
the measured trip (must stay quiet) and just beyond it (must act). A twin whose function
ignores one channel (``channel_ignored``) fails that row's trip case naming the channel,
and nothing else fails."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from e2e_support import bmshil_run

from bmsspec import TEST_PLANS_DIR, SpecError, load_spec
from harness.plan import DEFAULT_CAPABILITIES, build_plan
from harness.procedures import channels
from harness.procedures.record import Measurement
from harness.procedures.rig import Observation
from harness.procedures.setup import Setup
from harness.procedures.threshold import DeviceDidNotRecover, ThresholdSetup, _acted, reset

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec()
PLAN = {c.id: c for c in build_plan(SPEC, DEFAULT_CAPABILITIES)}

CELL_TRIPS = [1, 3, 5, 7, 9, 10, 61, 63]
NTC_TRIPS = [21, 23, 25, 27, 29, 31, 33, 35, 37]


def trip_case(number: int):
    (case,) = [c for c in PLAN.values() if c.number == number and c.kind == "trip"]
    return case


# -- the plan -----------------------------------------------------------------------------


@pytest.mark.parametrize("number", CELL_TRIPS)
def test_a_cell_trip_sweeps_cells_2_to_16(number: int) -> None:
    p = trip_case(number).params
    assert p["channel"] == "cell 1"
    assert p["channels"] == list(range(2, 17))
    assert p["channel_label"] == "cell"
    assert p["channel_margin"] == 0.010
    assert "channel_stimulus" not in p  # the stimulus itself, driven on cell n


@pytest.mark.parametrize("number", NTC_TRIPS)
def test_a_cell_temperature_trip_sweeps_ntcs_2_to_4(number: int) -> None:
    p = trip_case(number).params
    assert p["stimulus"] == "ntc:cell1"
    assert p["channel"] == "cell NTC 1"
    assert p["channels"] == [2, 3, 4]
    assert p["channel_stimulus"] == "ntc:cell{n}"
    assert p["channel_margin"] == 2.0


@pytest.mark.parametrize("number", [11, 19, 39, 47, 51, 57, 79])
def test_a_quantity_without_channels_gets_no_sweep(number: int) -> None:
    p = trip_case(number).params
    assert not {"channel", "channels", "channel_margin"} & set(p)


def test_a_recovery_names_its_channel_and_sweeps_none() -> None:
    p = PLAN["P06-cell-overvoltage-recovery"].params
    assert p["channel"] == "cell 1"
    assert "channels" not in p


def _copy(tmp_path: Path) -> Path:
    out = tmp_path / "test_plans"
    shutil.copytree(TEST_PLANS_DIR, out)
    return out


P5_ACTS = "        acts: {flag: cell_overvoltage_protection, fets: charge}\n"


def _p5_with(tmp_path: Path, extra: str) -> Path:
    tables = _copy(tmp_path)
    path = tables / "parameters.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(P5_ACTS) == 1
    path.write_text(text.replace(P5_ACTS, P5_ACTS + extra), encoding="utf-8")
    return tables


def test_the_estimate_includes_the_sweep(tmp_path: Path) -> None:
    """Per channel two probes and a reset (one dwell to clear, one held): 4 dwells; one
    reset of the reference before them. A recipe's ``channels:`` narrows the sweep."""
    full = trip_case(5)
    dwell = full.params["dwell_s"]
    none = {c.id: c for c in build_plan(load_spec(_p5_with(tmp_path, "        channels: []\n")))}
    bare = none[full.id]
    assert "channels" not in bare.params and bare.params["channel"] == "cell 1"
    assert full.est_bench_s == pytest.approx(bare.est_bench_s + 2 * dwell + 15 * 4 * dwell)
    one = {
        c.id: c for c in build_plan(load_spec(_p5_with(tmp_path / "b", "        channels: [16]\n")))
    }
    assert one[full.id].params["channels"] == [16]
    assert one[full.id].est_bench_s == pytest.approx(bare.est_bench_s + 6 * dwell)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "        channels: [17]\n",
            "key 'recipe.threshold.channels' value [17]: Value error, 17 is not another "
            "channel of stimulus 'cell' (cell 1..16 but the reference 1)",
        ),
        (
            "        channels: [1, 2]\n",
            "key 'recipe.threshold.channels' value [1, 2]: Value error, 1 is not another",
        ),
        ("        channels: [2, 2]\n", "a channel is listed twice"),
        (
            "        cell: 17\n",
            "key 'recipe.threshold.cell' value 17: Value error, stimulus 'cell' has cell "
            "1..16, not 17",
        ),
    ],
)
def test_bad_channels_name_file_row_key_and_value(tmp_path: Path, extra: str, message: str):
    with pytest.raises(SpecError) as err:
        load_spec(_p5_with(tmp_path, extra))
    assert "parameters.yaml row 5 (cell-overvoltage-protection)" in str(err.value)
    assert message in str(err.value)


def test_channels_on_a_stimulus_without_channels_are_refused(tmp_path: Path) -> None:
    tables = _copy(tmp_path)
    path = tables / "parameters.yaml"
    acts = "        acts: {flag: pack_overvoltage_protection, fets: charge}\n"
    text = path.read_text(encoding="utf-8")
    assert text.count(acts) == 1
    path.write_text(text.replace(acts, acts + "        channels: [2]\n"), encoding="utf-8")
    with pytest.raises(SpecError, match="stimulus 'pack' has no channels"):
        load_spec(tables)


# -- the procedure, against a device with one channel off -----------------------------------


class OneChannelOff:
    """A rig whose function trips at ``trip`` on every cell but ``early`` (trips ``by``
    lower) and ``deaf`` (never trips): enough of ``Rig`` for ``channels.prove``."""

    def __init__(
        self, params: dict, trip: float, early: int = 0, deaf: int = 0, by=0.0, alarm=False
    ):
        self.setup = Setup("case", params)
        self.alarm = alarm  # an alarm: the flag only, the charge keeps flowing
        self.trip, self.early, self.deaf, self.by = trip, early, deaf, by
        self.probes = 0
        self.cells = [3.3] * 16
        self.t = 0.0

    def level_trips(self, cell: int, v: float) -> bool:
        if cell == self.deaf:
            return False
        return v >= self.trip - (self.by if cell == self.early else 0.0) - 1e-9

    def _obs(self, value: float | None) -> Observation:
        on = any(self.level_trips(i + 1, v) for i, v in enumerate(self.cells))
        stops = on and not self.alarm
        return Observation(self.t, value, on, {}, not stops, True, 0.0 if stops else 5.0, 0.0)

    def probe(self, stimulus, value, flag, dwell_s, cell=1) -> Observation:
        assert stimulus == "cell"
        self.cells[cell - 1] = value
        self.t += dwell_s
        self.probes += 1
        return self._obs(value)

    def apply(self, stimulus, value, cell=1) -> None:
        self.cells[cell - 1] = value

    def now(self) -> float:
        return self.t

    def wait_until(self, predicate, timeout_s, poll_s, flag=None):
        obs = self._obs(None)
        return obs if predicate(obs) else None

    def observe(self, flag, stimulus=None) -> Observation:
        return self._obs(stimulus)

    def condition_flowing(self, obs: Observation) -> bool:
        return True


def _prove(rig: OneChannelOff, measured: float = 3.65) -> Measurement:
    case = SimpleNamespace(params=rig.setup.params)
    setup = ThresholdSetup.from_case(SimpleNamespace(kind="trip", params=rig.setup.params))
    m = Measurement("P05", "V", 3.65, 0.01, measured=measured)
    channels.prove(rig, case, setup, m, _acted, reset, DeviceDidNotRecover)
    return m


def test_a_conforming_device_passes_every_pair() -> None:
    rig = OneChannelOff(dict(trip_case(5).params), 3.65)
    m = _prove(rig)
    assert m.outcome == "passed", m.failures()
    names = [c.name for c in m.checks]
    assert names[:2] == ["cell 2 quiet just short", "cell 2 acts"]
    assert len(names) == 30 and names[-1] == "cell 16 acts"
    assert [c.channel for c in m.checks[-2:]] == ["cell 16", "cell 16"]
    assert m.channel == "cell 1 (search), cells 2-16 (go/no-go)"
    assert m.channel_probes == rig.probes and m.channel_probes >= 45  # 2 probes + a held reset
    assert "0.01 V short of / beyond the trip measured on cell 1" in m.note
    assert "3.66 V (measured trip on cell 1 3.65 V + margin 0.01 V)" in m.checks[1].seen


def test_a_deaf_channel_fails_its_acts_check_naming_it() -> None:
    m = _prove(OneChannelOff(dict(trip_case(5).params), 3.65, deaf=16))
    failed = m.failed_checks()
    assert [c.name for c in failed] == ["cell 16 acts"]
    assert failed[0].channel == "cell 16"
    assert m.failures() == [
        "cell 16 acts: cell 16: cell_overvoltage_protection not reported; charge FET still "
        "closed at 3.66 V (measured trip on cell 1 3.65 V + margin 0.01 V); saw "
        "cell_overvoltage_protection clear, charge FET closed, discharge FET closed, charge "
        "current 5.00 A, discharge current 0.00 A"
    ]


def test_an_early_channel_fails_its_quiet_check_naming_it() -> None:
    m = _prove(OneChannelOff(dict(trip_case(5).params), 3.65, early=7, by=0.02))
    failed = m.failed_checks()
    assert [c.name for c in failed] == ["cell 7 quiet just short"]
    assert failed[0].reason.startswith(
        "cell 7: acted at 3.64 V (measured trip on cell 1 3.65 V - margin 0.01 V), a trip "
        "earlier than cell 1's"
    )


def test_the_pair_stays_inside_the_search_bounds() -> None:
    """P1's search stops 30 mV short of P5 (its charge would stop): a trip measured close to
    that bound is probed at the bound, said so, not beyond it."""
    params = dict(trip_case(1).params)
    far = params["stop"]
    m = _prove(OneChannelOff(params, far - 0.004, alarm=True), measured=far - 0.004)
    assert m.failed_checks() == [], m.failures()
    acts = m.checks[1]
    assert acts.name == "cell 2 acts"
    assert acts.seen.startswith(f"cell 2 at {far:g} V (measured trip on cell 1 ")
    assert "+ margin 0.01 V, at the search bound)" in acts.seen


def test_no_sweep_after_a_failed_search() -> None:
    rig = OneChannelOff(dict(trip_case(5).params), 3.65)
    m = _prove(rig, measured=None)  # type: ignore[arg-type]
    assert m.checks == [] and rig.probes == 0 and m.channel == "cell 1"


# -- end to end: the twin ignores one channel of a row --------------------------------------

#: Rows whose trip case must fail, with the channel the twin ignores for it. Balancing's
#: rows share one function (P9, P63, P64), so ignoring a cell for P63 fails P9's trip too.
IGNORED = {
    "P5": ("cell", 16),
    "P7": ("cell", 9),
    "P25": ("cell NTC", 4),
    "P31": ("cell NTC", 2),
    "P37": ("cell NTC", 3),
    "P61": ("cell", 5),
    "P63": ("cell", 12),
}
FAILING = {**IGNORED, "P9": ("cell", 12)}
#: The rows above and their neighbours on the same channel source, which must still pass.
SELECTION = " or ".join(
    f"{i}-"
    for i in ["P01", "P02", "P03", "P05", "P06", "P07", "P08", "P09", "P21", "P25", "P26"]
    + ["P31", "P32", "P37", "P38", "P61", "P62", "P63", "P64"]
)


@pytest.fixture(scope="module")
def ignored_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, list[dict]]:
    tmp = tmp_path_factory.mktemp("every-channel")
    faults = tmp / "faults.yaml"
    lines = ["firmware:"] + [
        f"  - {{item: {item}, kind: channel_ignored, channel: {n}}}"
        for item, (_label, n) in IGNORED.items()
    ]
    faults.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bmshil_run(tmp / "out", "-k", SELECTION, "--sim-faults", str(faults))


def test_an_ignored_channel_fails_its_trip_case_naming_the_channel(ignored_run) -> None:
    code, text, records = ignored_run
    assert code == 1, text
    failed = {r["item"]: r for r in records if r["outcome"] == "failed"}
    assert set(failed) == set(FAILING), text
    for item, (label, n) in FAILING.items():
        r = failed[item]
        assert r["kind"] == "trip", r["test_id"]
        bad = [c for c in r["checks"] if not c["ok"]]
        assert [c["name"] for c in bad] == [f"{label} {n} acts"], r["test_id"]
        assert bad[0]["channel"] == f"{label} {n}"
        assert bad[0]["failure"].startswith(f"{label} {n}: "), bad[0]["failure"]
        assert f"(measured trip on {label} 1 " in bad[0]["failure"]
        assert r["measured"] == pytest.approx(r["expected"], abs=r["tolerance"])
        assert "(go/no-go)" in r["channel"]


def test_nothing_unrelated_fails(ignored_run) -> None:
    _code, text, records = ignored_run
    assert len(records) >= 30
    others = [r for r in records if r["item"] not in FAILING or r["kind"] != "trip"]
    assert others and all(r["outcome"] == "passed" for r in others), text


def test_a_conforming_twin_records_every_channel(tmp_path: Path) -> None:
    code, text, records = bmshil_run(
        tmp_path / "out", "-k", "P05-cell-overvoltage-protection-trip or P25- or P06-"
    )
    assert code == 0, text
    by_id = {r["test_id"]: r for r in records}
    trip = by_id["P05-cell-overvoltage-protection-trip"]
    assert trip["channel"] == "cell 1 (search), cells 2-16 (go/no-go)"
    swept = [c for c in trip["checks"] if "channel" in c]
    assert {c["channel"] for c in swept} == {f"cell {n}" for n in range(2, 17)}
    assert all(c["ok"] for c in swept)
    assert trip["channel_probes"] >= 2 * 15
    ntc = by_id["P25-charging-overtemperature-protection-trip"]
    assert ntc["channel"] == "cell NTC 1 (search), cell NTCs 2-4 (go/no-go)"
    assert by_id["P06-cell-overvoltage-recovery"]["channel"] == "cell 1"
    # the plan's estimate covers the sweep
    assert PLAN[trip["test_id"]].est_bench_s >= trip["bench_s"] * 0.8
