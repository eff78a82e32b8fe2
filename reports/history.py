"""Run history: every run's records in one database, to follow a value across firmware.

SQLite by default (``<results root>/history.sqlite``), any SQLAlchemy URL by option, so a lab
can point several benches at one server. Two tables: ``runs`` (one row per results
directory: ``run.json``, kept whole as JSON plus the columns one filters on) and ``results``
(one row per record of ``results.jsonl``, also kept whole). Keeping the documents whole
means a history run can be turned back into exactly the ``RunData`` the gate and the reports
read (:func:`load_history_run`), and a new field in the record format is never lost.

Ingesting is idempotent: a run is keyed by its bench, start time and directory name, and
ingesting it again replaces its records (a run that was ingested while still going, then
finished, ends up complete).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from reports.runs import ReportInputError, RunData, firmware_text, load_run

DB_FILE = "history.sqlite"


class Base(DeclarativeBase):
    """Declarative base of the history schema."""


class RunRow(Base):
    """One results directory."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_key: Mapped[str] = mapped_column(String(400), unique=True, index=True)
    directory: Mapped[str] = mapped_column(Text)
    bench_id: Mapped[str | None] = mapped_column(String(200), index=True)
    suite: Mapped[str | None] = mapped_column(String(50))
    spec_sha256: Mapped[str | None] = mapped_column(String(64))
    device_name: Mapped[str | None] = mapped_column(String(100))
    firmware: Mapped[str | None] = mapped_column(String(50), index=True)
    operator: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    ingested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    info: Mapped[dict[str, Any]] = mapped_column(JSON)

    results: Mapped[list[ResultRow]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="ResultRow.seq"
    )


class ResultRow(Base):
    """One record of ``results.jsonl``."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    test_id: Mapped[str] = mapped_column(String(200), index=True)
    item: Mapped[str] = mapped_column(String(10), index=True)
    kind: Mapped[str | None] = mapped_column(String(30))
    category: Mapped[str | None] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(10))
    expected: Mapped[float | None] = mapped_column(Float)
    measured: Mapped[float | None] = mapped_column(Float)
    uncertainty: Mapped[float | None] = mapped_column(Float)
    tolerance: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(20))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)

    run: Mapped[RunRow] = relationship(back_populates="results")


# --------------------------------------------------------------------------- database


def default_db_url(results_root: Path | None = None) -> str:
    """``sqlite:///<results root>/history.sqlite``; the root defaults to ``<project>/results``."""
    if results_root is None:
        import harness

        results_root = harness.PROJECT_ROOT / "results"
    return f"sqlite:///{(Path(results_root) / DB_FILE).resolve()}"


def open_db(url: str) -> Engine:
    """An engine on ``url`` with the schema created; a bad URL is a ReportInputError."""
    try:
        engine = create_engine(url)
    except (ArgumentError, ValueError) as exc:
        raise ReportInputError(f"--db {url!r}: not a usable SQLAlchemy URL: {exc}") from exc
    except ImportError as exc:
        raise ReportInputError(
            f"--db {url!r}: the database driver is not installed: {exc}"
        ) from exc
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        Base.metadata.create_all(engine)
    except OperationalError as exc:
        raise ReportInputError(f"--db {url!r}: cannot open the database: {exc.orig}") from exc
    return engine


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def run_key(run: RunData) -> str:
    """Identity of a run across re-ingests (and across copies of its directory)."""
    return f"{run.bench_id or '-'}|{run.started_at or '-'}|{run.directory.resolve().name}"


def ingest(results_dir: Path | str, db_url: str | None = None) -> int:
    """Store (or replace) a results directory in the history; returns its history run id.

    The default database is ``history.sqlite`` in the directory's results root (its parent),
    which for ``bmshil run``'s default output is ``results/history.sqlite``.
    """
    run = load_run(results_dir)
    url = db_url or default_db_url(run.directory.resolve().parent)
    engine = open_db(url)
    counts = run.counts()
    try:
        with Session(engine) as session, session.begin():
            key = run_key(run)
            row = session.scalars(select(RunRow).where(RunRow.run_key == key)).one_or_none()
            if row is None:
                row = RunRow(run_key=key)
                session.add(row)
            else:
                session.execute(delete(ResultRow).where(ResultRow.run_id == row.id))
                row.results = []
            row.directory = str(run.directory.resolve())
            row.bench_id = run.bench_id
            row.suite = run.info.get("suite")
            row.spec_sha256 = run.spec_sha256
            row.device_name = run.device_name or None
            row.firmware = run.firmware or None
            row.operator = run.info.get("operator")
            row.started_at = _parse_time(run.started_at)
            row.finished_at = _parse_time(run.info.get("finished_at"))
            row.passed, row.failed = counts["passed"], counts["failed"]
            row.error, row.skipped = counts["error"], counts["skipped"]
            row.ingested_at = dt.datetime.now(dt.UTC)
            row.info = run.info
            for seq, rec in enumerate(run.records):
                row.results.append(
                    ResultRow(
                        seq=seq,
                        test_id=rec["test_id"],
                        item=_item(rec["item"]),
                        kind=rec.get("kind"),
                        category=rec.get("category"),
                        outcome=rec["outcome"],
                        expected=rec.get("expected"),
                        measured=rec.get("measured"),
                        uncertainty=rec.get("uncertainty"),
                        tolerance=rec.get("tolerance"),
                        margin=rec.get("margin"),
                        unit=rec.get("unit"),
                        record=rec,
                    )
                )
            session.flush()
            return row.id
    except SQLAlchemyError as exc:
        raise ReportInputError(f"--db {url!r}: cannot store {run.directory}: {exc}") from exc
    finally:
        engine.dispose()


def ingest_after_run(results_dir: Path, db_url: str | None = None) -> int | None:
    """For ``bmshil run``: ingest, and never turn a finished run into a crash.

    Returns the history run id, or None when the run left nothing to ingest or the database
    refused (the reason is printed; the results directory is untouched either way).
    """
    try:
        return ingest(results_dir, db_url)
    except ReportInputError as exc:
        import sys

        print(f"warning: run not added to the history: {exc}", file=sys.stderr)
        return None


def _item(item: str) -> str:
    prefix, digits = item[:1].upper(), item[1:]
    return f"{prefix}{int(digits)}" if prefix in "PS" and digits.isdigit() else item


def load_history_run(run_id: int, db_url: str | None = None) -> RunData:
    """A stored run as the same ``RunData`` its directory would give."""
    url = db_url or default_db_url()
    engine = open_db(url)
    try:
        with Session(engine) as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise ReportInputError(f"--db {url}: no history run with id {run_id}")
            records = [r.record for r in row.results]
            return RunData(directory=Path(row.directory), info=dict(row.info), records=records)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- trend


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
            query = query.order_by(RunRow.started_at, RunRow.id, ResultRow.seq)
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
                )
                for res, run in session.execute(query).all()
            ]
    finally:
        engine.dispose()


def list_runs(db_url: str | None = None) -> list[RunRow]:
    """Every stored run, oldest first (detached rows, for listing)."""
    engine = open_db(db_url or default_db_url())
    try:
        with Session(engine, expire_on_commit=False) as session:
            return list(session.scalars(select(RunRow).order_by(RunRow.started_at, RunRow.id)))
    finally:
        engine.dispose()


def trend_table(points: Sequence[TrendPoint], title: str) -> Any:
    """The trend as a rich table (one row per run and test)."""
    from rich.table import Table

    table = Table(title=title)
    for col in (
        "run",
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
    style = {"passed": "green", "failed": "red", "error": "yellow", "skipped": "dim"}
    for p in points:
        table.add_row(
            str(p.run_id),
            p.started_at.strftime("%Y-%m-%d %H:%M") if p.started_at else "",
            p.bench_id,
            p.firmware,
            p.test_id,
            _fmt(p.expected, p.unit),
            _fmt(p.measured, p.unit, p.uncertainty),
            "" if p.tolerance is None else f"± {_fmt(p.tolerance, p.unit)}",
            _fmt(p.margin, p.unit),
            f"[{style.get(p.outcome, '')}]{p.outcome}[/]",
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
    the spec value and its tolerance band; failed points in red. PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys(p.run_id for p in points))
    x_of = {run_id: i for i, run_id in enumerate(runs)}
    labels = {}
    for p in points:
        date = p.started_at.strftime("%Y-%m-%d") if p.started_at else ""
        labels[p.run_id] = f"fw {p.firmware}\n{date}\n#{p.run_id}"
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
