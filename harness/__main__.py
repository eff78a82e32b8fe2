"""``python -m harness``: the same as the ``bmshil`` command."""

from harness.cli import app

app()
