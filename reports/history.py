"""Run history: every run's records in one database, to follow a value across firmware.

SQLite by default (``<results root>/history.sqlite``), any SQLAlchemy URL by option, so a lab
can point several benches at one server. Two tables: ``runs`` (one row per results
directory: ``run.json``, kept whole as JSON plus the columns one filters on) and ``results``
(one row per record of ``results.jsonl``, also kept whole). Keeping the documents whole
means a history run can be turned back into exactly the ``RunData`` the gate and the reports
read (:func:`load_history_run`), and a new field in the record format is never lost.

Ingesting is idempotent: a run is keyed by its ``run_id`` (the same across the sessions of
a resumed run; older runs without one by their bench, start time and directory name), and
ingesting it again replaces its records (a run that was ingested while still going, then
finished or was resumed, ends up as it is now). Each run row also keeps how the run ended
(``end_status``, ``planned``, ``not_run``, ``complete``, ``verdict``: ``RunData.completion``),
so a trend can tell the points of an incomplete run apart. A database from before those
columns is upgraded in place when opened (columns added, existing rows filled in).

Tested on SQLite and PostgreSQL (``postgresql+psycopg://``). What differs between them is
handled here, so both store and return the same: times are stored in UTC and always read
back timezone-aware in UTC; the filter columns have no length limit on PostgreSQL (SQLite
never enforced theirs) and never carry a NUL (PostgreSQL text cannot; the documents keep
it); a non-finite float (a ``NaN`` measurement) is NULL in the float columns (as SQLite
always stored it) and ``null`` in a PostgreSQL JSON document (JSON has no NaN; SQLite's
document keeps it); runs without a start time sort first on both.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    create_engine,
    delete,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from reports.runs import (
    Completion,
    ReportInputError,
    RunData,
    completion,
    firmware_text,
    load_run,
)

DB_FILE = "history.sqlite"
#: Largest id an ``Integer`` primary key holds on every backend (PostgreSQL: 32 bits).
_MAX_ID = 2**31 - 1


class Str(TypeDecorator[str]):
    """A column's text: ``VARCHAR(length)`` (SQLite ignores the length; no length: ``TEXT``),
    ``VARCHAR`` without a length on PostgreSQL (which would refuse a longer value where
    SQLite took it); stored as ``str``, without NUL characters (PostgreSQL text cannot hold
    them)."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        length = self.impl.length
        if dialect.name == "postgresql":
            return dialect.type_descriptor(String())
        return dialect.type_descriptor(String(length) if length else Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value).replace("\x00", "")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A point in time, stored in UTC (naive on SQLite, which keeps no offset; ``timestamptz``
    on PostgreSQL, which returns it in the session's time zone) and read back aware in UTC
    on both. A naive value is taken to be UTC already."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = _utc(value)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a row SQLite returned as text
            value = dt.datetime.fromisoformat(value)
        return _utc(value)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the history schema."""


class RunRow(Base):
    """One results directory."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_key: Mapped[str] = mapped_column(Str(400), unique=True, index=True)
    directory: Mapped[str] = mapped_column(Str())
    bench_id: Mapped[str | None] = mapped_column(Str(200), index=True)
    suite: Mapped[str | None] = mapped_column(Str(50))
    spec_sha256: Mapped[str | None] = mapped_column(Str(64))
    device_name: Mapped[str | None] = mapped_column(Str(100))
    firmware: Mapped[str | None] = mapped_column(Str(50), index=True)
    operator: Mapped[str | None] = mapped_column(Str(100))
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    #: Completion (``RunData.completion``); None only in a row the upgrade could not fill.
    run_uid: Mapped[str | None] = mapped_column(Str(64), index=True)
    end_status: Mapped[str | None] = mapped_column(Str(20))
    end_reason: Mapped[str | None] = mapped_column(Str())
    planned: Mapped[int | None] = mapped_column(Integer)
    not_run: Mapped[int | None] = mapped_column(Integer)
    complete: Mapped[bool | None] = mapped_column(Boolean)
    verdict: Mapped[str | None] = mapped_column(Str(12))
    ingested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
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
    test_id: Mapped[str] = mapped_column(Str(200), index=True)
    item: Mapped[str] = mapped_column(Str(10), index=True)
    kind: Mapped[str | None] = mapped_column(Str(30))
    category: Mapped[str | None] = mapped_column(Str(60))
    outcome: Mapped[str] = mapped_column(Str(10))
    expected: Mapped[float | None] = mapped_column(Float)
    measured: Mapped[float | None] = mapped_column(Float)
    uncertainty: Mapped[float | None] = mapped_column(Float)
    tolerance: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(Str(20))
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
        options: dict[str, Any] = {}
        if make_url(url).get_backend_name() == "postgresql":
            options["json_serializer"] = _json_without_nan
        engine = create_engine(url, **options)
    except (ArgumentError, ValueError) as exc:
        raise ReportInputError(f"--db {url!r}: not a usable SQLAlchemy URL: {exc}") from exc
    except ImportError as exc:
        raise ReportInputError(
            f"--db {url!r}: the database driver is not installed: {exc}"
        ) from exc
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        try:
            Base.metadata.create_all(engine)
            _upgrade(engine)
            break
        except OperationalError as exc:
            engine.dispose()
            raise ReportInputError(f"--db {url!r}: cannot open the database: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            # Another bench creating or upgrading the same server's schema at this moment
            # makes one of the two fail: the second look finds the schema made.
            if attempt == 2:
                engine.dispose()
                raise ReportInputError(
                    f"--db {url!r}: cannot set up the history tables: {exc}"
                ) from exc
    return engine


def _json_without_nan(value: Any) -> str:
    """JSON for PostgreSQL, which refuses ``NaN`` and ``Infinity``: those floats as null."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _upgrade(engine: Engine) -> None:
    """Add the columns a database from an older bms-hil lacks (and their indexes), widen a
    PostgreSQL database's bounded text columns, and fill the completion of the rows from the
    run documents they kept whole (``create_all`` never alters a table)."""
    postgres = engine.dialect.name == "postgresql"
    schema = inspect(engine)
    have = {c["name"] for c in schema.get_columns(RunRow.__tablename__)}
    missing = [c for c in RunRow.__table__.columns if c.name not in have]
    narrow = []
    if postgres:
        for table in (RunRow.__table__, ResultRow.__table__):
            for info in schema.get_columns(table.name):
                col = table.columns.get(info["name"])
                if col is not None and isinstance(col.type, Str) and _bounded(info["type"]):
                    narrow.append((table, col))
    if missing or narrow:
        with engine.begin() as conn:
            exists = "IF NOT EXISTS " if postgres else ""  # SQLite has no such clause
            for col in missing:
                kind = col.type.compile(dialect=engine.dialect)
                conn.execute(
                    text(f"ALTER TABLE {RunRow.__tablename__} ADD COLUMN {exists}{col.name} {kind}")
                )
            names = {c.name for c in missing}
            for index in RunRow.__table__.indexes:
                if names & {c.name for c in index.columns}:
                    index.create(conn, checkfirst=True)
            for table, col in narrow:
                kind = col.type.compile(dialect=engine.dialect)
                conn.execute(text(f"ALTER TABLE {table.name} ALTER COLUMN {col.name} TYPE {kind}"))
    with Session(engine) as session, session.begin():
        for row in session.scalars(select(RunRow).where(RunRow.end_status.is_(None))):
            _set_completion(row, completion(dict(row.info), [r.record for r in row.results]))


def _bounded(kind: Any) -> bool:
    return getattr(kind, "length", None) is not None


def _set_completion(row: RunRow, done: Completion) -> None:
    row.run_uid = done.run_id
    row.end_status = done.status
    row.end_reason = done.reason
    row.planned = done.planned
    row.not_run = done.not_run_count
    row.complete = done.complete
    row.verdict = done.verdict


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def run_key(run: RunData) -> str:
    """Identity of a run across re-ingests, resumes and copies of its directory: its
    ``run_id``; a run from before ``run_id`` by bench, start time and directory name."""
    if run.run_id:
        return f"run|{run.run_id}"
    return f"{run.bench_id or '-'}|{run.started_at or '-'}|{run.directory.resolve().name}"


def ingest(results_dir: Path | str, db_url: str | None = None) -> int:
    """Store (or replace) a results directory in the history; returns its history run id.

    The default database is ``history.sqlite`` in the directory's results root (its parent),
    which for ``bmshil run``'s default output is ``results/history.sqlite``.
    """
    run = load_run(results_dir)
    url = db_url or default_db_url(run.directory.resolve().parent)
    engine = open_db(url)
    try:
        for attempt in (1, 2):
            try:
                with Session(engine) as session, session.begin():
                    return _store(session, run)
            except IntegrityError:
                # Two ingests of a new run at once (two benches, or `history ingest` during
                # the run's own): one inserted it first; the second attempt replaces it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")
    except SQLAlchemyError as exc:
        raise ReportInputError(f"--db {url!r}: cannot store {run.directory}: {exc}") from exc
    finally:
        engine.dispose()


def _store(session: Session, run: RunData) -> int:
    key = run_key(run)
    # FOR UPDATE (PostgreSQL; SQLite locks the whole file anyway): a concurrent re-ingest of
    # the same run waits for this one instead of interleaving its records with ours.
    row = session.scalars(
        select(RunRow).where(RunRow.run_key == key).with_for_update()
    ).one_or_none()
    if row is None:
        row = RunRow(run_key=key)
        session.add(row)
    else:
        session.execute(delete(ResultRow).where(ResultRow.run_id == row.id))
        row.results = []
    counts = run.counts()
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
    _set_completion(row, run.completion)
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
                expected=_number(rec.get("expected")),
                measured=_number(rec.get("measured")),
                uncertainty=_number(rec.get("uncertainty")),
                tolerance=_number(rec.get("tolerance")),
                margin=_number(rec.get("margin")),
                unit=rec.get("unit"),
                record=rec,
            )
        )
    session.flush()
    return row.id


def _number(value: Any) -> float | None:
    """A record's value for a float column: a finite number, else None (SQLite stores a NaN
    as NULL, PostgreSQL would keep it, and would refuse a text that SQLite took; the record
    keeps the original either way)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def ingest_after_run(
    results_dir: Path, results_root: Path, db_url: str | None = None
) -> int | None:
    """For ``bmshil run``: ingest into ``db_url``, default ``<results_root>/history.sqlite``
    (the run's results root, given explicitly: nothing a run writes lives outside its
    results directory or root), and never turn a finished run into a crash.

    An incomplete run is stored too, marked as such (``end_status``, ``complete``). Returns
    the history run id, or None when the run left nothing to ingest or the database refused
    (the reason is printed; the results directory is untouched either way).
    """
    try:
        return ingest(results_dir, db_url or default_db_url(Path(results_root)))
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
            # An id past what the column holds is no run (PostgreSQL would refuse the query).
            row = session.get(RunRow, run_id) if 0 < run_id <= _MAX_ID else None
            if row is None:
                raise ReportInputError(f"--db {url}: no history run with id {run_id}")
            records = [r.record for r in row.results]
            return RunData(directory=Path(row.directory), info=dict(row.info), records=records)
    except SQLAlchemyError as exc:
        raise ReportInputError(f"--db {url!r}: cannot read history run {run_id}: {exc}") from exc
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
