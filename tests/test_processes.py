"""Nothing a run starts outlives it, and faults belong to the run that injected them.

- a process holding ``Bench.open("fixtures/sim.yaml")`` killed with -9: its simulator stops
  and removes the ``bmshil-bench-*`` work directory;
- ``bmshil sim``: SIGTERM is forwarded (exit 0), and kill -9 of it stops the simulator too;
- ``python -m bmssim`` watching a parent (``$BMSHIL_PARENT_PID``, no PDEATHSIG): it stops
  once that process is gone;
- the control channel says which faults are in force, and ``faults: {}`` clears them.

Waits are generous polls, not timing assertions. Every process a test starts is killed in a
``finally``, so a failing test leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bmssim.bench import WORKDIR_PREFIX, process_alive, remove_run_files
from harness import FIXTURES_DIR, PROJECT_ROOT
from harness.bench import parent_death_preexec

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds child processes through /proc"
)

READY_S = 60.0
GONE_S = 15.0


# --------------------------------------------------------------------------- helpers


def _stat(pid: int) -> tuple[int, str] | None:
    """(ppid, start time) of ``pid``, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[1]), fields[19]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def sim_children(parent: int) -> list[tuple[int, str]]:
    """(pid, start time) of every ``bmssim`` process whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat and stat[0] == parent and "bmssim" in _cmdline(int(entry.name)):
            found.append((int(entry.name), stat[1]))
    return found


def wait_for(condition: Any, timeout_s: float, what: str, proc: Any = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"{what}: the process exited with {proc.returncode}:\n{out}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.1)


def wait_gone(pid: int, start: str, timeout_s: float = GONE_S) -> bool:
    """True once ``pid`` (that very process: same start time) has exited (a zombie counts:
    its parent may be an init that does not reap)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process_alive(pid, start):
            return True
        time.sleep(0.1)
    return not process_alive(pid, start)


def kill_quietly(pid: int, start: str | None = None) -> None:
    """SIGKILL ``pid`` if it is still that process (finally-clauses of the tests)."""
    if process_alive(pid, start):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def reap(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def control(address: str, **request: Any) -> dict[str, Any]:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(json.dumps(request).encode() + b"\n")
        return json.loads(sock.makefile("rb").readline())


# --------------------------------------------------------------------------- bench launch

PARENT = textwrap.dedent(
    """
    import json, os, sys, time
    from harness.bench import Bench
    with Bench.open(sys.argv[1]) as b:
        tmp = sys.argv[2] + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"bench_file": str(b.path)}, fh)
        os.replace(tmp, sys.argv[2])
        time.sleep(600)
    """
)


def test_kill_9_of_the_bench_holder_stops_the_simulator_and_removes_its_workdir(
    tmp_path: Path,
) -> None:
    info = tmp_path / "info.json"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(FIXTURES_DIR / "sim.yaml"), str(info)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sims: list[tuple[int, str]] = []
    workdir: Path | None = None
    try:
        wait_for(info.exists, READY_S, "bench open", parent)
        bench_file = Path(json.loads(info.read_text())["bench_file"])
        workdir = bench_file.parent
        assert workdir.name.startswith(WORKDIR_PREFIX) and bench_file.exists()
        sims = wait_for(lambda: sim_children(parent.pid), 10, "simulator found")
        assert len(sims) == 1

        parent.kill()
        parent.wait(10)

        pid, start = sims[0]
        assert wait_gone(pid, start), f"simulator {pid} outlived the killed harness"
        wait_for(lambda: not workdir.exists(), GONE_S, f"{workdir} removed")
    finally:
        reap(parent)
        for pid, start in sims:
            kill_quietly(pid, start)
        if workdir is not None and workdir.exists():
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- bmshil sim


@pytest.fixture
def bmshil_sim(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, str, Path]]:
    """``bmshil sim --bench-out F`` up and serving: (its process, the simulator's pid and
    start time, F). Both are killed afterwards whatever the test did."""
    bench_out = tmp_path / "sim-bench.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sim", "--bench-out", str(bench_out)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=parent_death_preexec(),
    )
    sims: list[tuple[int, str]] = []
    try:
        wait_for(bench_out.exists, READY_S, "bmshil sim bench file", proc)
        sims = wait_for(lambda: sim_children(proc.pid), 10, "simulator found")
        assert len(sims) == 1
        yield proc, sims[0][0], sims[0][1], bench_out
    finally:
        reap(proc)
        for pid, start in sims:
            kill_quietly(pid, start)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_bmshil_sim_forwards_the_signal_and_exits_0(bmshil_sim: Any, signum: int) -> None:
    proc, pid, start, _ = bmshil_sim
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "bmssim: stopped" in out
    assert wait_gone(pid, start), f"simulator {pid} still running after {signum!r}"


def test_kill_9_of_bmshil_sim_stops_its_simulator(bmshil_sim: Any) -> None:
    proc, pid, start, _ = bmshil_sim
    proc.kill()
    proc.wait(10)
    assert wait_gone(pid, start), f"simulator {pid} outlived the killed bmshil sim"


# --------------------------------------------------------------------------- the sim's own watch

INTERMEDIATE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    # No PDEATHSIG here: only the simulator's own parent watch can stop it.
    env = dict(os.environ, BMSHIL_PARENT_PID=str(os.getpid()))
    cmd = [sys.executable, "-m", "bmssim", "--bench-out", sys.argv[1]]
    cmd += ["--remove-on-exit", sys.argv[2]]
    subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(600)
    """
)


def test_the_simulator_stops_by_itself_when_the_parent_in_the_environment_is_gone(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / f"{WORKDIR_PREFIX}watch"
    workdir.mkdir()
    bench_out = workdir / "bench.yaml"
    parent = subprocess.Popen(
        [sys.executable, "-c", INTERMEDIATE, str(bench_out), str(workdir)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sims: list[tuple[int, str]] = []
    try:
        sims = wait_for(lambda: sim_children(parent.pid), 10, "simulator found", parent)
        wait_for(bench_out.exists, READY_S, "simulator bench file", parent)
        parent.kill()
        parent.wait(10)
        pid, start = sims[0]
        assert wait_gone(pid, start), f"simulator {pid} outlived its parent"
        wait_for(lambda: not workdir.exists(), GONE_S, f"{workdir} removed")
    finally:
        reap(parent)
        for pid, start in sims:
            kill_quietly(pid, start)


def test_remove_on_exit_only_touches_a_bmshil_bench_directory(tmp_path: Path) -> None:
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "keep.txt").write_text("precious")
    bench_out = tmp_path / "bench.yaml"
    bench_out.write_text("bench: sim\n")
    remove_run_files(mine, bench_out)
    assert (mine / "keep.txt").exists()  # wrong name: left alone
    assert not bench_out.exists()  # the simulator's own bench file goes
    work = tmp_path / f"{WORKDIR_PREFIX}x"
    (work / "sub").mkdir(parents=True)
    remove_run_files(work, work / "bench.yaml")
    assert not work.exists()
    remove_run_files(None, tmp_path / "nothing.yaml")  # no option: nothing to do


# --------------------------------------------------------------------------- faults in force


def test_faults_in_force_reports_injected_faults_and_none_after_clearing(tmp_path: Path) -> None:
    bench_out = tmp_path / "sim-bench.yaml"
    sim = subprocess.Popen(
        [sys.executable, "-m", "bmssim", "--bench-out", str(bench_out)]
        + ["--parent-pid", str(os.getpid())],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=parent_death_preexec(),
    )
    try:
        wait_for(bench_out.exists, READY_S, "simulator bench file", sim)
        address = yaml.safe_load(bench_out.read_text())["clock"]["address"]
        none = {
            "firmware": [],
            "link": {"drop_every": 0, "corrupt_every": 0, "late_every": 0, "late_s": 0.0},
            "version": None,
        }
        assert control(address, op="faults_in_force") == {"ok": True, "faults": none}

        injected = {
            "version": "16.5",
            "firmware": [
                {"item": "P5", "kind": "offset", "value": 0.05},
                {"item": "S10", "kind": "ignored"},
            ],
            "link": {"drop_every": 3},
        }
        assert control(address, op="faults", faults=injected) == {"ok": True}
        answer = control(address, op="faults_in_force")
        assert answer == {
            "ok": True,
            "faults": {
                "firmware": injected["firmware"],
                "link": {"drop_every": 3, "corrupt_every": 0, "late_every": 0, "late_s": 0.0},
                "version": "16.5",
            },
        }

        assert control(address, op="faults", faults={}) == {"ok": True}
        assert control(address, op="faults_in_force") == {"ok": True, "faults": none}
        assert control(address, op="snapshot")["snapshot"]["faults"]["firmware"] == []

        control(address, op="faults", faults=injected)
        assert control(address, op="faults", faults=None) == {"ok": True}  # null clears too
        assert control(address, op="faults_in_force") == {"ok": True, "faults": none}
    finally:
        if sim.poll() is None:
            sim.terminate()
            try:
                sim.wait(10)
            except subprocess.TimeoutExpired:
                pass
        reap(sim)
