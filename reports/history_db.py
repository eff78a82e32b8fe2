"""The run history's database: its tables (one row per run, one per case result), the column
types that keep times in UTC and text bounded, opening a database and upgrading an older one."""

from __future__ import annotations

import datetime as dt
import json
import math
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
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from reports.runs import Completion, ReportInputError, completion

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


def _item(item: str) -> str:
    prefix, digits = item[:1].upper(), item[1:]
    return f"{prefix}{int(digits)}" if prefix in "PS" and digits.isdigit() else item
