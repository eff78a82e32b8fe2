"""The simulated bench's tie to the process that started it: whether a process is alive (zombies
count as gone) and the watch that stops the bench when its parent is gone."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the process the simulator must not outlive (the harness sets
#: it for a bench it launches).
PARENT_PID_ENV = "BMSHIL_PARENT_PID"

#: How often the parent is checked (s).
PARENT_POLL_S = 0.5

_HAVE_PROC = Path("/proc/self/stat").exists()


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of ``pid`` from /proc; None when /proc cannot tell.
    Raises ProcessLookupError when there is no such process."""
    if not _HAVE_PROC:
        return None
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    if len(fields) < 20:
        return None
    return fields[0], fields[19]  # state (field 3), starttime (field 22)


def process_alive(pid: int, start: str | None = None) -> bool:
    """True while ``pid`` runs (not a zombie) and, if ``start`` is given, is still the
    process that had that /proc start time (a recycled pid is another process)."""
    try:
        stat = _proc_stat(pid)
    except ProcessLookupError:
        return False
    if stat is not None:
        state, started = stat
        return state not in ("Z", "X", "x") and (start is None or started == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ParentWatch:
    """Whether the process the simulator must not outlive is still there.

    Gone means: ``pid`` has exited (or is a zombie, or its pid now names another process),
    or this process's own parent pid is no longer the one it had at start (the parent died
    and the process was re-parented to init or a subreaper), whichever shows first.
    """

    def __init__(self, pid: int, *, ppid: int | None = None) -> None:
        self.pid = pid
        self.ppid = os.getppid() if ppid is None else ppid
        try:
            stat = _proc_stat(pid)
        except ProcessLookupError:
            stat = None
        self.start = stat[1] if stat is not None else None

    def gone(self) -> str | None:
        """Why the parent counts as gone, or None while it is there."""
        ppid = os.getppid()
        if ppid != self.ppid:
            return f"parent pid changed from {self.ppid} to {ppid}"
        if not process_alive(self.pid, self.start):
            return f"parent process {self.pid} is gone"
        return None
