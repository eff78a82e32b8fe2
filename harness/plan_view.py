"""Rendering of the test plan for ``bmshil plan``: a rich table or JSON, then the totals.

Kept out of cli.py so the command stays a few lines and the view can be tested alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from harness import FIXTURES_DIR
from harness.plan import DEFAULT_CAPABILITIES, SUITES, Case, kind_counts, suite_estimates

DEFAULT_BENCH_FILE = FIXTURES_DIR / "sim.yaml"


def bench_capabilities(path: Path | None = None) -> tuple[dict[str, bool], str]:
    """The ``capabilities:`` mapping of a bench file, and where it came from.

    Without a bench file (the default fixtures/sim.yaml not written yet) the plan assumes a
    simulated bench: everything but the hardware a simulator cannot stand in for. A
    capability the file does not declare counts as absent, so a lab bench never claims
    hardware by omission.
    """
    explicit = path is not None
    path = Path(path) if path is not None else DEFAULT_BENCH_FILE
    if not path.is_file():
        if explicit:
            raise FileNotFoundError(f"bench file {path} not found")
        return dict(DEFAULT_CAPABILITIES), "defaults (no fixtures/sim.yaml)"
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    caps = doc.get("capabilities") if isinstance(doc, dict) else None
    if caps is None:
        return dict(DEFAULT_CAPABILITIES), f"defaults ({path.name} declares no capabilities)"
    if not isinstance(caps, dict) or not all(isinstance(v, bool) for v in caps.values()):
        raise ValueError(f"{path}: 'capabilities' must map names to true/false")
    return {str(k): v for k, v in caps.items()}, str(path)


def format_duration(seconds: float) -> str:
    """``1 h 05 min`` / ``12 min 30 s`` / ``45 s``: bench time at a glance."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {(s % 3600) // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def plan_json(cases: Sequence[Case]) -> str:
    """The plan as a JSON list of case dicts."""
    return json.dumps([c.to_dict() for c in cases], ensure_ascii=False, indent=1)


def render_table(
    cases: Sequence[Case],
    console: Console,
    *,
    all_cases: Sequence[Case] | None = None,
    source: str = "",
    suite: str | None = None,
) -> None:
    """One row per case, then counts per kind and the estimated bench time per suite."""
    title = f"Test plan ({suite or 'all suites'}; {len(cases)} cases; capabilities: {source})"
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("id", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("expected", justify="right", no_wrap=True)
    table.add_column("tol", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    table.add_column("suites")
    table.add_column("bench", justify="right", no_wrap=True)
    table.add_column("note", overflow="fold")
    for c in cases:
        note = c.reason or ""
        if not c.testable:
            note = f"[yellow]not testable:[/] {note}"
        if c.overrides:
            o = ", ".join(f"P{k}={v:g}" for k, v in c.overrides.items())
            note = f"{note}; {o}" if note else o
        table.add_row(
            c.id,
            c.kind,
            _fmt(c.expected),
            _fmt(c.tolerance),
            c.unit,
            ",".join(c.suites),
            format_duration(c.est_bench_s) if c.testable else "-",
            note,
        )
    console.print(table)
    render_summary(cases, console, all_cases=all_cases)


def render_summary(
    cases: Sequence[Case], console: Console, *, all_cases: Sequence[Case] | None = None
) -> None:
    """Counts per kind of the listed cases and bench time per suite of the whole plan."""
    counts = kind_counts(cases)
    untestable = sum(1 for c in cases if not c.testable)
    console.print(
        "cases per kind: "
        + ", ".join(f"{k} {n}" for k, n in counts.items())
        + f" (total {len(cases)}, not testable here {untestable})"
    )
    estimates = suite_estimates(all_cases if all_cases is not None else cases)
    console.print(
        "estimated real-bench time: "
        + ", ".join(f"{name} {format_duration(estimates[name])}" for name in SUITES)
    )


def summary_dict(cases: Sequence[Case], all_cases: Sequence[Case]) -> Mapping[str, Any]:
    """The totals as data (for scripts that want them without parsing the table)."""
    return {"kinds": kind_counts(cases), "est_bench_s": suite_estimates(all_cases)}
