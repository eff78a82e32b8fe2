"""The plot worker (``harness/plots.py``): trace attachments drawn off the case loop.

What it promises, each checked here against files on disk and processes in /proc: every job
handed over is written (by the worker, or in this process when the worker died), a file is
never seen half-written, whatever could not be written comes back as one sentence per case,
and the worker never outlives its parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from harness import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rows(n: int = 20) -> list[dict]:
    return [
        {"t_s": 10.0 + i, "stimulus": 3.5 + 0.01 * i, "flag": int(i > 10), "current_a": 5.0}
        for i in range(n)
    ]


def _job(tmp: Path, name: str, *, png: bool = True, csv: bool = True) -> plots.RenderJob:
    return plots.RenderJob(
        test_id=name,
        rows=_rows(),
        title=name,
        unit="V",
        expected=3.6,
        tolerance=0.01,
        measured=3.61,
        plot=png,
        png_targets=[str(tmp / "plots" / f"{name}.png")] if png else [],
        csv_targets=[str(tmp / "attach" / f"{name}.csv")] if csv else [],
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_render_writes_png_and_csv_whole(tmp_path: Path) -> None:
    job = _job(tmp_path, "P05-trip")
    written = plots.render(job)
    png = tmp_path / "plots" / "P05-trip.png"
    csv = tmp_path / "attach" / "P05-trip.csv"
    assert sorted(written) == sorted([str(png), str(csv)])
    assert png.read_bytes().startswith(PNG_MAGIC)
    lines = csv.read_text().splitlines()
    assert lines[0] == "t_s,stimulus,flag,current_a"
    assert len(lines) == 21
    # written under a temporary name and renamed: nothing else is left in the directories
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["P05-trip.png"]


def test_worker_draws_every_job_elsewhere_survives_ctrl_c_and_says_what_failed(
    tmp_path: Path,
) -> None:
    worker = plots.PlotWorker()
    worker.submit(_job(tmp_path, "case-0"))
    pids = worker.worker_pids()
    assert pids and os.getpid() not in pids
    first = tmp_path / "plots" / "case-0.png"
    deadline = time.monotonic() + 60
    while not first.exists() and time.monotonic() < deadline:  # its initializer has run
        time.sleep(0.05)
    assert first.exists()
    os.kill(pids[0], signal.SIGINT)  # Ctrl-C reaches the whole process group
    for i in range(1, 4):
        worker.submit(_job(tmp_path, f"case-{i}"))
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a directory should be")
    bad = _job(blocked, "P07-trip", csv=False)
    worker.submit(bad)
    problems = worker.finish(timeout_s=60.0)
    assert worker.broken is None, f"the worker did not survive SIGINT: {worker.broken}"
    assert len(problems) == 1
    assert problems[0].startswith("trace attachments not written: P07-trip (P07-trip.png): ")
    assert "Traceback" not in problems[0]
    for i in range(4):
        assert (tmp_path / "plots" / f"case-{i}.png").read_bytes().startswith(PNG_MAGIC)
        assert (tmp_path / "attach" / f"case-{i}.csv").stat().st_size > 0
    assert worker.worker_pids() == []
    for pid in pids:
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"plot worker {pid} still running after finish"


def test_jobs_of_a_dead_worker_are_drawn_here(tmp_path: Path) -> None:
    worker = plots.PlotWorker()
    worker.submit(_job(tmp_path, "first"))
    (pid,) = worker.worker_pids()
    os.kill(pid, signal.SIGKILL)
    # the next job finds the pool broken (now or at finish) and is drawn in this process
    worker.submit(_job(tmp_path, "second"))
    assert worker.finish(timeout_s=60.0) == []
    assert (tmp_path / "plots" / "first.png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "plots" / "second.png").read_bytes().startswith(PNG_MAGIC)
    assert worker.broken is not None


def test_finish_is_bounded_and_says_what_was_not_drawn(tmp_path: Path) -> None:
    worker = plots.PlotWorker()
    for i in range(3):
        worker.submit(_job(tmp_path, f"late-{i}"))
    pids = worker.worker_pids()
    t0 = time.monotonic()
    problems = worker.finish(timeout_s=0.0)
    assert time.monotonic() - t0 < 15.0
    # the worker (a fresh interpreter importing pandas and matplotlib) cannot have drawn
    # all three at once; what it did not draw is said, per case, and nothing else
    drawn = {p.stem for p in (tmp_path / "plots").glob("*.png")}
    said = {p.split(": ")[1].split(" ")[0] for p in problems}
    assert said, "no job was late: the test did not test the bound"
    assert said | drawn == {"late-0", "late-1", "late-2"}
    assert not said & drawn
    assert all("not drawn within 0 s" in p for p in problems)
    for pid in pids:
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)


def test_worker_does_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from harness import plots
        w = plots.worker()
        job = plots.RenderJob(test_id="x", rows=[{{"t_s": 0.0, "stimulus": 1.0}}],
                              title="x", unit="V", png_targets=[{str(tmp_path / "x.png")!r}])
        w.submit(job)
        print(w.worker_pids()[0], flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        assert line.strip().isdigit(), f"parent printed {line!r}"
        pid = int(line)
        assert _alive(pid)
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"plot worker {pid} outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
