"""``bmshil run`` on two simulated benches, as a user runs it (a subprocess each):

- the full regression: every planned case exactly once, one results directory, one
  results.jsonl, one JUnit, one compliance report; each record names its bench, both
  benches worked, and history and the gate take the run as one;
- one bench lost (its simulator killed) while the other goes on: an incomplete run, not-run
  records for what the lost bench could not do, no product failure from the loss;
- SIGTERM of the parent: every worker and every simulator stops, the run says interrupted,
  and ``--resume`` finishes it with every case once.

No assertion rests on wall-clock speed (a loaded 2-core machine only makes it slower).
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

from reports.runs import load_run

ROOT = Path(__file__).resolve().parent.parent
#: 39 quick cases: trips, recoveries, delays and read-backs of P1-P19.
#: What the loss and signal tests run: enough cases (99) that the fault lands while both
#: benches still have cases to do (39 cases on two benches can end before it).
MANY = "P0 or P1 or P2 or P3 or P4"

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc"),
]


def bmshil(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
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
    found = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return found


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


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def simulators_of(run_pid: int) -> dict[int, list[int]]:
    """worker pid -> its simulator pids (the workers are the run's python children)."""
    return {
        w: [s for s in children(w) if b"bmssim" in cmdline(s)]
        for w in children(run_pid)
        if b"python" in cmdline(w)
    }


def wait_for(condition, limit_s: float, what: str, proc: subprocess.Popen[str]):
    deadline = time.monotonic() + limit_s
    while True:
        value = condition()
        if value:
            return value
        assert proc.poll() is None, f"{what}: the run ended first: {proc.stdout.read()}"
        assert time.monotonic() < deadline, f"{what}: not within {limit_s:g} s"
        time.sleep(0.1)


def junit_names(out: Path) -> list[str]:
    return [c.get("name") for c in ET.parse(out / "junit.xml").getroot().iter("testcase")]


def assert_every_case_once(out: Path) -> dict[str, dict]:
    data = load_run(out)
    planned = data.info["planned"]
    names = junit_names(out)
    assert sorted(names) == sorted(set(names)) == sorted(planned)
    finals: dict[str, dict] = {}
    for r in records(out):
        finals[r["test_id"]] = r
    assert set(finals) == set(planned)
    return finals


def test_the_regression_on_two_benches_runs_every_case_once_in_one_results_directory(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    proc = bmshil("run", "--sim-benches", "2", "--out", str(out), "--results-root", str(tmp_path))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "PASS" in text and "bench time per bench" in text
    data = load_run(out)
    assert data.completion.complete and data.completion.verdict == "PASS"
    assert len(data.info["planned"]) > 250
    finals = assert_every_case_once(out)
    recs = records(out)
    assert len(recs) == len(finals)  # one record each: nothing run twice
    assert {r["worker"] for r in recs} == {"gw0", "gw1"}  # both benches worked
    assert all(r["bench_file"] and r["bench_sha256"] for r in recs)
    sessions = data.info["sessions"]
    assert sorted(s["worker"] for s in sessions) == ["gw0", "gw1"]
    assert all(s["end"]["status"] == "complete" for s in sessions)
    assert [b["worker"] for b in data.info["benches"]] == ["gw0", "gw1"]
    assert data.completion.sessions == 1  # one invocation, two benches
    # one Allure result for the run, each case labelled with the bench that ran it
    hosts = {}
    for result in (out / "allure-results").glob("*-result.json"):
        doc = json.loads(result.read_text())
        host = [lb["value"] for lb in doc.get("labels", []) if lb["name"] == "bench"]
        if doc.get("status") != "skipped":
            hosts[doc["fullName"]] = host
    assert len(hosts) == len([r for r in finals.values() if r["outcome"] != "skipped"])
    assert {h[0].split()[0] for h in hosts.values() if h} == {"gw0", "gw1"}
    assert all(len(h) == 1 for h in hosts.values()), hosts
    # one report for the run
    report = bmshil("report", str(out))
    assert report.returncode == 0, report.stdout + report.stderr
    html = (out / "report.html").read_text()
    assert "INCOMPLETE" not in html
    # history and the gate take it as one run
    db = f"sqlite:///{tmp_path / 'history.sqlite'}"
    gate = bmshil("gate", "--baseline", str(out), "--candidate", str(out), "--db", db)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    hist = bmshil("history", "P05", "--db", db, "--kind", "trip")
    assert hist.returncode == 0, hist.stdout + hist.stderr
    assert hist.stdout.count("P05-cell-overvoltage-protection-trip") == 1, hist.stdout  # one row


def test_a_bench_lost_on_one_worker_gives_an_incomplete_run_and_the_other_goes_on(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    proc = start_run(
        "--sim-benches",
        "2",
        "-k",
        MANY,
        "--out",
        str(out),
        "--results-root",
        str(tmp_path),
    )
    try:
        wait_for(
            lambda: {r.get("worker") for r in records(out)} >= {"gw0", "gw1"},
            300,
            "records from both benches",
            proc,
        )
        sims = wait_for(
            lambda: [s for ss in simulators_of(proc.pid).values() for s in ss][:2],
            60,
            "the simulators",
            proc,
        )
        by_worker = simulators_of(proc.pid)
        victim_worker = next(w for w, ss in by_worker.items() if ss)
        for pid in by_worker[victim_worker]:
            os.kill(pid, signal.SIGKILL)
        text, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, text
    assert "Traceback" not in text and "INCOMPLETE" in text and "bench lost" in text
    data = load_run(out)
    assert data.info["end"]["status"] == "bench_lost"
    comp = data.completion
    assert not comp.complete and comp.verdict != "PASS"
    ends = {s["worker"]: s["end"]["status"] for s in data.info["sessions"]}
    lost = [w for w, status in ends.items() if status == "bench_lost"]
    assert len(lost) == 1 and set(ends.values()) == {"bench_lost", "complete"}, ends
    healthy = next(w for w in ends if w not in lost)
    finals = assert_every_case_once(out)
    not_run = [r for r in finals.values() if r["outcome"] == "not_run"]
    assert not_run, "the lost bench's cases are not said to be not run"
    assert all(r.get("worker") == lost[0] for r in not_run), not_run
    assert all("not run" in r["message"] for r in not_run)
    assert not any(r["outcome"] == "failed" for r in finals.values())
    assert any(r.get("worker") == healthy and r["outcome"] == "passed" for r in finals.values())
    assert not any(alive(p) for p in sims), "a simulator outlived its run"


def test_sigterm_stops_every_bench_and_resume_finishes_the_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = start_run(
        "--sim-benches",
        "2",
        "-k",
        MANY,
        "--out",
        str(out),
        "--results-root",
        str(tmp_path),
    )
    try:
        wait_for(lambda: len(records(out)) >= 3, 300, "three records", proc)
        by_worker = simulators_of(proc.pid)
        workers = list(by_worker)
        sims = [s for ss in by_worker.values() for s in ss]
        assert len(workers) == 2 and len(sims) == 2, by_worker
        os.kill(proc.pid, signal.SIGTERM)
        text, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, text
    assert "INCOMPLETE" in text and "SIGTERM" in text and "Traceback" not in text
    deadline = time.monotonic() + 30
    while any(alive(p) for p in workers + sims) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in workers + sims), "a worker or simulator outlived the run"
    data = load_run(out)
    assert data.info["end"]["status"] == "interrupted" and data.info["end"]["signal"] == "SIGTERM"
    assert not data.completion.complete
    # each bench was left through its safe state: no problem said on leaving it
    assert not data.info.get("close_problems"), data.info.get("close_problems")
    again = bmshil("run", "--resume", str(out), "--results-root", str(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    data = load_run(out)
    assert data.completion.complete and data.completion.verdict == "PASS"
    finals = assert_every_case_once(out)
    assert all(r["outcome"] in ("passed", "skipped") for r in finals.values())
    assert data.completion.sessions == 2
    assert len(data.info["sessions"]) == 4  # two invocations, two benches each
