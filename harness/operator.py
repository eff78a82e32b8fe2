"""Operator steps: a case that needs a person asks for it at the terminal.

``Operator.ask(instruction)`` prints what to do and what to confirm, waits (bounded) for
the answer, and returns an :class:`Answer` whose ``to_dict()`` is the evidence the result
record keeps (``operator``: prompt, answer, who, at, waited_s). Enter (or ``y``/``done``)
confirms; ``n`` (or ``no``/``skip``) says the step cannot be done; anything else is asked
again. No answer within the timeout raises :class:`OperatorTimeout`; a refusal raises
:class:`OperatorDeclined`; both carry the answer.

Where the prompt goes: ``/dev/tty`` when it can be opened (it bypasses pytest's capture and
any redirection of stdin/stdout), else stdin/stderr. While a prompt is up, every *prompt
guard* is entered: ``bmshil run`` registers one that stops its progress bar, the pytest
plugin one that suspends output capture (:func:`prompt_guard`).

Who may be asked (:func:`availability`): nobody on an ``--unattended`` run, under CI
(environment ``CI`` set) or without a terminal (stdin not a tty and ``/dev/tty`` not
openable); the reason then names which, for the skip message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
import select
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import IO, Any

#: Default time a case waits for each answer (seconds of wall time).
DEFAULT_TIMEOUT_S = 300.0

CONFIRM = ("", "y", "yes", "ok", "done", "confirm", "confirmed")
DECLINE = ("n", "no", "skip", "cannot", "abort")

#: (order, factory): every prompt is shown inside each ``factory()``, lowest order
#: outermost (output capture suspended before a live display pauses and after it resumes).
_GUARDS: list[tuple[int, Callable[[], ContextManager[Any]]]] = []


def add_prompt_guard(
    factory: Callable[[], ContextManager[Any]], order: int = 0
) -> Callable[[], None]:
    """While registered, every prompt is shown within ``factory()`` (pause a live display,
    suspend output capture). Returns the function that removes it."""
    entry = (order, factory)
    _GUARDS.append(entry)
    _GUARDS.sort(key=lambda e: e[0])

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _GUARDS.remove(entry)

    return remove


@contextlib.contextmanager
def prompt_guard(factory: Callable[[], ContextManager[Any]], order: int = 0) -> Iterator[None]:
    """``add_prompt_guard`` for the duration of a ``with`` block."""
    remove = add_prompt_guard(factory, order)
    try:
        yield
    finally:
        remove()


def operator_name(given: str | None = None) -> str:
    """``--operator NAME``, else the login name."""
    if given:
        return given
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def _tty_openable() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def _stdin_is_tty() -> bool:
    stdin = sys.__stdin__
    try:
        return stdin is not None and stdin.isatty()
    except (ValueError, OSError):
        return False


def availability(
    unattended: bool = False,
    env: Mapping[str, str] | None = None,
    *,
    tty: Callable[[], bool] = _tty_openable,
    stdin_tty: Callable[[], bool] = _stdin_is_tty,
) -> str | None:
    """None when a person can be asked; else why not (``unattended run``, ``CI
    environment``, ``no terminal attached``), the end of a skip reason."""
    env = os.environ if env is None else env
    if unattended:
        return "unattended run"
    ci = env.get("CI")
    if ci is not None and ci.strip().lower() not in ("", "0", "false", "no"):
        return "unattended run (CI environment: CI is set)"
    if not stdin_tty() and not tty():
        return "unattended run (no terminal attached)"
    return None


class OperatorError(Exception):
    """A prompt that did not end in a confirmation; ``answer`` is its evidence."""

    def __init__(self, message: str, answer: Answer) -> None:
        super().__init__(message)
        self.answer = answer


class OperatorTimeout(OperatorError):
    """Nobody answered within the prompt's timeout."""


class OperatorDeclined(OperatorError):
    """The operator said the step cannot be done."""


@dataclass(frozen=True)
class Answer:
    """One prompt and what came back: the evidence a result record keeps."""

    prompt: str
    answer: str  # "confirmed" | "declined" | "no answer"
    who: str
    at: str  # ISO time (UTC) of the answer, or of giving up
    asked_at: str
    waited_s: float
    typed: str = ""
    case: str | None = None

    @property
    def confirmed(self) -> bool:
        return self.answer == "confirmed"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt": self.prompt,
            "answer": self.answer,
            "who": self.who,
            "at": self.at,
            "asked_at": self.asked_at,
            "waited_s": round(self.waited_s, 3),
        }
        if self.typed:
            out["typed"] = self.typed
        if self.case:
            out["case"] = self.case
        return out


class Terminal:
    """Where prompts are written and answers read: two file descriptors.

    ``Terminal.open()`` uses ``/dev/tty`` when it can, else stdin (fd 0) and stderr."""

    def __init__(self, in_fd: int, out: IO[str] | int, owned: bool = False) -> None:
        self.in_fd = in_fd
        self.out = out
        self.owned = owned
        self._pending = b""

    @classmethod
    def open(cls) -> Terminal:
        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            return cls(0, sys.__stderr__ or sys.stderr)
        return cls(fd, fd, owned=True)

    def write(self, text: str) -> None:
        if isinstance(self.out, int):
            os.write(self.out, text.encode("utf-8", errors="replace"))
        else:
            self.out.write(text)
            self.out.flush()

    def discard_typeahead(self) -> None:
        """Drop what was typed before the prompt (a stray Enter must not confirm it)."""
        self._pending = b""
        with contextlib.suppress(Exception):
            import termios

            if os.isatty(self.in_fd):
                termios.tcflush(self.in_fd, termios.TCIFLUSH)

    def read_line(self, timeout_s: float) -> str | None:
        """One line (without its newline), or None at the timeout or end of input."""
        deadline = time.monotonic() + timeout_s
        data = self._pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._pending = data
                return None
            ready, _, _ = select.select([self.in_fd], [], [], remaining)
            if not ready:
                self._pending = data
                return None
            chunk = os.read(self.in_fd, 1024)
            if not chunk:
                self._pending = b""
                return data.decode("utf-8", errors="replace") if data else None
            data += chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line, _, self._pending = data.partition(b"\n")
        return line.decode("utf-8", errors="replace")

    def close(self) -> None:
        if self.owned:
            with contextlib.suppress(OSError):
                os.close(self.in_fd)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Operator:
    """A person at the bench, by name; asks through ``terminal`` (default: opened per
    prompt with :meth:`Terminal.open`)."""

    def __init__(
        self,
        name: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        terminal: Callable[[], Terminal] | None = None,
    ) -> None:
        self.name = operator_name(name)
        self.timeout_s = timeout_s
        self._terminal = terminal or Terminal.open

    def ask(
        self,
        instruction: str,
        *,
        timeout_s: float | None = None,
        case: str | None = None,
        detail: str = "",
    ) -> Answer:
        """Show ``instruction`` and wait for a confirmation; returns the answer (confirmed),
        raises ``OperatorTimeout`` or ``OperatorDeclined`` (with the answer) otherwise."""
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        asked_at = _now()
        t0 = time.monotonic()
        typed = ""
        outcome = "no answer"
        with contextlib.ExitStack() as stack:
            for _order, guard in list(_GUARDS):
                stack.enter_context(guard())
            term = self._terminal()
            stack.callback(term.close)
            term.discard_typeahead()
            head = f"bms-hil operator step{f' ({case})' if case else ''} for {self.name}"
            lines = ["", f"== {head} ==", instruction]
            if detail:
                lines.append(detail)
            lines.append(f"[Enter] done   [n Enter] cannot be done   (waiting up to {timeout:g} s)")
            term.write("\n".join(lines) + "\n> ")
            while True:
                left = timeout - (time.monotonic() - t0)
                line = term.read_line(left) if left > 0 else None
                if line is None:
                    term.write(f"\nno answer within {timeout:g} s\n")
                    break
                typed = line.strip()
                word = typed.lower()
                if word in CONFIRM:
                    outcome = "confirmed"
                    term.write("confirmed\n")
                    break
                if word in DECLINE:
                    outcome = "declined"
                    term.write("declined\n")
                    break
                term.write("please press Enter when done, or type n and Enter\n> ")
        answer = Answer(
            prompt=instruction,
            answer=outcome,
            who=self.name,
            at=_now(),
            asked_at=asked_at,
            waited_s=time.monotonic() - t0,
            typed=typed,
            case=case,
        )
        if outcome == "no answer":
            raise OperatorTimeout(
                f"no operator answer within {timeout:g} s to {instruction!r}", answer
            )
        if outcome == "declined":
            raise OperatorDeclined(
                f"the operator ({self.name}) declined {instruction!r}"
                + (f": {typed!r}" if typed.lower() not in DECLINE else ""),
                answer,
            )
        return answer
