"""``bmshil run``: the suite through pytest with a progress display and a summary.

Exit codes: 0 every planned case has a final record that passed (untestable cases skipped
with their reason), 1 a case failed or hit a bench error, or the run is incomplete
(interrupted, bench lost), 2 a usage or configuration error (bad option, bench file, faults
file, spec tables, a results directory that is not new, a selection that matches nothing):
one message, no traceback, no results directory left behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import harness
from harness import multi_run
from harness.procedures.uncertainty import RULES, SIMPLE
from harness.results import final_records, read_results
from harness.run_inputs import (
    UsageProblem,
    _check_resumable,
    _prepare_new_out,
    _recorded_run,
    _validate_inputs,
    check_profile,
    resumed_profile,
)
from harness.run_junit import write_junit
from harness.run_summary import _duration as _duration
from harness.run_summary import _fmt as _fmt
from harness.run_summary import summarize

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
        self._start(len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Any) -> None:
        """Several benches: the controller collects nothing; the first worker's count."""
        if self.task is None:
            self._start(len(ids))

    def _start(self, total: int) -> None:
        from harness.operator import add_prompt_guard

        self.progress.start()
        self.task = self.progress.add_task("running", total=total, current="")
        self._unguard = add_prompt_guard(self.paused)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The progress bar stops while an operator prompt is up, and resumes after."""
        self.progress.stop()
        try:
            yield
        finally:
            self.progress.start()

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
        unguard = getattr(self, "_unguard", None)
        if unguard is not None:
            unguard()
        if self.task is not None:
            self.progress.update(self.task, current="")
        self.progress.stop()


def default_results_root() -> Path:
    return harness.PROJECT_ROOT / "results"


def default_out_dir(root: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = root / f"run-{stamp}"
    n = 2
    while out.exists():  # two runs in one second: never share a directory
        out = root / f"run-{stamp}-{n}"
        n += 1
    return out


def run(
    bench: Path | None,
    suite: str | None,
    keyword: str | None,
    sim_faults: Path | None,
    out: Path | None,
    marker: str | None = None,
    console: Console | None = None,
    reports: bool = False,
    *,
    results_root: Path | None = None,
    resume: Path | None = None,
    allow_overdue: bool = False,
    operator: str | None = None,
    unattended: bool = False,
    parameters: Path | None = None,
    benches: list[Path] | None = None,
    sim_benches: int | None = None,
    decision_rule: str | None = None,
    sim_profile: str | None = None,
    sim_seed: int | None = None,
) -> int:
    """Run ``suite`` on ``bench`` and write the results directory ``out``; with ``reports``,
    also the compliance report (HTML, and PDF when Chromium is there) and the Allure HTML.

    ``parameters``: the device configuration under test (``bmsspec.config``); None: the
    spec defaults (a resumed run: the configuration it recorded).

    Several benches (``benches``: more ``--bench`` files after ``bench``, or ``sim_benches``
    simulated ones) share the cases through pytest-xdist, one worker per bench
    (``harness.multi_run``, ``harness.benches``, ``harness.xdist_hooks``).

    Everything the run writes lives in ``out`` or the results root (history, Allure
    history, ``latest``)."""
    t_start = time.perf_counter()
    console = console or Console()
    # Problems met while leaving the bench are kept in run.json and printed once in the
    # summary; the bench's log lines would only repeat them.
    logging.getLogger("harness").addHandler(logging.NullHandler())
    root = Path(results_root) if results_root else default_results_root()
    given = [Path(b) for b in ([bench] if bench else []) + list(benches or [])]
    bench_list: list[Path] = []
    bench = given[0] if given else harness.FIXTURES_DIR / "sim.yaml"
    sim_faults = Path(sim_faults) if sim_faults else None
    created = False
    try:
        if resume is not None:
            # What the recorded run used, for every option not given again.
            recorded = _recorded_run(Path(resume))
            selection = recorded.get("selection") or {}
            bench_list = multi_run.resolve(given, sim_benches, recorded)
            suite = suite or selection.get("suite") or "regression"
            keyword = keyword if keyword is not None else selection.get("keyword")
            marker = marker if marker is not None else selection.get("marker")
            if sim_faults is None and recorded.get("sim_faults"):
                sim_faults = Path(recorded["sim_faults"])
            if parameters is None and (recorded.get("configuration") or {}).get("file"):
                parameters = Path(recorded["configuration"]["file"])
            recorded_rule = recorded.get("decision_rule") or SIMPLE
            if decision_rule is not None and decision_rule != recorded_rule:
                raise UsageProblem(
                    f"--decision-rule {decision_rule}: the run in {resume} was judged by "
                    f"{recorded_rule}; one run has one decision rule"
                )
            decision_rule = recorded_rule
            sim_profile, sim_seed = resumed_profile(recorded, resume, sim_profile, sim_seed)
        decision_rule = decision_rule or SIMPLE
        if decision_rule not in RULES:
            raise UsageProblem(
                f"--decision-rule: unknown rule {decision_rule!r} (choose from {', '.join(RULES)})"
            )
        check_profile(sim_profile)
        parameters = Path(parameters) if parameters else None
        suite = suite or "regression"
        bench_list = bench_list or multi_run.resolve(given, sim_benches, None)
        bench = bench_list[0]
        for one in dict.fromkeys(bench_list):
            _validate_inputs(one, suite, sim_faults, parameters)
        multi_run.validate(bench_list, suite)
        if resume is not None:
            if out is not None and Path(out) != Path(resume):
                raise UsageProblem("--out and --resume name different directories")
            out = Path(resume)
            _check_resumable(out, bench, suite, keyword, marker, sim_faults, parameters, bench_list)
        else:
            out = Path(out) if out else default_out_dir(root)
            created = _prepare_new_out(out)
        if root.exists() and not root.is_dir():
            raise UsageProblem(f"--results-root {root}: exists and is not a directory")
    except (UsageProblem, multi_run.BenchSetError) as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True, highlight=False)
        return EXIT_USAGE
    args = [
        str(harness.TEST_PLANS_DIR / "parameters.yaml"),
        "--suite",
        suite,
        "--bench",
        str(bench),
        "--results-dir",
        str(out),
        f"--alluredir={out / 'allure-results'}",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-p",
        "no:junitxml",
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
    if parameters:
        args += ["--parameters", str(parameters)]
    if resume is not None:
        args += ["--resume-run"]
    if allow_overdue:
        args += ["--allow-overdue"]
    if operator:
        args += ["--operator", operator]
    args += ["--decision-rule", decision_rule]
    if sim_profile is not None:
        args += ["--sim-profile", sim_profile]
    if sim_seed is not None:
        args += ["--sim-seed", str(sim_seed)]
    if unattended or len(bench_list) > 1:  # a worker has no terminal to prompt on
        args += ["--unattended"]
    args += multi_run.pytest_args(bench_list)
    reporter = ProgressReporter(console)
    verb = "resuming" if resume is not None else "suite"
    where = f"bench [bold]{bench}[/]"
    if len(bench_list) > 1:
        where = f"{len(bench_list)} benches [bold]{', '.join(map(str, bench_list))}[/]"
    configuration = f", configuration [bold]{parameters}[/]" if parameters else ""
    console.print(
        f"bmshil run: {verb} [bold]{suite}[/] on {where}{configuration} -> {out}",
        soft_wrap=True,
    )
    try:
        with _unraisable_in_one_line(console):
            code = pytest.main(args, plugins=[reporter])
    except KeyboardInterrupt:
        code = pytest.ExitCode.INTERRUPTED
    for err in reporter.errors:
        console.print(f"[red]error:[/] {err}", soft_wrap=True, highlight=False)
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
        if code == pytest.ExitCode.NO_TESTS_COLLECTED:
            console.print("[red]error:[/] the selection matched no case")
        if created and not final_records(read_results(out)):
            shutil.rmtree(out, ignore_errors=True)  # a refused run leaves no directory
        return EXIT_USAGE
    if not (out / "run.json").exists():
        console.print(f"[red]error:[/] the run did not start (pytest exit {int(code)})")
        if created and not final_records(read_results(out)):
            shutil.rmtree(out, ignore_errors=True)
        return EXIT_USAGE
    from reports.runs import ReportInputError, load_run

    try:
        data = load_run(out)
    except ReportInputError as exc:
        console.print(f"[red]error:[/] results directory unreadable: {exc}", soft_wrap=True)
        return EXIT_FAILED
    write_junit(out, data)
    _link_latest(out, root)
    elapsed = time.perf_counter() - t_start
    summarize(data, out, console, elapsed_s=elapsed)
    from reports.history import ingest_after_run

    try:
        ingest_after_run(out, root)
    except Exception as exc:  # noqa: BLE001 - history is a convenience, said plainly
        console.print(f"[yellow]history not updated:[/] {exc}", soft_wrap=True)
    if reports:
        write_reports(out, console, root)
    completion = data.completion
    if completion.verdict == "PASS" and completion.complete:
        return EXIT_OK
    return EXIT_FAILED


def _link_latest(out: Path, root: Path) -> None:
    """``<root>/latest`` points at the newest run that started (never a refused one)."""
    latest = root / "latest"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if latest.is_symlink():
            latest.unlink()
        elif latest.exists():
            return  # something else lives there: leave it alone
        target = os.path.relpath(out.resolve(), root.resolve())
        latest.symlink_to(target)
    except OSError:
        pass


def write_reports(out: Path, console: Console, root: Path | None = None) -> None:
    """Compliance HTML (+ PDF) and Allure HTML of a finished run. A missing tool (Chromium,
    the Allure CLI) is reported and skipped: the run's own verdict does not depend on it."""
    t0 = time.monotonic()
    from reports.allure import AllureError, generate
    from reports.compliance import ChromiumError, find_chromium, write_report
    from reports.runs import ReportInputError

    try:
        for path in write_report(out, pdf=find_chromium() is not None):
            console.print(f"report: {path}", soft_wrap=True)
    except (ReportInputError, ChromiumError) as exc:
        console.print(f"[yellow]report not written:[/] {exc}", soft_wrap=True)
    t1 = time.monotonic()
    try:
        allure = generate(out, history_root=(root or out.parent) / "allure-history")
        console.print(f"allure: {allure.index}", soft_wrap=True)
    except (ReportInputError, AllureError) as exc:
        console.print(f"[yellow]allure report not written:[/] {exc}", soft_wrap=True)
    _note_timing(
        out,
        reports_started_mono=round(t0, 4),
        reports_finished_mono=round(time.monotonic(), 4),
        compliance_report_s=round(t1 - t0, 4),
        allure_report_s=round(time.monotonic() - t1, 4),
    )


def _note_timing(out: Path, **values: float) -> None:
    """Add ``values`` to run.json ``timing`` (what the session wrote there; the same
    ``time.monotonic()`` clock). A run.json that cannot be read is left alone."""
    from harness.results import read_run_info, write_run_info

    info = read_run_info(out)
    if info is None:
        return
    timing = info.get("timing") if isinstance(info.get("timing"), dict) else {}
    info["timing"] = {**timing, **values}
    with contextlib.suppress(OSError):
        write_run_info(out, info)


@contextlib.contextmanager
def _unraisable_in_one_line(console: Console) -> Iterator[None]:
    """pytest reports an exception Python had to ignore (typically one of its own hook
    generators closed by a Ctrl-C that landed inside it) as a warning carrying a whole
    traceback; the run says it in one line instead, so a clean stop does not read as a crash."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, pytest.PytestUnraisableExceptionWarning):
            text = [t for t in str(message).splitlines() if t.strip()]
            text = [t for t in text if not t.startswith(("Enable tracemalloc", "See https"))]
            first = text[0] if text else "an exception was ignored"
            last = f" ({text[-1].strip()})" if len(text) > 1 else ""
            console.print(f"note: pytest: {first}{last}", soft_wrap=True, highlight=False)
            return
        default(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = default
