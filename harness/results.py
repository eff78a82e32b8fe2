"""The results directory: one JSON line per finished test, written as each test finishes.

Every record is flushed and fsync'ed before the next test starts, so a crash, Ctrl-C or a
lost bench keeps everything that ran. ``run.json`` describes the run (bench, device, spec
hash); it is written at the start and completed at the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class ResultsWriter:
    """Appends result records to ``results.jsonl`` in a results directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "results.jsonl"
        # A results directory holds one run: a new session starts the file afresh.
        self._fh = self.path.open("w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, default=_jsonable, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


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
