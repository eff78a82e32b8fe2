"""Shared base of the SCPI drivers: open, identify, send, check, refuse out-of-envelope values.

Every driver is mostly declarations (its SCPI lines, its envelope keys); the rules that make
a bench trustworthy live here once:

* the resource uses ``\\n`` read/write termination and a timeout (raw sockets need both);
* ``*IDN?`` is checked against the bench file and recorded (a wrong instrument at an
  address is refused before anything is sent to it);
* after every command the error queue (``SYST:ERR?``) is drained, and any error raises
  naming the command that caused it (an instrument that silently ignored a setpoint would
  turn a protection test into a lie); inside ``batch()`` the queue is drained once after the
  last command of the batch, and an error names every command of it;
* a timeout raises naming instrument, address and command;
* every setpoint is checked against the bench envelope *before* it is sent, and refused
  (``EnvelopeError``), never clamped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Protocol

from instruments.errors import EnvelopeError, IdentityError, InstrumentError, InstrumentTimeout

#: An error queue longer than this is a broken instrument, not a backlog.
MAX_QUEUED_ERRORS = 32
#: InfiniiVision (and IEEE 488.2 practice) answer 9.9E+37 for "no such measurement".
NOT_A_MEASUREMENT = 9.9e37


class VisaResource(Protocol):
    """The slice of a pyvisa message-based resource the drivers use (fakes implement it too)."""

    read_termination: str | None
    write_termination: str
    timeout: float | None

    def write(self, message: str) -> Any: ...
    def read(self) -> str: ...
    def read_bytes(self, count: int) -> bytes: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class ExpectedIdn:
    """What the bench file says ``*IDN?`` must answer (manufacturer and model fields)."""

    manufacturer: str
    model: str


@dataclass(frozen=True)
class Identity:
    """What an instrument said it is (``*IDN?``), recorded for the report, with its
    calibration as the bench file gives it (due date, certificate id, calibration date)."""

    name: str
    address: str
    manufacturer: str
    model: str
    serial: str
    firmware: str
    calibration_due: date | None = None
    calibration_certificate: str | None = None
    calibrated_on: date | None = None


_resource_managers: dict[str, Any] = {}


def open_visa_resource(address: str, visa_library: str, timeout_s: float) -> VisaResource:
    """Open ``address`` with the given VISA library (``@py`` = pyvisa-py)."""
    import pyvisa

    rm = _resource_managers.get(visa_library)
    if rm is not None:
        try:
            rm.session  # noqa: B018 - raises once someone closed the shared manager
        except pyvisa.errors.InvalidSession:
            rm = None  # another user of pyvisa (a generic driver) closed it: open anew
    if rm is None:
        rm = _resource_managers[visa_library] = pyvisa.ResourceManager(visa_library)
    try:
        resource = rm.open_resource(address, open_timeout=int(timeout_s * 1000))
    except (pyvisa.errors.VisaIOError, OSError, ValueError) as exc:
        raise InstrumentError(
            f"cannot open {address} with VISA library {visa_library}: {exc}"
        ) from exc
    resource.timeout = timeout_s * 1000.0
    if address.upper().endswith("::SOCKET"):
        _disable_nagle(resource)
    return resource


def _disable_nagle(resource: Any) -> None:
    """Send each SCPI line at once on a raw socket.

    Every setpoint is followed by ``SYST:ERR?``: two small writes in a row, which Nagle's
    algorithm holds back until the first is acknowledged, and the instrument's TCP stack
    delays that acknowledgement (about 40 ms on Linux). With pyvisa-py the socket is
    reachable through the session; other VISA libraries manage their sockets themselves.
    """
    import socket

    try:
        session = resource.visalib.sessions[resource.session]
        sock = getattr(session, "interface", None)
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, KeyError, OSError, TypeError):
        pass


def format_number(value: float) -> str:
    """A number as SCPI NR2/NR3 text without float noise (``52.0`` -> ``52``, 0.1+0.2 -> 0.3)."""
    return f"{value:.9g}"


class ScpiInstrument:
    """One SCPI instrument on one VISA resource.

    Subclasses declare ``ENVELOPE`` (the bench file's envelope section they are bound by) and
    their SCPI lines as class constants, and call ``send``/``ask`` with them.
    """

    ENVELOPE: ClassVar[str] = ""
    IDN_QUERY: ClassVar[str] = "*IDN?"
    ERROR_QUERY: ClassVar[str] = "SYST:ERR?"
    CLEAR: ClassVar[str] = "*CLS"
    #: Sent once after identification (remote mode, function selection, ...).
    CONFIGURE: ClassVar[tuple[str, ...]] = ()
    #: Commands sent inside ``batch()`` whose error check is still to come.
    _batched: list[str] | None = None

    def __init__(
        self,
        resource: VisaResource,
        *,
        name: str,
        address: str,
        expected_idn: ExpectedIdn | None = None,
        envelope: Mapping[str, float] | None = None,
        calibration_due: date | None = None,
        calibration_certificate: str | None = None,
        calibrated_on: date | None = None,
    ) -> None:
        self.resource = resource
        self.name = name
        self.address = address
        self.envelope = dict(envelope or {})
        resource.read_termination = "\n"
        resource.write_termination = "\n"
        self.identity = self._identify(
            expected_idn,
            calibration_due,
            calibration_certificate=calibration_certificate,
            calibrated_on=calibrated_on,
        )
        self.send(self.CLEAR)
        for command in self.CONFIGURE:
            self.send(command)

    @classmethod
    def connect(
        cls,
        *,
        name: str,
        address: str,
        visa_library: str = "@py",
        timeout_s: float = 2.0,
        **kwargs: Any,
    ) -> ScpiInstrument:
        """Open the VISA resource at ``address`` and build the driver on it. ``kwargs`` go
        to the constructor (``expected_idn``, ``envelope``, the calibration record
        ``calibration_due``/``calibration_certificate``/``calibrated_on``, and the driver's
        own keywords)."""
        resource = open_visa_resource(address, visa_library, timeout_s)
        try:
            return cls(resource, name=name, address=address, **kwargs)
        except BaseException:
            resource.close()
            raise

    # -- wire ------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.name} ({self.address})"

    def _io(self, command: str, action: Any) -> Any:
        """Run one resource operation, turning VISA/socket failures into named errors."""
        try:
            return action()
        except InstrumentError:
            raise
        except Exception as exc:
            if _is_timeout(exc):
                # Its answer may still come: drain it before the next command, or every
                # later query would read the answer to the one before it.
                self._stale = True
                timeout_ms = getattr(self.resource, "timeout", None)
                within = f" within {timeout_ms / 1000:g} s" if timeout_ms else ""
                raise InstrumentTimeout(
                    f"{self._where()}: no answer to {command!r}{within}"
                ) from exc
            raise InstrumentError(f"{self._where()}: {command!r} failed: {exc}") from exc
        except BaseException:
            # Interrupted (Ctrl-C) between a query and its answer: the answer still comes,
            # so whoever talks to the instrument next (the safe state) drains it first.
            self._stale = True
            raise

    def write(self, command: str) -> None:
        """Send one line as is (no error check; see ``send``)."""
        if getattr(self, "_stale", False):
            self._drain()
        self._io(command, lambda: self.resource.write(command))

    def _drain(self) -> None:
        """After a timeout: read and drop whatever arrives within one more timeout (a late
        answer), so the next answer read belongs to the next command. Costs one timeout."""
        self._stale = False
        for _ in range(MAX_LATE_LINES):
            try:
                self.resource.read()
            except Exception as exc:
                if _is_timeout(exc):
                    return
                raise InstrumentError(
                    f"{self._where()}: draining a late answer failed: {exc}"
                ) from exc
        raise InstrumentError(f"{self._where()}: still answering after {MAX_LATE_LINES} late lines")

    def query(self, command: str) -> str:
        """Send a query and return the answer line, stripped."""
        self.write(command)
        return str(self._io(command, self.resource.read)).strip()

    def send(self, command: str) -> None:
        """Send a command and drain the error queue; raise if the instrument objected.
        Inside ``batch()`` the queue is drained when the batch ends."""
        self.write(command)
        if self._batched is not None:
            self._batched.append(command)
            return
        self.check_errors(command)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Send several commands, then drain the error queue once: one round trip for a
        group of setpoints (16 cell voltages, six NTC channels) instead of one each. An
        error raises naming every command of the batch, since the queue does not say which
        one caused it. Nested batches join the outer one. If the body raises, the queue is
        still drained (so a later command is not blamed), and the body's error propagates.
        """
        if self._batched is not None:
            yield
            return
        self._batched = []
        try:
            yield
        except BaseException:
            sent, self._batched = self._batched, None
            if sent and not getattr(self, "_stale", False):
                try:
                    self._drain_errors(_batch_text(sent))
                except Exception:  # noqa: BLE001 - the body's error is the one to report
                    pass
            raise
        sent, self._batched = self._batched, None
        if sent:
            self._drain_errors(_batch_text(sent))

    def ask(self, command: str) -> str:
        """A query whose answer is text."""
        return self.query(command)

    def ask_float(self, command: str) -> float:
        """A query whose answer is a number."""
        answer = self.query(command)
        try:
            return float(answer.split(",")[0])
        except ValueError as exc:
            raise InstrumentError(
                f"{self._where()}: {command!r} answered {answer!r}, not a number"
            ) from exc

    def ask_block(self, command: str) -> bytes:
        """A query answered with an IEEE 488.2 definite-length block (``#<n><len><data>``).

        Read by byte counts, not by termination: binary data may contain ``\\n``.
        """
        self.write(command)
        head = bytes(self._io(command, lambda: self.resource.read_bytes(2)))
        if head[:1] != b"#" or not head[1:2].isdigit() or head[1:2] == b"0":
            raise InstrumentError(f"{self._where()}: {command!r} answered {head!r}, not a block")
        digits = int(head[1:2])
        length = int(bytes(self._io(command, lambda: self.resource.read_bytes(digits))))
        data = bytes(self._io(command, lambda: self.resource.read_bytes(length + 1)))
        if data[-1:] != b"\n":
            raise InstrumentError(f"{self._where()}: {command!r} block not terminated by newline")
        return data[:-1]

    def check_errors(self, command: str) -> None:
        """Drain ``SYST:ERR?``; raise naming ``command`` if any error was queued."""
        self._drain_errors(repr(command))

    def _drain_errors(self, what: str) -> None:
        """Drain ``SYST:ERR?``; raise naming ``what`` (the command, or a batch) if any error
        was queued."""
        errors: list[str] = []
        for _ in range(MAX_QUEUED_ERRORS):
            answer = self.query(self.ERROR_QUERY)
            code = _error_code(answer)
            if code is None:
                raise InstrumentError(f"{self._where()}: {self.ERROR_QUERY} answered {answer!r}")
            if code == 0:
                break
            errors.append(answer)
        else:
            raise InstrumentError(f"{self._where()}: error queue does not empty after {what}")
        if errors:
            raise InstrumentError(f"{self._where()}: {what} caused {'; '.join(errors)}")

    # -- identity and envelope -------------------------------------------------------------

    def _identify(
        self,
        expected: ExpectedIdn | None,
        calibration_due: date | None,
        *,
        calibration_certificate: str | None = None,
        calibrated_on: date | None = None,
    ) -> Identity:
        answer = self.query(self.IDN_QUERY)
        fields = [f.strip() for f in answer.split(",")]
        fields += [""] * (4 - len(fields))
        identity = Identity(
            self.name,
            self.address,
            *fields[:4],
            calibration_due=calibration_due,
            calibration_certificate=calibration_certificate,
            calibrated_on=calibrated_on,
        )
        if expected is not None and (
            identity.manufacturer.casefold() != expected.manufacturer.strip().casefold()
            or identity.model.casefold() != expected.model.strip().casefold()
        ):
            raise IdentityError(
                f"{self._where()}: expected {expected.manufacturer} {expected.model}, "
                f"got {answer!r}"
            )
        return identity

    def within(
        self,
        what: str,
        value: float,
        unit: str,
        *,
        low_key: str | None = None,
        high_key: str | None = None,
        low: float | None = None,
        high: float | None = None,
    ) -> float:
        """Return ``value`` if it lies within the envelope, else raise ``EnvelopeError``.

        Bounds come from the bench envelope (``low_key``/``high_key`` of this instrument's
        section) or are fixed physical ones (``low``/``high``, e.g. a current is >= 0).
        """
        bounds = []
        if low is not None:
            bounds.append(("minimum", low, "fixed", value < low))
        if high is not None:
            bounds.append(("maximum", high, "fixed", value > high))
        for side, key in (("minimum", low_key), ("maximum", high_key)):
            if key is None:
                continue
            if key not in self.envelope:
                raise EnvelopeError(f"{self._where()}: envelope.{self.ENVELOPE}.{key} is not set")
            limit = self.envelope[key]
            bounds.append(
                (
                    side,
                    limit,
                    f"envelope.{self.ENVELOPE}.{key}",
                    value < limit if side == "minimum" else value > limit,
                )
            )
        if value != value:  # NaN slips through every comparison
            raise EnvelopeError(f"{self._where()}: {what} is NaN")
        for side, limit, source, broken in bounds:
            if broken:
                raise EnvelopeError(
                    f"{self._where()}: {what} {format_number(value)} {unit} refused, "
                    f"{side} is {format_number(limit)} {unit} ({source}); nothing was sent"
                )
        return value

    def close(self) -> None:
        """Release the VISA resource."""
        try:
            self.resource.close()
        except Exception:  # noqa: BLE001 - closing a dead socket must not mask the real error
            pass


def _is_timeout(exc: Exception) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    try:
        import pyvisa
    except ImportError:  # pragma: no cover - pyvisa is a dependency
        return False
    return (
        isinstance(exc, pyvisa.errors.VisaIOError)
        and exc.error_code == pyvisa.constants.StatusCode.error_timeout
    )


def _batch_text(commands: list[str]) -> str:
    """How an error check after a batch names it: the one command, or every command."""
    if len(commands) == 1:
        return repr(commands[0])
    return "one of " + ", ".join(repr(c) for c in commands)


#: Most late answers drained after a timeout before the stream counts as broken.
MAX_LATE_LINES = 16

_ERROR_RE = re.compile(r"^\s*([+-]?\d+)\s*(,.*)?$")


def _error_code(answer: str) -> int | None:
    match = _ERROR_RE.match(answer)
    return int(match.group(1)) if match else None
