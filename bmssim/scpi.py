"""SCPI engine of the simulated instruments: parser, error queue and asyncio TCP server.

The simulated bench must answer the harness's drivers the way real instruments do, or the
drivers would be tested against a friendlier device than the one on a real bench. So the
parser follows SCPI-99 / IEEE 488.2 rather than matching strings:

* the command tree is declared as data, one header pattern per command, e.g.
  ``[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]``: upper-case letters are the short
  form, the whole word the long form, ``[...]`` an optional node, ``#`` after a keyword a
  numeric suffix (``SOURce#:VOLTage`` matches ``SOUR3:VOLT``; an absent suffix means 1);
* keywords are case-insensitive and a header may start with ``:``;
* several commands share a message, separated by ``;``.  A command after ``;`` without a
  leading ``:`` is first resolved relative to the previous command's path (the SCPI rule:
  ``SOUR:VOLT 5;CURR 2`` means ``SOUR:CURR 2``), then, if that does not exist, from the root
  (what most instruments tolerate, so ``VOLT:PROT:LEV 58;VOLT 50`` works); a leading ``:``
  always starts from the root;
* numeric parameters take unit suffixes with SCPI multipliers (``500 mA``, ``10 mS``,
  ``4.7 kOHM``, ``1 MOHM``) and the keywords ``MIN``/``MAX``/``DEF`` where a command allows
  them; booleans are ``ON``/``OFF``/``1``/``0``; channel lists are ``(@1)``, ``(@1:8)``,
  ``(@1,3,5)``;
* a failing command queues an error in the SCPI error queue (``SYSTem:ERRor[:NEXT]?``) and
  is not executed: ``-113`` undefined header, ``-109`` missing parameter, ``-108`` parameter
  not allowed, ``-104`` data type error, ``-131`` invalid suffix, ``-222`` data out of range,
  ``-224`` illegal parameter value; the rest of the message still runs;
* the answers of the queries of one message are joined by ``;`` on one line ending ``\\n``;
  a message without a query produces no answer at all.

Every instrument gets the IEEE 488.2 mandatory common commands and the status model behind
them from :class:`ScpiInstrument` (so a generic driver's ``*ESE 32;*ESE?`` or ``*STB?`` never
ends in "Undefined header" and a timeout):

* ``*IDN?``, ``*RST`` (the instrument's reset; the status registers are untouched), ``*TST?``
  (``0``: self-test passed), ``*OPT?`` (:attr:`ScpiInstrument.options`, each model's module
  says what the real model answers), ``*WAI`` (a no-op: the simulators are synchronous),
  ``*OPC`` (sets OPC in the ESR at once), ``*OPC?`` (``1``), ``*TRG`` (:meth:`trigger`);
* the Standard Event Status Register (``*ESR?`` reads and clears it): bit 0 OPC, 2 QYE
  (query error, -400..-499), 3 DDE (device-dependent error, -300..-399), 4 EXE (execution
  error, -200..-299), 5 CME (command error, -100..-199), 7 PON (set at power-on, i.e. when
  the simulator starts); every error queued sets the bit of its class;
* ``*ESE <0..255>`` / ``*ESE?`` and ``*SRE <0..255>`` / ``*SRE?`` (bit 6 of SRE is ignored,
  IEEE 488.2 §11.3.2.3); power-on value 0; out of range is -222;
* ``*STB?`` (IEEE 488.2 §11.2 with the SCPI-1999 assignments): bit 2 error/event queue not
  empty, bit 3 QUES and bit 7 OPER summaries (:meth:`ScpiInstrument.status_summary`, none
  by default), bit 4 MAV (a response of the same message waits in the output queue),
  bit 5 ESB (``ESR & ESE``), bit 6 MSS (``STB & SRE``, bits other than 6); reading it
  clears nothing;
* ``*CLS`` clears the ESR and the error queue (not ESE/SRE);
* ``SYSTem:ERRor[:NEXT]?`` / ``SYSTem:VERSion?`` (SCPI-1999).

:class:`ScpiServer` serves one instrument on a TCP socket inside the simulator's asyncio loop
(no threads; several clients may connect at once and share the instrument, as on a real
LAN instrument).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bmssim.tcp import TcpServer

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Errors


class ScpiError(Exception):
    """A SCPI error: the command is not executed and (code, message) goes to the queue."""

    def __init__(self, code: int, message: str, detail: str = "") -> None:
        super().__init__(f"{code},{message}" + (f" ({detail})" if detail else ""))
        self.code = code
        self.message = message
        self.detail = detail


def undefined_header(detail: str = "") -> ScpiError:
    return ScpiError(-113, "Undefined header", detail)


def data_out_of_range(detail: str = "") -> ScpiError:
    return ScpiError(-222, "Data out of range", detail)


def illegal_parameter(detail: str = "") -> ScpiError:
    return ScpiError(-224, "Illegal parameter value", detail)


def data_type_error(detail: str = "") -> ScpiError:
    return ScpiError(-104, "Data type error", detail)


def missing_parameter(detail: str = "") -> ScpiError:
    return ScpiError(-109, "Missing parameter", detail)


def parameter_not_allowed(detail: str = "") -> ScpiError:
    return ScpiError(-108, "Parameter not allowed", detail)


def invalid_suffix(detail: str = "") -> ScpiError:
    return ScpiError(-131, "Invalid suffix", detail)


def settings_conflict(detail: str = "") -> ScpiError:
    return ScpiError(-221, "Settings conflict", detail)


def trigger_ignored(detail: str = "") -> ScpiError:
    return ScpiError(-211, "Trigger ignored", detail)


class ErrorQueue:
    """The SCPI error/event queue: FIFO, bounded; overflow replaces the newest with -350."""

    def __init__(self, capacity: int = 20) -> None:
        self.capacity = capacity
        self._items: deque[tuple[int, str]] = deque()

    def push(self, code: int, message: str) -> None:
        if len(self._items) >= self.capacity:
            self._items[-1] = (-350, "Queue overflow")
            return
        self._items.append((code, message))

    def pop(self) -> tuple[int, str]:
        if not self._items:
            return (0, "No error")
        return self._items.popleft()

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def format(item: tuple[int, str]) -> str:
        code, message = item
        return f'{code},"{message}"'


# IEEE 488.2 §11.5.1.1 Standard Event Status Register bits.
ESR_OPC = 0x01  # operation complete
ESR_RQC = 0x02  # request control (never: no instrument here is a controller)
ESR_QYE = 0x04  # query error
ESR_DDE = 0x08  # device-dependent error
ESR_EXE = 0x10  # execution error
ESR_CME = 0x20  # command error
ESR_URQ = 0x40  # user request (never: no front panel)
ESR_PON = 0x80  # power on
# IEEE 488.2 §11.2.2 status byte, with the bits SCPI-1999 (Vol. 1 §9) assigns.
STB_EAV = 0x04  # error/event queue not empty
STB_QUES = 0x08  # questionable status summary
STB_MAV = 0x10  # message available
STB_ESB = 0x20  # event status bit: ESR & ESE
STB_MSS = 0x40  # master summary status: STB & SRE
STB_OPER = 0x80  # operation status summary


def esr_bit_for(code: int) -> int:
    """The ESR bit an error of this SCPI code sets (its class); 0 for ``0,"No error"``."""
    if -199 <= code <= -100:
        return ESR_CME
    if -299 <= code <= -200:
        return ESR_EXE
    if -399 <= code <= -300 or code > 0:  # positive codes are device-dependent
        return ESR_DDE
    if -499 <= code <= -400:
        return ESR_QYE
    return 0


# --------------------------------------------------------------------------------------------
# Header patterns

_KEYWORD_RE = re.compile(r"^(\*?[A-Za-z_][A-Za-z_0-9]*?)(\d*)$")


@dataclass(frozen=True)
class _Node:
    short: str  # upper case
    long: str  # upper case
    optional: bool
    suffix: bool  # accepts a numeric suffix (``OUTP3``)

    def match(self, token: str) -> tuple[bool, int | None]:
        """Whether ``token`` (one header keyword as written) is this node, and its suffix."""
        m = _KEYWORD_RE.match(token)
        if not m:
            return (False, None)
        word, digits = m.group(1).upper(), m.group(2)
        if digits and not self.suffix:
            # A keyword whose name itself ends in digits is not used in our trees.
            return (False, None)
        if word not in (self.short, self.long):
            return (False, None)
        return (True, int(digits) if digits else None)


def _parse_pattern(pattern: str) -> tuple[tuple[_Node, ...], bool]:
    """Compile ``[SOURce:]VOLTage[:LEVel]?`` into nodes and a query flag."""
    query = pattern.endswith("?")
    body = pattern[:-1] if query else pattern
    nodes: list[_Node] = []
    i = 0
    while i < len(body):
        optional = body[i] == "["
        if optional:
            end = body.index("]", i)
            part = body[i + 1 : end]
            i = end + 1
        else:
            end = body.find("[", i)
            end = len(body) if end < 0 else end
            part = body[i:end]
            i = end
        for word in part.split(":"):
            if not word:
                continue
            suffix = word.endswith("#")
            word = word.rstrip("#")
            short = "".join(ch for ch in word if ch.isupper() or ch == "*" or ch.isdigit())
            nodes.append(_Node(short or word.upper(), word.upper(), optional, suffix))
    return tuple(nodes), query


def _match_nodes(nodes: Sequence[_Node], tokens: Sequence[str]) -> list[int | None] | None:
    """Match header tokens against nodes (optional nodes may be skipped).

    Returns the numeric suffix of every node (None when skipped or not written), or None
    when the header does not match.
    """
    if not nodes:
        return [] if not tokens else None
    node = nodes[0]
    if tokens:
        ok, suffix = node.match(tokens[0])
        if ok:
            rest = _match_nodes(nodes[1:], tokens[1:])
            if rest is not None:
                return [suffix, *rest]
    if node.optional:
        rest = _match_nodes(nodes[1:], tokens)
        if rest is not None:
            return [None, *rest]
    return None


# --------------------------------------------------------------------------------------------
# Parameters

# SCPI suffix multipliers. "M" is milli; mega is "MA" (and the units MOHM / MHZ, handled
# where the unit is known), which is why the unit is stripped before the multiplier.
_MULTIPLIERS = {
    "": 1.0,
    "EX": 1e18,
    "PE": 1e15,
    "T": 1e12,
    "G": 1e9,
    "MA": 1e6,
    "K": 1e3,
    "M": 1e-3,
    "U": 1e-6,
    "N": 1e-9,
    "P": 1e-12,
    "F": 1e-15,
}
_NUMBER_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z/%]*)$")
_MIN_WORDS = ("MIN", "MINIMUM")
_MAX_WORDS = ("MAX", "MAXIMUM")
_DEF_WORDS = ("DEF", "DEFAULT")


def parse_number(text: str, unit: str | None = None) -> float:
    """Parse a decimal numeric parameter with an optional unit suffix and multiplier.

    ``unit`` is the base unit the command accepts (``V``, ``A``, ``S``, ``OHM``, ``A/US``);
    ``None`` means no suffix is allowed. Raises -104 when the text is not a number and -131
    when the suffix does not fit.
    """
    m = _NUMBER_RE.match(text.strip())
    if not m:
        raise data_type_error(text)
    value = float(m.group(1))
    suffix = m.group(2).upper()
    if not suffix:
        return value
    if unit is None:
        raise ScpiError(-138, "Suffix not allowed", text)
    base = unit.upper()
    if base == "OHM" and suffix in ("MOHM", "MEGOHM"):
        return value * 1e6
    if base == "HZ" and suffix == "MHZ":
        return value * 1e6
    if not suffix.endswith(base):
        raise invalid_suffix(text)
    prefix = suffix[: len(suffix) - len(base)]
    if prefix not in _MULTIPLIERS:
        raise invalid_suffix(text)
    return value * _MULTIPLIERS[prefix]


_CHANLIST_RE = re.compile(r"^\(\s*@\s*([0-9:,\s]+)\)$")


def parse_channel_list(text: str, channels: int | None = None) -> list[int]:
    """Parse ``(@1)``, ``(@1:8)``, ``(@1,3,5)``, ``(@1:3,5)`` into channel numbers.

    Channels outside ``1..channels`` raise -222 (the instrument has no such channel).
    """
    m = _CHANLIST_RE.match(text.strip())
    if not m:
        raise data_type_error(f"channel list expected: {text}")
    result: list[int] = []
    for item in m.group(1).split(","):
        item = item.strip()
        if not item:
            raise data_type_error(text)
        if ":" in item:
            lo_s, hi_s = (p.strip() for p in item.split(":", 1))
            if not lo_s.isdigit() or not hi_s.isdigit():
                raise data_type_error(text)
            lo, hi = int(lo_s), int(hi_s)
            step = 1 if hi >= lo else -1
            result.extend(range(lo, hi + step, step))
        else:
            if not item.isdigit():
                raise data_type_error(text)
            result.append(int(item))
    if channels is not None:
        for ch in result:
            if not 1 <= ch <= channels:
                raise data_out_of_range(f"channel {ch}")
    return result


def is_channel_list(text: str) -> bool:
    return text.strip().startswith("(")


def match_keyword(text: str, options: Sequence[str]) -> str:
    """Match character data against keyword options given as ``CONTinuous``.

    Returns the option's short form in upper case (``CONT``); -224 when none matches.
    """
    word = text.strip().upper()
    for option in options:
        short = "".join(ch for ch in option if ch.isupper() or ch.isdigit())
        if word in (short, option.upper()):
            return short
    raise illegal_parameter(text)


def split_outside(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes, parentheses and arbitrary blocks.

    A definite-length block ``#<n><length><data>`` is skipped whole (its data may hold any
    byte, ``;`` and ``,`` included); an indefinite one (``#0``) runs to the end of the text.
    """
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and i + 1 < len(text) and text[i + 1].isdigit():
            digits = int(text[i + 1])
            if digits == 0:
                break  # indefinite-length block: the rest of the message
            count = text[i + 2 : i + 2 + digits]
            if len(count) == digits and count.isdigit():
                i += 2 + digits + int(count)
                continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


@dataclass
class Args:
    """What a handler receives: the raw parameters and the header's numeric suffixes."""

    params: list[str]
    suffixes: list[int | None] = field(default_factory=list)

    def suffix(self, index: int = 0, default: int = 1) -> int:
        """The ``index``-th numeric suffix written in the header (``OUTP3`` -> 3)."""
        written = [s for s in self.suffixes if s is not None]
        if index < len(written):
            return written[index]
        return default

    def has(self, index: int) -> bool:
        return index < len(self.params) and self.params[index].strip() != ""

    def raw(self, index: int) -> str:
        if not self.has(index):
            raise missing_parameter()
        return self.params[index].strip()

    def number(
        self,
        index: int = 0,
        unit: str | None = None,
        low: float | None = None,
        high: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        default: float | None = None,
    ) -> float:
        """A numeric parameter in base units, range-checked against ``low..high``.

        ``minimum``/``maximum``/``default`` are what ``MIN``/``MAX``/``DEF`` mean for this
        command (when None the keyword is illegal, -224).
        """
        text = self.raw(index)
        word = text.upper()
        keyword_value: float | None
        if word in _MIN_WORDS:
            keyword_value = minimum
        elif word in _MAX_WORDS:
            keyword_value = maximum
        elif word in _DEF_WORDS:
            keyword_value = default
        else:
            value = parse_number(text, unit)
            if math.isnan(value) or math.isinf(value):
                raise data_out_of_range(text)
            if (low is not None and value < low - 1e-12) or (
                high is not None and value > high + 1e-12
            ):
                raise data_out_of_range(text)
            return value
        if keyword_value is None:
            raise illegal_parameter(text)
        return keyword_value

    def integer(self, index: int = 0, low: int | None = None, high: int | None = None) -> int:
        value = parse_number(self.raw(index))
        if value != int(value):
            raise data_type_error(self.raw(index))
        n = int(value)
        if (low is not None and n < low) or (high is not None and n > high):
            raise data_out_of_range(self.raw(index))
        return n

    def boolean(self, index: int = 0) -> bool:
        text = self.raw(index).upper()
        if text == "ON":
            return True
        if text == "OFF":
            return False
        try:
            value = parse_number(text)
        except ScpiError:
            raise illegal_parameter(text) from None
        return round(value) != 0

    def keyword(self, index: int, options: Sequence[str]) -> str:
        return match_keyword(self.raw(index), options)

    def channels(self, index: int, count: int | None = None) -> list[int]:
        return parse_channel_list(self.raw(index), count)

    def min_max(self, index: int = 0) -> str | None:
        """An optional ``MIN``/``MAX`` query parameter: ``"MIN"``, ``"MAX"`` or None."""
        if not self.has(index):
            return None
        word = self.raw(index).upper()
        if word in _MIN_WORDS:
            return "MIN"
        if word in _MAX_WORDS:
            return "MAX"
        raise illegal_parameter(word)


# --------------------------------------------------------------------------------------------
# Commands and the instrument base

Response = str | bytes
Handler = Callable[[Args], Response | None]


@dataclass
class Command:
    """One entry of a command table.

    ``pattern`` ends with ``?`` for a query. ``params`` is the (min, max) number of
    parameters; ``changes`` says whether the instrument's state may change (so the world is
    settled afterwards; queries default to False).
    """

    pattern: str
    handler: Handler
    params: tuple[int, int] = (0, 0)
    changes: bool | None = None
    nodes: tuple[_Node, ...] = field(init=False, repr=False)
    query: bool = field(init=False)

    def __post_init__(self) -> None:
        self.nodes, self.query = _parse_pattern(self.pattern)
        if self.changes is None:
            self.changes = not self.query


def format_float(value: float) -> str:
    """NR3 the way SCPI instruments answer: ``+5.20000000E+01``."""
    return f"{value:+.8E}"


def format_bool(value: bool) -> str:
    return "1" if value else "0"


def definite_block(data: bytes) -> bytes:
    """IEEE 488.2 definite-length arbitrary block ``#8nnnnnnnn<data>``."""
    return b"#8" + f"{len(data):08d}".encode("ascii") + data


@dataclass
class _Parsed:
    header: str
    tokens: list[str]
    absolute: bool
    query: bool
    common: bool
    params: list[str]


class ScpiInstrument:
    """Base of every simulated instrument: command dispatch, error queue, common commands.

    Subclasses set :attr:`idn` and return their table from :meth:`commands`; they override
    :meth:`reset` (``*RST``), :meth:`trigger` (``*TRG``) and :meth:`on_change` (called after
    every executed command that may have changed state, so a model can be recomputed).
    """

    idn: str = "bms-hil,SCPI,0,1.0"
    #: The ``*OPT?`` answer: ``0`` is IEEE 488.2's "no reportable options"; a model whose
    #: manual says otherwise sets its own.
    options: str = "0"

    def __init__(self) -> None:
        self.errors = ErrorQueue()
        self.esr = ESR_PON  # standard event status register: power-on just occurred
        self.ese = 0  # standard event status enable (power-on 0)
        self.sre = 0  # service request enable (power-on 0)
        self._output_pending = False  # a response of the current message is queued (MAV)
        self._table: list[Command] = [*self._common_commands(), *self.commands()]

    # -- to override -------------------------------------------------------------------------
    def commands(self) -> list[Command]:
        return []

    def reset(self) -> None:
        """``*RST``: the instrument's defined reset state."""

    def trigger(self) -> None:
        """``*TRG``: a bus trigger. Instruments without a trigger system ignore it."""
        raise trigger_ignored()

    def on_change(self) -> None:
        """Called after every executed state-changing command."""

    def format_error(self, item: tuple[int, str]) -> str:
        """One ``SYSTem:ERRor?`` answer (``0,"No error"``; a dialect that signs the code,
        ``+0,"No error"``, overrides this)."""
        return ErrorQueue.format(item)

    def status_summary(self) -> int:
        """Status-byte bits 3 (QUES) and 7 (OPER) of a model with those register groups."""
        return 0

    def self_test(self) -> int:
        """``*TST?``: 0 = passed (a simulator has no hardware to fail)."""
        return 0

    # -- status ------------------------------------------------------------------------------
    def status_byte(self) -> int:
        """``*STB?``: IEEE 488.2 status byte with the SCPI-1999 bit assignments."""
        stb = self.status_summary() & (STB_QUES | STB_OPER)
        if len(self.errors):
            stb |= STB_EAV
        if self._output_pending:
            stb |= STB_MAV
        if self.esr & self.ese:
            stb |= STB_ESB
        if stb & self.sre & ~STB_MSS:
            stb |= STB_MSS
        return stb

    # -- engine ------------------------------------------------------------------------------
    def queue_error(self, error: ScpiError) -> None:
        self.errors.push(error.code, error.message)
        self.esr |= esr_bit_for(error.code)

    def handle_message(self, message: str) -> bytes | None:
        """Execute one program message (one line). Returns the response line or None."""
        responses: list[bytes] = []
        path: list[str] = []
        for unit in split_outside(message.strip(), ";"):
            unit = unit.strip()
            if not unit:
                continue
            try:
                parsed = self._parse_unit(unit)
                command, suffixes, new_path = self._resolve(parsed, path)
                path = new_path
                n = len(parsed.params)
                if n < command.params[0]:
                    raise missing_parameter(unit)
                if n > command.params[1]:
                    raise parameter_not_allowed(unit)
                self._output_pending = bool(responses)  # what *STB? reports as MAV
                result = command.handler(Args(parsed.params, suffixes))
                if command.changes:
                    self.on_change()
            except ScpiError as error:
                self.queue_error(error)
                continue
            except Exception:  # a simulator bug must not kill the client's session
                _log.exception("SCPI command %r failed", unit)
                self.queue_error(ScpiError(-300, "Device-specific error"))
                continue
            if command.query and result is not None:
                responses.append(result.encode("latin-1") if isinstance(result, str) else result)
        if not responses:
            return None
        return b";".join(responses) + b"\n"

    @staticmethod
    def _parse_unit(unit: str) -> _Parsed:
        m = re.match(r"^(\S+)(?:\s+(.*))?$", unit, re.DOTALL)
        assert m is not None  # unit is non-empty and stripped
        header, rest = m.group(1), (m.group(2) or "").strip()
        params = [p.strip() for p in split_outside(rest, ",")] if rest else []
        query = header.endswith("?")
        bare = header[:-1] if query else header
        common = bare.startswith("*")
        absolute = bare.startswith(":")
        if absolute:
            bare = bare[1:]
        tokens = bare.split(":") if bare else []
        if not tokens or any(not t for t in tokens):
            raise ScpiError(-102, "Syntax error", unit)
        return _Parsed(header, tokens, absolute, query, common, params)

    def _lookup(self, tokens: Sequence[str], query: bool) -> tuple[Command, list[int | None]]:
        for command in self._table:
            if command.query != query:
                continue
            suffixes = _match_nodes(command.nodes, tokens)
            if suffixes is not None:
                return command, suffixes
        raise undefined_header(":".join(tokens) + ("?" if query else ""))

    def _resolve(
        self, parsed: _Parsed, path: list[str]
    ) -> tuple[Command, list[int | None], list[str]]:
        """Find the command; return it with its suffixes and the path for the next unit."""
        if parsed.common:
            command, suffixes = self._lookup(parsed.tokens, parsed.query)
            return command, suffixes, path  # common commands leave the path alone
        if not parsed.absolute and path:
            try:
                tokens = [*path, *parsed.tokens]
                command, suffixes = self._lookup(tokens, parsed.query)
                return command, suffixes, tokens[:-1]
            except ScpiError:
                pass
        command, suffixes = self._lookup(parsed.tokens, parsed.query)
        return command, suffixes, parsed.tokens[:-1]

    # -- common commands ---------------------------------------------------------------------
    def _common_commands(self) -> list[Command]:
        def cls(_: Args) -> None:
            self.errors.clear()
            self.esr = 0

        def rst(_: Args) -> None:
            self.reset()

        def trg(_: Args) -> None:
            self.trigger()

        def esr(_: Args) -> str:
            value, self.esr = self.esr, 0
            return str(value)

        def opc(_: Args) -> None:
            self.esr |= ESR_OPC  # operations complete at once: nothing runs in the background

        def register(args: Args) -> int:
            """An 8-bit register value: decimal numeric data rounded (IEEE 488.2 §7.7.2)."""
            value = args.number(0, low=-0.5, high=255.49999)
            return int(round(value))

        def set_ese(args: Args) -> None:
            self.ese = register(args)

        def set_sre(args: Args) -> None:
            self.sre = register(args) & ~STB_MSS  # bit 6 cannot be enabled

        return [
            Command("*IDN?", lambda _: self.idn),
            Command("*RST", rst, changes=True),
            Command("*CLS", cls, changes=False),
            Command("*OPC?", lambda _: "1"),
            Command("*OPC", opc, changes=False),
            Command("*WAI", lambda _: None, changes=False),
            Command("*TRG", trg, changes=True),
            Command("*TST?", lambda _: str(self.self_test())),
            Command("*OPT?", lambda _: self.options),
            Command("*ESR?", esr),
            Command("*ESE", set_ese, params=(1, 1), changes=False),
            Command("*ESE?", lambda _: str(self.ese)),
            Command("*SRE", set_sre, params=(1, 1), changes=False),
            Command("*SRE?", lambda _: str(self.sre)),
            Command("*STB?", lambda _: str(self.status_byte())),
            Command("SYSTem:ERRor[:NEXT]?", lambda _: self.format_error(self.errors.pop())),
            Command("SYSTem:VERSion?", lambda _: "1999.0"),
        ]


# --------------------------------------------------------------------------------------------
# Server


class ScpiServer(TcpServer):
    """Serves one :class:`ScpiInstrument` on a TCP socket (raw SCPI, ``\\n``-terminated).

    Runs in the caller's asyncio loop: ``server = ScpiServer(inst); await server.start();
    server.port`` is the bound port (``port=0`` picks a free one). ``await server.stop()``
    closes it; ``async with ScpiServer(inst) as server:`` does both.
    """

    line_limit = 1 << 22

    def __init__(self, instrument: ScpiInstrument, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.instrument = instrument

    @property
    def address(self) -> str:
        """The VISA resource string a client opens."""
        return f"TCPIP0::{self.host}::{self.port}::SOCKET"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                self.instrument.queue_error(ScpiError(-223, "Too much data"))
                break
            if not line:
                break
            text = line.decode("latin-1").rstrip("\r\n")
            response = self.instrument.handle_message(text)
            if response is not None:
                writer.write(response)
                await writer.drain()
