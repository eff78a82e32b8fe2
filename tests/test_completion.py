"""Completion: an incomplete run is INCOMPLETE in every report; PASS needs a final record for
every planned case.

The results directories are synthetic (``tests/synthetic.py``, written through the harness's
own record code) in the run.json contract of the harness: ``run_id``, ``planned``, ``end``,
``sessions``; results records may say ``not_run``. Each kind of end (complete, interrupted by
SIGTERM, bench lost with ``not_run`` records, crashed, a planned case without a record,
resumed, legacy) goes through the completion function, the compliance HTML, the gate and
the history. One Allure command-line run at most (skipped when the tool is not installed).

The history tests run on SQLite and on PostgreSQL (``db_url``: the fixture of
``tests/test_history.py``, a fresh database per test; its PostgreSQL parameter fails without
``scripts/setup-postgres.sh``'s server, and is skipped only with ``BMSHIL_NO_POSTGRES=1``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import create_engine, inspect, text
from synthetic import LOST_MESSAGE, make_results_dir
from test_history import BACKENDS, history_db
from typer.testing import CliRunner

from bmsspec import load_spec
from harness.cli import app
from harness.plan import build_plan
from reports import allure as allure_mod
from reports import history
from reports.compliance import render_html, results_frame, verdict, write_report
from reports.gate import EXIT_CANNOT_COMPARE, EXIT_FAIL, EXIT_PASS, run_gate
from reports.runs import (
    CRASHED_REASON,
    OUTCOMES,
    ReportInputError,
    completion,
    load_run,
)

P05_TRIP = "P05-cell-overvoltage-protection-trip"
P07_TRIP = "P07-cell-undervoltage-protection-trip"
TODAY = dt.date(2026, 2, 1)
#: the regression suite of this checkout's plan, counted from the plan itself
PLANNED = len(build_plan(load_spec(), None, suite="regression"))
#: every suite (what the gate runs use, so a complete run covers every row)
WHOLE = len(build_plan(load_spec(), None, suite=None))

#: name -> make_results_dir options. Every run is the regression suite (PLANNED cases).
KINDS: dict[str, dict] = {
    "complete": {},
    "interrupted": {"end": "interrupted", "signal": "SIGTERM", "stop_after": 72},
    "bench_lost": {"end": "bench_lost", "lost_after": 100},
    "crashed": {"end": "running", "stop_after": 10},
    "no_end": {"end": None, "stop_after": 10},
    "missing": {"unrecorded": [P05_TRIP]},
    "resumed": {"rerun": {P05_TRIP: "not_run", P07_TRIP: "error"}},
    "legacy": {"legacy": True},
    "legacy_unfinished": {"legacy": True, "end": "running"},
}
INCOMPLETE_KINDS = ("interrupted", "bench_lost", "crashed", "no_end", "missing")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("completion") / "results"
    for name, options in KINDS.items():
        make_results_dir(root / name, **options)
    return root


# --------------------------------------------------------------------------- completion


def test_not_run_is_an_outcome() -> None:
    assert "not_run" in OUTCOMES


@pytest.mark.parametrize(
    ("kind", "status", "final", "missing", "not_run", "complete", "verdict_text"),
    [
        ("complete", "complete", PLANNED, 0, 0, True, "PASS"),
        ("interrupted", "interrupted", 72, PLANNED - 72, 0, False, "INCOMPLETE"),
        ("bench_lost", "bench_lost", PLANNED, 0, PLANNED - 100, False, "INCOMPLETE"),
        ("crashed", "crashed", 10, PLANNED - 10, 0, False, "INCOMPLETE"),
        ("no_end", "crashed", 10, PLANNED - 10, 0, False, "INCOMPLETE"),
        ("missing", "complete", PLANNED - 1, 1, 0, False, "INCOMPLETE"),
        ("resumed", "complete", PLANNED, 0, 0, True, "PASS"),
        ("legacy", "legacy", PLANNED, 0, 0, True, "PASS"),
        ("legacy_unfinished", "crashed", PLANNED, 0, 0, False, "INCOMPLETE"),
    ],
)
def test_completion_of_each_kind_of_run(
    runs: Path, kind, status, final, missing, not_run, complete, verdict_text
) -> None:
    done = load_run(runs / kind).completion
    assert done.status == status
    assert done.planned == PLANNED
    assert done.final == final
    assert len(done.missing) == missing
    assert len(done.not_run) == not_run
    assert done.not_run_count == missing + not_run
    assert done.complete is complete
    assert done.verdict == verdict_text
    assert done.legacy is kind.startswith("legacy")
    if complete:
        assert done.banner == ""
    else:
        assert done.banner == (
            f"INCOMPLETE \u2014 {status}: {done.reason}; {missing + not_run} of {PLANNED} "
            "planned cases not run"
        )


def test_end_record_details(runs: Path) -> None:
    interrupted = load_run(runs / "interrupted").completion
    assert (interrupted.signal, interrupted.reason) == ("SIGTERM", "SIGTERM received")
    not_run = f"{PLANNED - 72} of {PLANNED} planned cases not run"
    assert interrupted.summary == f"interrupted: SIGTERM received; {not_run}"
    assert interrupted.missing[0] == load_run(runs / "interrupted").info["planned"][72]
    assert "no record (interrupted" in interrupted.not_run_reasons[interrupted.missing[0]]
    assert interrupted.run_id and len(interrupted.run_id) == 32

    lost = load_run(runs / "bench_lost").completion
    assert set(lost.not_run_reasons.values()) == {LOST_MESSAGE}
    assert lost.unfinished == lost.not_run

    for kind in ("crashed", "no_end"):
        assert load_run(runs / kind).completion.reason == CRASHED_REASON
    assert "did not finish" in load_run(runs / "legacy_unfinished").completion.reason
    assert "planned cases lack a final record" in load_run(runs / "missing").completion.reason


def test_resumed_run_the_later_record_is_final(runs: Path) -> None:
    run = load_run(runs / "resumed")
    done = run.completion
    assert (done.sessions, done.resumed) == (2, True)
    final = {r["test_id"]: r for r in run.records}
    assert final[P05_TRIP]["outcome"] == "passed"  # the first session said not_run
    assert final[P07_TRIP]["outcome"] == "passed"  # the first session said error
    assert len(run.records) == PLANNED
    lines = (runs / "resumed" / "results.jsonl").read_text().splitlines()
    assert len(lines) == PLANNED + 2
    # the same function on the raw records (repeats included) agrees
    raw = [json.loads(line) for line in lines]
    assert completion(run.info, raw).verdict == "PASS"


def test_verdict_fail_beats_incomplete_and_bench_errors_fail(tmp_path: Path) -> None:
    make_results_dir(tmp_path / "fail", end="interrupted", stop_after=20, measured={P05_TRIP: 3.70})
    done = load_run(tmp_path / "fail").completion
    assert (done.verdict, done.complete) == ("FAIL", False)
    assert any("product defect" in r for r in done.verdict_reasons)
    assert any(r.startswith("the run is INCOMPLETE") for r in done.verdict_reasons)

    make_results_dir(tmp_path / "error", outcomes={P07_TRIP: "error"})
    done = load_run(tmp_path / "error").completion
    assert (done.verdict, done.complete) == ("FAIL", True)
    assert any("bench error" in r for r in done.verdict_reasons)

    make_results_dir(tmp_path / "error-incomplete", outcomes={P07_TRIP: "error"}, end="aborted")
    assert load_run(tmp_path / "error-incomplete").completion.verdict == "INCOMPLETE"


def test_unplanned_record_is_kept_and_warned_about(tmp_path: Path) -> None:
    make_results_dir(tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    info["planned"].remove(P05_TRIP)
    (tmp_path / "run" / "run.json").write_text(json.dumps(info))
    run = load_run(tmp_path / "run")
    assert P05_TRIP in {r["test_id"] for r in run.records}
    assert run.completion.unplanned == [P05_TRIP]
    assert run.completion.planned == PLANNED - 1 and run.completion.complete
    assert any("did not plan" in w and P05_TRIP in w for w in run.warnings)


def test_unknown_end_status_is_incomplete_with_a_warning(tmp_path: Path) -> None:
    make_results_dir(tmp_path / "run", end="exploded")
    run = load_run(tmp_path / "run")
    assert not run.completion.complete and run.completion.verdict == "INCOMPLETE"
    assert any("'exploded' is not one of" in w for w in run.warnings)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("planned", "P05", "key 'planned': expected a list"),
        ("planned", ["P05", 7], r"key 'planned'\[1\]"),
        ("end", "complete", "key 'end': expected an object"),
        ("end", {"reason": "x"}, "key 'end.status': missing"),
        ("end", {"status": "complete", "signal": 15}, "key 'end.signal'"),
        ("sessions", {"a": 1}, "key 'sessions'"),
        ("overdue_accepted", "supply", "key 'overdue_accepted'"),
        ("run_id", 12, "key 'run_id'"),
    ],
)
def test_malformed_completion_keys_are_refused(tmp_path: Path, key, value, message) -> None:
    make_results_dir(tmp_path / "run", select=lambda c: c.item == "P5")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    info[key] = value
    (tmp_path / "run" / "run.json").write_text(json.dumps(info))
    with pytest.raises(ReportInputError, match=message):
        load_run(tmp_path / "run")


# --------------------------------------------------------------------------- compliance


def _verdict_of(page: str) -> str:
    m = re.search(r'id="verdict">([^<]*)<', page)
    assert m, "no verdict in the page"
    return m.group(1)


@pytest.mark.parametrize("kind", INCOMPLETE_KINDS + ("legacy_unfinished",))
def test_compliance_html_of_an_incomplete_run(runs: Path, kind: str) -> None:
    run = load_run(runs / kind)
    done = run.completion
    page = render_html(run)
    assert _verdict_of(page) == "INCOMPLETE"
    assert 'id="verdict">PASS<' not in page and not verdict(run).passed
    banner = re.search(r'id="incomplete-banner">([^<]*)<', page)
    assert banner and banner.group(1) == done.banner
    assert f"{done.not_run_count} of {PLANNED} planned cases not run" in banner.group(1)
    if done.not_run_count:
        table = page[page.index('id="not-run"') :]
        table = table[: table.index("</table>")]
        assert table.count('data-outcome="not_run"') == done.not_run_count
        first = done.unfinished[0]
        assert first in table and done.not_run_reasons[first].split(" (")[0] in table


def test_compliance_html_lists_not_run_records_with_their_reason(runs: Path) -> None:
    page = render_html(load_run(runs / "bench_lost"))
    assert "INCOMPLETE \u2014 bench_lost: the bench stopped answering" in page
    assert LOST_MESSAGE in page
    assert f'id="count-not_run">{PLANNED - 100}<' in page
    assert f"Planned cases not run\n({PLANNED - 100} of {PLANNED})" in page


@pytest.mark.parametrize("kind", ["complete", "resumed", "legacy"])
def test_compliance_html_of_a_complete_run_passes_without_banner(runs: Path, kind: str) -> None:
    page = render_html(load_run(runs / kind))
    assert _verdict_of(page) == "PASS"
    assert "incomplete-banner" not in page and 'id="not-run"' not in page


def test_compliance_header_shows_overdue_instruments_and_faults_in_force(tmp_path: Path) -> None:
    make_results_dir(
        tmp_path / "run",
        select=lambda c: c.item in ("P5", "P6"),
        sim_faults_in_force={"supply_dropout_after_s": 30, "cell_offset_mv": {"3": 5}},
        overdue_accepted=[{"instrument": "load", "calibration_due": "2025-01-15"}],
    )
    html_file = write_report(tmp_path / "run")[0]
    page = html_file.read_text(encoding="utf-8")
    overdue = re.search(r'id="overdue">(.*?)</td>', page, re.S)
    assert overdue and "load (due 2025-01-15)" in overdue.group(1)
    assert "--allow-overdue" in overdue.group(1)
    assert "OVERDUE (accepted)" in page
    faults = re.search(r'id="sim-faults-in-force">(.*?)</td>', page, re.S)
    assert faults and "supply_dropout_after_s=30" in faults.group(1)
    assert "cell_offset_mv=" in faults.group(1)
    assert _verdict_of(page) == "PASS"  # accepted overdue instruments do not change it


def test_cli_report_on_an_interrupted_run_says_incomplete(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(runs / "interrupted"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    not_run = f"{PLANNED - 72} of {PLANNED} planned cases not run"
    assert _verdict_of(page) == "INCOMPLETE" and not_run in page


# --------------------------------------------------------------------------- gate


@pytest.fixture(scope="module")
def gate_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gate-completion")
    make_results_dir(root / "baseline", suite=None)
    make_results_dir(
        root / "interrupted", suite=None, end="interrupted", signal="SIGTERM", stop_after=72
    )
    make_results_dir(root / "bench_lost", suite=None, end="bench_lost", lost_after=300)
    make_results_dir(root / "crashed", suite=None, end="running", stop_after=200)
    make_results_dir(root / "missing", suite=None, unrecorded=[P07_TRIP])
    make_results_dir(root / "resumed", suite=None, rerun={P05_TRIP: "not_run"})
    make_results_dir(root / "legacy", suite=None, legacy=True)
    return root


def _gate(root: Path, baseline: str, candidate: str, **kw) -> tuple[int, str]:
    return run_gate(root / baseline, root / candidate, today=TODAY, **kw)


@pytest.mark.parametrize(
    ("candidate", "line"),
    [
        (
            "interrupted",
            f"interrupted: SIGTERM received; {WHOLE - 72} of {WHOLE} planned cases not run",
        ),
        (
            "bench_lost",
            "bench_lost: the bench stopped answering (simulator not reachable); "
            f"{WHOLE - 300} of {WHOLE} planned cases not run",
        ),
        ("crashed", f"crashed: {CRASHED_REASON}; {WHOLE - 200} of {WHOLE} planned cases not run"),
        (
            "missing",
            "complete: the end record says complete, but planned cases lack a final "
            f"record; 1 of {WHOLE} planned cases not run",
        ),
    ],
)
def test_incomplete_candidate_fails_the_gate(gate_runs: Path, candidate: str, line: str) -> None:
    code, md = _gate(gate_runs, "baseline", candidate)
    assert code == EXIT_FAIL, md
    assert md.startswith("## Release gate: FAIL")
    assert f"candidate run INCOMPLETE: {line}" in md
    assert "### Not run in the candidate" in md
    assert "**INCOMPLETE**" in md  # in the run table too


def test_incomplete_candidate_is_not_saved_by_waivers(gate_runs: Path, tmp_path: Path) -> None:
    import yaml

    entries = [
        {"item": f"P{n}", "reason": "r", "owner": "o", "expires": "2026-12-31"}
        for n in range(1, 88)
    ] + [
        {"item": f"S{n}", "reason": "r", "owner": "o", "expires": "2026-12-31"}
        for n in range(1, 65)
    ]
    path = tmp_path / "waivers.yaml"
    path.write_text(yaml.safe_dump(entries), encoding="utf-8")
    code, md = _gate(gate_runs, "baseline", "bench_lost", waivers_file=path)
    assert code == EXIT_FAIL and "candidate run INCOMPLETE" in md


def test_not_run_cases_count_as_dropped_and_uncovered(gate_runs: Path) -> None:
    _code, md = _gate(gate_runs, "baseline", "bench_lost")
    assert "| dropped |" in md and "(not_run: not run: the bench was lost" in md


@pytest.mark.parametrize("candidate", ["resumed", "legacy"])
def test_complete_candidates_pass(gate_runs: Path, candidate: str) -> None:
    code, md = _gate(gate_runs, "baseline", candidate)
    assert code == EXIT_PASS, md
    assert "INCOMPLETE" not in md


def test_incomplete_baseline_cannot_be_compared_unless_allowed(gate_runs: Path) -> None:
    code, md = _gate(gate_runs, "interrupted", "baseline")
    assert code == EXIT_CANNOT_COMPARE, md
    assert "CANNOT COMPARE" in md and "baseline run INCOMPLETE: interrupted" in md
    assert "--allow-incomplete-baseline" in md
    code, md = _gate(gate_runs, "interrupted", "baseline", allow_incomplete_baseline=True)
    assert code == EXIT_PASS, md
    assert "compared anyway (--allow-incomplete-baseline)" in md
    # both incomplete: cannot compare, and the candidate's state is said too
    code, md = _gate(gate_runs, "crashed", "interrupted")
    assert code == EXIT_CANNOT_COMPARE and "candidate run INCOMPLETE: interrupted" in md
    code, md = _gate(gate_runs, "crashed", "interrupted", allow_incomplete_baseline=True)
    assert code == EXIT_FAIL and "candidate run INCOMPLETE: interrupted" in md


# --------------------------------------------------------------------------- history


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh history database on each backend (SQLite file, PostgreSQL database)."""
    with history_db(backend, tmp_path) as url:
        yield url


def test_history_stores_the_end_status_planned_and_complete(runs: Path, db_url: str) -> None:
    url = db_url
    ids = {kind: history.ingest(runs / kind, url) for kind in KINDS}
    rows = {r.id: r for r in history.list_runs(url)}
    assert len(rows) == len(KINDS)
    for kind, run_id in ids.items():
        row, done = rows[run_id], load_run(runs / kind).completion
        assert (row.end_status, row.planned, row.complete) == (
            done.status,
            done.planned,
            done.complete,
        )
        assert (row.not_run, row.verdict, row.run_uid) == (
            done.not_run_count,
            done.verdict,
            done.run_id,
        )
    assert rows[ids["interrupted"]].end_status == "interrupted"
    assert rows[ids["interrupted"]].complete is False
    assert rows[ids["crashed"]].end_reason == CRASHED_REASON
    assert rows[ids["complete"]].complete is True
    # idempotent: ingesting again replaces, the row and its id stay
    assert history.ingest(runs / "bench_lost", url) == ids["bench_lost"]
    assert len(history.list_runs(url)) == len(KINDS)
    # a history run reads back with the same completion
    back = history.load_history_run(ids["bench_lost"], url).completion
    assert back == load_run(runs / "bench_lost").completion


def test_a_resumed_run_is_one_history_run(tmp_path: Path, db_url: str) -> None:
    """Ingested after the interrupted first session and again after the resume: one row,
    keyed by the run_id, which ends up complete."""
    url = db_url
    select = lambda c: c.item in ("P5", "P6", "P7")  # noqa: E731
    make_results_dir(
        tmp_path / "run", select=select, end="interrupted", stop_after=2, run_id="ab" * 16
    )
    first = history.ingest(tmp_path / "run", url)
    assert history.list_runs(url)[0].complete is False
    make_results_dir(
        tmp_path / "run",
        select=select,
        rerun={P05_TRIP: "not_run"},
        run_id="ab" * 16,
        started_at=dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC),
    )
    assert history.ingest(tmp_path / "run", url) == first
    (row,) = history.list_runs(url)
    assert (row.complete, row.end_status, row.run_uid) == (True, "complete", "ab" * 16)


def test_trend_marks_points_of_incomplete_runs(tmp_path: Path, db_url: str) -> None:
    url = db_url
    select = lambda c: c.item in ("P5", "P6", "P7")  # noqa: E731
    make_results_dir(
        tmp_path / "a", select=select, started_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    )
    make_results_dir(
        tmp_path / "b",
        select=select,
        end="interrupted",
        signal="SIGINT",
        stop_after=3,
        started_at=dt.datetime(2026, 1, 6, tzinfo=dt.UTC),
    )
    for name in ("a", "b"):
        history.ingest(tmp_path / name, url)
    points = history.trend("P5", url, kind="trip")
    assert [(p.run_status, p.run_complete) for p in points] == [
        ("complete", True),
        ("interrupted", False),
    ]
    console = Console(record=True, width=220)
    console.print(history.trend_table(points, "P5"))
    text = console.export_text()
    assert "INCOMPLETE (interrupted)" in text and "did not run every planned case" in text
    assert history.trend_plot(points, "P5")[:4] == b"\x89PNG"
    result = CliRunner().invoke(app, ["history", "P5", "--db", url], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "INCOMPLETE" in result.output


def test_ingest_after_run_writes_into_the_given_results_root(runs: Path, tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"
    run_id = history.ingest_after_run(runs / "interrupted", root)
    assert run_id is not None
    assert (root / history.DB_FILE).is_file()
    assert not (runs / history.DB_FILE).exists()  # not the directory's parent
    (row,) = history.list_runs(history.default_db_url(root))
    assert (row.end_status, row.complete) == ("interrupted", False)
    assert history.ingest_after_run(tmp_path / "missing", root) is None


def test_ingest_after_run_into_a_given_database(runs: Path, tmp_path: Path, db_url: str) -> None:
    root = tmp_path / "root"
    run_id = history.ingest_after_run(runs / "bench_lost", root, db_url)
    (row,) = history.list_runs(db_url)
    assert (row.id, row.end_status, row.complete) == (run_id, "bench_lost", False)
    assert not (root / history.DB_FILE).exists()  # --db given: nothing in the results root


def test_an_old_history_database_is_upgraded(runs: Path, db_url: str, backend: str) -> None:
    """A database written before the completion columns gets them (and their index), filled
    in, on open; on PostgreSQL the bounded text columns of an older schema are widened."""
    url = db_url
    history.ingest(runs / "complete", url)
    history.ingest(runs / "interrupted", url)
    new = ("run_uid", "end_status", "end_reason", "planned", "not_run", "complete", "verdict")
    engine = create_engine(url)
    with engine.begin() as conn:
        for index in inspect(conn).get_indexes("runs"):
            if set(index["column_names"]) & set(new):
                conn.execute(text(f"DROP INDEX {index['name']}"))
        for column in new:
            conn.execute(text(f"ALTER TABLE runs DROP COLUMN {column}"))
        if backend == "postgresql":  # the VARCHAR(n) an older bms-hil made
            conn.execute(text("ALTER TABLE runs ALTER COLUMN bench_id TYPE VARCHAR(200)"))
            conn.execute(text("ALTER TABLE results ALTER COLUMN test_id TYPE VARCHAR(200)"))
    with engine.connect() as conn:
        assert not set(new) & {c["name"] for c in inspect(conn).get_columns("runs")}
    rows = history.list_runs(url)
    assert [(r.end_status, r.complete) for r in rows] == [
        ("complete", True),
        ("interrupted", False),
    ]
    assert rows[1].not_run == PLANNED - 72
    with engine.connect() as conn:
        schema = inspect(conn)
        assert ["run_uid"] in [i["column_names"] for i in schema.get_indexes("runs")]
        widths = {c["name"]: getattr(c["type"], "length", None) for c in schema.get_columns("runs")}
        assert widths["bench_id"] is None or backend == "sqlite"
        tests = {
            c["name"]: getattr(c["type"], "length", None) for c in schema.get_columns("results")
        }
        assert tests["test_id"] is None or backend == "sqlite"
    engine.dispose()
    # the upgraded database takes new runs as a new one does
    assert history.ingest(runs / "bench_lost", url) > rows[1].id
    assert history.list_runs(url)[-1].end_status == "bench_lost"


# --------------------------------------------------------------------------- Allure


def test_allure_environment_and_categories_for_an_incomplete_run(runs: Path) -> None:
    env = allure_mod.environment(load_run(runs / "interrupted"))
    assert env["run_end"] == "interrupted (SIGTERM)"
    assert env["not_run"] == str(PLANNED - 72) and env["planned"] == str(PLANNED)
    assert env["run_complete"].startswith("NO") and env["verdict"] == "INCOMPLETE"
    assert allure_mod.environment(load_run(runs / "complete"))["run_complete"] == "yes"
    names = [c["name"] for c in allure_mod.CATEGORIES]
    assert allure_mod.NOT_RUN_CATEGORY in names
    assert allure_mod.NOT_RUN_CATEGORY.lower() == "not run (incomplete run)"

    def java_full_match(pattern: str, text: str) -> bool:
        return re.fullmatch(pattern.replace("(?s)", ""), text, re.S) is not None

    by_name = {c["name"]: c for c in allure_mod.CATEGORIES}
    message = "NotRun: no record (interrupted: SIGTERM received)"
    assert java_full_match(by_name[allure_mod.NOT_RUN_CATEGORY]["messageRegex"], message)
    assert not java_full_match(by_name["Not testable on this bench"]["messageRegex"], message)
    assert not java_full_match(by_name["Harness defects"]["messageRegex"], message)
    assert java_full_match(
        by_name["Not testable on this bench"]["messageRegex"], "Skipped: needs hardware"
    )


def _fake_allure(tmp_path: Path) -> Path:
    """A stand-in for the Allure CLI that keeps a copy of the folder it was run on."""
    script = tmp_path / "fake-allure"
    script.write_text(
        '#!/bin/sh\n# allure generate IN -o OUT --clean\nrm -rf "$4"; mkdir -p "$4"\n'
        'cp -r "$2" "$4/input"\necho ok > "$4/index.html"\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_allure_runs_on_a_copy_with_not_run_results(tmp_path: Path) -> None:
    root = tmp_path / "results"
    run_dir = root / "run"
    select = lambda c: c.item in ("P5", "P6", "S10")  # noqa: E731
    made = make_results_dir(run_dir, select=select, end="bench_lost", lost_after=3)
    results = run_dir / "allure-results"
    for rec in made.records[:3]:
        _allure_case(results, rec)
    before = _snapshot(results)
    report = allure_mod.generate(run_dir, allure=_fake_allure(tmp_path), results_root=root)
    assert _snapshot(results) == before  # the run's own results are untouched
    assert not list(run_dir.glob(".allure-input-*"))  # the copy is gone
    assert report.history_store == root / "allure-history" / "sim"
    seen = report.report_dir / "input"
    env = (seen / "environment.properties").read_text(encoding="latin-1")
    assert "run_end=bench_lost" in env and "not_run=" in env
    cats = json.loads((seen / "categories.json").read_text())
    assert allure_mod.NOT_RUN_CATEGORY in [c["name"] for c in cats]
    added = [
        json.loads(p.read_text())
        for p in seen.glob("*-result.json")
        if p.name not in {Path(k).name for k in before}
    ]
    done = load_run(run_dir).completion
    assert sorted(r["fullName"].rsplit("#", 1)[1] for r in added) == sorted(done.unfinished)
    assert {r["status"] for r in added} == {"skipped"}
    assert all(r["statusDetails"]["message"].startswith("NotRun: ") for r in added)

    other = tmp_path / "hist"
    again = allure_mod.generate(run_dir, allure=_fake_allure(tmp_path), history_root=other)
    assert again.history_store == other / "sim"
    assert allure_mod.default_history_root(root) == root / "allure-history"


def _allure_case(results: Path, record: dict) -> None:
    """One Allure result as the harness writes it: a ``result`` attachment with the record."""
    results.mkdir(parents=True, exist_ok=True)
    uid = f"{abs(hash(record['test_id'])):032x}"[:32]
    attachment = f"{uid}-attachment.json"
    (results / attachment).write_text(json.dumps(record), encoding="utf-8")
    result = {
        "uuid": uid,
        "historyId": f"h-{record['test_id']}",
        "testCaseId": f"t-{record['test_id']}",
        "fullName": f"test_plans.parameters.yaml#{record['test_id']}",
        "name": record["test_id"],
        "status": "passed",
        "stage": "finished",
        "start": 1767600000000,
        "stop": 1767600001000,
        "labels": [{"name": "item", "value": record["item"]}],
        "attachments": [{"name": "result", "source": attachment, "type": "application/json"}],
    }
    (results / f"{uid}-result.json").write_text(json.dumps(result), encoding="utf-8")


def _allure_ready() -> str | None:
    if allure_mod.find_allure() is None:
        return "Allure command line not installed (scripts/setup-reports.sh installs it)"
    if shutil.which("java") is None:
        return "java not installed (the Allure 2 command line needs Java 17+)"
    return None


@pytest.mark.skipif(_allure_ready() is not None, reason=_allure_ready() or "")
def test_allure_report_of_an_interrupted_run_shows_the_not_run_cases(tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / "run"
    select = lambda c: c.item in ("P5", "P6", "S10")  # noqa: E731
    made = make_results_dir(
        run_dir, select=select, end="interrupted", signal="SIGINT", stop_after=3
    )
    for rec in made.records:
        _allure_case(run_dir / "allure-results", rec)
    report = allure_mod.generate(run_dir)
    data = report.report_dir
    env = json.loads((data / "widgets" / "environment.json").read_text())
    assert {"name": "run_end", "values": ["interrupted (SIGINT)"]} in env
    assert {"name": "not_run", "values": [str(len(made.planned) - 3)]} in env
    categories = json.loads((data / "data" / "categories.json").read_text())
    (not_run,) = [c for c in categories["children"] if c["name"] == allure_mod.NOT_RUN_CATEGORY]
    leaves = [leaf for child in not_run["children"] for leaf in child.get("children", [child])]
    assert len(leaves) == len(made.planned) - 3


def test_not_run_records_as_the_harness_writes_them(runs: Path, tmp_path: Path) -> None:
    """``BenchSession._record_not_run``: ``kind`` None, the padded item, no category."""
    run_dir = tmp_path / "lost"
    shutil.copytree(runs / "interrupted", run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    info["end"] = {
        "status": "bench_lost",
        "reason": "supply: no answer to *IDN? (3 tries)",
        "signal": None,
        "at": "2026-01-05T10:00:00+00:00",
    }
    # what the simulator answers when nothing is in force
    info["sim_faults_in_force"] = {"firmware": [], "link": {"drop_every": 0}, "version": None}
    (run_dir / "run.json").write_text(json.dumps(info))
    why = "not run: bench lost: supply: no answer to *IDN? (3 tries)"
    with (run_dir / "results.jsonl").open("a", encoding="utf-8") as fh:
        for tid in info["planned"][72:]:
            item = tid.split("-", 1)[0]
            rec = {"test_id": tid, "item": item, "kind": None, "outcome": "not_run"}
            rec.update(message=why, reason=why)
            fh.write(json.dumps(rec) + "\n")
    run = load_run(run_dir)
    done = run.completion
    assert (done.status, len(done.not_run), done.missing) == ("bench_lost", PLANNED - 72, [])
    assert set(done.not_run_reasons.values()) == {why}
    page = render_html(run)
    assert _verdict_of(page) == "INCOMPLETE" and why in page
    lost = "INCOMPLETE \u2014 bench_lost: supply: no answer to *IDN? (3 tries)"
    assert f"{lost}; {PLANNED - 72} of {PLANNED}" in page
    row = page[page.index('id="not-run"') :]
    # the padded item (P05) as the spec writes it, with the spec's name
    assert '<td>P5</td><td class="c-test">P05-cell-overvoltage-protection-readback</td>' in row
    assert "Single Cell Overvoltage Protection" in row
    # and in their category tables, labelled from the plan (the record has no category)
    assert "Uncategorised" not in page
    frame = results_frame(run)
    lost = frame[frame["_outcome"] == "not_run"]
    assert len(lost) == PLANNED - 72 and set(lost["verdict"]) == {"NOT RUN"}
    assert {"timing", "function switch"} <= set(lost["_category"])
    assert 'id="sim-faults-in-force">none<' in page
    env = allure_mod.environment(run)
    assert env["run_end"] == "bench_lost" and env["not_run"] == str(PLANNED - 72)
    assert env["sim_faults_in_force"] == "none"
