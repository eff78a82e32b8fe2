"""Trends from the run history: one measured quantity of one case across runs (points, table,
plot), and the list of stored runs."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from reports.history_db import ResultRow, RunRow, _item, default_db_url, open_db
from reports.runs import ReportInputError, firmware_text


@dataclass
class TrendPoint:
    """One measured value of one test in one run."""

    run_id: int
    started_at: dt.datetime | None
    firmware: str
    bench_id: str
    test_id: str
    kind: str
    outcome: str
    expected: float | None
    measured: float | None
    uncertainty: float | None
    tolerance: float | None
    margin: float | None
    unit: str
    #: How the point's run ended: complete, or not (its points are marked in the table/plot).
    run_status: str = ""
    run_complete: bool = True


def trend(item: str, db_url: str | None = None, kind: str | None = None) -> list[TrendPoint]:
    """Every record of ``item`` (``P5``, ``P05`` or a test id), oldest run first."""
    url = db_url or default_db_url()
    engine = open_db(url)
    try:
        with Session(engine) as session:
            query = select(ResultRow, RunRow).join(RunRow, ResultRow.run_id == RunRow.id)
            if item[:1].upper() in "PS" and item[1:].isdigit():
                query = query.where(ResultRow.item == _item(item))
            else:
                query = query.where(ResultRow.test_id == item)
            if kind:
                query = query.where(ResultRow.kind == kind)
            query = query.order_by(RunRow.started_at.asc().nulls_first(), RunRow.id, ResultRow.seq)
            return [
                TrendPoint(
                    run_id=run.id,
                    started_at=run.started_at,
                    firmware=run.firmware or firmware_text(None) or "?",
                    bench_id=run.bench_id or "",
                    test_id=res.test_id,
                    kind=res.kind or "",
                    outcome=res.outcome,
                    expected=res.expected,
                    measured=res.measured,
                    uncertainty=res.uncertainty,
                    tolerance=res.tolerance,
                    margin=res.margin,
                    unit=res.unit or "",
                    run_status=run.end_status or "",
                    run_complete=run.complete is not False,
                )
                for res, run in session.execute(query).all()
            ]
    except SQLAlchemyError as exc:
        raise ReportInputError(f"--db {url!r}: cannot read the trend of {item}: {exc}") from exc
    finally:
        engine.dispose()


def list_runs(db_url: str | None = None) -> list[RunRow]:
    """Every stored run, oldest first (detached rows, for listing)."""
    url = db_url or default_db_url()
    engine = open_db(url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            order = (RunRow.started_at.asc().nulls_first(), RunRow.id)
            return list(session.scalars(select(RunRow).order_by(*order)))
    except SQLAlchemyError as exc:
        raise ReportInputError(f"--db {url!r}: cannot list the runs: {exc}") from exc
    finally:
        engine.dispose()


def trend_table(points: Sequence[TrendPoint], title: str) -> Any:
    """The trend as a rich table (one row per run and test); a run that did not run every
    planned case is marked ``INCOMPLETE (<status>)`` and explained in the caption."""
    from rich.table import Table

    incomplete = sorted({p.run_id for p in points if not p.run_complete})
    caption = (
        f"INCOMPLETE: run(s) {', '.join(map(str, incomplete))} did not run every planned case "
        "(interrupted, bench lost or crashed); their values are not from a complete run"
        if incomplete
        else None
    )
    table = Table(title=title, caption=caption)
    for col in (
        "run",
        "run end",
        "started",
        "bench",
        "firmware",
        "test",
        "expected",
        "measured",
        "tolerance",
        "margin",
        "verdict",
    ):
        table.add_column(col, justify="right" if col in ("run", "margin") else "left")
    style = {
        "passed": "green",
        "failed": "red",
        "error": "yellow",
        "skipped": "dim",
        "not_run": "bold yellow",
    }
    for p in points:
        table.add_row(
            str(p.run_id) + ("" if p.run_complete else " *"),
            p.run_status or "?"
            if p.run_complete
            else f"[bold yellow]INCOMPLETE ({p.run_status or '?'})[/]",
            p.started_at.strftime("%Y-%m-%d %H:%M") if p.started_at else "",
            p.bench_id,
            p.firmware,
            p.test_id,
            _fmt(p.expected, p.unit),
            _fmt(p.measured, p.unit, p.uncertainty),
            "" if p.tolerance is None else f"± {_fmt(p.tolerance, p.unit)}",
            _fmt(p.margin, p.unit),
            f"[{style.get(p.outcome, 'default')}]{p.outcome}[/]",
        )
    return table


def _fmt(value: float | None, unit: str, uncertainty: float | None = None) -> str:
    if value is None:
        return ""
    text = f"{value:.6g}"
    if uncertainty is not None:
        text += f" ± {uncertainty:.3g}"
    return f"{text} {unit}".strip()


def trend_plot(points: Sequence[TrendPoint], title: str) -> bytes:
    """Measured value per run (x labelled by firmware), one line per test of the item, with
    the spec value and its tolerance band; failed points in red, points of an incomplete
    run ringed in orange and their run labelled INCOMPLETE. PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys(p.run_id for p in points))
    x_of = {run_id: i for i, run_id in enumerate(runs)}
    labels = {}
    for p in points:
        date = p.started_at.strftime("%Y-%m-%d") if p.started_at else ""
        mark = "" if p.run_complete else "\nINCOMPLETE"
        labels[p.run_id] = f"fw {p.firmware}\n{date}\n#{p.run_id}{mark}"
    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        unit = next((p.unit for p in points if p.unit), "")
        for test_id in dict.fromkeys(p.test_id for p in points):
            pts = [p for p in points if p.test_id == test_id and p.measured is not None]
            if not pts:
                continue
            xs = [x_of[p.run_id] for p in pts]
            ax.errorbar(
                xs,
                [p.measured for p in pts],
                yerr=[p.uncertainty or 0.0 for p in pts],
                marker="o",
                capsize=3,
                label=test_id,
            )
            partial = [p for p in pts if not p.run_complete]
            if partial:
                ax.scatter(
                    [x_of[p.run_id] for p in partial],
                    [p.measured for p in partial],
                    facecolors="none",
                    edgecolors="orange",
                    linewidths=1.5,
                    zorder=6,
                    s=140,
                    label=f"{test_id} from an INCOMPLETE run",
                )
            bad = [p for p in pts if p.outcome != "passed"]
            if bad:
                ax.scatter(
                    [x_of[p.run_id] for p in bad],
                    [p.measured for p in bad],
                    color="red",
                    zorder=5,
                    s=60,
                    label=f"{test_id} not passed",
                )
            ref = pts[-1]
            if ref.expected is not None:
                ax.axhline(ref.expected, color="green", linestyle="--", linewidth=0.8)
                if ref.tolerance:
                    ax.axhspan(
                        ref.expected - ref.tolerance,
                        ref.expected + ref.tolerance,
                        color="green",
                        alpha=0.08,
                    )
        ax.set_xticks(range(len(runs)), [labels[r] for r in runs], fontsize=7)
        ax.set_ylabel(unit or "measured")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        return buf.getvalue()
    finally:
        plt.close(fig)
