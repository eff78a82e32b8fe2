"""``bmshil``: the command line of bms-hil."""

from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="BMS hardware-in-the-loop harness"
)


@app.callback()
def _main() -> None:
    """BMS hardware-in-the-loop harness: plan, simulate, run, report."""


@app.command("plan")
def plan_command(
    suite: str = typer.Option(None, "--suite", help="smoke | regression | soak (default: all)"),
    as_json: bool = typer.Option(False, "--json", help="print the cases as a JSON list"),
    bench: str = typer.Option(
        None, "--bench", help="bench file whose capabilities apply (default: the simulated bench)"
    ),
    parameters: str = typer.Option(
        None, "--parameters", help="device configuration under test (default: spec defaults)"
    ),
    wide: bool = typer.Option(
        False, "--wide", help="the full table on one line a case, whatever the terminal width"
    ),
) -> None:
    """List the test plan for a bench: cases, expectations, suites and real-bench time.

    The cases are the ones ``bmshil run`` with the same options runs, case for case. The
    table fits the terminal width (COLUMNS is respected); --wide shows every column."""
    from pathlib import Path

    from rich.console import Console

    from bmsspec import SpecError, load_spec
    from bmsspec.config import configured_spec
    from harness.benchfile import bench_capabilities, bench_relays
    from harness.link_coverage import coverage_of
    from harness.plan import SUITES, build_plan
    from harness.plan_view import plan_json, render_table, wide_width
    from harness.reach import reach_of
    from harness.session import default_bench_file

    if suite is not None and suite not in SUITES:
        choices = ", ".join(SUITES)
        typer.echo(f"error: --suite: unknown suite {suite!r} (choose from {choices})", err=True)
        raise typer.Exit(2)
    # The bench `bmshil run` uses by default, so plan and run see the same capabilities.
    bench_path = Path(bench) if bench else default_bench_file()
    try:
        if not bench_path.is_file():
            raise FileNotFoundError(f"--bench: bench file {bench_path} not found")
        caps = bench_capabilities(bench_path)
        spec, _ = configured_spec(load_spec(), Path(parameters) if parameters else None)
        relays = bench_relays(bench_path)
        reach = reach_of(bench_path)
        link = coverage_of(bench_path, spec)
    except SpecError as exc:
        flag = "--parameters: " if parameters and "parameters.yaml" not in str(exc) else ""
        typer.echo(f"error: {flag}{exc}", err=True)
        raise typer.Exit(2) from None
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    # The bench's relays decide which hand-step cases need a person (needs_operator).
    # What the bench can apply, and what its BMS link carries: a case beyond either is
    # untestable, naming why.
    on_bench = {"relays": relays, "reach": reach, "link": link}
    everything = build_plan(spec, caps, **on_bench)
    # The run builds its plan with the suite (harness.session): the same call, the same cases.
    cases = build_plan(spec, caps, suite=suite, **on_bench) if suite else everything
    if as_json:
        typer.echo(plan_json(cases))
        return
    console = Console(width=max(wide_width(cases), 80)) if wide and cases else Console()
    source = str(bench_path)
    render_table(cases, console, all_cases=everything, source=source, suite=suite, wide=wide)


@app.command("run")
def run_command(
    bench: Annotated[
        list[str] | None,
        typer.Option(
            "--bench",
            help="bench file (default: the simulated bench); repeat it to spread the cases "
            "over several benches, one worker each",
        ),
    ] = None,
    sim_benches: int = typer.Option(
        None, "--sim-benches", help="start N simulated benches and spread the cases over them"
    ),
    suite: str = typer.Option(
        None, "--suite", help="smoke | regression | soak (default regression)"
    ),
    keyword: str = typer.Option(None, "-k", help="select cases by id expression (pytest -k)"),
    marker: str = typer.Option(None, "-m", help="select cases by marker expression (pytest -m)"),
    sim_faults: str = typer.Option(
        None, "--sim-faults", help="firmware deviations for the simulator"
    ),
    out: str = typer.Option(
        None, "--out", help="results directory, new or empty (default <results-root>/run-<time>)"
    ),
    results_root: str = typer.Option(
        None, "--results-root", help="where runs, history and Allure history live (results/)"
    ),
    resume: str = typer.Option(
        None, "--resume", help="continue an interrupted or crashed run in this directory"
    ),
    allow_overdue: bool = typer.Option(
        False, "--allow-overdue", help="accept instruments past calibration due (recorded)"
    ),
    reports: bool = typer.Option(
        False, "--reports", help="also write the compliance report (HTML, PDF) and the Allure HTML"
    ),
    operator: str = typer.Option(
        None, "--operator", help="who answers operator prompts (default: the login name)"
    ),
    unattended: bool = typer.Option(
        False, "--unattended", help="nobody at the bench: skip cases that need a person"
    ),
    parameters: str = typer.Option(
        None,
        "--parameters",
        help="device configuration under test: YAML of spec items to values (P55: 160.0); "
        "written to the device at the start, every case judged against it",
    ),
    decision_rule: str = typer.Option(None, help="simple (ILAC-G8, default) | guarded"),
    sim_profile: str = typer.Option(
        None, "--sim-profile", help="simulated device profile: ideal (default) | realistic"
    ),
    sim_seed: int = typer.Option(None, "--sim-seed", help="seed of the simulated profile (0)"),
) -> None:
    """Run a suite on a bench; exit 0 every planned case passed, 1 a failure, a bench error
    or an incomplete run, 2 a usage or configuration error."""
    from pathlib import Path

    from harness.run import run

    code = run(
        Path(bench[0]) if bench else None,
        suite,
        keyword,
        Path(sim_faults) if sim_faults else None,
        Path(out) if out else None,
        marker=marker,
        reports=reports,
        results_root=Path(results_root) if results_root else None,
        resume=Path(resume) if resume else None,
        allow_overdue=allow_overdue,
        operator=operator,
        unattended=unattended,
        parameters=Path(parameters) if parameters else None,
        benches=[Path(b) for b in bench[1:]] if bench else None,
        sim_benches=sim_benches,
        decision_rule=decision_rule,
        sim_profile=sim_profile,
        sim_seed=sim_seed,
    )
    raise typer.Exit(code)


@app.command("check")
def check_command(
    bench: str = typer.Option(None, "--bench", help="bench file (default: the simulated bench)"),
    suite: str = typer.Option("regression", "--suite", help="smoke | regression | soak"),
    allow_overdue: bool = typer.Option(
        False, "--allow-overdue", help="accept instruments past calibration due"
    ),
) -> None:
    """Preflight: identities, calibration, BMS link, safe state read back, and what the plan
    can run on this bench. Exit 0 fit, 1 a check failed, 2 a usage or configuration error."""
    from pathlib import Path

    from rich.console import Console

    from harness import FIXTURES_DIR
    from harness.preflight import run_check
    from harness.session import SUITES

    if suite not in SUITES:
        typer.echo(
            f"error: --suite: unknown suite {suite!r} (choose from {', '.join(SUITES)})", err=True
        )
        raise typer.Exit(2)
    path = Path(bench) if bench else FIXTURES_DIR / "sim.yaml"
    if not path.is_file():
        typer.echo(f"error: --bench: bench file {path} does not exist", err=True)
        raise typer.Exit(2)
    raise typer.Exit(run_check(path, suite, allow_overdue, Console()))


config_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="The device configuration: `bmshil config read --out FILE` reads the device's block.",
)
app.add_typer(config_app, name="config")


@config_app.command("read")
def config_read_command(
    out: str = typer.Option(..., "--out", help="configuration file to write (must not exist)"),
    bench: str = typer.Option(None, "--bench", help="bench file (default: the simulated bench)"),
) -> None:
    """Read the device's parameter block (0x47) into a configuration file: all 87 parameters
    and 64 switches, usable as ``bmshil run --parameters``. Exit 0 written, 1 the bench
    failed, 2 a usage error (the file exists, a bad bench file)."""
    import datetime as dt
    from pathlib import Path

    from bmsspec import SpecError, load_spec
    from bmsspec.config import ConfigurationError, configuration_text, parse_configuration
    from harness.bench import Bench
    from harness.benchfile import BenchFileError, load_bench_file
    from harness.session import default_bench_file

    target = Path(out)
    bench_path = Path(bench) if bench else default_bench_file()
    try:
        if target.exists():
            raise ValueError(f"--out {target}: exists; a configuration file is never overwritten")
        if not target.parent.is_dir():
            raise ValueError(f"--out {target}: no directory {target.parent}")
        if not bench_path.is_file():
            raise ValueError(f"--bench: bench file {bench_path} does not exist")
        load_bench_file(bench_path)
        spec = load_spec()
    except (ValueError, BenchFileError, SpecError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        with Bench.open(bench_path) as opened:
            block = opened.bms.read_parameters()
            dev = opened.bms.device_info()
    except Exception as exc:  # noqa: BLE001 - a bench that fails is said in one line
        typer.echo(
            f"error: reading the device's block failed: {type(exc).__name__}: {exc}", err=True
        )
        raise typer.Exit(1) from None
    header = (
        f"The parameter block (0x47) of {dev.name.strip()} (firmware {dev.version}, "
        f"model {block.model_name.strip()!r}),\nread by `bmshil config read` on bench "
        f"{bench_path} at {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}.\n"
        "Every parameter and switch; use it with `bmshil run --parameters FILE`."
    )
    text = configuration_text(spec, block.values, block.switches, header)
    try:
        with target.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        typer.echo(f"error: --out {target}: cannot write: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {target} ({len(block.values)} parameters, {len(block.switches)} switches)")
    import yaml

    try:
        parse_configuration(yaml.safe_load(text), spec, target)
    except ConfigurationError as exc:
        typer.echo(f"warning: the device holds a block the spec refuses:\n{exc}", err=True)


@app.command("sim")
def sim_command(
    bench_out: str = typer.Option(
        "results/sim-bench.yaml", "--bench-out", help="where to write the resolved bench file"
    ),
    faults: str = typer.Option(None, "--faults", help="faults YAML for the simulated device"),
    realtime: bool = typer.Option(False, "--realtime", help="clock runs in real time"),
    seed: int = typer.Option(0, "--seed", help="seed of the measurement noise"),
    noise: bool = typer.Option(False, "--noise", help="add measurement noise"),
    profile: str = typer.Option("ideal", "--profile", help="device profile: ideal | realistic"),
    line_error_rate: float = typer.Option(
        None, "--line-error-rate", help="realistic profile: lost/corrupt reply rate (0.002)"
    ),
) -> None:
    """Serve the simulated bench until Ctrl-C/SIGTERM: instruments, BMS (pty, TCP, Modbus),
    clock.

    Runs ``python -m bmssim`` as a child so the simulator owns its event loop and signals;
    the endpoints it prints and the bench file it writes are what a harness run opens.
    SIGINT and SIGTERM are forwarded to it (exit 0 once it has stopped; killed after 15 s),
    and it dies with this process even on kill -9 (PR_SET_PDEATHSIG, ``--parent-pid``).
    """
    import sys

    from harness.sim_launch import serve

    cmd = [sys.executable, "-m", "bmssim", "--bench-out", bench_out, "--seed", str(seed)]
    cmd += ["--faults", faults] if faults else []
    cmd += ["--realtime"] if realtime else []
    cmd += ["--noise"] if noise else []
    cmd += ["--profile", profile]
    cmd += ["--line-error-rate", str(line_error_rate)] if line_error_rate is not None else []
    raise typer.Exit(serve(cmd))


# --------------------------------------------------------------------------- reports (issue 6)
# Thin wrappers: the work is in reports/ (compliance, allure, history, gate).


@app.command("report")
def report_command(
    results: str = typer.Argument(..., help="results directory of a run"),
    out: str = typer.Option(None, "--out", help="HTML file (default <results>/report.html)"),
    pdf: bool = typer.Option(False, "--pdf", help="also print a PDF (headless Chromium)"),
) -> None:
    """Compliance report: one self-contained HTML file a lab can sign (and its PDF)."""
    from pathlib import Path

    from reports.compliance import ChromiumError, write_report
    from reports.runs import ReportInputError

    try:
        written = write_report(Path(results), Path(out) if out else None, pdf=pdf)
    except (ReportInputError, ChromiumError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(str(path))


@app.command("allure")
def allure_command(
    results: str = typer.Argument(..., help="results directory of a run"),
    out: str = typer.Option(None, "--out", help="report dir (default <results>/allure-report)"),
    history_root: str = typer.Option(
        None, "--history-root", help="per-bench history store (default <results>/../allure-history)"
    ),
) -> None:
    """Allure HTML report of a run (real Allure CLI), with categories, environment and history."""
    from pathlib import Path

    from reports.allure import AllureError, generate
    from reports.runs import ReportInputError

    try:
        report = generate(
            Path(results), Path(out) if out else None, Path(history_root) if history_root else None
        )
    except (ReportInputError, AllureError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{report.index} (build {report.build_order}, history in {report.history_store})")


class _HistoryGroup(typer.core.TyperGroup):
    """``bmshil history ITEM`` shows a trend; a known sub-command name (``ingest``) runs it."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


history_app = typer.Typer(
    cls=_HistoryGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Run history database: `bmshil history ITEM` shows a trend; `ingest DIR` stores a run.",
)
app.add_typer(history_app, name="history")


@history_app.command("ingest")
def history_ingest_command(
    results: str = typer.Argument(..., help="results directory of a run"),
    db: str = typer.Option(None, "--db", help="URL (default <results>/../history.sqlite)"),
) -> None:
    """Store a run's records in the history database (again: replaces them)."""
    from pathlib import Path

    from reports.history import ingest
    from reports.runs import ReportInputError

    try:
        run_id = ingest(Path(results), db)
    except ReportInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"history run {run_id}: {results}")


@history_app.command("show")
def history_show_command(
    item: str = typer.Argument(..., help="P5, S10 or a test id"),
    db: str = typer.Option(None, "--db", help="SQLAlchemy URL (default results/history.sqlite)"),
    kind: str = typer.Option(None, "--kind", help="only this kind: trip, recovery, delay, ..."),
    plot: str = typer.Option(None, "--plot", help="write the trend plot (PNG) here"),
) -> None:
    """How the measured value of ITEM moved across runs and firmware versions."""
    from pathlib import Path

    from rich.console import Console

    from reports.history import trend, trend_plot, trend_table
    from reports.runs import ReportInputError

    try:
        points = trend(item, db, kind)
    except ReportInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not points:
        typer.echo(f"no record of {item} in the history", err=True)
        raise typer.Exit(1)
    Console().print(trend_table(points, f"{item}: measured value per run"))
    if plot:
        Path(plot).write_bytes(trend_plot(points, f"{item}: measured value per run"))
        typer.echo(f"plot: {plot}")


@app.command("gate")
def gate_command(
    baseline: str = typer.Option(..., "--baseline", help="results directory or history run id"),
    candidate: str = typer.Option(..., "--candidate", help="results directory or history run id"),
    waivers: str = typer.Option(None, "--waivers", help="YAML: [{item, reason, owner, expires}]"),
    drift: float = typer.Option(0.5, "--drift", help="drift limit as a share of the tolerance"),
    allow_spec_change: bool = typer.Option(False, "--allow-spec-change"),
    allow_bench_change: bool = typer.Option(False, "--allow-bench-change"),
    allow_config_change: bool = typer.Option(
        False,
        "--allow-config-change",
        help="compare runs of different device configurations (--parameters)",
    ),
    allow_incomplete_baseline: bool = typer.Option(
        False,
        "--allow-incomplete-baseline",
        help="compare against a baseline run that is INCOMPLETE",
    ),
    db: str = typer.Option(None, "--db", help="history database for run ids"),
    summary: str = typer.Option(None, "--summary", help="also append the Markdown to this file"),
    conditional: str = typer.Option("reject", help="conditional verdict: reject | accept"),
) -> None:
    """Release gate: exit 0 pass, 1 gate failed, 2 cannot compare; prints Markdown for CI."""
    from pathlib import Path

    from reports.gate import run_gate

    code, md = run_gate(
        baseline,
        candidate,
        waivers_file=waivers,
        drift_share=drift,
        allow_spec_change=allow_spec_change,
        allow_bench_change=allow_bench_change,
        allow_config_change=allow_config_change,
        allow_incomplete_baseline=allow_incomplete_baseline,
        db_url=db,
        conditional=conditional,
    )
    typer.echo(md)
    if summary:
        with Path(summary).open("a", encoding="utf-8") as fh:
            fh.write(md + "\n")
    raise typer.Exit(code)
