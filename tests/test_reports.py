"""Compliance report and Allure report from synthetic results directories.

The results directories are written through the harness's own ``CaseOutcome.record()``
(``tests/synthetic.py``), so these tests follow the real format. The browser and Allure
tests use the real tools (``scripts/setup-reports.sh`` installs them) and skip, saying why,
only when a tool is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from synthetic import make_results_dir
from typer.testing import CliRunner

from harness.artifacts import trace_plot
from harness.cli import app
from reports import allure as allure_mod
from reports.compliance import (
    ChromiumError,
    dump_dom,
    find_chromium,
    print_pdf,
    render_html,
    results_frame,
    verdict,
    write_report,
)
from reports.runs import ReportInputError, firmware_text, load_run, parse_instruments

P05_TRIP = "P05-cell-overvoltage-protection-trip"
P06_RECOVERY = "P06-cell-overvoltage-recovery"


def _small(case) -> bool:
    """P5, P6 and two switches: every kind of row, and one untestable (S32 needs hardware)."""
    return case.item in ("P5", "P6", "S10", "S32")


def _png() -> bytes:
    rows = [
        {"t_s": i * 1.5, "stimulus": 3.60 + 0.01 * i, "flag": int(i > 6), "current_a": 10.0}
        for i in range(10)
    ]
    return trace_plot(rows, P05_TRIP, "V", 3.65, 0.01, 3.70)


@pytest.fixture
def failing_run(tmp_path: Path) -> Path:
    make_results_dir(
        tmp_path / "run-fail",
        select=_small,
        measured={P05_TRIP: 3.70},
        plots={P05_TRIP: _png()},
    )
    return tmp_path / "run-fail"


# --------------------------------------------------------------------------- loading


def test_load_run_reads_the_session_format(failing_run: Path) -> None:
    run = load_run(failing_run)
    assert run.bench_id == "sim"
    assert run.firmware == "16.4"
    assert run.device_name == "1101-HIL1"
    counts = run.counts()
    assert counts["failed"] == 1
    assert counts["skipped"] >= 1  # S32 needs secondary-trip hardware
    assert sum(counts.values()) == len(run.records)


def test_missing_directory_and_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportInputError, match=r"run\.json: missing"):
        load_run(tmp_path / "empty")


def test_corrupt_record_names_file_line_key_value(failing_run: Path) -> None:
    path = failing_run / "results.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[1])
    rec["outcome"] = "sort-of"
    lines[1] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ReportInputError) as info:
        load_run(failing_run)
    msg = str(info.value)
    assert "results.jsonl:2" in msg and "'outcome'" in msg and "sort-of" in msg

    lines[1] = "{not json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ReportInputError, match=r"results\.jsonl:2: not valid JSON"):
        load_run(failing_run)


def test_truncated_last_record_is_a_warning(failing_run: Path) -> None:
    path = failing_run / "results.jsonl"
    before = len(load_run(failing_run).records)
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"test_id": "P07-cell-undervoltage-protection-trip", "item": "P')
    run = load_run(failing_run)
    assert len(run.records) == before
    assert any("truncated last record" in w for w in run.warnings)


def test_corrupt_run_json_is_refused(failing_run: Path) -> None:
    (failing_run / "run.json").write_text('{"bench_id": 7}', encoding="utf-8")
    with pytest.raises(ReportInputError, match=r"run\.json: key 'bench_id'.*7"):
        load_run(failing_run)


def test_instrument_identities_in_every_recorded_shape() -> None:
    as_repr = (
        "Identity(name='supply', address='TCPIP0::1.2.3.4::5025::SOCKET', manufacturer="
        "'Agilent Technologies', model='N5767A', serial='US123', firmware='1.0', "
        "calibration_due=datetime.date(2027, 6, 30))"
    )
    (inst,) = parse_instruments([as_repr])
    assert (inst.name, inst.model, inst.serial) == ("supply", "N5767A", "US123")
    assert inst.calibration_due == "2027-06-30"
    (inst,) = parse_instruments({"load": {"manufacturer": "ITECH", "model": "IT8512+"}})
    assert (inst.name, inst.manufacturer, inst.calibration_due) == ("load", "ITECH", "")
    assert firmware_text([16, 4]) == "16.4" and firmware_text("(16, 4)") == "16.4"


# --------------------------------------------------------------------------- HTML


def test_rows_in_spec_order_with_untestable_reason(failing_run: Path) -> None:
    frame = results_frame(load_run(failing_run))
    items = list(dict.fromkeys(frame["item"]))
    assert items == ["P5", "P6", "S10", "S32"]
    s32 = frame[frame["item"] == "S32"]
    assert set(s32["verdict"]) == {"NOT TESTED"}
    assert all("secondary trip" in n for n in s32["notes"])
    p5 = frame[frame["test"] == P05_TRIP].iloc[0]
    assert p5["verdict"] == "FAIL"
    assert p5["spec value"] == "3.65 V" and p5["tolerance"] == "± 0.01 V"
    assert p5["measured"] == "3.7 ± 0.002 V"
    assert p5["plot"].startswith('<img class="plot"')


def test_html_is_self_contained_with_header_counts_and_verdict(failing_run: Path) -> None:
    page = render_html(load_run(failing_run))
    for needle in ("1101-HIL1", "16.4", "N5767A", "2027-06-30", "Tested by", "Approved by"):
        assert needle in page
    assert load_run(failing_run).spec_sha256 in page
    assert 'id="verdict">FAIL<' in page
    assert "data:image/png;base64," in page
    lowered = page.lower()
    assert "<script" not in lowered and "<link" not in lowered
    assert "http://" not in lowered and "https://" not in lowered


def test_verdict_pass_only_for_a_finished_clean_run(tmp_path: Path) -> None:
    make_results_dir(tmp_path / "ok", select=_small)
    assert verdict(load_run(tmp_path / "ok")).passed
    # a run from before end records: finished_at is what says it finished
    make_results_dir(tmp_path / "old", select=_small, legacy=True)
    assert verdict(load_run(tmp_path / "old")).passed
    info = json.loads((tmp_path / "old" / "run.json").read_text())
    del info["finished_at"]
    (tmp_path / "old" / "run.json").write_text(json.dumps(info))
    v = verdict(load_run(tmp_path / "old"))
    assert not v.passed and v.text == "INCOMPLETE"
    assert any("did not finish" in r for r in v.reasons)
    # the contract: an end record still saying "running" is a crashed run
    info = json.loads((tmp_path / "ok" / "run.json").read_text())
    info["end"] = {"status": "running", "reason": "", "signal": None, "at": None}
    (tmp_path / "ok" / "run.json").write_text(json.dumps(info))
    v = verdict(load_run(tmp_path / "ok"))
    assert v.text == "INCOMPLETE" and any("the run process died" in r for r in v.reasons)


class _Dom(HTMLParser):
    """Text of elements by id, and the text of each table row, from Chromium's DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.rows: list[str] = []
        self._open: list[tuple[str, str | None]] = []
        self._texts: dict[int, list[str]] = {}

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        if tag in ("img", "br", "meta"):
            return
        self._open.append((tag, dict(attrs).get("id")))
        self._texts[len(self._open)] = []

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        while self._open:
            depth = len(self._open)
            open_tag, elem_id = self._open.pop()
            text = " ".join(" ".join(self._texts.pop(depth, [])).split())
            if self._open:
                self._texts[len(self._open)].append(text)
            if elem_id:
                self.by_id[elem_id] = text
            if open_tag == "tr":
                self.rows.append(text)
            if open_tag == tag:
                break

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self._open:
            self._texts[len(self._open)].append(data)


@pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium not installed (scripts/setup-reports.sh installs Debian's chromium)",
)
def test_report_renders_in_headless_chromium_and_prints_to_pdf(failing_run: Path) -> None:
    html_file, pdf_file = write_report(failing_run, pdf=True)
    dom = _Dom()
    dom.feed(dump_dom(html_file))
    assert dom.by_id["device"] == "1101-HIL1"
    assert dom.by_id["firmware"] == "16.4"
    assert dom.by_id["bench"] == "sim"
    assert dom.by_id["verdict"] == "FAIL"
    counts = load_run(failing_run).counts()
    for outcome, n in counts.items():
        assert dom.by_id[f"count-{outcome}"] == str(n)
    row = next(r for r in dom.rows if r.startswith(f"P5 {P05_TRIP}"))
    assert "Single Cell Overvoltage Protection" in row
    assert "3.7 ± 0.002 V" in row and "FAIL" in row
    assert pdf_file.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(pdf_file), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "1101-HIL1" in text and "FAIL" in text


def test_missing_chromium_is_a_clear_error(
    failing_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BMSHIL_CHROMIUM", str(failing_run / "no-such-chromium"))
    html_file = write_report(failing_run)[0]
    with pytest.raises(ChromiumError, match="chromium not found"):
        print_pdf(html_file, failing_run / "report.pdf")
    result = CliRunner().invoke(app, ["report", str(failing_run), "--pdf"])
    assert result.exit_code == 2 and "setup-reports.sh" in result.output


def test_cli_report_writes_html_and_refuses_bad_input(failing_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out" / "r.html"
    result = runner.invoke(app, ["report", str(failing_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "P05-cell-overvoltage" in out.read_text(encoding="utf-8")
    result = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "missing" in result.output and "does not exist" in result.output


# --------------------------------------------------------------------------- Allure


def _allure_result(directory: Path, name: str, status: str, message: str) -> None:
    """One Allure 2 result file as allure-pytest writes it."""
    directory.mkdir(parents=True, exist_ok=True)
    uid = f"{abs(hash(name)):032x}"[:32]
    result = {
        "uuid": uid,
        "historyId": f"h-{name}",
        "testCaseId": f"t-{name}",
        "fullName": f"test_plans.parameters.yaml#{name}",
        "name": name,
        "status": status,
        "statusDetails": {"message": message, "trace": message},
        "start": 1767600000000,
        "stop": 1767600001000,
        "labels": [
            {"name": "feature", "value": "cell voltage"},
            {"name": "item", "value": name[:3]},
        ],
    }
    (directory / f"{uid}-result.json").write_text(json.dumps(result), encoding="utf-8")


def _allure_ready() -> str | None:
    if allure_mod.find_allure() is None:
        return "Allure command line not installed (scripts/setup-reports.sh installs it)"
    if shutil.which("java") is None:
        return "java not installed (the Allure 2 command line needs Java 17+)"
    return None


def test_environment_and_categories_files(failing_run: Path) -> None:
    results = failing_run / "allure-results"
    results.mkdir()
    env = allure_mod.environment(load_run(failing_run))
    assert env["firmware"] == "16.4" and env["bench"] == "sim"
    assert "2027-06-30" in env["instrument.supply"]
    text = allure_mod.write_environment(results, env).read_text(encoding="latin-1")
    assert "spec_sha256=" in text and "bench_file=" in text
    assert "TCPIP0\\:\\:" not in text  # addresses are not part of the environment box
    cats = json.loads(allure_mod.write_categories(results).read_text())
    assert [c["name"] for c in cats][:2] == [
        "Product defects (device out of spec)",
        "Bench errors (no verdict)",
    ]
    import re

    def java_full_match(pattern: str, text: str) -> bool:
        return re.fullmatch(pattern.replace("(?s)", ""), text, re.S) is not None

    defect, bench, conditional, not_run, _skip, harness_bug = cats
    assert not_run["name"] == allure_mod.NOT_RUN_CATEGORY
    failed = "harness.plugin.CaseFailed: P05 (P5): trip: measured 3.7 V"
    broke = "harness.plugin.BenchError: supply did not answer"
    assert java_full_match(defect["messageRegex"], failed)
    assert not java_full_match(defect["messageRegex"], broke)
    assert java_full_match(bench["messageRegex"], broke)
    assert not java_full_match(harness_bug["messageRegex"], failed)
    straddles = "harness.plugin.CaseConditional: conditional pass (passed): P05 ..."
    assert java_full_match(conditional["messageRegex"], straddles)
    assert not java_full_match(conditional["messageRegex"], failed)
    assert not java_full_match(defect["messageRegex"], straddles)
    assert not java_full_match(harness_bug["messageRegex"], straddles)
    assert java_full_match(harness_bug["messageRegex"], "KeyError: 'x'")


def test_history_store_cannot_escape_its_root(tmp_path: Path) -> None:
    store = allure_mod.history_store(tmp_path, "../../etc")
    assert store.parent == tmp_path


@pytest.mark.skipif(_allure_ready() is not None, reason=_allure_ready() or "")
def test_allure_html_by_the_real_tool_with_history(tmp_path: Path) -> None:
    runs = tmp_path / "results"
    for n in (1, 2):
        run_dir = runs / f"run-{n}"
        make_results_dir(run_dir, select=_small, measured={P05_TRIP: 3.70})
        _allure_result(
            run_dir / "allure-results",
            P05_TRIP,
            "broken",
            "harness.plugin.CaseFailed: P05: trip: measured 3.7 V",
        )
        before = sorted(p.name for p in (run_dir / "allure-results").iterdir())
        report = allure_mod.generate(run_dir)
        # the CLI ran on a copy: the run's own results are as the run wrote them
        assert sorted(p.name for p in (run_dir / "allure-results").iterdir()) == before
        assert report.index.is_file()
        assert report.history_store == runs / "allure-history" / "sim"
        assert report.build_order == n
    data = report.report_dir
    env = json.loads((data / "widgets" / "environment.json").read_text())
    assert {"name": "firmware", "values": ["16.4"]} in env
    categories = json.loads((data / "data" / "categories.json").read_text())
    assert [c["name"] for c in categories["children"]] == ["Product defects (device out of spec)"]
    trend = json.loads((data / "history" / "history-trend.json").read_text())
    assert len(trend) == 2  # the first run's history was carried into the second report


def test_allure_refuses_a_run_without_results(failing_run: Path) -> None:
    with pytest.raises(ReportInputError, match="allure-results: missing"):
        allure_mod.generate(failing_run, allure=Path("/bin/true"))


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bmshil run -k "P05 or P06"`` on the simulated bench, in a child process (the run is
    a pytest session of its own)."""
    import sys

    root = tmp_path_factory.mktemp("e2e")
    out = root / "run"
    # --results-root: the run's history and "latest" link go beside it, not into results/
    cmd = ["run", "-k", "P05 or P06", "--out", str(out), "--results-root", str(root)]
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *cmd],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def test_end_to_end_sim_run_renders_its_report(sim_run: Path) -> None:
    run = load_run(sim_run)
    done = run.completion
    assert (done.status, done.complete, done.verdict) == ("complete", True, "PASS")
    assert done.planned == len(run.records) and done.run_id
    ids = {r["test_id"] for r in run.records}
    assert {P05_TRIP, P06_RECOVERY} <= ids
    assert run.bench_id == "sim" and run.counts()["passed"] == len(run.records)
    assert run.instruments and {i.name for i in run.instruments} >= {"supply", "load"}
    html_file = write_report(sim_run)[0]
    page = html_file.read_text(encoding="utf-8")
    assert 'id="verdict">PASS<' in page
    assert "data:image/png;base64," in page  # the trip/recovery traces, inline
    frame = results_frame(run)
    p5 = frame[frame["test"] == P05_TRIP].iloc[0]
    assert p5["verdict"] == "PASS" and p5["spec value"] == "3.65 V"
    if find_chromium() is not None:
        dom = _Dom()
        dom.feed(dump_dom(html_file))
        assert dom.by_id["bench"] == "sim"
        assert dom.by_id["count-passed"] == str(len(run.records))
        assert any(r.startswith(f"P5 {P05_TRIP}") and "PASS" in r for r in dom.rows)


def test_end_to_end_report_header_has_the_device_read_from_the_bms(sim_run: Path) -> None:
    run = load_run(sim_run)
    assert (run.device_name, run.firmware) == ("1101-HIL1", "16.4")


def test_end_to_end_run_records_the_simulated_calibration(sim_run: Path) -> None:
    """run.json's instruments carry the sim bench file's calibration record (due date,
    certificate id, calibration date), and the report's instruments table shows it."""
    info = json.loads((sim_run / "run.json").read_text(encoding="utf-8"))
    for name, ident in info["instruments"].items():
        assert ident["calibration_certificate"] == (
            f"SIM-CAL-{ident['model']}-{ident['serial']}"
        ), name
        assert ident["calibrated_on"] < ident["calibration_due"], name
    run = load_run(sim_run)
    page = render_html(run)
    for inst in run.instruments:
        assert f'id="cal-cert-{inst.name}">{inst.calibration_certificate}<' in page
        assert f'id="cal-due-{inst.name}">{inst.calibration_due}<' in page
        assert not inst.overdue_on(run.started_at)
