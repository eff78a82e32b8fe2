"""Run history: ingest synthetic runs of three firmware versions, follow one item's trend."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from harness.cli import app
from reports import history
from reports.gate import EXIT_FAIL, run_gate
from reports.runs import ReportInputError, load_run
from reports.synthetic import make_results_dir

P05_TRIP = "P05-cell-overvoltage-protection-trip"
P06_RECOVERY = "P06-cell-overvoltage-recovery"
#: Firmware, day, P5 trip measured: creeping up, out of tolerance (3.65 +- 0.01) in 16.4.
RELEASES = [((16, 2), 5, 3.650), ((16, 3), 6, 3.655), ((16, 4), 7, 3.668)]


def _p5_p6(case) -> bool:
    return case.item in ("P5", "P6")


@pytest.fixture
def three_runs(tmp_path: Path) -> tuple[Path, str]:
    """Three runs in ``results/`` ingested into the default database there."""
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
        history.ingest(run_dir)
    return root, history.default_db_url(root)


def test_trend_of_one_item_across_three_firmware_versions(three_runs) -> None:
    root, url = three_runs
    assert (root / "history.sqlite").is_file()  # the default is the results root
    points = history.trend("P5", url, kind="trip")
    assert [p.firmware for p in points] == ["16.2", "16.3", "16.4"]
    assert [p.measured for p in points] == [3.650, 3.655, 3.668]
    assert [p.outcome for p in points] == ["passed", "passed", "failed"]
    assert {p.test_id for p in points} == {P05_TRIP}
    # "P05" and the test id find the same rows; no kind filter adds the read-backs
    assert [p.measured for p in history.trend("P05", url, kind="trip")] == [3.650, 3.655, 3.668]
    assert len(history.trend(P05_TRIP, url)) == 3
    assert {p.kind for p in history.trend("P5", url)} == {"trip", "readback"}


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


def test_trend_plot_is_a_png(three_runs) -> None:
    _root, url = three_runs
    png = history.trend_plot(history.trend("P5", url, kind="trip"), "P5")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_history_ingest_and_default_show(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
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
    assert history.ingest_after_run(tmp_path / "missing") is None
