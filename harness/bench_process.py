"""The launched bench process (``launch:`` in a bench file, e.g. the simulator): started in its
own process group, dying with its parent, waited on for the bench file it writes, and
terminated when the bench closes."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from harness import PROJECT_ROOT
from harness.bench_signals import _signals_deferred
from harness.benchfile import BenchFile, BenchFileError, LaunchFile, load_bench_file
from instruments.errors import BenchError

#: The bench's logger, as before the launch moved out of ``harness.bench``.
log = logging.getLogger("harness.bench")

CHILD_TERMINATE_S = 10.0


class BenchStartError(BenchError):
    """The bench could not be brought up (launch, resolved file, an instrument, the link)."""


#: Linux prctl option: signal the calling process gets when its parent dies.
PR_SET_PDEATHSIG = 1

#: Environment variable naming the process a launched bench must not outlive (set for
#: the child; ``python -m bmssim`` watches that process and stops when it is gone).
PARENT_PID_ENV = "BMSHIL_PARENT_PID"


def parent_death_preexec(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` after which the child gets ``signum`` when this process dies.

    Linux only (``prctl(PR_SET_PDEATHSIG)`` through ctypes); None elsewhere, where the child
    must watch its parent itself (``python -m bmssim --parent-pid``). If the parent is
    already gone when the child gets there, the child sends itself ``signum`` at once.

    Caveat: the kernel sends the signal when the *thread* that forked the child exits, not
    the process. Call Popen from the thread that owns the child for its whole life (the
    bench is opened, used and left in one thread), never from a short-lived helper thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec
        prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signum)

    return preexec


@contextlib.contextmanager
def _launched(config: BenchFile | LaunchFile, path: Path) -> Iterator[tuple[BenchFile, Path]]:
    """Run a launch file's command and yield the resolved bench file it writes; terminate
    the child on the way out (after the bench's own exit has run). A complete bench file is
    yielded as is.

    Placeholders in the command: ``{python}`` (this interpreter), ``{bench_out}`` (the file
    the harness waits for), ``{workdir}`` (the temporary directory holding it and the
    child's logs). The child dies with this process: SIGTERM through PR_SET_PDEATHSIG on
    Linux, and ``BMSHIL_PARENT_PID`` in its environment for a bench that watches its parent
    itself (and for whatever a wrapper script starts). If this process is killed outright,
    only the child can remove ``{workdir}`` (bmssim: ``--remove-on-exit {workdir}``)."""
    if isinstance(config, BenchFile):
        yield config, path
        return
    workdir = Path(tempfile.mkdtemp(prefix="bmshil-bench-"))
    bench_out = workdir / "bench.yaml"
    placeholders = {
        "{python}": sys.executable,
        "{bench_out}": str(bench_out),
        "{workdir}": str(workdir),
    }
    command = []
    for part in config.launch.command:
        for key, value in placeholders.items():
            part = part.replace(key, value)
        command.append(part)
    env = dict(os.environ, **{PARENT_PID_ENV: str(os.getpid())})
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        # Own session: a terminal's Ctrl-C goes to the harness, which leaves the bench safe
        # and then stops the child itself. Popen runs in the thread that owns the bench
        # (see parent_death_preexec for why that matters).
        child = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=parent_death_preexec(),
        )
    try:
        resolved = _wait_for_bench_file(
            child, bench_out, config.launch.ready_timeout_s, command, stderr_path, path
        )
        yield resolved, bench_out
    finally:
        with _signals_deferred():
            _terminate(child)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_bench_file(
    child: subprocess.Popen[bytes],
    bench_out: Path,
    timeout_s: float,
    command: list[str],
    stderr_path: Path,
    path: Path,
) -> BenchFile:
    deadline = time.monotonic() + timeout_s
    while not bench_out.exists():
        code = child.poll()
        if code is not None:
            raise BenchStartError(
                f"{path}: launch command {' '.join(command)} exited with {code} before writing "
                f"the bench file; its stderr:\n{_tail(stderr_path)}"
            )
        if time.monotonic() > deadline:
            raise BenchStartError(
                f"{path}: launch command {' '.join(command)} did not write {bench_out} within "
                f"{timeout_s:g} s; its stderr:\n{_tail(stderr_path)}"
            )
        time.sleep(0.05)
    try:
        resolved = load_bench_file(bench_out)
    except BenchFileError as exc:
        raise BenchStartError(f"{path}: the launched bench wrote an invalid file: {exc}") from exc
    if not isinstance(resolved, BenchFile):
        raise BenchStartError(f"{path}: the launched bench wrote another launch file")
    return resolved


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no stderr)"
    return text[-limit:] or "(empty)"


def _terminate(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group (its own session: the child and whatever it
    started without a session of its own), SIGKILL after ``CHILD_TERMINATE_S``."""
    if child.poll() is not None:
        return
    _signal_group(child, signal.SIGTERM)
    try:
        child.wait(CHILD_TERMINATE_S)
    except subprocess.TimeoutExpired:
        log.warning("bench process %d ignored SIGTERM; killing it", child.pid)
        _signal_group(child, signal.SIGKILL)
        child.wait()


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(child.pid, signum)  # start_new_session: the group id is the child's pid
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)
