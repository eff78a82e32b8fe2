"""Simulated Keysight InfiniiVision 3000T X-series scope (DSOX3024T) timing the BMS's FETs.

The scope does not sample anything itself: the World appends every change of the probed
signals to ``world.bench.trace`` (``(t_ms, signal, value)``), and the scope derives edges,
timings and waveforms from that record. Probe wiring of the simulated bench:

* ``CHANnel1`` = ``current`` (pack current in A, + = charging, - = discharging),
* ``CHANnel2`` = ``discharge_fet`` (1 = closed/conducting, 0 = open),
* ``CHANnel3`` = ``charge_fet``, ``CHANnel4`` = not connected (reads 0, no edges).

Edges (the simulator's definition, needed because a discharge current is negative): an edge
is a change of the recorded value; it is **rising** when the magnitude ``|value|`` increases
and **falling** when it decreases. So a discharge step from 0 to -250 A is a rising edge and
its interruption by the discharge FET (back to 0 A) is a falling edge; for the FET channels
(0/1) this is the usual sense. Several changes recorded in the same millisecond count as one
edge (the net change), like a glitch a scope cannot resolve. Timing resolution is 1 ms, the
resolution of the virtual clock.

Acquisition and time reference:

* ``:SINGle`` (and ``:DIGitize [CHANnel<n>[,...]]``) arms at ``world.clock.now_ms``; that
  instant is the trigger point (time 0) and the capture window is
  ``[armed - pre, armed - pre + :TIMebase:RANGe]`` with the pre-trigger time
  ``pre = f x RANGe - :TIMebase:POSition`` (``f`` = 0, 0.5, 1 for ``:TIMebase:REFerence``
  LEFT, CENTer, RIGHt). The simulator's reset state is ``REFerence LEFT``, ``POSition 0``:
  no pre-trigger, the window starts at the arm instant (a real 3000T resets to CENTer, and
  its LEFT reference sits one division in from the edge; the simulator puts it at the edge
  so that the harness, which only sets the range, captures what follows its trigger).
  Edges exactly at the arm instant count (the harness arms and then triggers the load at
  the same virtual instant). The acquisition completes
  when the clock reaches the end of the window (``:OPERegister:CONDition?`` bit 3 "Run"
  clears, ``:TER?`` answers ``+1`` once).
* ``:RUN``: the window is the last ``RANGe`` up to now, time 0 at ``pre`` into it. ``:STOP``
  freezes the current window.

Commands:

=================================================  ==============================================
``:SINGle``, ``:RUN``, ``:STOP``, ``:DIGitize``     acquisition control
``:TIMebase:RANGe <s>`` / ``:TIMebase:SCALe <s>``   full-scale window (10 divisions) / per division
``:MEASure:DEFine DELay,<[+|-]n>,<[+|-]m>``         edges used by ``:MEASure:DELay?`` (+ rising)
``:MEASure:DELay? [<src1>[,<src2>]]``               t(edge m on src2) - t(edge n on src1), seconds
``:MEASure:TEDGe? <[+|-]n>[,<src>]``                time of the nth edge from the trigger point
``:WAVeform:SOURce CHANnel<n>``                     waveform source
``:WAVeform:FORMat BYTE|WORD|ASCii``                data format (WORD: unsigned, MSB first unless
                                                    ``:WAVeform:BYTeorder LSBFirst``)
``:WAVeform:POINts:MODE NORMal|MAXimum|RAW``        stored, all modes return the same record
``:WAVeform:POINts <n>``                            requested points (100 .. 8 000 000)
``:WAVeform:PREamble?``                             format,type,points,count,xincrement,xorigin,
                                                    xreference,yincrement,yorigin,yreference
``:WAVeform:DATA?``                                 ``#8nnnnnnnn`` definite-length block; ASCii
                                                    data is comma-separated NR3 inside the block,
                                                    as on the real scopes
``:WAVeform:X|Y INCrement|ORigin|REFerence?``       single preamble fields
``:TER?``, ``:OPERegister:CONDition?``              acquisition done / running
=================================================  ==============================================

Missing edges answer ``+9.90000000E+37`` (the InfiniiVision "no measurement" value).
Waveforms: ``points = max(requested, ceil(range in ms))`` (at most 1 000 000) so the sample
spacing is 1 ms or finer; sample k is the value in force at ``xorigin + k * xincrement``;
``value = (code - yreference) * yincrement + yorigin``. Samples of an incomplete window beyond
the present instant hold the present value.

What a generic driver sends (PyMeasure's ``KeysightDSOX1102G``, the InfiniiVision class
PyMeasure has, and the 3000T X-Series Programmer's Guide) beyond the harness's set; state
the sim has no model for (trigger conditions, bandwidth limit, coupling, acquisition type)
is stored, reported and saved in the setup, without effect on the traces:

=================================================  ==============================================
``:TIMebase?``                                      ``:TIM:MODE MAIN;REF LEFT;MAIN:RANG <r>;``
                                                    ``POS <p>``
``:TIMebase:MODE MAIN|WINDow|XY|ROLL``              stored; query
``:TIMebase:REFerence LEFT|CENTer|RIGHt``           moves the window (above); query
``:TIMebase:POSition <s>``                          trigger to reference (above); query
``:TIMebase:VERNier ON|OFF``                        stored; query
``:CHANnel<n>?``                                    ``:CHAN1:RANG <r>;OFFS <o>;COUP DC;IMP ONEM;
                                                    DISP 1;BWL 0;INV 0;LAB "1";UNIT AMP;PROB <p>;
                                                    PROB:SKEW <s>;STYP SING``
``:CHANnel<n>:SCALe|RANGe <v>``                     per division / full scale (8 div); kept
                                                    within 1 mV..5 V/div x probe; queries
``:CHANnel<n>:OFFSet <v>``                          centre of screen; kept within +-2 V (below
                                                    200 mV/div) or +-40 V, x probe; query
``:CHANnel<n>:DISPlay|BWLimit|INVert|VERNier``      booleans; ``INVert`` inverts the waveform
``:CHANnel<n>:COUPling AC|DC``, ``:IMPedance``      ``ONEMeg|FIFTy``; queries
``ONEMeg|FIFTy``, ``:UNITs VOLT|AMPere``
``:CHANnel<n>:LABel "<text>"``                      upper case, at most 10 characters; query
``:CHANnel<n>:PROBe <0.1..10000>``                  probe ratio; scale and offset follow it
``:CHANnel<n>:PROBe:SKEW <s>``, ``:PROBe:STYPe?``   skew (+-100 ns); ``SING``
``:ACQuire:TYPE NORMal|AVERage|HRESolution|PEAK``   stored; the preamble's type field follows
``:ACQuire:MODE RTIMe|SEGMented``, ``:COUNt <n>``   stored (count 2..65536); queries
``:ACQuire:SRATe?``, ``:ACQuire:POINts?``           record points / range; record points
``:TRIGger:MODE EDGE|GLITch|...|SBUS<n>``           stored; query
``:TRIGger:SWEep AUTO|NORMal``                      stored; query
``:TRIGger[:EDGE]:SOURce CHANnel<n>|EXTernal|``     stored; query (``CHAN1``, ``EXT``, ...)
``LINE|WGEN``
``:TRIGger[:EDGE]:LEVel <v>[,<source>]``            per source; ``:TRIGger:LEVel:ASETup`` puts
                                                    it half way up the source's recorded range
``:TRIGger[:EDGE]:SLOPe POSitive|NEGative|``        stored; ``:COUPling AC|DC|LFReject`` too
``EITHer|ALTernate``
``:TRIGger:HOLDoff <s>``, ``:NREJect``,             stored; ``:TRIGger:FORCe`` is accepted (the
``:HFReject``, ``:FORCe``                           sim triggers at the arm instant anyway)
``:WAVeform:TYPE?``, ``:WAVeform:COUNt?``           acquisition type, 1 (average count)
``:SYSTem:SETup?`` / ``:SYSTem:SETup <block>``      the whole setup as a ``#8`` definite-length
                                                    block (a JSON text here, opaque binary on the
                                                    real scope); a block it gave restores it;
                                                    anything else is -161 / -224, nothing changes
``*LRN?``                                           ``:SYST:SET <block>``
``:SYSTem:PRESet``, ``*RST``                        default setup
``:AUToscale``                                      displays the wired channels scaled to their
                                                    recorded range, ``POSition 0``, ``MAIN``, runs
``:DISPlay:DATA? [PNG|BMP|BMP8bit][,COLor|``        a screen picture (800 x 480, graticule and
``GRAYscale]``                                      the displayed channels' traces with their
                                                    scale, offset and inversion) in a ``#8`` block;
                                                    default BMP, COLor
=================================================  ==============================================

``*OPT?`` (IEEE 488.2 part from :mod:`bmssim.scpi`): the InfiniiVision X-Series programmer's
guides give the return format ``0,0,<license info>``, one comma-separated field per licence,
``0`` when the licence is not installed or the licence's name when it is. The simulated
DSOX3024T has no licence installed, so it answers ``0,0`` and a ``0`` per field of
:data:`LICENSE_FIELDS`. The field list follows our reading of the 3000T X-Series
Programmer's Guide; the page could not be retrieved while writing this, so the number of
fields is unverified (a driver that parses names rather than positions is unaffected).
``*TST?`` answers ``0`` (self-test passed).
"""

from __future__ import annotations

from bmssim.instruments import WorldInstrument, WorldLike, reset_in_place
from bmssim.instruments.infiniivision_channels import ScopeChannels
from bmssim.instruments.infiniivision_screen import _AXIS as _AXIS
from bmssim.instruments.infiniivision_screen import _GRID as _GRID
from bmssim.instruments.infiniivision_screen import _PALETTE as _PALETTE
from bmssim.instruments.infiniivision_screen import _TRACE0 as _TRACE0
from bmssim.instruments.infiniivision_screen import SCREEN_H as SCREEN_H
from bmssim.instruments.infiniivision_screen import SCREEN_W as SCREEN_W
from bmssim.instruments.infiniivision_screen import (
    ScopeScreen,
)
from bmssim.instruments.infiniivision_screen import _bmp as _bmp
from bmssim.instruments.infiniivision_screen import _png as _png
from bmssim.instruments.infiniivision_setup import _EDGE_RE as _EDGE_RE
from bmssim.instruments.infiniivision_setup import _FORMAT_CODES as _FORMAT_CODES
from bmssim.instruments.infiniivision_setup import _SOURCE_RE as _SOURCE_RE
from bmssim.instruments.infiniivision_setup import ACQUIRE_TYPE_CODES as ACQUIRE_TYPE_CODES
from bmssim.instruments.infiniivision_setup import (
    ANALOG_CHANNELS,
    DEFAULT_POINTS,
    REFERENCE_FRACTION,
    TRIGGER_MODES,
    ScopeSetup,
    ScopeSetupStore,
    parse_source,
)
from bmssim.instruments.infiniivision_setup import DIVISIONS_X as DIVISIONS_X
from bmssim.instruments.infiniivision_setup import DIVISIONS_Y as DIVISIONS_Y
from bmssim.instruments.infiniivision_setup import LABEL_MAX as LABEL_MAX
from bmssim.instruments.infiniivision_setup import NO_MEASUREMENT as NO_MEASUREMENT
from bmssim.instruments.infiniivision_setup import OFFSET_LARGE_V as OFFSET_LARGE_V
from bmssim.instruments.infiniivision_setup import OFFSET_SMALL_V as OFFSET_SMALL_V
from bmssim.instruments.infiniivision_setup import POINTS_MAX as POINTS_MAX
from bmssim.instruments.infiniivision_setup import POINTS_MIN as POINTS_MIN
from bmssim.instruments.infiniivision_setup import POINTS_RETURNED_MAX as POINTS_RETURNED_MAX
from bmssim.instruments.infiniivision_setup import PROBE_MAX as PROBE_MAX
from bmssim.instruments.infiniivision_setup import PROBE_MIN as PROBE_MIN
from bmssim.instruments.infiniivision_setup import SCALE_MAX_V as SCALE_MAX_V
from bmssim.instruments.infiniivision_setup import SCALE_MIN_V as SCALE_MIN_V
from bmssim.instruments.infiniivision_setup import SETUP_VERSION as SETUP_VERSION
from bmssim.instruments.infiniivision_setup import SIGNALS as SIGNALS
from bmssim.instruments.infiniivision_setup import TIMEBASE_MAX_S as TIMEBASE_MAX_S
from bmssim.instruments.infiniivision_setup import TIMEBASE_MIN_S as TIMEBASE_MIN_S
from bmssim.instruments.infiniivision_setup import TRIGGER_OTHER_SOURCES as TRIGGER_OTHER_SOURCES
from bmssim.instruments.infiniivision_setup import ChannelSetup as ChannelSetup
from bmssim.instruments.infiniivision_setup import _default_channels as _default_channels
from bmssim.instruments.infiniivision_setup import _default_levels as _default_levels
from bmssim.instruments.infiniivision_setup import format_edge as format_edge
from bmssim.instruments.infiniivision_setup import nice_scale as nice_scale
from bmssim.instruments.infiniivision_setup import parse_block as parse_block
from bmssim.instruments.infiniivision_setup import parse_edge as parse_edge
from bmssim.instruments.infiniivision_setup import parse_string as parse_string
from bmssim.instruments.infiniivision_trigger import ScopeTimebaseTrigger
from bmssim.instruments.infiniivision_waveform import ScopeWaveform
from bmssim.scpi import (
    Args,
    Command,
    definite_block,
    format_float,
)
from bmssim.state import ScopeState

MANUFACTURER = "KEYSIGHT TECHNOLOGIES"
MODEL = "DSOX3024T"
IDN = f"{MANUFACTURER},{MODEL},MY00000001,07.50.2021102830"

#: Licence fields of the ``*OPT?`` answer after its leading ``0,0`` (see the docstring).
LICENSE_FIELDS = (
    "all", "reserved", "MSO", "memory", "low-speed serial", "automotive serial",
    "FlexRay serial", "power measurements", "RS-232/UART serial", "segmented memory",
    "mask test", "reserved", "audio serial", "educator's kit", "WaveGen",
    "MIL-STD 1553/ARINC 429", "DVM", "remote command logging", "advanced math", "bandwidth",
)  # fmt: skip
OPTIONS = ",".join(["0", "0", *("0" for _ in LICENSE_FIELDS)])


# --------------------------------------------------------------------------------------------
# Setup state the World does not need (ScopeState holds what the harness path uses)


# --------------------------------------------------------------------------------------------
# Screen pictures


# --------------------------------------------------------------------------------------------


class KeysightInfiniiVision(
    ScopeWaveform,
    ScopeChannels,
    ScopeTimebaseTrigger,
    ScopeSetupStore,
    ScopeScreen,
    WorldInstrument,
):
    """InfiniiVision-dialect scope reading ``world.bench.trace`` into ``world.bench.scope``."""

    options = OPTIONS

    def __init__(self, world: WorldLike, idn: str = IDN) -> None:
        self.idn = idn
        self.waveform_points = DEFAULT_POINTS
        self.byte_order_msb = True
        self._ter_pending = False
        self.setup = ScopeSetup()
        super().__init__(world)

    @property
    def state(self) -> ScopeState:
        return self.world.bench.scope

    @property
    def now_ms(self) -> int:
        return self.world.clock.now_ms

    # Acquisition ---------------------------------------------------------------------------
    @property
    def range_ms(self) -> float:
        return self.state.timebase_range_s * 1000.0

    @property
    def pretrigger_ms(self) -> float:
        """Capture time before the trigger point: reference fraction x range - position."""
        fraction = REFERENCE_FRACTION[self.setup.timebase_reference]
        return fraction * self.range_ms - self.setup.timebase_position_s * 1000.0

    def window_ms(self) -> tuple[float, float, float]:
        """(start, end, time-zero) of the capture window, in virtual ms."""
        pre = self.pretrigger_ms
        if self.state.armed_ms is not None:
            zero = float(self.state.armed_ms)
            return zero - pre, zero - pre + self.range_ms, zero
        end = float(self.now_ms)
        start = end - self.range_ms
        return start, end, start + pre

    def _update_acquired(self) -> None:
        s = self.state
        if s.armed_ms is not None and not s.acquired:
            _start, end, _zero = self.window_ms()
            if self.now_ms >= end:
                s.acquired = True
                self._ter_pending = True

    def _arm(self, _: Args) -> None:
        s = self.state
        s.running = False
        s.armed_ms = self.now_ms
        s.acquired = False
        self._ter_pending = False
        self._update_acquired()  # a window that ends by now is complete at once

    def _digitize(self, args: Args) -> None:
        for i in range(len(args.params)):
            parse_source(args.raw(i))
        self._arm(args)

    def _run(self, _: Args) -> None:
        s = self.state
        s.running = True
        s.armed_ms = None
        s.acquired = False

    def _stop(self, _: Args) -> None:
        s = self.state
        if s.running:
            s.armed_ms = round(self.now_ms - self.range_ms + self.pretrigger_ms)
            s.acquired = True
        s.running = False

    def _ter(self, _: Args) -> str:
        self._update_acquired()
        done, self._ter_pending = self._ter_pending, False
        return "+1" if done else "+0"

    def _operation_condition(self, _: Args) -> str:
        self._update_acquired()
        s = self.state
        running = s.running or (s.armed_ms is not None and not s.acquired)
        return f"+{8 if running else 0}"

    _STATE_FIELDS = ("timebase_range_s", "delay_edges", "waveform_source", "waveform_format")
    _STATE_FIELDS += ("waveform_points_mode",)

    # Table ---------------------------------------------------------------------------------
    def commands(self) -> list[Command]:
        s = self.state_proxy
        trig = ":TRIGger[:EDGE]"
        return [
            Command(":SINGle", self._arm),
            Command(":DIGitize", self._digitize, params=(0, ANALOG_CHANNELS)),
            Command(":RUN", self._run),
            Command(":STOP", self._stop),
            Command(":TER?", self._ter),
            Command(":OPERegister:CONDition?", self._operation_condition),
            Command(":AUToscale", self._autoscale, params=(0, ANALOG_CHANNELS)),
            Command(":TIMebase?", lambda _: self.timebase_setup()),
            Command(
                ":TIMebase:RANGe",
                lambda a: s("timebase_range_s", self._timebase(a, 1.0)),
                params=(1, 1),
            ),
            Command(":TIMebase:RANGe?", lambda _: format_float(self.state.timebase_range_s)),
            Command(
                ":TIMebase:SCALe",
                lambda a: s("timebase_range_s", self._timebase(a, 10.0)),
                params=(1, 1),
            ),
            Command(":TIMebase:SCALe?", lambda _: format_float(self.state.timebase_range_s / 10.0)),
            *self._setting(":TIMebase:MODE", "timebase_mode", ("MAIN", "WINDow", "XY", "ROLL")),
            *self._setting(
                ":TIMebase:REFerence", "timebase_reference", ("LEFT", "CENTer", "RIGHt")
            ),
            Command(":TIMebase:POSition", self._set_position, params=(1, 1)),
            Command(":TIMebase:POSition?", lambda _: format_float(self.setup.timebase_position_s)),
            *self._boolean(":TIMebase:VERNier", "timebase_vernier"),
            *self._channel_commands(),
            *self._setting(
                ":ACQuire:TYPE", "acquire_type", ("NORMal", "AVERage", "HRESolution", "PEAK")
            ),
            *self._setting(":ACQuire:MODE", "acquire_mode", ("RTIMe", "SEGMented")),
            Command(":ACQuire:COUNt", self._set_count, params=(1, 1)),
            Command(":ACQuire:COUNt?", lambda _: f"{self.setup.acquire_count:+d}"),
            Command(":ACQuire:SRATe?", self._sample_rate),
            Command(":ACQuire:POINts?", lambda _: f"{self._points():+d}"),
            *self._setting(":TRIGger:MODE", "trigger_mode", TRIGGER_MODES),
            *self._setting(":TRIGger:SWEep", "trigger_sweep", ("AUTO", "NORMal")),
            Command(
                trig + ":SOURce",
                lambda a: setattr(self.setup, "trigger_source", self._trigger_source(a.raw(0))),
                params=(1, 1),
            ),
            Command(trig + ":SOURce?", lambda _: self.setup.trigger_source),
            Command(trig + ":LEVel", self._set_level, params=(1, 2)),
            Command(trig + ":LEVel?", self._get_level, params=(0, 1)),
            Command(":TRIGger:LEVel:ASETup", self._level_autosetup),
            *self._setting(
                trig + ":SLOPe", "trigger_slope", ("POSitive", "NEGative", "EITHer", "ALTernate")
            ),
            *self._setting(trig + ":COUPling", "trigger_coupling", ("AC", "DC", "LFReject")),
            Command(":TRIGger:HOLDoff", self._set_holdoff, params=(1, 1)),
            Command(":TRIGger:HOLDoff?", lambda _: format_float(self.setup.trigger_holdoff_s)),
            *self._boolean(":TRIGger:NREJect", "trigger_nreject"),
            *self._boolean(":TRIGger:HFReject", "trigger_hfreject"),
            Command(":TRIGger:FORCe", lambda _: None),
            Command(":MEASure:DEFine", self._define, params=(3, 3)),
            Command(":MEASure:DEFine?", self._define_query, params=(1, 1)),
            Command(":MEASure:DELay?", self._delay, params=(0, 2)),
            Command(":MEASure:TEDGe?", self._tedge, params=(1, 2)),
            Command(
                ":WAVeform:SOURce",
                lambda a: s("waveform_source", parse_source(a.raw(0))),
                params=(1, 1),
            ),
            Command(":WAVeform:SOURce?", lambda _: f"CHAN{self.state.waveform_source}"),
            Command(
                ":WAVeform:FORMat",
                lambda a: s("waveform_format", a.keyword(0, ("BYTE", "WORD", "ASCii"))),
                params=(1, 1),
            ),
            Command(":WAVeform:FORMat?", lambda _: self.state.waveform_format),
            Command(
                ":WAVeform:POINts:MODE",
                lambda a: s("waveform_points_mode", a.keyword(0, ("NORMal", "MAXimum", "RAW"))),
                params=(1, 1),
            ),
            Command(":WAVeform:POINts:MODE?", lambda _: self.state.waveform_points_mode),
            Command(":WAVeform:POINts", self._set_points, params=(1, 1)),
            Command(":WAVeform:POINts?", lambda _: f"{self._points():+d}"),
            Command(
                ":WAVeform:BYTeorder",
                lambda a: setattr(
                    self, "byte_order_msb", a.keyword(0, ("MSBFirst", "LSBFirst")) == "MSBF"
                ),
                params=(1, 1),
            ),
            Command(":WAVeform:BYTeorder?", lambda _: "MSBF" if self.byte_order_msb else "LSBF"),
            Command(":WAVeform:PREamble?", lambda _: ",".join(self.preamble())),
            Command(":WAVeform:DATA?", self._data),
            Command(":WAVeform:TYPE?", lambda _: self.setup.acquire_type),
            Command(":WAVeform:COUNt?", lambda _: f"{self._waveform_count():+d}"),
            *(self._preamble_field(i) for i in range(4, 10)),
            Command(":SYSTem:SETup?", lambda _: definite_block(self.setup_data())),
            Command(":SYSTem:SETup", self._restore_setup, params=(1, 1)),
            Command("*LRN?", lambda _: b":SYST:SET " + definite_block(self.setup_data())),
            Command(":SYSTem:PRESet", lambda _: self.reset()),
            Command(":DISPlay:DATA?", self._display_data, params=(0, 2)),
        ]

    def state_proxy(self, name: str, value: object) -> None:
        """Assign one ScopeState field (lets the table's one-line handlers stay lambdas)."""
        setattr(self.state, name, value)

    def reset(self) -> None:
        reset_in_place(self.state)
        self.setup = ScopeSetup()
        self.waveform_points = DEFAULT_POINTS
        self.byte_order_msb = True
        self._ter_pending = False
