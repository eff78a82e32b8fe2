"""The results directory: one JSON line per finished test, written as each test finishes.

Every record is flushed and fsync'ed before the next test starts, so a crash, Ctrl-C or a
lost bench keeps everything that ran. ``run.json`` describes the run (bench, device, spec
hash); it is written at the start and completed at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Outcome of a planned case the run did not get to (bench lost, interrupted).
NOT_RUN = "not_run"


class ResultsWriter:
    """Appends result records to ``results.jsonl`` in a results directory."""

    def __init__(self, directory: Path, *, resume: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "results.jsonl"
        # A results directory holds one run. A new run never truncates an earlier run's
        # records: it needs a fresh file (``bmshil run`` refuses a non-empty directory), and
        # a resumed run appends to its own.
        if resume:
            _cut_truncated_tail(self.path)
            self._fh = self.path.open("a", encoding="utf-8")
        else:
            self._fh = self.path.open("x", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, default=_jsonable, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


class SharedResultsWriter:
    """Appends records to ``results.jsonl`` from one of several processes (the workers of a
    run on several benches): each record is one ``write`` under an exclusive ``flock`` of
    the file, fsync'ed before the lock is released, so records never interleave and each is
    on disk as its case finishes. ``stamp`` is merged into every record (which bench).

    A process that died mid-write leaves a line without its newline; the next writer starts
    a new line first, so only the cut record is lost, never the next one."""

    def __init__(self, directory: Path, stamp: dict[str, Any] | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "results.jsonl"
        self.stamp = dict(stamp or {})
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path}: writer closed")
        line = json.dumps({**record, **self.stamp}, default=_jsonable, ensure_ascii=False) + "\n"
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(self._fd).st_size
            if size and os.pread(self._fd, 1, size - 1) != b"\n":
                line = "\n" + line
            os.write(self._fd, line.encode("utf-8"))
            os.fsync(self._fd)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def run_info_lock(directory: Path) -> Iterator[None]:
    """Exclusive lock for a read-modify-write of ``run.json`` by one of several processes
    (``run.json`` itself is replaced on every write, so the lock is a separate file)."""
    with (Path(directory) / ".run.lock").open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _cut_truncated_tail(path: Path) -> None:
    """Drop a last line the crash cut mid-write, so appended records start on a line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with path.open("r+b") as fh:
            fh.truncate(keep)


def final_records(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The final record of each case: the last one with its test id, if it is a verdict
    (``not_run`` is not: the case still has to run)."""
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        tid = rec.get("test_id")
        if not tid:
            continue
        if rec.get("outcome") == NOT_RUN:
            out.pop(tid, None)
        else:
            out[tid] = rec
    return out


def decision_counts(finals: dict[str, dict[str, Any]]) -> dict[str, int]:
    """How many final records carry each conditional decision (run.json ``decisions``)."""
    out: dict[str, int] = {}
    for rec in finals.values():
        decision = rec.get("decision")
        if isinstance(decision, str) and decision.startswith("conditional"):
            out[decision] = out.get(decision, 0) + 1
    return out


def read_run_info(directory: Path) -> dict[str, Any] | None:
    path = Path(directory) / "run.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) else None


def write_run_info(directory: Path, info: dict[str, Any]) -> None:
    """Write (or rewrite) ``run.json`` atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "run.json.tmp"
    tmp.write_text(
        json.dumps(info, indent=2, default=_jsonable, ensure_ascii=False), encoding="utf-8"
    )
    tmp.replace(directory / "run.json")


def read_results(directory: Path) -> list[dict[str, Any]]:
    """Read every record of a results directory (a truncated last line is ignored)."""
    path = Path(directory) / "results.jsonl"
    records = []
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set):
        return sorted(value)
    return str(value)
