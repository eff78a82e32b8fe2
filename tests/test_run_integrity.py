"""A verdict that never lies: how ``bmshil run`` behaves when a run is refused, cut short,
loses its bench or is resumed, on the simulated bench through the real wire.

Each test runs ``bmshil run`` as a user would (a subprocess) on a small selection, so a
loaded machine only makes it slower; no assertion rests on a tight wall-clock limit except
the lost bench's stop, which the issue states (within 10 s of the loss).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from reports.runs import load_run

ROOT = Path(__file__).resolve().parent.parent
SIM = ROOT / "fixtures" / "sim.yaml"
#: What the interrupt and kill tests run: enough cases (99) that the signal, sent once three
#: records are on disk, lands while cases are still running on an idle machine too (39
#: cases finished in about a second, before the signal, and the run was rightly complete).
MANY = "P0 or P1 or P2 or P3 or P4"
ONE = "P05-cell-overvoltage-protection-trip"

pytestmark = pytest.mark.timeout(600)


def bmshil(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def start_run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def records(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    if not path.exists():
        return []
    out_ = []
    for line in path.read_text().splitlines():
        try:
            out_.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out_


def wait_for_records(proc: subprocess.Popen[str], out: Path, n: int, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while len(records(out)) < n:
        assert proc.poll() is None, f"the run ended before {n} records: {proc.stdout.read()}"
        assert time.monotonic() < deadline, "no records appeared"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def junit_names(out: Path) -> list[str]:
    return [c.get("name") for c in ET.parse(out / "junit.xml").getroot().iter("testcase")]


def assert_every_case_once_and_pass(out: Path) -> None:
    data = load_run(out)
    comp = data.completion
    assert comp.complete and comp.verdict == "PASS", (comp.status, comp.verdict, comp.missing)
    names = junit_names(out)
    assert sorted(names) == sorted(set(names)) == sorted(data.info["planned"])
    finals = {}
    for r in records(out):
        finals[r["test_id"]] = r
    assert set(finals) == set(data.info["planned"])
    assert all(r["outcome"] in ("passed", "skipped") for r in finals.values())


@pytest.fixture(scope="module")
def sim_bench(tmp_path_factory: pytest.TempPathFactory):
    """One simulator served by ``bmshil sim`` for the tests that do not hurt it."""
    work = tmp_path_factory.mktemp("sim")
    bench = work / "bench.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sim", "--bench-out", str(bench)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not bench.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "bmshil sim did not start"
            time.sleep(0.05)
        yield bench
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- refused before anything runs ---------------------------------------------------------


def test_out_into_an_earlier_run_is_refused_and_leaves_it_whole(tmp_path: Path) -> None:
    out = tmp_path / "earlier"
    out.mkdir()
    (out / "results.jsonl").write_text('{"test_id": "x"}\n')
    proc = bmshil("run", "--out", str(out), "-k", ONE)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not empty" in proc.stdout and "--resume" in proc.stdout
    assert (out / "results.jsonl").read_text() == '{"test_id": "x"}\n'
    assert sorted(p.name for p in out.iterdir()) == ["results.jsonl"]


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_out_that_cannot_be_written_is_a_usage_error(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "run"
    proc = bmshil("run", "--out", str(out), "-k", ONE)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(out) in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda text: text.replace("  heater: true", "  heatr: true"), "capabilities.heatr"),
        (lambda text: text + "\ncapabilities: [\n", "not valid YAML"),
    ],
    ids=["capability-typo", "yaml-error"],
)
def test_a_broken_bench_file_is_one_message_and_no_results_directory(
    tmp_path: Path, edit, says: str
) -> None:
    bench = tmp_path / "bench.yaml"
    bench.write_text(edit(SIM.read_text()))
    root = tmp_path / "root"
    out = tmp_path / "run"
    proc = bmshil("run", "--bench", str(bench), "--out", str(out), "--results-root", str(root))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert says in text and str(bench) in text
    assert "Traceback" not in text and "interrupted" not in text and "INTERNALERROR" not in text
    assert not out.exists() and not (root / "latest").exists()
    plan = bmshil("plan", "--bench", str(bench))
    assert plan.returncode == 2 and says in plan.stderr and "Traceback" not in plan.stderr


def test_everything_a_run_writes_lives_in_its_directory_or_the_results_root(
    tmp_path: Path,
) -> None:
    scratch, root = tmp_path / "scratch", tmp_path / "root"
    scratch.mkdir()
    proc = bmshil("run", "--out", str(scratch / "run1"), "--results-root", str(root), "-k", ONE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in scratch.iterdir()) == ["run1"]
    assert (root / "history.sqlite").exists()
    assert (root / "latest").resolve() == (scratch / "run1").resolve()


# -- cut short, then resumed --------------------------------------------------------------


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_an_interrupted_run_says_so_and_resumes_to_pass(tmp_path: Path, how: str) -> None:
    out = tmp_path / "run"
    proc = start_run("--out", str(out), "-k", MANY, "--results-root", str(tmp_path))
    wait_for_records(proc, out, 3)
    os.kill(proc.pid, getattr(signal, how))
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, text
    assert "INCOMPLETE" in text and how in text and "Traceback" not in text
    data = load_run(out)
    assert data.info["end"]["status"] == "interrupted" and data.info["end"]["signal"] == how
    comp = data.completion
    assert not comp.complete and comp.verdict != "PASS"
    names = junit_names(out)
    assert sorted(names) == sorted(data.info["planned"])  # every planned case, once
    junit = ET.parse(out / "junit.xml").getroot()
    assert any(e.get("type") == "not_run" for e in junit.iter("error"))
    again = bmshil("run", "--resume", str(out), "--results-root", str(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert_every_case_once_and_pass(out)
    assert len(load_run(out).info["sessions"]) == 2


def test_kill_9_then_resume_ends_with_every_case_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = start_run("--out", str(out), "-k", MANY, "--results-root", str(tmp_path))
    wait_for_records(proc, out, 3)
    sims = children(proc.pid)
    before = {r["test_id"] for r in records(out)}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    comp = load_run(out).completion
    assert comp.status == "crashed" and not comp.complete and comp.verdict != "PASS"
    assert before <= {r["test_id"] for r in records(out)}  # nothing that finished is lost
    deadline = time.monotonic() + 20
    while any(alive(p) for p in sims) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in sims), "the simulator outlived its run"
    again = bmshil("run", "--resume", str(out), "--results-root", str(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert_every_case_once_and_pass(out)


def test_resume_refuses_another_selection_or_a_complete_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = start_run("--out", str(out), "-k", MANY, "--results-root", str(tmp_path))
    wait_for_records(proc, out, 2)
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=120)
    other = bmshil("run", "--resume", str(out), "-k", ONE, "--results-root", str(tmp_path))
    assert other.returncode == 2 and "keyword" in other.stdout, other.stdout
    faults = tmp_path / "f.yaml"
    faults.write_text("version: '16.5'\n")
    fw = bmshil("run", "--resume", str(out), "--sim-faults", str(faults))
    assert fw.returncode == 2 and "sim faults" in fw.stdout, fw.stdout
    assert bmshil("run", "--resume", str(out), "--results-root", str(tmp_path)).returncode == 0
    done = bmshil("run", "--resume", str(out), "--results-root", str(tmp_path))
    assert done.returncode == 2 and "complete" in done.stdout


# -- the bench is lost ---------------------------------------------------------------------


def test_a_lost_simulator_stops_the_run_in_seconds(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = start_run("--out", str(out), "--results-root", str(tmp_path))
    wait_for_records(proc, out, 5)
    sims = [p for p in children(proc.pid) if b"bmssim" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert sims, "no simulator child found"
    t_loss = time.monotonic()
    for pid in sims:
        os.kill(pid, signal.SIGKILL)
    text, _ = proc.communicate(timeout=120)
    stopped_after = time.monotonic() - t_loss
    assert proc.returncode == 1, text
    # How fast is a benchmark's figure (benchmarks/faults.py prints it); here: the run stops
    # at the case in flight instead of trying the rest of the regression against a dead
    # bench (each such case would cost its own timeouts), with a generous hang guard.
    assert stopped_after < 60, f"the run went on {stopped_after:.1f} s after the loss"
    assert "Traceback" not in text and "INCOMPLETE" in text and "bench lost" in text
    data = load_run(out)
    assert data.info["end"]["status"] == "bench_lost"
    outcomes = [r["outcome"] for r in records(out)]
    assert outcomes.count("error") <= 2, outcomes  # the case in flight, not one per case
    assert outcomes.count("not_run") > 250  # the rest of the regression, said so
    assert "failed" not in outcomes  # a lost bench is never a product failure
    assert data.completion.verdict != "PASS"


# -- faults and preflight on a shared simulator ------------------------------------------------


def test_faults_belong_to_their_run(tmp_path: Path, sim_bench: Path) -> None:
    faults = tmp_path / "p5.yaml"
    faults.write_text("firmware:\n  - {item: P5, kind: offset, value: 0.05}\n")
    first = bmshil(
        "run",
        "--bench",
        str(sim_bench),
        "--out",
        str(tmp_path / "a"),
        "-k",
        ONE,
        "--sim-faults",
        str(faults),
        "--results-root",
        str(tmp_path),
    )
    assert first.returncode == 1, first.stdout
    info = load_run(tmp_path / "a").info
    assert info["sim_faults_in_force"]["firmware"][0]["item"] in ("P5", 5)
    second = bmshil(
        "run",
        "--bench",
        str(sim_bench),
        "--out",
        str(tmp_path / "b"),
        "-k",
        ONE,
        "--results-root",
        str(tmp_path),
    )
    assert second.returncode == 0, second.stdout
    assert load_run(tmp_path / "b").info["sim_faults_in_force"]["firmware"] == []


def test_preflight_checks_the_bench_and_refuses_an_overdue_instrument(
    tmp_path: Path, sim_bench: Path
) -> None:
    check = bmshil("check", "--bench", str(sim_bench))
    assert check.returncode == 0, check.stdout + check.stderr
    for words in ("supply identity", "BMS link", "safe state: cells", "runnable", "passed"):
        assert words in check.stdout, check.stdout
    doc = yaml.safe_load(sim_bench.read_text())
    doc["instruments"]["supply"]["calibration_due"] = "2020-01-31"
    doc["instruments"]["supply"]["calibrated_on"] = "2019-01-31"
    overdue = tmp_path / "overdue.yaml"
    overdue.write_text(yaml.safe_dump(doc))
    refused = bmshil("check", "--bench", str(overdue))
    assert refused.returncode == 1 and "past due 2020-01-31" in refused.stdout
    out = tmp_path / "run"
    run = bmshil("run", "--bench", str(overdue), "--out", str(out), "-k", ONE)
    assert run.returncode == 2 and "calibration past due" in run.stdout + run.stderr
    assert not out.exists()
    accepted = bmshil(
        "run",
        "--bench",
        str(overdue),
        "--out",
        str(out),
        "-k",
        ONE,
        "--allow-overdue",
        "--results-root",
        str(tmp_path),
    )
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    info = load_run(out).info
    assert info["overdue_accepted"] == [{"instrument": "supply", "calibration_due": "2020-01-31"}]


def test_late_replies_are_bench_faults_never_product_failures(
    tmp_path: Path, sim_bench: Path
) -> None:
    faults = tmp_path / "late.yaml"
    faults.write_text("link: {late_every: 5, late_s: 0.6}\n")
    proc = bmshil(
        "run",
        "--bench",
        str(sim_bench),
        "--out",
        str(tmp_path / "late"),
        "-k",
        "P05 or P06",
        "--sim-faults",
        str(faults),
        "--results-root",
        str(tmp_path),
    )
    outcomes = [r["outcome"] for r in records(tmp_path / "late")]
    assert "failed" not in outcomes, proc.stdout
    assert proc.returncode == 0, proc.stdout
