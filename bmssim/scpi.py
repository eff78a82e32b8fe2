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
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bmssim.scpi_errors import ESR_CME as ESR_CME
from bmssim.scpi_errors import ESR_DDE as ESR_DDE
from bmssim.scpi_errors import ESR_EXE as ESR_EXE
from bmssim.scpi_errors import (
    ESR_OPC,
    ESR_PON,
    STB_EAV,
    STB_ESB,
    STB_MAV,
    STB_MSS,
    STB_OPER,
    STB_QUES,
    ErrorQueue,
    ScpiError,
    esr_bit_for,
    missing_parameter,
    parameter_not_allowed,
    trigger_ignored,
    undefined_header,
)
from bmssim.scpi_errors import ESR_QYE as ESR_QYE
from bmssim.scpi_errors import ESR_RQC as ESR_RQC
from bmssim.scpi_errors import ESR_URQ as ESR_URQ
from bmssim.scpi_errors import data_out_of_range as data_out_of_range
from bmssim.scpi_errors import data_type_error as data_type_error
from bmssim.scpi_errors import illegal_parameter as illegal_parameter
from bmssim.scpi_errors import invalid_suffix as invalid_suffix
from bmssim.scpi_errors import settings_conflict as settings_conflict
from bmssim.scpi_parse import _CHANLIST_RE as _CHANLIST_RE
from bmssim.scpi_parse import _DEF_WORDS as _DEF_WORDS
from bmssim.scpi_parse import _KEYWORD_RE as _KEYWORD_RE
from bmssim.scpi_parse import _MAX_WORDS as _MAX_WORDS
from bmssim.scpi_parse import _MIN_WORDS as _MIN_WORDS
from bmssim.scpi_parse import _MULTIPLIERS as _MULTIPLIERS
from bmssim.scpi_parse import _NUMBER_RE as _NUMBER_RE
from bmssim.scpi_parse import Args, _match_nodes, _Node, _parse_pattern, split_outside
from bmssim.scpi_parse import is_channel_list as is_channel_list
from bmssim.scpi_parse import match_keyword as match_keyword
from bmssim.scpi_parse import parse_channel_list as parse_channel_list
from bmssim.scpi_parse import parse_number as parse_number
from bmssim.tcp import TcpServer

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Errors


# --------------------------------------------------------------------------------------------
# Header patterns


# --------------------------------------------------------------------------------------------
# Parameters


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
        self._lookup_cache: dict[tuple[tuple[str, ...], bool], tuple[Command, list]] = {}

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
        # A bench sends the same few headers thousands of times: each is matched against the
        # table once (the table does not change after construction).
        key = (tuple(tokens), query)
        found = self._lookup_cache.get(key)
        if found is None:
            found = self._lookup_cache[key] = self._match_table(tokens, query)
        return found[0], list(found[1])

    def _match_table(self, tokens: Sequence[str], query: bool) -> tuple[Command, list[int | None]]:
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
