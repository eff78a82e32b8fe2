"""``bmshil sim``: run the simulator command as a child and supervise it.

SIGINT and SIGTERM are forwarded to it (exit 0 once it has stopped; killed after 15 s), and
it dies with this process even on kill -9 (PR_SET_PDEATHSIG, ``--parent-pid``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from harness.bench import parent_death_preexec


def serve(cmd: list[str]) -> int:
    """Run ``cmd`` (``python -m bmssim ...``) until it ends; its exit code as ``bmshil sim``
    reports it."""
    cmd = [*cmd, "--parent-pid", str(os.getpid())]
    stop_timeout_s = 15.0
    children: list[subprocess.Popen[bytes]] = []
    forwarded: list[int] = []

    def forward(signum: int, frame: object) -> None:
        forwarded.append(signum)
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Own session: a terminal's Ctrl-C reaches the simulator once, forwarded from here.
        proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=parent_death_preexec())
        children.append(proc)
        if forwarded:  # a signal came while the child was being started
            forward(forwarded[-1], None)
        deadline: float | None = None
        while True:
            try:
                code = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if forwarded and deadline is None:
                deadline = time.monotonic() + stop_timeout_s
            if deadline is not None and time.monotonic() > deadline:
                print(
                    f"bmshil sim: the simulator did not stop within {stop_timeout_s:g} s; "
                    "killing it",
                    file=sys.stderr,
                )
                proc.kill()
                proc.wait()
                return 1
    finally:
        for child in children:
            if child.poll() is None:  # leaving by an exception: the child goes too
                child.kill()
                child.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    clean = {0, 128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM}
    return 0 if code in clean else (code if code > 0 else 128 - code)
