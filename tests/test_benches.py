"""Several benches in one run: the pieces without a bench (scheduler order, shared results
file, which benches may share a run). The runs themselves: ``tests/test_benches_e2e.py``."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import FIXTURES_DIR
from harness.multi_run import BenchSetError, bench_time_by_worker, resolve, resume_difference
from harness.multi_run import validate as validate_benches
from harness.results import SharedResultsWriter, final_records, read_results
from harness.xdist_hooks import HAND_STEP_GROUP, BenchScheduling, plan_units, sequence_group

SIM = FIXTURES_DIR / "sim.yaml"


def case(cid: str, est: float, group: str | None = None, hand: bool = False) -> Any:
    params = {"hand_steps": ["button"]} if hand else {}
    return SimpleNamespace(id=cid, est_bench_s=est, sequence_group=group, params=params)


def ids(n: int) -> list[str]:
    return [f"test_plans/parameters.yaml::C{i}" for i in range(n)]


# -- order of the work ----------------------------------------------------------------------


def test_units_are_longest_first_and_a_sequence_group_stays_whole_in_plan_order() -> None:
    cases = {
        "C0": case("C0", 5),
        "C1": case("C1", 50, group="g"),
        "C2": case("C2", 100),
        "C3": case("C3", 60, group="g"),
        "C4": case("C4", 5),
    }
    units = plan_units(ids(5), cases)
    assert units == [[1, 3], [2], [0], [4]]  # g: 110 s; ties keep plan order


def test_hand_step_cases_form_one_group_unless_the_plan_names_one() -> None:
    assert sequence_group(case("a", 1, hand=True)) == HAND_STEP_GROUP
    assert sequence_group(case("a", 1, group="mine", hand=True)) == "mine"
    assert sequence_group(case("a", 1)) is None
    units = plan_units(
        ids(3),
        {"C0": case("C0", 9, hand=True), "C1": case("C1", 20), "C2": case("C2", 12, hand=True)},
    )
    assert units == [[0, 2], [1]]


class FakeNode:
    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def scheduler(
    n_cases: int, est: list[float], n_nodes: int = 2
) -> tuple[BenchScheduling, list[FakeNode]]:
    cases = {f"C{i}": case(f"C{i}", e) for i, e in enumerate(est)}
    session = SimpleNamespace(dispatched={}, case_lookup=lambda: cases)
    sched = BenchScheduling.__new__(BenchScheduling)
    sched.__dict__.update(
        numnodes=n_nodes,
        config=None,
        log=None,
        session=session,
        node2collection={},
        node2pending={},
        collection=None,
        units=[],
        lost=set(),
        down_errors={},
        refused=False,
    )
    nodes = [FakeNode(f"gw{k}") for k in range(n_nodes)]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, ids(n_cases))
    sched.schedule()
    return sched, nodes


def test_each_bench_gets_the_longest_remaining_case_when_it_is_free() -> None:
    sched, (a, b) = scheduler(6, [10, 60, 30, 50, 20, 40])
    # longest first: 1 (60), 3 (50), 5 (40), 2 (30), 4 (20), 0 (10); two at a time
    assert a.sent == [1, 3] and b.sent == [5, 2]
    sched.mark_test_complete(b, 5)
    assert b.sent == [5, 2, 4]
    sched.mark_test_complete(a, 1)
    assert a.sent == [1, 3, 0] and a.shutting_down and b.shutting_down  # nothing left
    assert sched.session.dispatched["C0"] == "gw0"
    for node, idx in ((a, 3), (a, 0), (b, 2), (b, 4)):
        sched.mark_test_complete(node, idx)
    assert sched.tests_finished


def test_a_lost_bench_gets_no_more_cases_and_the_others_take_them() -> None:
    sched, (a, b) = scheduler(8, [8, 7, 6, 5, 4, 3, 2, 1])
    sched.mark_lost(a)
    sched.mark_test_complete(a, 0)
    sched.mark_test_complete(a, 1)
    assert a.sent == [0, 1] and a.shutting_down
    while not sched.tests_finished:
        idx = sched.node2pending[b][0]
        sched.mark_test_complete(b, idx)
    assert sorted(a.sent + b.sent) == list(range(8)) and b.sent[2:] == [4, 5, 6, 7]
    sched.node_down(a, None)
    assert sched.remove_node(a) is None  # finished: no crash item
    assert not b.shutting_down or not sched.units


def test_a_worker_that_died_names_the_case_it_was_running() -> None:
    sched, (a, _b) = scheduler(4, [4, 3, 2, 1])
    sched.node_down(a, "Not properly terminated")
    assert sched.remove_node(a) == ids(4)[0]


# -- one results file, several processes ------------------------------------------------------


def _append(directory: str, worker: str, n: int) -> None:
    writer = SharedResultsWriter(Path(directory), stamp={"worker": worker})
    for i in range(n):
        writer.write({"test_id": f"{worker}-{i}", "outcome": "passed", "message": "x" * 3000})
    writer.close()


def test_records_from_several_processes_are_all_there_and_whole(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(str(tmp_path), f"gw{k}", 200)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 600
    recs = [json.loads(line) for line in lines]  # every line whole JSON
    assert len({r["test_id"] for r in recs}) == 600
    assert {r["worker"] for r in recs} == {"gw0", "gw1", "gw2"}


def test_a_record_cut_by_a_dead_worker_does_not_take_the_next_one_with_it(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text(
        '{"test_id": "A", "outcome": "passed"}\n{"test_id": "B", "outc'
    )
    writer = SharedResultsWriter(tmp_path, stamp={"worker": "gw1"})
    writer.write({"test_id": "C", "outcome": "passed"})
    writer.close()
    assert set(final_records(read_results(tmp_path))) == {"A", "C"}


def test_bench_time_is_summed_per_worker() -> None:
    recs = [
        {"worker": "gw1", "bench_s": 2.0},
        {"worker": "gw0", "bench_s": 1.5},
        {"worker": "gw1", "bench_s": 1},
    ]
    assert bench_time_by_worker(recs) == {"gw0": 1.5, "gw1": 3.0}
    assert bench_time_by_worker([{"bench_s": 3}]) == {}


# -- which benches may share a run -------------------------------------------------------------


def test_sim_benches_start_the_simulated_bench_n_times() -> None:
    assert resolve(None, 3, None) == [SIM] * 3
    assert resolve([Path("a.yaml"), Path("b.yaml")], None, None) == [Path("a.yaml"), Path("b.yaml")]
    with pytest.raises(
        BenchSetError, match="--sim-benches: expected a number of benches >= 1, got 0"
    ):
        resolve(None, 0, None)
    with pytest.raises(BenchSetError, match="--sim-benches 2 with 2 --bench files"):
        resolve([Path("a.yaml"), Path("b.yaml")], 2, None)


def test_a_resumed_run_takes_its_recorded_benches() -> None:
    recorded = {
        "benches": [
            {"worker": "gw0", "bench_file": str(SIM)},
            {"worker": "gw1", "bench_file": str(SIM)},
        ]
    }
    assert resolve(None, None, recorded) == [SIM, SIM]
    assert resolve(None, None, {"bench_file": "x.yaml"}) == [Path("x.yaml")]


def test_resume_compares_the_bench_files_by_content(tmp_path: Path) -> None:
    from harness.session import _file_sha256

    info = {"benches": [{"bench_file": str(SIM), "bench_sha256": _file_sha256(SIM)}] * 2}
    assert resume_difference(info, [SIM]) is None  # fewer workers on the same bench file
    other = tmp_path / "other.yaml"
    other.write_text(SIM.read_text() + "\n# changed\n")
    said = resume_difference(info, [SIM, other])
    assert said is not None and "bench file" in said and "other.yaml" in said


def test_a_real_bench_given_twice_is_refused(tmp_path: Path) -> None:
    lab = FIXTURES_DIR / "example-lab.yaml"
    with pytest.raises(BenchSetError, match=r"--bench .*example-lab.yaml: given twice"):
        validate_benches([lab, lab], "regression")
    validate_benches([SIM, SIM], "regression")  # a launched bench starts once per worker


def test_benches_with_different_plans_are_refused(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(SIM.read_text())
    caps = data.get("capabilities")
    assert caps, "fixtures/sim.yaml declares no capabilities: nothing to take away"
    key = next(k for k, v in caps.items() if v is True)
    data["capabilities"] = {**caps, key: False}
    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(yaml.safe_dump(data))
    with pytest.raises(BenchSetError, match=r"--bench .*fewer.yaml: its plan differs"):
        validate_benches([SIM, fewer], "regression")
