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
