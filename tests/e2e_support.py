"""``bmshil run`` as the end-to-end tests call it: a subprocess of this interpreter in the
project's root (the default suite, regression, unless ``args`` say otherwise), and the
records it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def bmshil_run(out: Path, *args: str) -> tuple[int, str, list[dict[str, Any]]]:
    """Exit code, stdout + stderr, and the records of ``results.jsonl`` (none if absent)."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    path = out / "results.jsonl"
    records = (
        [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
    )
    return proc.returncode, proc.stdout + proc.stderr, records


def run_by_id(out: Path, *args: str) -> tuple[int, str, dict[str, dict[str, Any]]]:
    """:func:`bmshil_run` with the records by test id."""
    code, text, records = bmshil_run(out, *args)
    return code, text, {r["test_id"]: r for r in records}


def run_outcomes(out: Path, *args: str) -> tuple[int, str, dict[str, str]]:
    """:func:`bmshil_run` with each test id's outcome."""
    code, text, records = bmshil_run(out, *args)
    return code, text, {r["test_id"]: r["outcome"] for r in records}
