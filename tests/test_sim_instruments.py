"""The simulated instruments speak their dialects and act on the bench state.

Each instrument is driven against a fake world (the ``WorldLike`` protocol), so these tests
pin the SCPI surface and the state it writes without depending on the physical model; one
test serves an instrument on a real loopback socket and talks to it through pyvisa-py, the
path the harness uses.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import zlib
from collections.abc import Iterator

import pytest

from bmssim.instruments import WorldLike
from bmssim.instruments.bloomy_abs import BloomyAbs
from bmssim.instruments.itech_it8500 import ItechIt8500
from bmssim.instruments.keysight_infiniivision import KeysightInfiniiVision
from bmssim.instruments.keysight_n5700 import KeysightN5700
from bmssim.instruments.resistor_module import ResistorModule
from bmssim.scpi import ScpiInstrument, ScpiServer
from bmssim.state import BenchState


class FakeClock:
    def __init__(self) -> None:
        self.now_ms = 0


class FakeWorld:
    """Just enough world: fixed measurements, counters for settle and load triggers."""

    def __init__(self) -> None:
        self.bench = BenchState()
        self.clock = FakeClock()
        self.settles = 0
        self.load_triggers: list[int] = []
        self.port_v = 52.8
        self.supply_a = 10.0
        self.load_a = 20.0

    def settle(self) -> None:
        self.settles += 1

    def trigger_load(self) -> None:
        self.load_triggers.append(self.clock.now_ms)

    def supply_current_a(self) -> float:
        return self.supply_a

    def load_current_a(self) -> float:
        return self.load_a

    def port_voltage_v(self) -> float:
        return self.port_v

    def pack_voltage_v(self) -> float:
        return sum(c.voltage_set_v for c in self.bench.cells)

    def cell_current_a(self, index: int) -> float:
        return 0.001 * index


def ask(inst: ScpiInstrument, message: str) -> str:
    answer = inst.handle_message(message)
    assert answer is not None, f"{message!r} gave no answer"
    return answer.decode("latin-1").rstrip("\n")


def ok(inst: ScpiInstrument, message: str) -> None:
    """Send a setting and require that it queued no error."""
    assert inst.handle_message(message) is None
    assert ask(inst, "SYST:ERR?") == '0,"No error"', message


def error(inst: ScpiInstrument) -> int:
    return int(ask(inst, "SYST:ERR?").split(",")[0])


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


def test_fake_world_satisfies_the_protocol(world: FakeWorld) -> None:
    typed: WorldLike = world  # a type checker rejects this if the fake drifts
    assert typed.clock.now_ms == 0


# -- N5700 supply ------------------------------------------------------------------------------


def test_supply_identity_setpoints_and_readback(world: FakeWorld) -> None:
    psu = KeysightN5700(world)
    assert ask(psu, "*IDN?") == "Agilent Technologies,N5767A,US00000001,D.01.09"
    ok(psu, "VOLT 52.0;CURR 10")
    assert world.bench.supply.voltage_set_v == 52.0
    assert world.bench.supply.current_limit_a == 10.0
    assert float(ask(psu, "VOLT?")) == 52.0
    assert float(ask(psu, "SOUR:CURR:LEV:IMM:AMPL?")) == 10.0
    ok(psu, "OUTP 1")
    assert world.bench.supply.output is True
    assert ask(psu, "OUTP?") == "1"
    assert [float(x) for x in ask(psu, "MEAS:VOLT?;MEAS:CURR?").split(";")] == [52.8, 10.0]
    assert world.settles >= 3


def test_supply_refuses_setpoint_above_ovp_over_1_05(world: FakeWorld) -> None:
    psu = KeysightN5700(world)
    ok(psu, "VOLT:PROT:LEV 58")
    ok(psu, "VOLT 55.2")  # 55.2 * 1.05 = 57.96 <= 58
    psu.handle_message("VOLT 55.3")
    assert error(psu) == -222
    assert world.bench.supply.voltage_set_v == 55.2
    psu.handle_message("VOLT:PROT:LEV 57")  # below 1.05 x the 55.2 V setpoint
    assert error(psu) == -222
    assert world.bench.supply.ovp_level_v == 58.0
    assert float(ask(psu, "VOLT? MAX")) == pytest.approx(58 / 1.05)


def test_supply_ratings_reach_the_bench_envelope(world: FakeWorld) -> None:
    psu = KeysightN5700(world)
    ok(psu, "VOLT:PROT:LEV MAX")
    assert world.bench.supply.ovp_level_v == pytest.approx(71.5)
    ok(psu, "VOLT 65;CURR 120")
    psu.handle_message("CURR 200")
    assert error(psu) == -222
    assert world.bench.supply.current_limit_a == 120.0


def test_supply_protection_latch_and_clear(world: FakeWorld) -> None:
    psu = KeysightN5700(world)
    ok(psu, "CURR:PROT:STAT ON")
    assert world.bench.supply.ocp_enabled is True
    assert ask(psu, "CURR:PROT:STAT?") == "1"
    world.bench.supply.protection_tripped = True  # the World latched an OCP
    assert ask(psu, "STAT:QUES:COND?") == "2"
    psu.handle_message("OUTP ON")
    assert error(psu) == -221
    assert world.bench.supply.output is False
    ok(psu, "OUTP:PROT:CLE;OUTP ON")
    assert world.bench.supply.protection_tripped is False
    assert world.bench.supply.output is True


def test_supply_reset_keeps_the_state_object(world: FakeWorld) -> None:
    psu = KeysightN5700(world)
    supply = world.bench.supply
    ok(psu, "VOLT 40;OUTP 1")
    ok(psu, "*RST")
    assert world.bench.supply is supply
    assert (supply.voltage_set_v, supply.output, supply.ovp_level_v) == (0.0, False, 66.0)


# -- IT8500+ load ----------------------------------------------------------------------------


def test_load_cc_and_input(world: FakeWorld) -> None:
    load = ItechIt8500(world)
    assert ask(load, "*IDN?").startswith("ITECH Ltd.,IT8512+,")
    ok(load, "SYST:REM;FUNC CURR;CURR 20;INP ON")
    state = world.bench.load
    assert (state.remote, state.function, state.current_set_a, state.input_on) == (
        True,
        "CURR",
        20.0,
        True,
    )
    assert ask(load, "INP?;CURR?;FUNC?") == "1;+2.00000000E+01;CURR"
    assert [float(x) for x in ask(load, "MEAS:VOLT?;MEAS:CURR?").split(";")] == [52.8, 20.0]
    ok(load, "INP OFF")
    assert state.input_on is False
    load.handle_message("CURR 300.1")
    assert error(load) == -222
    ok(load, "CURR 300")


def test_load_transient_settings_with_units(world: FakeWorld) -> None:
    load = ItechIt8500(world)
    ok(load, "CURR:TRAN:MODE PULS;CURR:TRAN:ALEV 5;CURR:TRAN:BLEV 250")
    ok(load, "CURR:TRAN:AWID 1;CURR:TRAN:BWID 40 ms;CURR:SLEW MAX")
    state = world.bench.load
    assert state.transient_mode == "PULS"
    assert (state.transient_a_a, state.transient_b_a) == (5.0, 250.0)
    assert (state.transient_a_width_s, state.transient_b_width_s) == (1.0, pytest.approx(0.04))
    assert state.slew_a_per_us == 10.0
    ok(load, "CURR:SLEW:POS 2.5")
    assert float(ask(load, "CURR:SLEW:NEG?")) == 2.5
    ok(load, "CURR:TRAN:MODE TOGGle")
    assert ask(load, "CURR:TRAN:MODE?") == "TOGG"
    load.handle_message("CURR:TRAN:MODE SINE")
    assert error(load) == -224


def test_load_bus_trigger_starts_the_transient(world: FakeWorld) -> None:
    load = ItechIt8500(world)
    ok(load, "TRIG:SOUR BUS")
    load.handle_message("*TRG")  # transient off: nothing to trigger
    assert error(load) == -211
    assert world.load_triggers == []
    world.clock.now_ms = 1234
    ok(load, "TRAN ON;*TRG")
    ok(load, "TRIG")
    assert world.load_triggers == [1234, 1234]
    ok(load, "TRIG:SOUR EXT")
    load.handle_message("*TRG")
    assert error(load) == -211
    assert len(world.load_triggers) == 2


def test_load_immediate_source_starts_on_tran_on_and_tran_off_ends_it(world: FakeWorld) -> None:
    load = ItechIt8500(world)
    ok(load, "TRIG:SOUR IMM;TRAN ON")
    assert world.load_triggers == [0]
    world.bench.load.transient_started_ms = 0  # what the World does on trigger_load
    ok(load, "TRAN OFF")
    assert world.bench.load.transient_started_ms is None
    assert ask(load, "TRAN?;TRIG:SOUR?") == "0;IMM"


# -- Bloomy ABS ------------------------------------------------------------------------------


def test_abs_units_address_their_own_cells(world: FakeWorld) -> None:
    unit_a, unit_b = BloomyAbs(world, offset=0), BloomyAbs(world, offset=8)
    ok(unit_a, "SOUR3:VOLT 3.4")
    ok(unit_b, "SOUR3:VOLT 2.9")
    cells = world.bench.cells
    assert (cells[2].voltage_set_v, cells[10].voltage_set_v) == (3.4, 2.9)
    assert float(ask(unit_b, "SOUR3:VOLT?")) == 2.9
    assert ask(unit_a, "*IDN?") != ask(unit_b, "*IDN?")
    assert float(ask(unit_b, "MEAS2:CURR?")) == pytest.approx(0.009)  # cell index 9


def test_abs_channel_lists(world: FakeWorld) -> None:
    unit = BloomyAbs(world, offset=8)
    ok(unit, "SOUR:VOLT 3.25,(@1:8)")
    assert [c.voltage_set_v for c in world.bench.cells[8:]] == [3.25] * 8
    assert [c.voltage_set_v for c in world.bench.cells[:8]] == [3.3] * 8
    ok(unit, "OUTP 0,(@2,4)")
    assert [c.output for c in world.bench.cells[8:12]] == [True, False, True, False]
    volts = [float(x) for x in ask(unit, "MEAS:VOLT? (@1:4)").split(",")]
    assert volts == [3.25, 0.0, 3.25, 0.0]
    assert ask(unit, "OUTP? (@1:3)") == "1,0,1"
    unit.handle_message("SOUR:VOLT 3.3,(@1:9)")
    assert error(unit) == -222
    assert world.bench.cells[8].voltage_set_v == 3.25


def test_abs_limits_faults_and_ranges(world: FakeWorld) -> None:
    unit = BloomyAbs(world)
    ok(unit, "SOUR2:CURR:SRC 1.5;SOUR2:CURR:SNK 500 mA")
    assert (world.bench.cells[1].source_limit_a, world.bench.cells[1].sink_limit_a) == (1.5, 0.5)
    ok(unit, "OUTP5:FAUL OPEN")
    assert world.bench.cells[4].fault == "OPEN"
    assert ask(unit, "OUTP5:FAUL?") == "OPEN"
    ok(unit, "OUTP6:FAUL SHORT")
    assert float(ask(unit, "MEAS6:VOLT?")) == 0.0
    ok(unit, "OUTP5:FAUL NONE")
    assert world.bench.cells[4].fault == "NONE"
    for bad in ("SOUR1:VOLT 5.01", "SOUR1:CURR:SRC 6", "SOUR1:VOLT -0.1"):
        unit.handle_message(bad)
        assert error(unit) == -222, bad
    unit.handle_message("OUTP1:FAUL MELTED")
    assert error(unit) == -224
    unit.handle_message("SOUR9:VOLT 3")
    assert error(unit) == -114
    assert world.bench.cells[0].voltage_set_v == 3.3


def test_abs_reset_touches_only_its_unit(world: FakeWorld) -> None:
    unit_a, unit_b = BloomyAbs(world, 0), BloomyAbs(world, 8)
    ok(unit_a, "SOUR:VOLT 2.5,(@1:8)")
    ok(unit_b, "SOUR:VOLT 2.5,(@1:8)")
    ok(unit_a, "*RST")
    assert [c.voltage_set_v for c in world.bench.cells] == [3.3] * 8 + [2.5] * 8


# -- resistor module -------------------------------------------------------------------------


def test_resistor_module(world: FakeWorld) -> None:
    res = ResistorModule(world)
    assert ask(res, "*IDN?") == "bms-hil,RES6,0001,1.0"
    ok(res, "SOUR:RES 28.7 kOHM,(@1)")
    ok(res, "RES 4850,(@5,6)")
    assert [r.ohms for r in world.bench.ntc] == [28700.0, 1e4, 1e4, 1e4, 4850.0, 4850.0]
    assert [float(x) for x in ask(res, "SOUR:RES? (@1,5)").split(",")] == [28700.0, 4850.0]
    ok(res, "OUTP:STAT OPEN,(@2);OUTP:STAT SHORT,(@3)")
    assert ask(res, "OUTP:STAT? (@1:3)") == "NORMAL,OPEN,SHORT"
    ok(res, "OUTP:STAT NORMAL,(@2)")
    assert world.bench.ntc[1].state == "NORMAL"
    res.handle_message("SOUR:RES 1.1 MOHM,(@1)")
    assert error(res) == -222
    res.handle_message("SOUR:RES 100,(@7)")
    assert error(res) == -222
    res.handle_message("SOUR:RES 100")
    assert error(res) == -109
    assert world.bench.ntc[0].ohms == 28700.0
    ok(res, "*RST")
    assert all(r.ohms == 1e4 and r.state == "NORMAL" for r in world.bench.ntc)


# -- InfiniiVision scope ---------------------------------------------------------------------


@pytest.fixture
def transient_trip(world: FakeWorld) -> FakeWorld:
    """A 250 A discharge step at t=1000 ms interrupted by the discharge FET at 1030 ms."""
    trace = world.bench.trace
    trace.record(0, "current", 0.0)
    trace.record(0, "discharge_fet", 1.0)
    trace.record(0, "charge_fet", 1.0)
    trace.record(500, "current", -5.0)  # before the arm: not in the capture
    trace.record(600, "current", 0.0)
    world.clock.now_ms = 1000
    return world


def test_scope_delay_between_current_step_and_fet_opening(transient_trip: FakeWorld) -> None:
    world = transient_trip
    scope = KeysightInfiniiVision(world)
    assert ask(scope, "*IDN?") == "KEYSIGHT TECHNOLOGIES,DSOX3024T,MY00000001,07.50.2021102830"
    ok(scope, ":TIM:RANG 0.2;:SING")
    assert world.bench.scope.armed_ms == 1000
    # The harness triggers the load at the arm instant; the World records what follows.
    world.bench.trace.record(1000, "current", -250.0)
    world.bench.trace.record(1030, "current", 0.0)
    world.bench.trace.record(1030, "discharge_fet", 0.0)
    world.clock.now_ms = 1300
    ok(scope, ":MEAS:DEF DEL,+1,-1")
    assert ask(scope, ":MEAS:DEF? DEL") == "+1,-1"
    assert float(ask(scope, ":MEAS:DEL? CHAN1,CHAN2")) == pytest.approx(0.030)
    assert float(ask(scope, ":MEASure:DELay? CHANnel1,CHANnel1")) == pytest.approx(0.030)
    assert float(ask(scope, ":MEAS:TEDG? +1,CHAN1")) == 0.0
    assert float(ask(scope, ":MEAS:TEDG? -1,CHAN2")) == pytest.approx(0.030)
    # No rising edge on the FET channel, no second falling edge on the current.
    assert float(ask(scope, ":MEAS:TEDG? +1,CHAN2")) == 9.9e37
    assert float(ask(scope, ":MEAS:TEDG? -2,CHAN1")) == 9.9e37
    ok(scope, ":MEAS:DEF DEL,+1,+1")
    assert float(ask(scope, ":MEAS:DEL? CHAN1,CHAN2")) == 9.9e37


def test_scope_edges_outside_the_window_do_not_count(transient_trip: FakeWorld) -> None:
    world = transient_trip
    scope = KeysightInfiniiVision(world)
    ok(scope, ":TIM:RANG 20 ms;:SING")
    world.bench.trace.record(1010, "current", -250.0)
    world.bench.trace.record(1030, "current", 0.0)  # 30 ms after the arm, window is 20 ms
    world.clock.now_ms = 2000
    assert float(ask(scope, ":MEAS:TEDG? +1,CHAN1")) == pytest.approx(0.010)
    assert float(ask(scope, ":MEAS:TEDG? -1,CHAN1")) == 9.9e37


def test_scope_acquisition_status(transient_trip: FakeWorld) -> None:
    world = transient_trip
    scope = KeysightInfiniiVision(world)
    ok(scope, ":TIM:RANG 0.1;:SING")
    assert ask(scope, ":OPER:COND?;:TER?") == "+8;+0"
    world.clock.now_ms = 1100
    assert ask(scope, ":OPER:COND?;:TER?;:TER?") == "+0;+1;+0"
    assert world.bench.scope.acquired is True
    ok(scope, ":RUN")
    assert (world.bench.scope.running, world.bench.scope.armed_ms) == (True, None)
    assert ask(scope, ":OPER:COND?") == "+8"


def test_scope_waveform_byte_block_decodes_to_the_trace(transient_trip: FakeWorld) -> None:
    world = transient_trip
    scope = KeysightInfiniiVision(world)
    ok(scope, ":TIM:RANG 0.1;:SING")
    world.bench.trace.record(1020, "current", -250.0)
    world.bench.trace.record(1050, "current", 0.0)
    world.clock.now_ms = 1100
    ok(scope, ":WAV:SOUR CHAN1;:WAV:FORM BYTE;:WAV:POIN:MODE RAW;:WAV:POIN 100")
    pre = ask(scope, ":WAV:PRE?").split(",")
    assert len(pre) == 10
    fmt, _type, points, _count = (int(x) for x in pre[:4])
    xinc, xorigin, xref, yinc, yorigin, yref = (float(x) for x in pre[4:])
    assert (fmt, points) == (0, 100)
    assert xinc == pytest.approx(0.001)  # 100 ms over 100 points: 1 ms resolution
    answer = scope.handle_message(":WAV:DATA?")
    assert answer is not None
    assert answer[:2] == b"#8" and answer.endswith(b"\n")
    length = int(answer[2:10])
    codes = answer[10 : 10 + length]
    assert length == points == len(answer) - 11
    values = [(c - yref) * yinc + yorigin for c in codes]
    times = [(i - xref) * xinc + xorigin for i in range(points)]
    for t, v in zip(times, values, strict=True):
        expected = -250.0 if 0.020 <= t < 0.050 else 0.0
        assert v == pytest.approx(expected, abs=yinc), t


def test_scope_waveform_resolution_word_and_ascii(transient_trip: FakeWorld) -> None:
    world = transient_trip
    scope = KeysightInfiniiVision(world)
    ok(scope, ":TIM:RANG 2;:SING")
    world.bench.trace.record(1500, "discharge_fet", 0.0)
    world.clock.now_ms = 3000
    ok(scope, ":WAV:SOUR CHAN2;:WAV:POIN 100;:WAV:FORM WORD")
    assert int(ask(scope, ":WAV:POIN?")) == 2000  # raised so that spacing stays 1 ms
    answer = scope.handle_message(":WAV:DATA?")
    assert answer is not None
    codes = struct.unpack(">2000H", answer[10:-1])
    yinc, yorigin, yref = (float(ask(scope, f":WAV:{f}?")) for f in ("YINC", "YOR", "YREF"))
    assert (codes[499] - yref) * yinc + yorigin == pytest.approx(1.0, abs=yinc)
    assert (codes[500] - yref) * yinc + yorigin == pytest.approx(0.0, abs=yinc)
    ok(scope, ":WAV:FORM ASC")
    text = scope.handle_message(":WAV:DATA?")
    assert text is not None and text.startswith(b"#8")
    values = [float(x) for x in text[10:-1].split(b",")]
    assert values[:500] == [1.0] * 500 and values[500:] == [0.0] * 1500


def test_scope_errors(world: FakeWorld) -> None:
    scope = KeysightInfiniiVision(world)
    scope.handle_message(":WAV:SOUR CHAN9")
    assert error(scope) == -224
    scope.handle_message(":MEAS:DEF DEL,+1,x")
    assert error(scope) == -224
    scope.handle_message(":WAV:POIN 10")
    assert error(scope) == -222
    scope.handle_message(":TIM:RANG 1000")
    assert error(scope) == -222
    assert world.bench.scope.timebase_range_s == 0.5


# -- IEEE 488.2 on every instrument, and what generic drivers ask the scope ------------------


def every_instrument(world: FakeWorld) -> list[ScpiInstrument]:
    return [
        KeysightN5700(world),
        ItechIt8500(world),
        BloomyAbs(world, offset=0),
        ResistorModule(world),
        KeysightInfiniiVision(world),
    ]


def test_every_instrument_answers_the_mandatory_common_commands(world: FakeWorld) -> None:
    for inst in every_instrument(world):
        name = type(inst).__name__
        assert ask(inst, "*ESR?") == "128", name  # power-on
        assert ask(inst, "*ESE 32;*ESE?;*SRE 32;*SRE?") == "32;32", name
        inst.handle_message("BOGUS:HEADer")
        assert int(ask(inst, "*STB?")) == 0x04 | 0x20 | 0x40, name
        assert ask(inst, "*ESR?") == "32", name
        assert ask(inst, "*TST?;*OPC?") == "0;1", name
        ok(inst, "*CLS;*OPC;*WAI")
        assert ask(inst, "*ESR?") == "1", name
        assert ask(inst, "*OPT?"), name


def test_options_answer_per_model(world: FakeWorld) -> None:
    assert ask(KeysightN5700(world), "*OPT?") == "0"  # N5700 User's Guide: 0 = none installed
    assert ask(ItechIt8500(world), "*OPT?") == "0"
    assert ask(ResistorModule(world), "*OPT?") == "0"
    fields = ask(KeysightInfiniiVision(world), "*OPT?").split(",")
    assert fields[:2] == ["0", "0"] and set(fields) == {"0"} and len(fields) > 2


def test_scope_timebase_and_channel_setup_strings(world: FakeWorld) -> None:
    scope = KeysightInfiniiVision(world)
    assert ask(scope, ":TIMebase?") == (
        ":TIM:MODE MAIN;REF LEFT;MAIN:RANG +5.00000000E-01;POS +0.00000000E+00"
    )
    assert ask(scope, ":CHANnel1?") == (
        ":CHAN1:RANG +4.00000000E+01;OFFS +0.00000000E+00;COUP DC;IMP ONEM;DISP 1;BWL 0;INV 0;"
        'LAB "1";UNIT AMP;PROB +1.00000000E+01;PROB:SKEW +0.00000000E+00;STYP SING'
    )
    assert ":CHAN4:" in ask(scope, ":CHAN4?") and "DISP 0" in ask(scope, ":CHAN4?")
    scope.handle_message(":CHAN5?")
    assert error(scope) == -114
    ok(scope, ":TIM:MODE ROLL;:TIM:VERN 1;:ACQ:TYPE AVER;:ACQ:COUN 64;:ACQ:MODE SEGM")
    assert ask(scope, ":TIM:MODE?;:TIM:VERN?;:ACQ:TYPE?;:ACQ:COUN?;:ACQ:MODE?") == (
        "ROLL;1;AVER;+64;SEGM"
    )
    assert ask(scope, ":WAV:TYPE?;:WAV:COUN?") == "AVER;+64"
    assert ask(scope, ":WAV:PRE?").split(",")[1:4:2] == ["+2", "+64"]
    scope.handle_message(":ACQ:COUN 1")
    assert error(scope) == -222


def test_scope_channel_vertical_settings(world: FakeWorld) -> None:
    scope = KeysightInfiniiVision(world)
    ok(scope, ":CHAN2:SCAL 0.5;:CHAN2:OFFS 1.5;:CHAN2:DISP ON;:CHAN2:COUP AC;:CHAN2:IMP FIFT")
    assert ask(scope, ":CHAN2:SCAL?;:CHAN2:RANG?;:CHAN2:OFFS?") == (
        "+5.00000000E-01;+4.00000000E+00;+1.50000000E+00"
    )
    assert ask(scope, ":CHAN2:DISP?;:CHAN2:COUP?;:CHAN2:IMP?") == "1;AC;FIFT"
    ok(scope, ":CHAN2:RANG 16")
    assert float(ask(scope, ":CHAN2:SCAL?")) == 2.0
    # The probe ratio carries scale and offset (the screen stays); limits follow the probe.
    ok(scope, ":CHAN2:PROB 1")
    assert ask(scope, ":CHAN2:PROB?;:CHAN2:SCAL?;:CHAN2:OFFS?") == (
        "+1.00000000E+00;+2.00000000E-01;+1.50000000E-01"
    )
    ok(scope, ":CHAN2:SCAL 100")  # nearest legal value, as on the real scope
    assert float(ask(scope, ":CHAN2:SCAL?")) == 5.0
    ok(scope, ":CHAN2:SCAL 0.01;:CHAN2:OFFS 30")
    assert float(ask(scope, ":CHAN2:OFFS?")) == 2.0  # +-2 V below 200 mV/div at 1:1
    ok(scope, ':CHAN3:LAB "charge fet long";:CHAN3:UNIT AMP;:CHAN3:PROB:SKEW 10 ns')
    assert ask(scope, ":CHAN3:LAB?;:CHAN3:UNIT?;:CHAN3:PROB:STYP?") == '"CHARGE FET";AMP;SING'
    scope.handle_message(":CHAN3:PROB 0.01")
    assert error(scope) == -222
    scope.handle_message(":CHAN3:LAB nolabel")
    assert error(scope) == -104


def test_scope_invert_flips_the_waveform(transient_trip: FakeWorld) -> None:
    world = transient_trip
    scope = KeysightInfiniiVision(world)
    ok(scope, ":TIM:RANG 0.1;:SING")
    world.bench.trace.record(1020, "current", -250.0)
    world.clock.now_ms = 1100
    ok(scope, ":WAV:FORM ASC;:WAV:POIN 100;:CHAN1:INV 1")
    text = scope.handle_message(":WAV:DATA?")
    assert text is not None
    values = [float(x) for x in text[10:-1].split(b",")]
    assert values[19] == 0.0 and values[20] == 250.0


def test_scope_reference_and_position_move_the_window(transient_trip: FakeWorld) -> None:
    world = transient_trip
    scope = KeysightInfiniiVision(world)
    ok(scope, ":TIM:RANG 0.2;:TIM:REF CENT;:TIM:POS 0.02")
    assert ask(scope, ":TIM:REF?;:TIM:POS?") == "CENT;+2.00000000E-02"
    # 100 ms before the reference, the trigger 20 ms before it: 80 ms of pre-trigger.
    ok(scope, ":SING")
    xorigin = float(ask(scope, ":WAV:XOR?"))
    assert xorigin == pytest.approx(-0.080)
    world.clock.now_ms = 1119
    assert ask(scope, ":TER?") == "+0"
    world.clock.now_ms = 1120
    assert ask(scope, ":TER?") == "+1"
    # The current pulse before the arm (500..600 ms) is out; one 50 ms before it is in.
    world.bench.trace.events.insert(4, (950, "current", -10.0))
    world.bench.trace.events.insert(5, (960, "current", 0.0))
    assert float(ask(scope, ":MEAS:TEDG? +1,CHAN1")) == pytest.approx(-0.050)
    ok(scope, ":TIM:POS -1")  # at most a screen of pre-trigger
    assert float(ask(scope, ":TIM:POS?")) == pytest.approx(-0.1)


def test_scope_trigger_settings(world: FakeWorld) -> None:
    scope = KeysightInfiniiVision(world)
    assert ask(scope, ":TRIG:MODE?;:TRIG:SWE?;:TRIG:SOUR?;:TRIG:SLOP?") == "EDGE;AUTO;CHAN1;POS"
    ok(scope, ":TRIG:MODE RUNT;:TRIG:SWE NORM;:TRIGger:EDGE:SOURce CHANnel3;:TRIG:SLOP EITH")
    assert ask(scope, ":TRIG:MODE?;:TRIG:SWE?;:TRIG:EDGE:SOUR?;:TRIG:SLOP?") == (
        "RUNT;NORM;CHAN3;EITH"
    )
    ok(scope, ":TRIG:LEV 0.5;:TRIG:EDGE:LEV 2,CHAN1;:TRIG:COUP LFR;:TRIG:HOLD 1 ms")
    assert ask(scope, ":TRIG:LEV?;:TRIG:LEV? CHAN1;:TRIG:COUP?;:TRIG:HOLD?") == (
        "+5.00000000E-01;+2.00000000E+00;LFR;+1.00000000E-03"
    )
    ok(scope, ":TRIG:NREJ 1;:TRIG:HFR ON;:TRIG:FORC;:TRIG:SOUR EXT")
    assert ask(scope, ":TRIG:NREJ?;:TRIG:HFR?;:TRIG:SOUR?") == "1;1;EXT"
    ok(scope, ":TRIG:SOUR LINE")
    scope.handle_message(":TRIG:LEV 1")
    assert error(scope) == -221
    scope.handle_message(":TRIG:SOUR CHAN7")
    assert error(scope) == -224


def test_scope_setup_saves_and_restores_everything(transient_trip: FakeWorld) -> None:
    scope = KeysightInfiniiVision(transient_trip)
    ok(scope, ":TIM:RANG 0.2;:TIM:REF RIGH;:CHAN2:DISP 1;:CHAN1:SCAL 50;:WAV:SOUR CHAN3")
    ok(scope, ":WAV:FORM WORD;:WAV:POIN 5000;:WAV:BYT LSBF;:MEAS:DEF DEL,+2,-1;:ACQ:TYPE PEAK")
    answer = scope.handle_message(":SYST:SET?")
    assert answer is not None and answer.startswith(b"#8") and answer.endswith(b"\n")
    block = answer[:-1]
    assert int(block[2:10]) == len(block) - 10
    saved = json.loads(block[10:])
    assert saved["setup"]["timebase_reference"] == "RIGH"
    ok(scope, "*RST")
    assert ask(scope, ":TIM:RANG?;:WAV:SOUR?;:CHAN2:DISP?") == "+5.00000000E-01;CHAN1;0"
    ok(scope, ":SYST:SET " + block.decode())
    assert scope.handle_message(":SYST:SET?") == answer
    assert ask(scope, ":WAV:BYT?;:WAV:POIN:MODE?;:MEAS:DEF? DEL") == "LSBF;RAW;+2,-1"
    assert ask(scope, "*LRN?") == ":SYST:SET " + block.decode()
    # Anything else is refused whole.
    broken = json.dumps({**saved, "state": {**saved["state"], "waveform_source": 9}}).encode()
    scope.handle_message(":SYST:SET #8" + f"{len(broken):08d}".encode().decode() + broken.decode())
    assert error(scope) == -224
    scope.handle_message(":SYST:SET #3999abc")
    assert error(scope) == -161
    assert scope.handle_message(":SYST:SET?") == answer
    ok(scope, ":SYST:PRES")
    assert ask(scope, ":TIM:REF?") == "LEFT"


def test_scope_autoscale_shows_the_wired_channels(transient_trip: FakeWorld) -> None:
    world = transient_trip
    scope = KeysightInfiniiVision(world)
    world.bench.trace.record(1010, "current", -250.0)
    ok(scope, ":TIM:POS 0.1;:CHAN4:DISP 1;:SING;:AUT")
    assert ask(scope, ":CHAN1:DISP?;:CHAN2:DISP?;:CHAN3:DISP?;:CHAN4:DISP?") == "1;1;1;0"
    assert float(ask(scope, ":TIM:POS?")) == 0.0 and world.bench.scope.running is True
    scale, offset = (float(x) for x in ask(scope, ":CHAN1:SCAL?;:CHAN1:OFFS?").split(";"))
    assert scale * 8 >= 250 and offset == -125.0
    ok(scope, ":TRIG:LEV:ASET")
    assert float(ask(scope, ":TRIG:LEV?")) == -125.0


def _png_pixels(png: bytes) -> tuple[int, int, bytes, bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])[0] == (
            zlib.crc32(kind + body) & 0xFFFFFFFF
        )
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 3)
    assert set(chunks) == {b"IHDR", b"PLTE", b"IDAT", b"IEND"}
    return width, height, zlib.decompress(chunks[b"IDAT"]), chunks[b"PLTE"]


def test_scope_screenshot_formats(transient_trip: FakeWorld) -> None:
    world = transient_trip
    scope = KeysightInfiniiVision(world)
    ok(scope, ":TIM:RANG 0.1;:SING;:CHAN1:SCAL 50;:CHAN1:OFFS -100;:CHAN2:DISP 1")
    world.bench.trace.record(1020, "current", -250.0)
    world.bench.trace.record(1050, "current", 0.0)
    world.clock.now_ms = 1100
    answer = scope.handle_message(":DISPlay:DATA? PNG,COLor")
    assert answer is not None and answer.endswith(b"\n")
    png = answer[10:-1]
    assert int(answer[2:10]) == len(png)
    width, height, raw, palette = _png_pixels(png)
    assert (width, height) == (800, 480) and len(raw) == 480 * 801
    rows = [raw[y * 801 + 1 : (y + 1) * 801] for y in range(480)]
    yellow = palette.index(b"\xff\xff\x00") // 3
    # -250 A with 50 A/div around -100 A: 3 divisions below the centre (60 px each).
    assert [y for y in range(480) if rows[y][300] == yellow] == [420]  # at 37.5 ms
    # The step back to 0 A at 50 ms (column 400) is a vertical edge; at 62.5 ms, 0 A sits
    # 2 divisions above the centre.
    green = palette.index(b"\x00\xff\x00") // 3
    # Channel 2 (the closed discharge FET, 1 V at 5 V/div) is drawn over it at y = 228.
    assert [y for y in range(480) if rows[y][400] == yellow] == [
        y for y in range(120, 421) if y != 228
    ]
    assert rows[228][400] == rows[228][10] == green
    assert [y for y in range(480) if rows[y][500] == yellow] == [120]
    bmp = scope.handle_message(":DISP:DATA? BMP,GRAY")
    assert bmp is not None and bmp[10:12] == b"BM"
    size, _r1, _r2, offset = struct.unpack("<IHHI", bmp[12:24])
    assert size == len(bmp) - 11 and struct.unpack("<iiHH", bmp[28:40]) == (800, 480, 1, 24)
    bmp8 = scope.handle_message(":DISP:DATA? BMP8bit")
    assert bmp8 is not None and struct.unpack("<HH", bmp8[36:40]) == (1, 8)
    scope.handle_message(":DISP:DATA? JPG")
    assert error(scope) == -224


# -- over a real socket, through pyvisa ------------------------------------------------------


@pytest.fixture
def served_supply(world: FakeWorld) -> Iterator[tuple[FakeWorld, int]]:
    """An N5700 served by an asyncio loop in a background thread (this test only)."""
    loop = asyncio.new_event_loop()
    server = ScpiServer(KeysightN5700(world))
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield world, server.port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_pyvisa_talks_to_a_served_instrument(served_supply: tuple[FakeWorld, int]) -> None:
    pyvisa = pytest.importorskip("pyvisa")
    world, port = served_supply
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(f"TCPIP0::127.0.0.1::{port}::SOCKET")
    try:
        inst.read_termination = "\n"
        inst.write_termination = "\n"
        inst.timeout = 5000
        assert inst.query("*IDN?") == "Agilent Technologies,N5767A,US00000001,D.01.09"
        inst.write("VOLT:PROT:LEV 60;VOLT 52.5;CURR 12")
        assert inst.query("SYST:ERR?") == '0,"No error"'
        assert float(inst.query("VOLT?")) == 52.5
        assert world.bench.supply.current_limit_a == 12.0
        inst.write("VOLT 59")
        assert inst.query("SYST:ERR?") == '-222,"Data out of range"'
        assert inst.query("MEAS:VOLT?;MEAS:CURR?") == "+5.28000000E+01;+1.00000000E+01"
    finally:
        inst.close()
        rm.close()
