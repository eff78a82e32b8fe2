"""``bmshil``: the command line of bms-hil."""

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
    bench: str = typer.Option(None, "--bench", help="bench file whose capabilities apply"),
) -> None:
    """List the test plan for a bench: cases, expectations, suites and real-bench time."""
    from pathlib import Path

    from rich.console import Console

    from harness.plan import SUITES, build_plan
    from harness.plan_view import bench_capabilities, plan_json, render_table
    from harness.spec import SpecError, load_spec

    if suite is not None and suite not in SUITES:
        choices = ", ".join(SUITES)
        typer.echo(f"error: --suite: unknown suite {suite!r} (choose from {choices})", err=True)
        raise typer.Exit(2)
    try:
        caps, source = bench_capabilities(Path(bench) if bench else None)
        spec = load_spec()
    except (OSError, ValueError, SpecError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    everything = build_plan(spec, caps)
    cases = [c for c in everything if suite is None or suite in c.suites]
    if as_json:
        typer.echo(plan_json(cases))
        return
    render_table(cases, Console(), all_cases=everything, source=source, suite=suite)


@app.command("run")
def run_command(
    bench: str = typer.Option(None, "--bench", help="bench file (default: the simulated bench)"),
    suite: str = typer.Option("regression", "--suite", help="smoke | regression | soak"),
    keyword: str = typer.Option(None, "-k", help="select cases by id expression (pytest -k)"),
    marker: str = typer.Option(None, "-m", help="select cases by marker expression (pytest -m)"),
    sim_faults: str = typer.Option(
        None, "--sim-faults", help="firmware deviations for the simulator"
    ),
    out: str = typer.Option(None, "--out", help="results directory (default results/run-<time>)"),
    reports: bool = typer.Option(
        False, "--reports", help="also write the compliance report (HTML, PDF) and the Allure HTML"
    ),
) -> None:
    """Run a suite on a bench with a progress display; exit 0 passed, 1 failed, 2 usage error."""
    from pathlib import Path

    from harness.run import EXIT_USAGE, run
    from harness.session import SUITES

    if suite not in SUITES:
        typer.echo(
            f"error: --suite: unknown suite {suite!r} (choose from {', '.join(SUITES)})", err=True
        )
        raise typer.Exit(EXIT_USAGE)
    code = run(
        Path(bench) if bench else None,
        suite,
        keyword,
        Path(sim_faults) if sim_faults else None,
        Path(out) if out else None,
        marker=marker,
        reports=reports,
    )
    raise typer.Exit(code)


@app.command("sim")
def sim_command(
    bench_out: str = typer.Option(
        "results/sim-bench.yaml", "--bench-out", help="where to write the resolved bench file"
    ),
    faults: str = typer.Option(None, "--faults", help="faults YAML for the simulated device"),
    realtime: bool = typer.Option(False, "--realtime", help="clock runs in real time"),
    seed: int = typer.Option(0, "--seed", help="seed of the measurement noise"),
    noise: bool = typer.Option(False, "--noise", help="add measurement noise"),
) -> None:
    """Serve the simulated bench until Ctrl-C: instruments, BMS (pty, TCP, Modbus), clock.

    Runs ``python -m bmssim`` as a child so the simulator owns its event loop and signals;
    the endpoints it prints and the bench file it writes are what a harness run opens.
    """
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "bmssim", "--bench-out", bench_out, "--seed", str(seed)]
    cmd += ["--faults", faults] if faults else []
    cmd += ["--realtime"] if realtime else []
    cmd += ["--noise"] if noise else []
    proc = subprocess.Popen(cmd)
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # the terminal's Ctrl-C reached the child too
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
    raise typer.Exit(0 if code in (0, -signal.SIGINT, 130) else code)


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
    db: str = typer.Option(None, "--db", help="history database for run ids"),
    summary: str = typer.Option(None, "--summary", help="also append the Markdown to this file"),
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
        db_url=db,
    )
    typer.echo(md)
    if summary:
        with Path(summary).open("a", encoding="utf-8") as fh:
            fh.write(md + "\n")
    raise typer.Exit(code)
