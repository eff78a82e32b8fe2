"""``bmshil plan`` and the run summary at the width of the terminal: 80 columns readable,
case ids never cut except after a hyphen, ``--wide`` the full table whatever the width."""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from synthetic import make_results_dir
from typer.testing import CliRunner

from harness.cli import app
from harness.plan import kind_counts, suite_estimates
from harness.plan_view import COMPACT_BELOW, HyphenWrap, format_duration
from harness.run import summarize
from reports.runs import load_run

runner = CliRunner()

FULL_HEADER = ("id", "kind", "expected", "tol", "unit", "suites", "bench", "note")
COMPACT_HEADER = ("id", "kind", "expected", "suites", "bench")


def _plan(*args: str, columns: int) -> str:
    result = runner.invoke(app, ["plan", *args], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return json.loads(_plan("--json", columns=200))


def _id_pattern(case_id: str) -> re.Pattern[str]:
    """The id at the start of a line, whole, or folded after hyphens: the rest of that line
    (other cells) skipped, the id going on at the indent of the next line."""
    pieces = [re.escape(p) for p in re.split(r"(?<=-)", case_id) if p]
    return re.compile("^" + r"(?:[^\n]*\n  )?".join(pieces) + r"(?=\s|$)", re.M)


def _header(out: str) -> list[str]:
    line = next(x for x in out.splitlines() if x.startswith("id "))
    return line.split()


# --------------------------------------------------------------------------- bmshil plan


@pytest.mark.parametrize("columns", [80, 100, COMPACT_BELOW - 1, COMPACT_BELOW, 200])
def test_plan_fits_the_terminal_and_keeps_every_id(cases, columns):
    out = _plan(columns=columns)
    lines = out.splitlines()
    too_long = [x for x in lines if len(x) > columns]
    assert too_long == [], too_long[:3]
    expected_header = COMPACT_HEADER if columns < COMPACT_BELOW else FULL_HEADER
    assert tuple(_header(out)) == expected_header
    regression = [c["id"] for c in cases if "regression" in c["suites"]]
    assert len(regression) > 250
    missing = [c["id"] for c in cases if not _id_pattern(c["id"]).search(out)]
    assert missing == []


def test_plan_at_80_columns_folds_ids_only_after_hyphens_and_keeps_notes_and_totals(cases):
    out = _plan(columns=80)
    # the longest ids are folded (there is no room for 60 characters and the other columns)
    longest = max((c["id"] for c in cases), key=len)
    assert len(longest) > 50
    assert not re.search(rf"^{re.escape(longest)}", out, re.M)
    assert _id_pattern(longest).search(out)
    # every continuation of an id is a run of whole words and hyphens at the indent
    folded = re.findall(r"^[PS]\d\d-[a-z0-9-]*-(?= |$)", out, re.M)
    assert folded, "no id was folded at 80 columns"
    # testability, reason and overrides under the id, all of it, words whole
    flat = " ".join(out.split())
    for c in cases:
        if c["reason"]:
            assert c["reason"] in flat, c["id"]
        if not c["testable"]:
            assert f"not testable: {c['reason']}" in flat, c["id"]
    assert "P7=2.5, P8=2.9" in flat


def test_plan_totals_break_only_between_items_at_80_columns():
    from bmsspec import load_spec
    from harness.plan import build_plan
    from harness.plan_view import bench_capabilities

    everything = build_plan(load_spec(), bench_capabilities(None)[0])
    lines = _plan(columns=80).splitlines()
    totals = lines[next(i for i, x in enumerate(lines) if x.startswith("cases per kind:")) :]
    assert 2 < len(totals) <= 6 and all(len(x) <= 80 for x in totals)
    heads = ("cases per kind:", "estimated real-bench time:")
    assert all(x.startswith(heads) or x.startswith("  ") for x in totals), totals
    for kind, n in kind_counts(everything).items():
        assert any(re.search(rf"(^| ){re.escape(kind)} {n}(,|$| \()", x) for x in totals), kind
    assert any(f"(total {len(everything)}," in x for x in totals)
    for name, seconds in suite_estimates(everything).items():
        assert any(f"{name} {format_duration(seconds)}" in x for x in totals), name


def test_plan_wide_is_the_full_table_whatever_the_width(cases):
    out = _plan("--wide", columns=80)
    lines = out.splitlines()
    assert max(len(x) for x in lines) > 80
    assert tuple(_header(out)) == FULL_HEADER
    starts = {x.split(" ", 1)[0] for x in lines}
    # every id whole on its line, and no row wraps: every line after the header is a case
    # or the totals
    assert [c["id"] for c in cases if c["id"] not in starts] == []
    body = lines[lines.index(next(x for x in lines if x.startswith("\u2500"))) + 1 :]
    assert len(body) == len(cases) + 2, body[-4:]
    assert body[-2].startswith("cases per kind:")
    assert body[-1].startswith("estimated real-bench time:")
    # the same table at 200 columns is no different (the width is ignored)
    assert _plan("--wide", columns=200) == out


def test_plan_json_does_not_depend_on_the_width(cases):
    assert json.loads(_plan("--json", columns=80)) == cases
    assert "\n" in _plan("--json", columns=40)  # not wrapped into a table


def test_hyphen_wrap():
    wrap = HyphenWrap("P05-cell-overvoltage-protection-trip")
    assert wrap.lines(80) == ["P05-cell-overvoltage-protection-trip"]
    assert wrap.lines(24) == ["P05-cell-overvoltage-", "  protection-trip"]
    assert wrap.lines(14) == ["P05-cell-", "  overvoltage-", "  protection-", "  trip"]
    assert wrap.least_width() == len("  overvoltage-")
    # a piece wider than the cell is folded as a last resort, no character lost
    folded = HyphenWrap("P05-overvoltage").lines(6)
    assert all(len(x) <= 6 for x in folded)
    assert "".join(folded).replace(" ", "") == "P05-overvoltage"


# --------------------------------------------------------------------------- run summary

#: Failures with long ids (an S-case of 60 characters among them) and a bench error.
FAILING = {
    "S45-cell-undervoltage-prohibition-during-charging-switch-off": 1.0,
    "P10-cell-low-voltage-prohibition-of-charging-trip": 2.2,
    "P35-discharging-undertemperature-protection-trip": -5.0,
}
ERRORED = "S52-overtemperature-prohibition-of-equalization-switch-off"


@pytest.fixture(scope="module")
def incomplete_run() -> Iterator[Path]:
    # a short root of its own: pytest's (longer under xdist: .../popen-gw0/...) would not fit
    # the 80 columns the path is checked against
    root = Path(tempfile.mkdtemp(prefix="bmshil-w-"))
    try:
        yield _incomplete_run(root / "results-of-a-run" / "run-20260101-120000")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _incomplete_run(directory: Path) -> Path:
    make_results_dir(
        directory,
        measured=FAILING,
        outcomes={ERRORED: "error"},
        end="interrupted",
        signal="SIGTERM",
        unrecorded=["P01-cell-high-voltage-alarm-trip", "P02-cell-high-voltage-recovery"],
    )
    # a message with brackets is printed as it is (plain text, not rich markup)
    results = directory / "results.jsonl"
    lines = []
    for line in results.read_text().splitlines():
        rec = json.loads(line)
        if rec["test_id"] == ERRORED:
            rec["message"] = "bench: [supply] did not answer *OPC? [bold] after 3 tries"
        lines.append(json.dumps(rec))
    results.write_text("\n".join(lines) + "\n")
    return directory


def _summary(directory: Path, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    summarize(load_run(directory), directory, console, elapsed_s=1234.5)
    return console.file.getvalue()


def test_summary_fits_80_columns_and_keeps_ids_whole(incomplete_run):
    out = _summary(incomplete_run, 80)
    lines = out.splitlines()
    assert [x for x in lines if len(x) > 80] == []
    for test_id in [*FAILING, ERRORED]:
        assert re.search(rf"^  (FAILED|ERROR) {re.escape(test_id)}:", out, re.M), test_id
    # an entry that does not fit goes on over indented lines, under its test id
    entry = lines.index(next(x for x in lines if ERRORED in x))
    assert lines[entry + 1].startswith(" " * len("  ERROR ")), lines[entry : entry + 3]
    assert "[supply] did not answer *OPC? [bold] after 3 tries" in " ".join(out.split())
    # numbers stay with their unit, and with what they are
    flat = " ".join(out.split())
    # (the summary adds the expanded uncertainty to a measured value: "measured 2.2 V ± U,")
    for value in (r"measured 2\.2 V( ± \S+)?,", r"measured -5 \u00b0C( ± \S+)?,", r"\+- 2 \u00b0C"):
        assert any(re.search(value, x) for x in lines), value
    assert re.search(r"^INCOMPLETE run \(interrupted\): ", out, re.M)
    planned = len(json.loads((incomplete_run / "run.json").read_text())["planned"])
    assert f"2 of {planned} planned cases not run" in flat
    assert re.search(r"^FAIL: ", out, re.M)
    assert any(str(incomplete_run) in x for x in lines)  # the path whole on a line
    assert "elapsed 1234.5 s," in flat


def test_summary_uses_a_wide_console(incomplete_run):
    out = _summary(incomplete_run, 250)
    lines = out.splitlines()
    for test_id in [*FAILING, ERRORED]:
        entry = [x for x in lines if test_id in x]
        assert len(entry) == 1 and "expected" in entry[0] and "measured" in entry[0]
    assert len([x for x in lines if x.startswith("FAIL:")]) == 1
    assert str(incomplete_run) in next(x for x in lines if x.startswith("FAIL:"))


def test_a_failure_without_an_expected_value_prints_no_empty_limits() -> None:
    from harness.run_summary import _values

    # a go/no-go or whole-state failure has no expected value: no "expected - +- -"
    assert _values({"measured": None, "expected": None}, "V") == []
    assert _values({"measured": 3.6, "expected": None}, "V") == ["measured 3.6 V"]
    assert _values({"measured": 3.6, "expected": 3.65, "tolerance": 0.02}, "V") == [
        "measured 3.6 V,",
        "expected 3.65 V",
        "+- 0.02 V",
    ]
