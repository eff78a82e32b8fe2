"""``bmshil run``: the suite through pytest with a progress display and a summary.

Exit codes: 0 every case passed (untestable cases skipped with their reason), 1 a case failed
or hit a bench error, 2 a usage or configuration error (bad option, bench file, faults file,
a selection that matches nothing).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import harness
from harness.results import read_results

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class ProgressReporter:
    """A pytest plugin object that shows one progress bar and collects problems to print."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"),
            console=console,
            transient=False,
        )
        self.task: Any = None
        self.errors: list[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.start()
        self.task = self.progress.add_task("running", total=len(session.items), current="")

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        if self.task is not None:
            self.progress.update(self.task, current=nodeid.split("::")[-1])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if self.task is not None:
                self.progress.advance(self.task)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(str(report.longrepr))

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.errors.append(str(excrepr))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.task is not None:
            self.progress.update(self.task, current="")
        self.progress.stop()


def default_out_dir() -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return harness.PROJECT_ROOT / "results" / f"run-{stamp}"


def run(
    bench: Path | None,
    suite: str,
    keyword: str | None,
    sim_faults: Path | None,
    out: Path | None,
    marker: str | None = None,
    console: Console | None = None,
    reports: bool = False,
) -> int:
    """Run ``suite`` on ``bench`` and write the results directory ``out``; with ``reports``,
    also the compliance report (HTML, and PDF when Chromium is there) and the Allure HTML."""
    console = console or Console()
    out = Path(out) if out else default_out_dir()
    bench = Path(bench) if bench else harness.FIXTURES_DIR / "sim.yaml"
    if not bench.exists():
        console.print(f"[red]error:[/] --bench: bench file {bench} does not exist")
        return EXIT_USAGE
    if sim_faults is not None and not Path(sim_faults).exists():
        console.print(f"[red]error:[/] --sim-faults: file {sim_faults} does not exist")
        return EXIT_USAGE
    out.mkdir(parents=True, exist_ok=True)
    args = [
        str(harness.TEST_PLANS_DIR / "parameters.yaml"),
        "--suite",
        suite,
        "--bench",
        str(bench),
        "--results-dir",
        str(out),
        f"--junitxml={out / 'junit.xml'}",
        f"--alluredir={out / 'allure-results'}",
        "--clean-alluredir",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-o",
        "timeout=0",
        "--rootdir",
        str(harness.PROJECT_ROOT),
    ]
    if keyword:
        args += ["-k", keyword]
    if marker:
        args += ["-m", marker]
    if sim_faults:
        args += ["--sim-faults", str(sim_faults)]
    reporter = ProgressReporter(console)
    console.print(f"bmshil run: suite [bold]{suite}[/] on bench [bold]{bench}[/] -> {out}")
    try:
        code = pytest.main(args, plugins=[reporter])
    except KeyboardInterrupt:
        code = pytest.ExitCode.INTERRUPTED
    if code == pytest.ExitCode.INTERRUPTED:
        console.print(
            "[yellow]interrupted[/] (Ctrl-C or SIGTERM): the bench was returned to its safe "
            "state; the results of the cases that finished are kept",
            soft_wrap=True,
        )
    for err in reporter.errors:
        console.print(f"[red]error:[/] {err}")
    records = read_results(out)
    summarize(records, out, console)
    _link_latest(out)
    if records:
        from reports.history import ingest_after_run

        ingest_after_run(out)
        if reports:
            write_reports(out, console)
    if code == pytest.ExitCode.OK:
        return EXIT_OK
    if code == pytest.ExitCode.TESTS_FAILED:
        return EXIT_FAILED
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        console.print("[red]error:[/] the selection matched no case")
        return EXIT_USAGE
    if code == pytest.ExitCode.INTERRUPTED:
        return EXIT_FAILED if records else EXIT_USAGE
    return EXIT_USAGE


def summarize(records: list[dict[str, Any]], out: Path, console: Console) -> None:
    """Counts, failures with measured against expected, and bench time."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    bench_s = sum(r.get("bench_s") or 0 for r in records)
    wall_s = sum(r.get("wall_s") or 0 for r in records)
    bad = [r for r in records if r["outcome"] in ("failed", "error")]
    if bad:
        # One plain line per failure: complete ids and values, readable in a CI log too.
        console.print("[bold]Failures[/] (measured against expected):")
        for r in bad:
            unit = r.get("unit")
            console.print(
                f"  [red]{r['outcome'].upper()}[/] {r['test_id']}: measured "
                f"{_fmt(r.get('measured'), unit)}, expected {_fmt(r.get('expected'), unit)} "
                f"+- {_fmt(r.get('tolerance'), unit)} - {r.get('message') or ''}",
                soft_wrap=True,
                highlight=False,
            )
    parts = [
        f"{counts.get(k, 0)} {k}" for k in ("passed", "failed", "error", "skipped") if counts.get(k)
    ]
    console.print(
        f"[bold]{', '.join(parts) or 'no results'}[/] in {len(records)} cases; bench time "
        f"{_duration(bench_s)} (what a real bench would spend), wall {wall_s:.1f} s; "
        f"results in {out}",
        soft_wrap=True,
    )


def _fmt(value: Any, unit: str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g} {unit or ''}".strip()
    return f"{value} {unit or ''}".strip()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _link_latest(out: Path) -> None:
    latest = out.parent / "latest"
    try:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(out.name)
    except OSError:
        pass


def write_reports(out: Path, console: Console) -> None:
    """Compliance HTML (+ PDF) and Allure HTML of a finished run. A missing tool (Chromium,
    the Allure CLI) is reported and skipped: the run's own verdict does not depend on it."""
    from reports.allure import AllureError, generate
    from reports.compliance import ChromiumError, find_chromium, write_report
    from reports.runs import ReportInputError

    try:
        for path in write_report(out, pdf=find_chromium() is not None):
            console.print(f"report: {path}", soft_wrap=True)
    except (ReportInputError, ChromiumError) as exc:
        console.print(f"[yellow]report not written:[/] {exc}", soft_wrap=True)
    try:
        allure = generate(out)
        console.print(f"allure: {allure.index}", soft_wrap=True)
    except (ReportInputError, AllureError) as exc:
        console.print(f"[yellow]allure report not written:[/] {exc}", soft_wrap=True)
