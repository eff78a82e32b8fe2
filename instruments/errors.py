"""Errors raised between the procedures and the wire.

One small hierarchy so a procedure can tell a refused setpoint (the test asked for something
the bench must not do) from a broken instrument (the bench cannot be trusted) from a BMS
that said no (a verdict, not a bench fault).
"""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error raised by instruments, drivers and links."""


class EnvelopeError(BenchError, ValueError):
    """A setpoint lies outside the bench envelope; it was NOT sent (never clamped silently)."""


class InstrumentError(BenchError):
    """An instrument reported an error, timed out, or is not the one the bench file names."""


class IdentityError(InstrumentError):
    """``*IDN?`` answered something other than the bench file's expected manufacturer/model."""


class InstrumentTimeout(InstrumentError):
    """An instrument did not answer within its timeout."""


class BmsLinkError(BenchError):
    """The BMS link failed: no answer, or only corrupt answers, after the bounded retries."""


class BmsRejected(BenchError):
    """The BMS answered with a non-zero return code (RTN) or a Modbus exception."""

    def __init__(self, command: str, code: int, meaning: str) -> None:
        self.command = command
        self.code = code
        self.meaning = meaning
        super().__init__(f"BMS rejected {command}: RTN 0x{code:02X} ({meaning})")


class BenchLost(BenchError):
    """The bench stopped answering (an instrument, the simulator, or the BMS link silent for
    a stated number of transactions): the run must stop, not go on case after case.

    ``what`` names what stopped answering (``"BMS link on /dev/pts/5"``, ``"supply"``)."""

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        self.detail = detail
        super().__init__(f"bench lost: {what} stopped answering: {detail}")
