"""A signal is never turned into a case error by a cleanup step that fails after it."""

from __future__ import annotations

import os
import signal

import pytest

from harness import bench_signals
from harness.session import _raise_pending_interrupt


def _cleanup_fails_after(signum: int) -> BaseException:
    """Deliver ``signum`` while the bench's handlers are installed; the 'cleanup' of the
    interrupted step then fails with an ordinary error, which is what a case handler sees."""
    with bench_signals._signals_raise():
        try:
            try:
                os.kill(os.getpid(), signum)
                signal.sigtimedwait([], 0)  # let the handler run here
                raise AssertionError("the signal did not interrupt")
            except KeyboardInterrupt:
                raise RuntimeError("SYST:ERR? answered '+12.5'")  # noqa: B904
        except RuntimeError as exc:
            return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("signum", "expected"),
    [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, bench_signals.Terminated)],
)
def test_the_signal_is_raised_again_over_the_error_that_replaced_it(signum, expected):
    error = _cleanup_fails_after(signum)
    with pytest.raises(expected) as caught:
        _raise_pending_interrupt(error)
    assert caught.value.__cause__ is error
    if signum == signal.SIGTERM:
        assert caught.value.signum == signal.SIGTERM
    _raise_pending_interrupt(error)  # handed over once: a later error is an error again


def test_an_error_without_a_signal_stays_an_error():
    with bench_signals._signals_raise():
        pass
    _raise_pending_interrupt(RuntimeError("a real bench error"))  # no signal: nothing raised


def test_an_exception_pytest_had_to_ignore_while_stopping_is_one_line_not_a_traceback():
    import io
    import warnings

    from rich.console import Console

    from harness.run import _unraisable_in_one_line

    out = io.StringIO()
    message = (
        "Exception ignored in: <generator object CaptureManager.pytest_runtest_call>\n\n"
        'Traceback (most recent call last):\n  File "capture.py", line 868\nAssertionError\n\n'
        "Enable tracemalloc to get traceback where the object was allocated."
    )
    with _unraisable_in_one_line(Console(file=out, width=200)):
        warnings.warn(pytest.PytestUnraisableExceptionWarning(message), stacklevel=1)
    text = out.getvalue()
    assert "Traceback" not in text
    assert "CaptureManager.pytest_runtest_call" in text and "(AssertionError)" in text
