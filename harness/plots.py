"""Trace attachments rendered off the case loop, by one worker process per session.

The case loop only hands over the trace rows of a case (a ``RenderJob``); the worker draws
the plot (``harness.artifacts.trace_plot``, ~0.1-0.3 s each) and the CSV
(``harness.artifacts.trace_csv``) and writes each file atomically (temporary name, then
rename) to every target path the job names: ``plots/<test_id>.png`` of the results
directory, and the Allure attachment file registered when the case finished (see
``harness.allure_recorder``). The main process never imports pandas or matplotlib.

The worker is a ``ProcessPoolExecutor(max_workers=1)`` with the 'spawn' context (a fresh
interpreter: nothing inherited from a process that holds bench sockets), started at the
first job and stopped by ``finish``, which the session calls on every exit path. It runs at
a lower priority than the case loop, ignores SIGINT (Ctrl-C reaches the whole process
group; the harness decides), and never outlives its parent: ``PR_SET_PDEATHSIG`` (SIGKILL)
on Linux, and a thread that exits when the parent pid changes everywhere.

Nothing is lost: ``finish`` waits (bounded, ``WAIT_S``) for every pending job; a job whose
worker died is rendered in this process instead; a new job after the worker died is
rendered here at once (as before the worker existed). Whatever still could not be written
comes back as one sentence per case (``finish`` returns them; the session keeps them in
run.json ``close_problems`` and the summary prints them), never a traceback.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: How long ``finish`` waits, in all, for the jobs still pending when the session ends.
WAIT_S = 30.0
#: Linux prctl option: the signal this process gets when the thread that started it exits.
PR_SET_PDEATHSIG = 1
#: Added to the worker's nice value: the case loop (and the simulator) come first.
WORKER_NICE = 10


@dataclass(eq=False)
class RenderJob:
    """The trace attachments of one case, and where each file goes (compared by identity)."""

    test_id: str
    rows: list[dict[str, Any]]
    title: str
    unit: str
    expected: float | None = None
    tolerance: float | None = None
    measured: float | None = None
    #: A plotted case (threshold, delay): the session adds ``plots/<test_id>.png``.
    plot: bool = False
    #: Paths that get the plot (PNG); none: no plot is drawn.
    png_targets: list[str] = field(default_factory=list)
    #: Paths that get the trace as CSV.
    csv_targets: list[str] = field(default_factory=list)

    def describe(self) -> str:
        names = [Path(p).name for p in self.png_targets + self.csv_targets]
        return f"{self.test_id} ({', '.join(names)})"


def render(job: RenderJob) -> list[str]:
    """Draw and write the files of ``job`` (in the worker, or here as the fallback)."""
    from harness.artifacts import trace_csv, trace_plot

    written = []
    if job.csv_targets:
        data = trace_csv(job.rows)
        written += [_write(path, data) for path in job.csv_targets]
    if job.png_targets:
        png = trace_plot(job.rows, job.title, job.unit, job.expected, job.tolerance, job.measured)
        written += [_write(path, png) for path in job.png_targets]
    return written


def _write(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` whole or not at all: a reader never sees half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return str(target)


# -- the worker process ------------------------------------------------------------------


def _init_worker(parent_pid: int) -> None:
    """Initializer of the worker: die with the parent, give way to it, ignore Ctrl-C."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)

    def watch() -> None:  # where prctl is missing, and as a second line
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(WORKER_NICE)
    import harness.artifacts  # noqa: F401 - pandas and matplotlib, before the first job


class PlotWorker:
    """The session's worker and the jobs handed to it (use ``worker()``, not this class).

    Every job handed over stays in ``_open`` until its files are written or its problem
    is said, so each missing file is reported exactly once."""

    def __init__(self) -> None:
        self._executor: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._futures: dict[cf.Future, RenderJob] = {}
        self._open: list[RenderJob] = []
        #: Jobs whose worker died under them: rendered in this process.
        self._orphans: list[RenderJob] = []
        #: Jobs made by a recorder and not yet handed over by the session (``stage``).
        self._staged: list[RenderJob] = []
        self.broken: str | None = None
        self.problems: list[str] = []

    # hand-over --------------------------------------------------------------------------
    def stage(self, job: RenderJob) -> None:
        """A recorder made ``job``; the session adds its own targets and ``submit``s it.
        A job no session claimed (no results directory) goes when the next one comes."""
        earlier, self._staged = self._staged, [job]
        for other in earlier:
            self._submit(other)

    def submit(self, job: RenderJob) -> None:
        if job in self._staged:
            self._staged.remove(job)
        self._submit(job)

    def _submit(self, job: RenderJob) -> None:
        if not job.png_targets and not job.csv_targets:
            return
        with self._lock:
            self._open.append(job)
        if self.broken is None:
            try:
                future = self._start().submit(render, job)
            except Exception as exc:  # noqa: BLE001 - no worker: render here, as before
                self.broken = self.broken or f"the plot worker is not available: {exc}"
                self._kill()
            else:
                with self._lock:
                    self._futures[future] = job
                future.add_done_callback(self._done)
                return
        self._render_here([job, *self._take_orphans()], deadline=None)

    def _start(self) -> cf.ProcessPoolExecutor:
        if self._executor is None:
            import multiprocessing

            self._executor = cf.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
        return self._executor

    def _done(self, future: cf.Future) -> None:
        """Runs in the executor's thread: note the outcome of one job."""
        with self._lock:
            job = self._futures.pop(future, None)
            if job is None:
                return
            if future.cancelled():  # never drawn (the pool was shut down): draw it here
                self._orphans.append(job)
                return
            exc = future.exception()
            if exc is None:
                self._close(job)
            elif isinstance(exc, cf.process.BrokenProcessPool):
                self.broken = self.broken or "the plot worker died"
                self._orphans.append(job)
            else:
                self._close(job, f"{type(exc).__name__}: {exc}")

    def _close(self, job: RenderJob, problem: str | None = None) -> None:
        """``job`` is settled: written, or ``problem`` said once. Caller holds the lock."""
        if job in self._open:
            self._open.remove(job)
            if problem is not None:
                self.problems.append(f"trace attachments not written: {job.describe()}: {problem}")

    def _take_orphans(self) -> list[RenderJob]:
        with self._lock:
            orphans, self._orphans = self._orphans, []
        return orphans

    def _render_here(self, jobs: list[RenderJob], deadline: float | None) -> None:
        for job in jobs:
            if job not in self._open:  # already settled (said late)
                continue
            if deadline is not None and time.monotonic() > deadline:
                with self._lock:
                    self._close(job, f"{self.broken}, and no time left to draw it here")
                continue
            try:
                render(job)
            except Exception as exc:  # noqa: BLE001 - said once, never a traceback
                problem = f"{type(exc).__name__}: {exc}"
            else:
                problem = None
            with self._lock:
                self._close(job, problem)

    # the end ----------------------------------------------------------------------------
    def finish(self, timeout_s: float = WAIT_S) -> list[str]:
        """Hand over what is staged, wait (at most ``timeout_s`` in all) for every pending
        job, stop the worker. Returns one sentence per case whose files were not written.
        A signal (SIGINT, SIGTERM) while waiting stops the wait; it is not raised."""
        deadline = time.monotonic() + timeout_s
        with _signals_stop_the_wait() as stopped:
            try:
                staged, self._staged = self._staged, []
                for job in staged:
                    self._submit(job)
                with self._lock:
                    futures = list(self._futures)
                if futures:
                    cf.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
                with self._lock:
                    late = [job for f, job in self._futures.items() if not f.done()]
                if late:
                    self._kill()
                self._shutdown()  # joins the executor's thread: every callback has run
                with self._lock:
                    for job in late:
                        self._close(job, f"not drawn within {timeout_s:g} s")
                self._render_here(self._take_orphans(), deadline)
            except KeyboardInterrupt:
                why = f"interrupted by {stopped.get('signal') or 'SIGINT'} while drawing"
                self._kill()
                self._shutdown()
                with self._lock:
                    for job in list(self._open):
                        self._close(job, why)
        with self._lock:
            for job in list(self._open):  # cannot happen; said rather than lost
                self._close(job, "no outcome")
            problems, self.problems = self.problems, []
        return problems

    def _kill(self) -> None:
        processes = getattr(self._executor, "_processes", None) or {}
        for process in list(processes.values()):
            with contextlib.suppress(Exception):
                process.kill()

    def _shutdown(self) -> None:
        executor = self._executor
        if executor is not None:
            with contextlib.suppress(Exception):
                executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None  # only now: a signal in between still finds the worker

    def worker_pids(self) -> list[int]:
        """Pids of the live worker processes (tests)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.is_alive()]


@contextlib.contextmanager
def _signals_stop_the_wait() -> Iterator[dict[str, str]]:
    """While waiting at the end: the first SIGINT or SIGTERM stops the wait (raised as
    KeyboardInterrupt inside ``finish``, which catches it), later ones are only noted, so
    the session can still write its results; after the bench is closed SIGTERM would
    otherwise end the process on the spot."""
    stopped: dict[str, str] = {}
    if threading.current_thread() is not threading.main_thread():
        yield stopped
        return

    def handler(signum: int, _frame: Any) -> None:
        first = "signal" not in stopped
        stopped.setdefault("signal", signal.Signals(signum).name)
        if first:
            raise KeyboardInterrupt

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield stopped
    finally:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old)


_WORKER: PlotWorker | None = None


def worker() -> PlotWorker:
    """The plot worker of the running session (created at first use)."""
    global _WORKER
    if _WORKER is None:
        _WORKER = PlotWorker()
    return _WORKER


def finish(timeout_s: float = WAIT_S) -> list[str]:
    """End of the session: every pending job written (bounded), the worker stopped; the
    problems, one per case. The next session gets a new worker."""
    global _WORKER
    current, _WORKER = _WORKER, None
    if current is None:
        return []
    return current.finish(timeout_s)


@atexit.register
def _finish_at_exit() -> None:  # a script that never closed its session
    with contextlib.suppress(Exception):
        for problem in finish():
            print(f"bms-hil: {problem}", file=sys.stderr)
