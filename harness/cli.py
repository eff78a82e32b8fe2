"""``bmshil``: the command line of bms-hil."""

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="BMS hardware-in-the-loop harness"
)


@app.callback()
def _main() -> None:
    """BMS hardware-in-the-loop harness: plan, simulate, run, report."""


@app.command("run")
def run_command(
    bench: str = typer.Option(None, "--bench", help="bench file (default: the simulated bench)"),
    suite: str = typer.Option("regression", "--suite", help="smoke | regression | soak"),
    keyword: str = typer.Option(None, "-k", help="select cases by id expression (pytest -k)"),
    marker: str = typer.Option(None, "-m", help="select cases by marker expression (pytest -m)"),
    sim_faults: str = typer.Option(None, "--sim-faults", help="firmware deviations for the simulator"),
    out: str = typer.Option(None, "--out", help="results directory (default results/run-<time>)"),
) -> None:
    """Run a suite on a bench with a progress display; exit 0 passed, 1 failed, 2 usage error."""
    from pathlib import Path

    from harness.run import EXIT_USAGE, run
    from harness.session import SUITES

    if suite not in SUITES:
        typer.echo(f"error: --suite: unknown suite {suite!r} (choose from {', '.join(SUITES)})", err=True)
        raise typer.Exit(EXIT_USAGE)
    code = run(
        Path(bench) if bench else None,
        suite,
        keyword,
        Path(sim_faults) if sim_faults else None,
        Path(out) if out else None,
        marker=marker,
    )
    raise typer.Exit(code)
