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
import math
from pathlib import Path
from typing import Any

from sqlalchemy import (
    delete,
    select,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from reports.history_db import (
    _MAX_ID,
    ResultRow,
    RunRow,
    _item,
    _set_completion,
    default_db_url,
    open_db,
)
from reports.history_db import DB_FILE as DB_FILE
from reports.history_db import Base as Base
from reports.history_db import Str as Str
from reports.history_db import UTCDateTime as UTCDateTime
from reports.history_db import _bounded as _bounded
from reports.history_db import _finite as _finite
from reports.history_db import _json_without_nan as _json_without_nan
from reports.history_db import _upgrade as _upgrade
from reports.history_db import _utc as _utc
from reports.history_trend import TrendPoint as TrendPoint
from reports.history_trend import _fmt as _fmt
from reports.history_trend import list_runs as list_runs
from reports.history_trend import trend as trend
from reports.history_trend import trend_plot as trend_plot
from reports.history_trend import trend_table as trend_table
from reports.runs import (
    ReportInputError,
    RunData,
    load_run,
)

# --------------------------------------------------------------------------- database


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
