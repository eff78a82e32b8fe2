"""The summary ``bmshil run`` prints at the end: counts, each failure with its numbers, the
bench time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from harness import multi_run
from harness.results import decision_counts, final_records


def summarize(data: Any, out: Path, console: Console, elapsed_s: float | None = None) -> None:
    """How the run ended, counts, failures with measured against expected, bench time and
    elapsed time, in lines of the console width."""
    from rich.text import Text

    records = list(final_records(data.records).values())
    completion = data.completion
    counts: dict[str, int] = {}
    for r in records:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    bench_s = sum(r.get("bench_s") or 0 for r in records)
    case_s = sum(r.get("wall_s") or 0 for r in records)
    bad = [
        r
        for r in records
        if r["outcome"] in ("failed", "error", "conditional")
        or str(r.get("decision") or "").startswith("conditional")
    ]

    def say(chunks: list[Any], indent: int = 2) -> None:
        """Print the chunks space separated, broken into lines of the console width only
        between two chunks: a test id, a number with its unit, a path stays whole (a chunk
        wider than the console runs on rather than being cut); continuation lines indented.
        Plain text, not markup: a ``[...]`` in a message is printed as it is."""
        line, fresh = Text(), True
        for chunk in chunks:
            piece = chunk if isinstance(chunk, Text) else Text(str(chunk))
            if not fresh and line.cell_len + 1 + piece.cell_len > console.width:
                console.print(line, no_wrap=True, overflow="ignore", crop=False, highlight=False)
                line, fresh = Text(" " * indent), True
            if not fresh:
                line.append(" ")
            line.append_text(piece)
            fresh = False
        console.print(line, no_wrap=True, overflow="ignore", crop=False, highlight=False)

    if bad:
        # One entry per failure, complete ids and values, wrapped to the console (a CI log's
        # 80 columns too); its further lines are indented under the test id.
        console.print("[bold]Failures and conditional verdicts[/] (measured against expected):")
        for r in bad:
            unit = r.get("unit")
            decision = str(r.get("decision") or "")
            outcome = (decision if decision.startswith("conditional") else r["outcome"]).upper()
            message = str(r.get("message") or "").split()
            say(
                [
                    Text(f"  {outcome}", style="red"),
                    f"{r['test_id']}:",
                    *_values(r, unit),
                    *([f"- {message[0]}", *message[1:]] if message else []),
                ],
                indent=len(outcome) + 3,
            )
    not_run = len(completion.missing) + len(completion.not_run)
    parts = [
        f"{counts.get(k, 0)} {k}"
        for k in ("passed", "failed", "conditional", "error", "skipped")
        if counts.get(k)
    ]
    for decision, n in sorted(decision_counts({str(i): r for i, r in enumerate(records)}).items()):
        parts.append(f"{n} {decision} ({data.info.get('decision_rule') or 'simple'} acceptance)")
    if not_run:
        parts.append(f"{not_run} not run")
    if not completion.complete:
        say(
            [
                Text("INCOMPLETE", style="bold red"),
                *f"run ({completion.status}): {completion.reason or '-'};".split(),
                *f"{not_run} of {completion.planned} planned cases not run".split(),
            ]
        )
    for problem in data.info.get("close_problems") or []:
        say([Text("on leaving the bench:", style="yellow"), *str(problem).split()])
    per_bench = multi_run.bench_time_by_worker(records)
    if len(per_bench) > 1:
        say(
            [
                *"bench time per bench:".split(),
                *[f"{w} {_duration(s)}," for w, s in per_bench.items()],
                *"the run's bench time (busiest bench)".split(),
                f"{_duration(max(per_bench.values()))};",
            ]
        )
    elapsed = ["elapsed", f"{elapsed_s:.1f} s,"] if elapsed_s is not None else []
    say(
        [
            Text.assemble((str(completion.verdict), "bold"), ":"),
            *f"{', '.join(parts) or 'no results'} of {completion.planned} planned cases;".split(),
            "bench",
            "time",
            _duration(bench_s),
            *"(what a real bench would spend);".split(),
            *elapsed,
            "cases",
            f"{case_s:.1f} s;",
            "results in",
            str(out),
        ]
    )


def _fmt(value: Any, unit: str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g} {unit or ''}".strip()
    return f"{value} {unit or ''}".strip()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _values(r: dict, unit: str | None) -> list[str]:
    """``measured X, expected Y +- T`` for a record judged against a value; a record without
    an expected value (a go/no-go check, a bench error) says only what was measured, if any."""
    if r.get("expected") is None:
        return [] if r.get("measured") is None else [f"measured {_fmt(r['measured'], unit)}"]
    u = r.get("uncertainty")
    measured = f"measured {_fmt(r.get('measured'), unit)}"
    if isinstance(u, float) and u > 0 and r.get("measured") is not None:
        measured += f" ± {u:.3g}"
    return [
        measured + ",",
        f"expected {_fmt(r.get('expected'), unit)}",
        f"+- {_fmt(r.get('tolerance'), unit)}",
    ]
