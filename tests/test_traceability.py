"""Calibration on record and the traceability matrix of the compliance report.

* The simulator's resolved bench file carries a (simulated) calibration record for every
  instrument, and the bench passes it through the driver identities into what ``run.json``
  records.
* The compliance report lists each instrument's calibration (calibrated on, due,
  certificate; overdue marked) and has a traceability matrix: every spec row in spec order
  -> its cases -> verdict -> evidence, a GAP with its reason when no case was executed.
* The PDF (headless Chromium, read back with ``pdftotext``) carries the calibration and
  keeps the signature block on one page.

Results directories are written by ``tests/synthetic.py`` (the harness's own record code);
the browser tests skip when Chromium is missing, like tests/test_reports.py, but a missing
``pdftotext`` is a failure naming the package to install.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from synthetic import make_results_dir

from bmsspec import load_spec
from harness import PROJECT_ROOT
from harness.artifacts import trace_plot
from harness.bench import Bench, parent_death_preexec
from harness.benchfile import BenchFile, BenchFileError, load_bench_file
from reports.compliance import (
    NO_CASE,
    dump_dom,
    find_chromium,
    print_pdf,
    render_html,
    traceability,
)
from reports.runs import load_run, parse_instruments

P05_TRIP = "P05-cell-overvoltage-protection-trip"
P06_RECOVERY = "P06-cell-overvoltage-recovery"
P07_TRIP = "P07-cell-undervoltage-protection-trip"
P08_RECOVERY = "P08-cell-undervoltage-recovery"
P08_READBACK = "P08-cell-undervoltage-recovery-readback"
S32 = "S32"  # both cases skipped: the bench has no secondary-trip hardware

#: Calibration records as a real run.json holds them (``Bench.identities``).
INSTRUMENTS = {
    "supply": {
        "address": "TCPIP0::127.0.0.1::40002::SOCKET",
        "manufacturer": "Agilent Technologies",
        "model": "N5767A",
        "serial": "US00000001",
        "firmware": "D.01.09",
        "calibration_due": "2027-01-05",
        "calibration_certificate": "SIM-CAL-N5767A-US00000001",
        "calibrated_on": "2026-01-05",
    },
    "load": {
        "address": "TCPIP0::127.0.0.1::40003::SOCKET",
        "manufacturer": "ITECH",
        "model": "IT8512+",
        "serial": "800000000000000001",
        "firmware": "1.20-1.19",
        "calibration_due": "2025-11-30",
        "calibration_certificate": "CAL-2024-00912",
        "calibrated_on": "2024-11-30",
    },
    "scope": {
        "address": "TCPIP0::127.0.0.1::40007::SOCKET",
        "manufacturer": "KEYSIGHT TECHNOLOGIES",
        "model": "DSOX3024T",
        "serial": "MY00000001",
        "firmware": "07.50",
        "calibration_due": "2025-12-31",
        "calibration_certificate": "KS-MY-58231",
        "calibrated_on": None,
    },
}


def _png() -> bytes:
    rows = [
        {"t_s": i * 1.5, "stimulus": 3.60 + 0.01 * i, "flag": int(i > 6), "current_a": 10.0}
        for i in range(10)
    ]
    return trace_plot(rows, P05_TRIP, "V", 3.65, 0.01, 3.70)


def _allure_result(results: Path, test_id: str, extra: list[str]) -> None:
    """An Allure result of ``test_id`` with its ``result`` attachment and ``extra`` ones."""
    results.mkdir(parents=True, exist_ok=True)
    uid = f"{abs(hash(test_id)):032x}"[:32]
    (results / f"{uid}-record.json").write_text(json.dumps({"test_id": test_id}))
    attachments = [{"name": "result", "source": f"{uid}-record.json", "type": "application/json"}]
    for name in extra:
        (results / f"{uid}-{name}").write_bytes(b"x")
        attachments.append({"name": name, "source": f"{uid}-{name}", "type": "text/plain"})
    result = {
        "uuid": uid,
        "name": test_id,
        "status": "passed",
        "stop": 1,
        "attachments": attachments,
    }
    (results / f"{uid}-result.json").write_text(json.dumps(result))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """P5 fails (one plotted case), P6 passes, P7's trip is not run, P8 has no record at all
    (its trip not run, its readback missing), S32 is skipped; every other row has no case in
    the plan. The run accepted the load past due; the scope was past due on the run's date."""
    out = tmp_path_factory.mktemp("trace") / "run"
    make_results_dir(
        out,
        select=lambda c: c.item in ("P5", "P6", "P7", "P8", "S10", "S32"),
        measured={P05_TRIP: 3.70},
        plots={P05_TRIP: _png()},
        not_run={P07_TRIP: "not run: interrupted before this case", P08_RECOVERY: "bench lost"},
        unrecorded=[P08_READBACK],
        overdue_accepted=[{"instrument": "load", "calibration_due": "2025-11-30"}],
        started_at=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC),
    )
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    info["instruments"] = INSTRUMENTS
    (out / "run.json").write_text(json.dumps(info), encoding="utf-8")
    _allure_result(out / "allure-results", P05_TRIP, ["trace.csv", "trace.png"])
    return out


@pytest.fixture(scope="module")
def matrix(run_dir: Path):  # type: ignore[no-untyped-def]
    return traceability(load_run(run_dir), load_spec())


def _row(matrix, item: str):  # type: ignore[no-untyped-def]
    return next(r for r in matrix.rows if r.item == item)


# --------------------------------------------------------------------------- the matrix


def test_matrix_lists_every_spec_row_in_spec_order(run_dir: Path, matrix) -> None:  # type: ignore[no-untyped-def]
    spec = load_spec()
    expected = [f"P{p.number}" for p in spec.parameters] + [f"S{s.number}" for s in spec.switches]
    assert len(expected) == 87 + 64
    assert [r.item for r in matrix.rows] == expected
    assert _row(matrix, "P5").name == spec.param(5).name
    # the page shows them in the same order, one row group each
    page = render_html(load_run(run_dir))
    assert re.findall(r'<tbody class="trace-row" id="trace-([PS]\d+)"', page) == expected


def test_row_with_only_skipped_cases_is_a_gap_with_the_reason(matrix) -> None:  # type: ignore[no-untyped-def]
    row = _row(matrix, S32)
    assert {c.outcome for c in row.cases} == {"skipped"} and len(row.cases) == 2
    assert row.status == "GAP"
    assert "secondary trip" in row.reason
    assert row in matrix.gaps
    assert S32 in matrix.gaps_by_reason[row.reason]


def test_not_run_and_missing_cases_are_gaps_with_their_reason(matrix) -> None:  # type: ignore[no-untyped-def]
    p8 = _row(matrix, "P8")
    assert p8.status == "GAP"
    assert {c.test_id: c.verdict for c in p8.cases} == {
        P08_RECOVERY: "NOT RUN",
        P08_READBACK: "NO RECORD",
    }
    assert "bench lost" in p8.reason and "no record" in p8.reason
    # P7: the trip was not run but the readback and the hold passed: covered, in part, the
    # reason shown
    p7 = _row(matrix, "P7")
    assert p7.status == "PASS" and p7.partial.startswith("partial: 1 of 3")
    trip = next(c for c in p7.cases if c.test_id == P07_TRIP)
    assert trip.note == "not run: interrupted before this case"


def test_row_without_a_case_says_no_case_in_the_plan(matrix) -> None:  # type: ignore[no-untyped-def]
    p1 = _row(matrix, "P1")
    assert p1.status == "GAP" and p1.cases == []
    assert p1.reason.startswith(NO_CASE)
    assert "P01-cell-high-voltage-alarm-trip" in p1.detail  # what the whole plan would run


def test_row_covered_by_a_failing_case_shows_fail_with_evidence(run_dir: Path, matrix) -> None:  # type: ignore[no-untyped-def]
    p5 = _row(matrix, "P5")
    assert p5.status == "FAIL" and p5 in matrix.having("FAIL")
    trip = next(c for c in p5.cases if c.test_id == P05_TRIP)
    assert (trip.verdict, trip.evidence) == ("FAIL", "3.7 ± 0.002 V")
    assert trip.has_plot and trip.attachments == 3  # result, trace.csv, trace.png
    assert "3.65" in trip.note  # the failure sentence
    assert _row(matrix, "P6").status == "PASS" and _row(matrix, "S10").status == "PASS"
    # summary: rows covered by a passing case, gaps, the failing row
    assert matrix.summary.startswith(f"{len(matrix.covered)} of 151 spec rows covered")
    assert {r.item for r in matrix.covered} == {"P6", "P7", "S10"}
    assert "1 failing: P5" in matrix.summary

    page = render_html(load_run(run_dir))
    assert '<tbody class="trace-row" id="trace-P5" data-status="FAIL">' in page
    group = page.split('id="trace-P5"', 1)[1].split("</tbody>", 1)[0]
    assert f'<a href="#case-{P05_TRIP}">{P05_TRIP}</a>' in group
    assert f'href="#plot-{P05_TRIP}"' in group and "3 attachments" in group
    assert 'class="c-verdict v-failed">FAIL<' in group
    # the links land: the detail row and the plot carry those ids
    assert f'id="case-{P05_TRIP}"' in page and f'id="plot-{P05_TRIP}"' in page
    assert f'href="#notrun-{P08_READBACK}"' in page and f'id="notrun-{P08_READBACK}"' in page
    assert 'id="trace-summary"' in page and 'href="#trace-S32"' in page


def test_instruments_table_has_calibration_and_marks_overdue(run_dir: Path) -> None:
    page = render_html(load_run(run_dir))
    table = page.split('id="instruments"', 1)[1].split("</table>", 1)[0]
    for ident in INSTRUMENTS.values():
        assert ident["calibration_certificate"] in table
        assert ident["calibration_due"] in table
    assert "2026-01-05" in table and "2024-11-30" in table
    supply = table.split('id="instrument-supply"', 1)[1].split("</tr>", 1)[0]
    load = table.split('id="instrument-load"', 1)[1].split("</tr>", 1)[0]
    scope = table.split('id="instrument-scope"', 1)[1].split("</tr>", 1)[0]
    assert "OVERDUE" not in supply
    assert "OVERDUE (accepted)" in load
    assert "OVERDUE at run start" in scope  # due 2025-12-31, run of 2026-01-05
    assert 'id="cal-on-scope">not given<' in scope


def test_identity_shapes_carry_the_certificate() -> None:
    as_repr = (
        "Identity(name='supply', address='A', manufacturer='Agilent Technologies', "
        "model='N5767A', serial='US1', firmware='1.0', calibration_due=datetime.date(2027, 6, "
        "30), calibration_certificate='CAL-1', calibrated_on=datetime.date(2026, 6, 30))"
    )
    (inst,) = parse_instruments([as_repr])
    assert (inst.calibration_due, inst.calibration_certificate, inst.calibrated_on) == (
        "2027-06-30",
        "CAL-1",
        "2026-06-30",
    )
    inst = parse_instruments(INSTRUMENTS)[0]
    assert inst.calibration_certificate == "SIM-CAL-N5767A-US00000001"
    assert inst.overdue_on("2027-01-06T00:00:00+00:00") and not inst.overdue_on("2027-01-05")


# --------------------------------------------------------------------------- browser + PDF


class _Ids(HTMLParser):
    """Text of every element with an id, from Chromium's DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self._stack: list[tuple[str, str | None, list[str]]] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        if tag in ("img", "br", "meta"):
            return
        self._stack.append((tag, dict(attrs).get("id"), []))

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        while self._stack:
            open_tag, elem_id, texts = self._stack.pop()
            text = " ".join(" ".join(texts).split())
            if self._stack:
                self._stack[-1][2].append(text)
            if elem_id:
                self.by_id[elem_id] = text
            if open_tag == tag:
                break

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self._stack:
            self._stack[-1][2].append(data)


needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium not installed (scripts/setup-reports.sh installs Debian's chromium)",
)


def _pdftotext(pdf: Path, page: int | None = None) -> str:
    exe = shutil.which("pdftotext")
    if exe is None:
        pytest.fail(
            "pdftotext not found: the PDF checks need poppler-utils "
            "(scripts/setup-reports.sh installs it; or apt-get install poppler-utils)"
        )
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(
        [exe, "-layout", *pages, str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def _pdf_pages(pdf: Path) -> list[str]:
    text = _pdftotext(pdf)
    return text.split("\f")[:-1] if text.endswith("\f") else text.split("\f")


@needs_chromium
def test_calibration_and_matrix_in_the_browser_dom_and_the_pdf(run_dir: Path) -> None:
    html_file = run_dir / "report.html"
    html_file.write_text(render_html(load_run(run_dir)), encoding="utf-8")
    dom = _Ids()
    dom.feed(dump_dom(html_file))
    for name, ident in INSTRUMENTS.items():
        assert dom.by_id[f"cal-cert-{name}"] == ident["calibration_certificate"]
        assert dom.by_id[f"cal-due-{name}"].startswith(ident["calibration_due"])
        assert dom.by_id[f"cal-on-{name}"] == (ident["calibrated_on"] or "not given")
    assert "OVERDUE" in dom.by_id["cal-due-load"] and "OVERDUE" not in dom.by_id["cal-due-supply"]
    assert dom.by_id["trace-S32"].startswith("S32 Secondary Disconnection Protection GAP")
    assert "secondary trip" in dom.by_id["trace-S32"]
    assert dom.by_id["trace-P5"].startswith("P5 Single Cell Overvoltage Protection FAIL")
    assert "151 spec rows" in dom.by_id["trace-summary"]

    pdf = print_pdf(html_file, run_dir / "report.pdf")
    text = " ".join(_pdftotext(pdf).split())
    for ident in INSTRUMENTS.values():
        assert ident["calibration_certificate"] in text
        assert ident["calibration_due"] in text
    assert "2026-01-05" in text and "Traceability" in text and "GAP" in text


@needs_chromium
def test_pdf_keeps_the_signature_block_on_one_page(tmp_path: Path) -> None:
    """Whatever falls before it, the signature block prints whole on one page: its heading,
    the header row (which would repeat on the next page if the table were split), both
    signature rows and the generated line."""
    spec = load_spec()
    for n in (1, 9):
        items = {f"P{p.number}" for p in spec.parameters[:n]}
        run = make_results_dir(tmp_path / f"run{n}", select=lambda c, i=items: c.item in i)
        html_file = run.directory / "report.html"
        html_file.write_text(render_html(load_run(run.directory)), encoding="utf-8")
        pages = _pdf_pages(print_pdf(html_file, run.directory / "report.pdf"))
        on = [i for i, t in enumerate(pages) if "Tested by" in t]
        assert len(on) == 1, f"signature table split over pages {on} (n={n})"
        page = pages[on[0]]
        assert "Signatures" in page and page.count("Name / date") == 3
        assert "Approved by" in page and "Generated " in page


# --------------------------------------------------------------------------- the simulator


@pytest.fixture
def sim_bench_file(tmp_path: Path) -> Iterator[Path]:
    """``python -m bmssim --bench-out`` as tests/test_bench_sim.py starts it."""
    out = tmp_path / "bench.yaml"
    sim = subprocess.Popen(
        [sys.executable, "-m", "bmssim", "--bench-out", str(out), "--parent-pid", str(os.getpid())],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=parent_death_preexec(),
    )
    try:
        deadline = time.monotonic() + 30
        while not out.exists():
            assert sim.poll() is None, sim.stderr.read().decode()
            assert time.monotonic() < deadline, "simulator did not write its bench file"
            time.sleep(0.05)
        yield out
    finally:
        sim.terminate()
        sim.wait(10)


def test_sim_bench_file_carries_simulated_calibration(sim_bench_file: Path) -> None:
    text = sim_bench_file.read_text(encoding="utf-8")
    assert text.startswith("# ") and "SIMULATED CERTIFICATES" in text  # said in the file
    resolved = load_bench_file(sim_bench_file)
    assert isinstance(resolved, BenchFile)
    today = dt.date.today()
    assert {"supply", "load", "cells_a", "cells_b", "resistors", "scope"} <= set(
        resolved.instruments
    )
    for name, inst in resolved.instruments.items():
        assert inst.calibrated_on is not None and inst.calibration_due is not None, name
        assert inst.calibrated_on <= today < inst.calibration_due, name  # never past due
        assert inst.calibration_due.year == inst.calibrated_on.year + 1, name
        assert inst.calibration_certificate and inst.calibration_certificate.startswith(
            f"SIM-CAL-{inst.idn.model}-"
        ), name
    # the bench records them with each identity (what run.json's instruments hold)
    with Bench.open(sim_bench_file) as bench:
        ids = bench.identities
    for name, ident in ids.items():
        inst = resolved.instruments[name]
        assert ident["calibration_certificate"] == f"SIM-CAL-{ident['model']}-{ident['serial']}"
        assert ident["calibration_due"] == inst.calibration_due.isoformat()
        assert ident["calibrated_on"] == inst.calibrated_on.isoformat()
    (supply,) = parse_instruments({"supply": ids["supply"]})
    assert supply.calibration_certificate.startswith("SIM-CAL-N5767A-")


def test_simulated_due_date_is_a_year_after_the_start() -> None:
    from bmssim.bench import calibration_record

    rec = calibration_record("Bloomy,ABS,SIM0001,1.0.0", dt.date(2028, 2, 29))
    assert rec == {
        "calibration_due": dt.date(2029, 2, 28),
        "calibration_certificate": "SIM-CAL-ABS-SIM0001",
        "calibrated_on": dt.date(2028, 2, 29),
    }


def test_bench_file_refuses_calibration_after_its_due_date(tmp_path: Path) -> None:
    data = yaml.safe_load((PROJECT_ROOT / "fixtures" / "example-lab.yaml").read_text())
    supply = data["instruments"]["supply"]
    assert supply["calibration_certificate"] and supply["calibrated_on"]
    supply["calibrated_on"] = dt.date(2027, 7, 1)  # after its due date 2027-06-30
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(BenchFileError, match=r"instruments\.supply.*calibrated_on 2027-07-01"):
        load_bench_file(path)
