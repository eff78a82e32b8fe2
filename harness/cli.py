"""``bmshil``: the command line of bms-hil."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="BMS hardware-in-the-loop harness")


@app.callback()
def _main() -> None:
    """BMS hardware-in-the-loop harness: plan, simulate, run, report."""
