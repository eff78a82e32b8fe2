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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import harness
from harness import multi_run
from harness.results import final_records, read_results

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


class UsageProblem(Exception):
    """A usage or configuration error found before anything ran: exit 2, one message."""


def _validate_inputs(
    bench: Path, suite: str, sim_faults: Path | None, parameters: Path | None = None
) -> None:
    """Everything that can be refused without touching the bench: bench file (same loader as
    the bench itself), spec tables, the device configuration, faults file syntax."""
    import yaml

    from bmsspec import SpecError, load_spec
    from harness.benchfile import BenchFileError, load_bench_file
    from harness.session import SUITES

    if suite not in SUITES:
        raise UsageProblem(f"--suite: unknown suite {suite!r} (choose from {', '.join(SUITES)})")
    if not bench.exists():
        raise UsageProblem(f"--bench: bench file {bench} does not exist")
    try:
        load_bench_file(bench)
    except BenchFileError as exc:
        raise UsageProblem(str(exc)) from None
    try:
        spec = load_spec()
    except SpecError as exc:
        raise UsageProblem(f"spec tables: {exc}") from None
    if parameters is not None:
        from bmsspec.config import load_configuration

        try:
            load_configuration(parameters, spec)
        except SpecError as exc:
            raise UsageProblem(f"--parameters: {exc}") from None
    if sim_faults is not None:
        if not sim_faults.is_file():
            raise UsageProblem(f"--sim-faults: file {sim_faults} does not exist")
        try:
            data = yaml.safe_load(sim_faults.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UsageProblem(f"--sim-faults {sim_faults}: cannot read as YAML: {exc}") from None
        if data is not None and not isinstance(data, dict):
            raise UsageProblem(
                f"--sim-faults {sim_faults}: a faults file is a mapping, got {type(data).__name__}"
            )


def _prepare_new_out(out: Path) -> bool:
    """A fresh results directory; refuse one that holds anything (an earlier run's results
    are never overwritten). Returns whether the directory was created here."""
    if out.exists() and not out.is_dir():
        raise UsageProblem(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise UsageProblem(
            f"--out {out}: the directory is not empty (an earlier run's results would be "
            f"overwritten); choose another --out, or continue that run with --resume {out}"
        )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise UsageProblem(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    return created


def _check_resumable(
    out: Path,
    bench: Path,
    suite: str,
    keyword: str | None,
    marker: str | None,
    sim_faults: Path | None,
    parameters: Path | None = None,
    benches: list[Path] | None = None,
) -> None:
    """``--resume DIR``: the same bench(es), spec, device configuration, selection and
    faults, or a refusal naming what differs (the device firmware is compared once the
    bench is open)."""
    from bmsspec import load_spec
    from bmsspec.config import configured_spec
    from harness.session import _file_sha256

    info = _recorded_run(out)
    status = (info.get("end") or {}).get("status")
    if status == "complete":
        raise UsageProblem(f"--resume {out}: that run is complete; nothing to resume")
    differs = []
    bench_differs = multi_run.resume_difference(info, benches or [bench])
    if bench_differs:
        differs.append(bench_differs)
    if info.get("spec_sha256") != load_spec().sha256:
        differs.append("spec tables (spec_sha256 differs)")
    then = info.get("configuration") or {}
    now_config = configured_spec(load_spec(), parameters)[1]
    if then.get("sha256") is not None and then.get("sha256") != now_config.sha256:
        differs.append(
            f"device configuration ({then.get('name')!r} then, {now_config.name!r} now, "
            "content differs)"
        )
    selection = info.get("selection") or {}
    now = {"suite": suite, "keyword": keyword or None, "marker": marker or None}
    for key, value in now.items():
        if selection.get(key) != value:
            differs.append(f"{key} ({selection.get(key)!r} then, {value!r} now)")
    if info.get("sim_faults_sha256") != (_file_sha256(sim_faults) if sim_faults else None):
        differs.append(f"sim faults ({info.get('sim_faults')!r} then, {sim_faults} now)")
    if differs:
        raise UsageProblem(f"--resume {out}: cannot resume, it differs in: {'; '.join(differs)}")


def _recorded_run(out: Path) -> dict[str, Any]:
    from harness.results import read_run_info

    if not out.is_dir():
        raise UsageProblem(f"--resume {out}: no such results directory")
    info = read_run_info(out)
    if info is None or not info.get("planned"):
        raise UsageProblem(f"--resume {out}: no run.json with a planned case list there")
    return info


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


def summarize(data: Any, out: Path, console: Console, elapsed_s: float | None = None) -> None:
    """How the run ended, counts, failures with measured against expected, bench time and
    elapsed time, in lines of the console width."""
    from rich.text import Text

    records = list(final_records(data.records).values())
    completion = data.completion
    counts: dict[str, int] = {}
    for r in records:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    bench_s = sum(r.get("bench_s") or 0 for r in records)
    case_s = sum(r.get("wall_s") or 0 for r in records)
    bad = [r for r in records if r["outcome"] in ("failed", "error")]

    def say(chunks: list[Any], indent: int = 2) -> None:
        """Print the chunks space separated, broken into lines of the console width only
        between two chunks: a test id, a number with its unit, a path stays whole (a chunk
        wider than the console runs on rather than being cut); continuation lines indented.
        Plain text, not markup: a ``[...]`` in a message is printed as it is."""
        line, fresh = Text(), True
        for chunk in chunks:
            piece = chunk if isinstance(chunk, Text) else Text(str(chunk))
            if not fresh and line.cell_len + 1 + piece.cell_len > console.width:
                console.print(line, no_wrap=True, overflow="ignore", crop=False, highlight=False)
                line, fresh = Text(" " * indent), True
            if not fresh:
                line.append(" ")
            line.append_text(piece)
            fresh = False
        console.print(line, no_wrap=True, overflow="ignore", crop=False, highlight=False)

    if bad:
        # One entry per failure, complete ids and values, wrapped to the console (a CI log's
        # 80 columns too); its further lines are indented under the test id.
        console.print("[bold]Failures[/] (measured against expected):")
        for r in bad:
            unit = r.get("unit")
            outcome = r["outcome"].upper()
            message = str(r.get("message") or "").split()
            say(
                [
                    Text(f"  {outcome}", style="red"),
                    f"{r['test_id']}:",
                    f"measured {_fmt(r.get('measured'), unit)},",
                    f"expected {_fmt(r.get('expected'), unit)}",
                    f"+- {_fmt(r.get('tolerance'), unit)}",
                    *([f"- {message[0]}", *message[1:]] if message else []),
                ],
                indent=len(outcome) + 3,
            )
    not_run = len(completion.missing) + len(completion.not_run)
    parts = [
        f"{counts.get(k, 0)} {k}" for k in ("passed", "failed", "error", "skipped") if counts.get(k)
    ]
    if not_run:
        parts.append(f"{not_run} not run")
    if not completion.complete:
        say(
            [
                Text("INCOMPLETE", style="bold red"),
                *f"run ({completion.status}): {completion.reason or '-'};".split(),
                *f"{not_run} of {completion.planned} planned cases not run".split(),
            ]
        )
    for problem in data.info.get("close_problems") or []:
        say([Text("on leaving the bench:", style="yellow"), *str(problem).split()])
    per_bench = multi_run.bench_time_by_worker(records)
    if len(per_bench) > 1:
        say(
            [
                *"bench time per bench:".split(),
                *[f"{w} {_duration(s)}," for w, s in per_bench.items()],
                *"the run's bench time (busiest bench)".split(),
                f"{_duration(max(per_bench.values()))};",
            ]
        )
    elapsed = ["elapsed", f"{elapsed_s:.1f} s,"] if elapsed_s is not None else []
    say(
        [
            Text.assemble((str(completion.verdict), "bold"), ":"),
            *f"{', '.join(parts) or 'no results'} of {completion.planned} planned cases;".split(),
            "bench",
            "time",
            _duration(bench_s),
            *"(what a real bench would spend);".split(),
            *elapsed,
            "cases",
            f"{case_s:.1f} s;",
            "results in",
            str(out),
        ]
    )


def write_junit(out: Path, data: Any) -> Path:
    """``junit.xml`` from the final records: every planned case exactly once (a resumed run
    too), a case not run as an error saying why, and the run's end in the properties."""
    import xml.etree.ElementTree as ET

    finals = final_records(data.records)
    completion = data.completion
    planned = list(data.info.get("planned") or finals)
    suite = ET.Element("testsuite", name=f"bmshil.{data.info.get('suite') or 'run'}")
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", data.info.get("run_id")),
        ("end_status", completion.status),
        ("end_reason", completion.reason),
        ("complete", str(completion.complete).lower()),
        ("verdict", completion.verdict),
        ("bench_id", data.info.get("bench_id")),
        ("firmware", data.firmware),
    ):
        ET.SubElement(props, "property", name=name, value=str(value or ""))
    tally = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_s = 0.0
    for tid in planned:
        rec = finals.get(tid)
        tally["tests"] += 1
        wall = float((rec or {}).get("wall_s") or 0.0)
        total_s += wall
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"bmshil.{tid.split('-', 1)[0]}",
            name=tid,
            time=f"{wall:.3f}",
        )
        if rec is None:
            tally["errors"] += 1
            why = f"not run: {completion.status}: {completion.reason}"
            ET.SubElement(case, "error", type="not_run", message=why).text = why
        elif rec["outcome"] == "failed":
            tally["failures"] += 1
            ET.SubElement(case, "failure", message=rec.get("message") or "").text = (
                rec.get("message") or ""
            )
        elif rec["outcome"] == "error":
            tally["errors"] += 1
            ET.SubElement(case, "error", type="bench_error", message=rec.get("message") or "")
        elif rec["outcome"] == "skipped":
            tally["skipped"] += 1
            ET.SubElement(case, "skipped", message=rec.get("message") or rec.get("reason") or "")
    for key, value in tally.items():
        suite.set(key, str(value))
    suite.set("time", f"{total_s:.3f}")
    suites = ET.Element("testsuites")
    suites.append(suite)
    path = out / "junit.xml"
    tmp = out / "junit.xml.tmp"
    ET.ElementTree(suites).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
    return path


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
