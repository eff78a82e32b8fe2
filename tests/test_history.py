"""Run history: ingest synthetic runs of three firmware versions, follow one item's trend.

Every database test runs on both backends, through the ``db_url`` fixture: ``sqlite`` (a
file in the test's tmp_path) and ``postgresql`` (a database of its own, created for the test
and dropped after it, on the server whose URL ``scripts/setup-postgres.sh`` writes to
``.tools/pg/url``; ``scripts/setup.sh`` runs it). Without that file, or with the server not
answering, the ``postgresql`` parameter FAILS, saying to run ``scripts/setup-postgres.sh``;
it is skipped only when the environment says ``BMSHIL_NO_POSTGRES=1``.
``tests/test_completion.py`` uses the same fixture (``history_db``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, make_url, select, text
from sqlalchemy.exc import SQLAlchemyError
from synthetic import make_results_dir
from typer.testing import CliRunner

from bmsspec import load_spec
from harness.cli import app
from harness.plan import build_plan
from reports import history
from reports.gate import EXIT_FAIL, run_gate
from reports.runs import ReportInputError, load_run

P05_TRIP = "P05-cell-overvoltage-protection-trip"
P06_RECOVERY = "P06-cell-overvoltage-recovery"
#: Firmware, day, P5 trip measured: creeping up, out of tolerance (3.65 +- 0.01) in 16.4.
RELEASES = [((16, 2), 5, 3.650), ((16, 3), 6, 3.655), ((16, 4), 7, 3.668)]

#: The history backends every database test runs on.
BACKENDS = ("sqlite", "postgresql")
#: Written by scripts/setup-postgres.sh: the URL of the test server's bmshil_test database.
POSTGRES_URL_FILE = Path(__file__).resolve().parents[1] / ".tools" / "pg" / "url"
SETUP_HINT = "run scripts/setup-postgres.sh (installs and starts the test PostgreSQL)"


def postgres_url() -> str:
    """The test server's URL; fails the test without it (skips with BMSHIL_NO_POSTGRES=1)."""
    if os.environ.get("BMSHIL_NO_POSTGRES") == "1":
        pytest.skip("BMSHIL_NO_POSTGRES=1: PostgreSQL history tests skipped")
    if not POSTGRES_URL_FILE.is_file():
        pytest.fail(
            f"{POSTGRES_URL_FILE} is missing: {SETUP_HINT}, "
            "or set BMSHIL_NO_POSTGRES=1 to skip the PostgreSQL history tests",
            pytrace=False,
        )
    return POSTGRES_URL_FILE.read_text(encoding="utf-8").strip()


@contextlib.contextmanager
def history_db(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty history database on ``backend``; its URL. On PostgreSQL a database of
    its own (``CREATE DATABASE``, dropped afterwards), so tests never see each other's rows."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'h.sqlite'}"
        return
    base = make_url(postgres_url())
    name = f"bmshil_t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    problem = None
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        problem = str(getattr(exc, "orig", None) or exc).strip()
    if problem is not None:
        admin.dispose()
        where = base.render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL {where}: cannot create a test database: {problem}\n"
            f"{SETUP_HINT}; it starts the server again after a reboot",
            pytrace=False,
        )
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh history database on each backend."""
    with history_db(backend, tmp_path) as url:
        yield url


def _p5_p6(case) -> bool:
    return case.item in ("P5", "P6")


@pytest.fixture
def three_runs(tmp_path: Path, backend: str, db_url: str) -> tuple[Path, str]:
    """Three runs in ``results/`` ingested: on SQLite into the default database there
    (``results/history.sqlite``), on PostgreSQL into the test's own database."""
    root = tmp_path / "results"
    for firmware, day, measured in RELEASES:
        run_dir = root / f"run-fw{firmware[0]}.{firmware[1]}"
        make_results_dir(
            run_dir,
            select=_p5_p6,
            firmware=firmware,
            measured={P05_TRIP: measured},
            started_at=dt.datetime(2026, 1, day, 9, 0, tzinfo=dt.UTC),
        )
        history.ingest(run_dir, None if backend == "sqlite" else db_url)
    return root, history.default_db_url(root) if backend == "sqlite" else db_url


def test_trend_of_one_item_across_three_firmware_versions(three_runs, backend: str) -> None:
    root, url = three_runs
    # the default is the results root; a --db URL writes nothing there
    assert (root / "history.sqlite").is_file() == (backend == "sqlite")
    points = history.trend("P5", url, kind="trip")
    assert [p.firmware for p in points] == ["16.2", "16.3", "16.4"]
    assert [p.measured for p in points] == [3.650, 3.655, 3.668]
    assert [p.outcome for p in points] == ["passed", "passed", "failed"]
    assert {p.test_id for p in points} == {P05_TRIP}
    # "P05" and the test id find the same rows; no kind filter adds the read-backs
    assert [p.measured for p in history.trend("P05", url, kind="trip")] == [3.650, 3.655, 3.668]
    assert len(history.trend(P05_TRIP, url)) == 3
    p5_kinds = {c.kind for c in build_plan(load_spec(), None, suite="regression") if c.item == "P5"}
    assert {"trip", "readback"} <= p5_kinds
    assert {p.kind for p in history.trend("P5", url)} == p5_kinds
    # times come back aware, in UTC, on both backends
    assert [p.started_at for p in points] == [
        dt.datetime(2026, 1, day, 9, 0, tzinfo=dt.UTC) for _, day, _ in RELEASES
    ]


def test_ingest_again_replaces_the_run(three_runs) -> None:
    root, url = three_runs
    run_dir = root / "run-fw16.4"
    first = history.list_runs(url)[-1].id
    assert history.ingest(run_dir, url) == first
    assert len(history.list_runs(url)) == 3
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(history.ResultRow.__table__)).scalar()
    engine.dispose()
    assert n == 3 * len(load_run(run_dir).records)


def test_history_run_reads_back_as_its_directory(three_runs) -> None:
    root, url = three_runs
    stored = history.load_history_run(history.list_runs(url)[0].id, url)
    original = load_run(root / "run-fw16.2")
    assert stored.records == original.records
    assert stored.info == original.info
    assert stored.firmware == "16.2"


def test_gate_on_history_run_ids(three_runs) -> None:
    _root, url = three_runs
    ids = [r.id for r in history.list_runs(url)]
    code, md = run_gate(str(ids[0]), str(ids[1]), db_url=url, allow_spec_change=False)
    # P5/P6 only: the other 149 rows are not covered, so this gate must fail on coverage,
    # and it must not call 3.650 -> 3.655 (half the 10 mV tolerance) drift.
    assert code == EXIT_FAIL
    assert "| coverage | P1 |" in md and "| drift |" not in md
    assert f"history run {ids[1]}" in md
    code, md = run_gate(str(ids[1]), str(ids[2]), db_url=url)
    assert "| regression | P5 | " + P05_TRIP in md
    code, md = run_gate("999", str(ids[0]), db_url=url)
    assert code == 2 and "no history run with id 999" in md
    # past what the id column holds (PostgreSQL's integer): no such run, not a crash
    code, md = run_gate(str(ids[0]), "99999999999", db_url=url)
    assert code == 2 and "no history run with id 99999999999" in md


def test_trend_plot_is_a_png(three_runs) -> None:
    _root, url = three_runs
    png = history.trend_plot(history.trend("P5", url, kind="trip"), "P5")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_history_ingest_and_default_show(tmp_path: Path, db_url: str) -> None:
    runner = CliRunner()
    url = db_url
    for firmware, day, measured in RELEASES:
        run_dir = tmp_path / f"run-{day}"
        make_results_dir(
            run_dir,
            select=_p5_p6,
            firmware=firmware,
            measured={P05_TRIP: measured},
            started_at=dt.datetime(2026, 1, day, tzinfo=dt.UTC),
        )
        result = runner.invoke(app, ["history", "ingest", str(run_dir), "--db", url])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("history run ")
    plot = tmp_path / "p5.png"
    result = runner.invoke(
        app,
        ["history", "P5", "--db", url, "--kind", "trip", "--plot", str(plot)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    for firmware in ("16.2", "16.3", "16.4"):
        assert firmware in result.output
    assert "3.668" in result.output and plot.read_bytes()[:4] == b"\x89PNG"
    missing = runner.invoke(app, ["history", "P40", "--db", url])
    assert missing.exit_code == 1 and "no record of P40" in missing.output


def test_bad_database_url_and_bad_results_dir_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="not a usable SQLAlchemy URL"):
        history.open_db("not a url")
    with pytest.raises(ReportInputError, match="does not exist"):
        history.ingest(tmp_path / "missing", f"sqlite:///{tmp_path / 'h.sqlite'}")
    assert history.ingest_after_run(tmp_path / "missing", tmp_path) is None
    closed = "postgresql+psycopg://bmshil:bmshil@127.0.0.1:1/bmshil_test"  # nothing listens
    with pytest.raises(ReportInputError, match="cannot open the database"):
        history.open_db(closed)


def test_what_sqlite_takes_postgresql_takes_the_same(tmp_path: Path, db_url: str) -> None:
    """What SQLite stored as it came and PostgreSQL would refuse or change: a NaN measurement
    (no NaN in JSON), a NUL in the device name (none in PostgreSQL text), a bench id past
    its column's 200 characters, start times in other offsets, a run without one."""
    runs = {
        # 08:00 UTC, though its wall clock (10:00) is later than b's
        "a": dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "b": dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC),
        "c": None,  # no start time (removed from run.json below): sorts first
    }
    bench = "bench-" + "x" * 300
    for name, started in runs.items():
        make_results_dir(
            tmp_path / name,
            select=_p5_p6,
            bench_id=bench,
            measured={P05_TRIP: float("nan")} if name == "a" else None,
            started_at=started or dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    info_path = tmp_path / "a" / "run.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["device"]["name"] = "SP16\x00\x00"
    info_path.write_text(json.dumps(info), encoding="utf-8")
    info_path = tmp_path / "c" / "run.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    del info["started_at"]
    info_path.write_text(json.dumps(info), encoding="utf-8")
    ids = {name: history.ingest(tmp_path / name, db_url) for name in runs}

    rows = history.list_runs(db_url)
    assert [r.id for r in rows] == [ids["c"], ids["a"], ids["b"]]
    assert [r.started_at for r in rows] == [
        None,
        dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC),
    ]
    assert all(r.ingested_at.tzinfo == dt.UTC for r in rows)
    a = rows[1]
    assert a.bench_id == bench and a.device_name == "SP16"  # NUL dropped from the column
    (trip,) = [p for p in history.trend("P5", db_url, kind="trip") if p.run_id == ids["a"]]
    assert trip.measured is None and trip.outcome == "failed"  # a NaN is no value, on both
    back = history.load_history_run(ids["a"], db_url)
    assert back.info["device"]["name"] == "SP16\x00\x00"  # the document keeps it
    (record,) = [r for r in back.records if r["test_id"] == P05_TRIP]
    # SQLite keeps the NaN in the document, PostgreSQL's JSON has none: null
    assert record["measured"] is None or math.isnan(record["measured"])
    assert record["outcome"] == "failed"
    assert history.ingest(tmp_path / "a", db_url) == ids["a"]  # and again, the same row


def test_the_schema_is_the_same_on_both(db_url: str, backend: str) -> None:
    """Unbounded text on PostgreSQL (its VARCHAR(n) would refuse what SQLite takes), time
    zone-aware times, every index."""
    engine = history.open_db(db_url)
    try:
        schema = inspect(engine)
        columns = {c["name"]: c["type"] for c in schema.get_columns("results")}
        runs = {c["name"]: c["type"] for c in schema.get_columns("runs")}
        indexes = {tuple(i["column_names"]) for i in schema.get_indexes("runs")}
    finally:
        engine.dispose()
    assert {("run_uid",), ("started_at",), ("firmware",), ("bench_id",)} <= indexes
    if backend == "postgresql":
        assert columns["test_id"].length is None and columns["item"].length is None
        assert runs["run_key"].length is None and runs["bench_id"].length is None
        assert runs["started_at"].timezone is True


def test_two_ingests_of_a_new_run_at_once_make_one_run(tmp_path: Path) -> None:
    """Two benches (or ``history ingest`` during the run's own) storing the same new run on
    one server at once: the one that lost the insert replaces the other's; one run row.
    PostgreSQL only: the shared server is where this happens (SQLite serializes writers)."""
    from concurrent.futures import ThreadPoolExecutor

    make_results_dir(tmp_path / "run", select=_p5_p6)
    with history_db("postgresql", tmp_path) as url:
        history.open_db(url).dispose()  # the tables exist: only the run rows race
        with ThreadPoolExecutor(max_workers=4) as pool:
            ids = list(pool.map(lambda _: history.ingest(tmp_path / "run", url), range(4)))
        (row,) = history.list_runs(url)
        assert set(ids) == {row.id}
        engine = create_engine(url)
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(history.ResultRow.__table__))
            assert n.scalar() == len(load_run(tmp_path / "run").records)
        engine.dispose()
