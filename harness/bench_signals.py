"""Signals while a bench is open: SIGINT and SIGTERM raised as exceptions in the main thread
(so the safe state runs on the way out), or deferred while the safe state is applied."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

# The signal last raised as an exception, until ``raised_signal()`` hands it over: a cleanup
# step that fails after the interrupt (a query whose answer the interrupt cut off) must not
# replace it by a bench error, or the run would record one case in error and go on.
_raised: list[int] = []


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    _raised[:] = [signum]
    raise KeyboardInterrupt


class Terminated(KeyboardInterrupt):
    """SIGTERM while the bench is open.

    A KeyboardInterrupt, so that whatever stops on Ctrl-C stops on SIGTERM too: pytest ends
    the session instead of counting a SystemExit as one failed test and going on. Once the
    bench has left its safe state behind, ``Bench.open`` turns it into SystemExit(143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    _raised[:] = [signum]
    raise Terminated(signum)


def interrupt_pending() -> KeyboardInterrupt | None:
    """The interrupt a signal raised that has not been handed over yet (and hand it over):
    SIGINT as KeyboardInterrupt, SIGTERM as Terminated; None if no signal came."""
    if not _raised:
        return None
    signum = _raised.pop()
    return Terminated(signum) if signum == signal.SIGTERM else KeyboardInterrupt()


def forget_interrupt() -> None:
    """A KeyboardInterrupt reached its handler as itself: nothing is pending any more."""
    _raised.clear()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """While the bench is open, SIGINT raises KeyboardInterrupt and SIGTERM Terminated in the
    main thread, so the context manager's exit (the safe state) runs for both."""
    if not _in_main_thread():
        yield
        return
    _raised.clear()
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, _raise_interrupt),
        signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_exit),
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """During the safe state, a second Ctrl-C/SIGTERM is held back until it is done, so an
    impatient second press cannot leave a source on."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in pending[:1]:
            os.kill(os.getpid(), signum)
