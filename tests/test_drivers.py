"""Command/response tests of every SCPI driver, in the manner of PyMeasure's expected_protocol:
a fake VISA resource replays exact (command, answer) pairs taken from the vendor manuals, and
fails on any line the driver sends that is not the next expected one, or on leftover pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from instruments.bloomy_abs import BloomyAbsCells, BloomyAbsUnit, channel_list
from instruments.errors import EnvelopeError, IdentityError, InstrumentError, InstrumentTimeout
from instruments.itech_it8500 import ItechIt8500
from instruments.keysight_34970 import Keysight34972A
from instruments.keysight_infiniivision import KeysightInfiniiVision
from instruments.keysight_n5700 import KeysightN5700
from instruments.ntc import BetaNtc, TableNtc
from instruments.resistor_module import ResistorModule
from instruments.scpi_instrument import ExpectedIdn

OK = ("SYST:ERR?", '+0,"No error"')


class ExpectedProtocolResource:
    """Fake pyvisa resource replaying exact (written line, answer) pairs."""

    def __init__(self, pairs: list[tuple[str, str | bytes | None]]) -> None:
        self.pairs = list(pairs)
        self.pending = b""
        self.read_termination: str | None = None
        self.write_termination = "\r\n"
        self.timeout: float | None = 2000.0
        self.closed = False

    def write(self, message: str) -> int:
        assert not self.pending, f"wrote {message!r} while {self.pending!r} was unread"
        assert self.pairs, f"unexpected write {message!r}: no more pairs"
        expected, answer = self.pairs.pop(0)
        assert message == expected, f"sent {message!r}, expected {expected!r}"
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            data = answer if isinstance(answer, bytes) else answer.encode()
            self.pending = data + b"\n"
        return len(message)

    def read(self) -> str:
        assert self.read_termination == "\n"
        if not self.pending:
            raise TimeoutError("nothing to read")
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode()

    def read_bytes(self, count: int) -> bytes:
        assert len(self.pending) >= count, f"wanted {count} bytes, have {len(self.pending)}"
        data, self.pending = self.pending[:count], self.pending[count:]
        return data

    def close(self) -> None:
        self.closed = True


def pairs_with_checks(*pairs: tuple[str, str | bytes | None]) -> list:
    """Every command (no answer) is followed by the SYST:ERR? drain."""
    out: list = []
    for cmd, answer in pairs:
        out.append((cmd, answer))
        if answer is None:
            out.append(OK)
    return out


@contextmanager
def expected_protocol(
    cls: type, opening: list, pairs: list, **kwargs
) -> Iterator[tuple[object, ExpectedProtocolResource]]:
    resource = ExpectedProtocolResource(opening + pairs_with_checks(*pairs))
    inst = cls(
        resource, name=kwargs.pop("name", "dut"), address="TCPIP0::h::5025::SOCKET", **kwargs
    )
    yield inst, resource
    assert resource.pairs == [], f"not sent: {resource.pairs}"
    assert resource.pending == b"", f"not read: {resource.pending!r}"


N5700_IDN = "Agilent Technologies,N5767A,US12345678,D.01.08"
N5700_OPEN = [("*IDN?", N5700_IDN), ("*CLS", None), OK]
SUPPLY_ENV = {"max_voltage_v": 65.0, "max_current_a": 120.0}
# With an envelope the driver sets the supply's own OVP just above it (1.05 x 65 V): the
# manual's rule OVP >= 1.05 x setpoint then admits every setpoint the envelope admits.
N5700_OPEN_ENV = N5700_OPEN + [("VOLT:PROT:LEV 68.25", None), OK]


def supply(pairs: list, **kw):
    return expected_protocol(
        KeysightN5700,
        N5700_OPEN_ENV,
        pairs,
        envelope=SUPPLY_ENV,
        expected_idn=ExpectedIdn("Agilent Technologies", "N5767A"),
        **kw,
    )


def test_n5700_setpoints_and_measurements():
    pairs = [
        ("VOLT 52.8", None),
        ("CURR 10", None),
        ("OUTP 1", None),
        ("MEAS:VOLT?", "+5.27990E+01"),
        ("MEAS:CURR?", "+9.99800E+00"),
        ("OUTP 0", None),
    ]
    with supply(pairs) as (psu, _):
        psu.set_voltage_v(52.8)
        psu.set_current_limit_a(10)
        psu.output(True)
        assert psu.measure_voltage_v() == pytest.approx(52.799)
        assert psu.measure_current_a() == pytest.approx(9.998)
        psu.safe_state()
        assert psu.identity.serial == "US12345678"
        assert psu.identity.firmware == "D.01.08"


def test_n5700_envelope_refused_before_sending():
    with supply([]) as (psu, _):
        with pytest.raises(
            EnvelopeError, match=r"voltage setpoint 70 V.*envelope.supply.max_voltage_v"
        ):
            psu.set_voltage_v(70.0)
        with pytest.raises(EnvelopeError, match=r"current limit 121 A.*max_current_a"):
            psu.set_current_limit_a(121)
        with pytest.raises(EnvelopeError, match="minimum is 0"):
            psu.set_voltage_v(-1)


def test_instrument_error_names_the_command():
    resource = ExpectedProtocolResource(
        N5700_OPEN_ENV + [("VOLT 60", None), ("SYST:ERR?", '-222,"Data out of range"'), OK]
    )
    psu = KeysightN5700(resource, name="supply", address="A", envelope=SUPPLY_ENV)
    with pytest.raises(
        InstrumentError, match=r"supply \(A\): 'VOLT 60' caused -222,\"Data out of range\""
    ):
        psu.set_voltage_v(60)


def test_idn_mismatch_names_instrument_address_expected_and_got():
    resource = ExpectedProtocolResource([("*IDN?", "ITECH Ltd.,IT8512+,123,1.0")])
    with pytest.raises(IdentityError) as err:
        KeysightN5700(
            resource,
            name="supply",
            address="TCPIP0::10.0.0.5::5025::SOCKET",
            expected_idn=ExpectedIdn("Agilent Technologies", "N5767A"),
        )
    text = str(err.value)
    for part in (
        "supply",
        "TCPIP0::10.0.0.5::5025::SOCKET",
        "Agilent Technologies N5767A",
        "ITECH Ltd.,IT8512+",
    ):
        assert part in text


def test_timeout_names_instrument_address_and_command():
    resource = ExpectedProtocolResource(N5700_OPEN + [("MEAS:VOLT?", None)])
    psu = KeysightN5700(resource, name="supply", address="TCPIP0::h::5025::SOCKET")
    with pytest.raises(
        InstrumentTimeout,
        match=r"supply \(TCPIP0::h::5025::SOCKET\): no answer to 'MEAS:VOLT\?' within 2 s",
    ):
        psu.measure_voltage_v()


def test_pyvisa_timeout_is_recognised():
    import pyvisa

    error = pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_timeout)
    resource = ExpectedProtocolResource(N5700_OPEN + [("OUTP 0", error)])
    psu = KeysightN5700(resource, name="supply", address="ADDR")
    with pytest.raises(InstrumentTimeout, match="supply \\(ADDR\\): no answer to 'OUTP 0'"):
        psu.safe_state()


IT_OPEN = [
    ("*IDN?", "ITECH Ltd.,IT8512+,800001011797210001,1.25-1.22"),
    ("*CLS", None),
    OK,
    ("SYST:REM", None),
    OK,
    ("FUNC CURR", None),
    OK,
    ("TRIG:SOUR BUS", None),
    OK,
]


def test_it8500_cc_and_transient():
    pairs = [
        ("CURR 20", None),
        ("INP ON", None),
        ("CURR:TRAN:MODE PULS", None),
        ("CURR:TRAN:ALEV 5", None),
        ("CURR:TRAN:BLEV 250", None),
        ("CURR:TRAN:AWID 1", None),
        ("CURR:TRAN:BWID 0.1", None),
        ("TRAN ON", None),
        ("*TRG", None),
        ("MEAS:CURR?", "19.998"),
        ("MEAS:VOLT?", "52.61"),
        ("TRAN OFF", None),
        ("INP OFF", None),
    ]
    with expected_protocol(
        ItechIt8500,
        IT_OPEN,
        pairs,
        envelope={"max_current_a": 300.0},
        expected_idn=ExpectedIdn("ITECH Ltd.", "IT8512+"),
    ) as (load, _):
        load.set_current_a(20)
        load.input(True)
        load.configure_transient(5, 250, 1, 0.1, "pulse")
        load.transient(True)
        load.trigger()
        assert load.measure_current_a() == pytest.approx(19.998)
        assert load.measure_voltage_v() == pytest.approx(52.61)
        load.safe_state()


def test_it8500_transient_checked_whole_before_any_line():
    with expected_protocol(ItechIt8500, IT_OPEN, [], envelope={"max_current_a": 300.0}) as (
        load,
        _,
    ):
        with pytest.raises(EnvelopeError, match="transient level B 350 A.*maximum is 300 A"):
            load.configure_transient(5, 350, 1, 0.1, "pulse")
        with pytest.raises(ValueError, match="transient mode"):
            load.configure_transient(5, 50, 1, 0.1, "sawtooth")  # type: ignore[arg-type]


def test_it8500_safe_state_turns_input_off_even_if_transient_off_fails():
    resource = ExpectedProtocolResource(
        IT_OPEN
        + [("TRAN OFF", None), ("SYST:ERR?", '-113,"Undefined header"'), OK, ("INP OFF", None), OK]
    )
    load = ItechIt8500(resource, name="load", address="A")
    with pytest.raises(InstrumentError, match="TRAN OFF"):
        load.safe_state()
    assert resource.pairs == []


ABS_OPEN_A = [("*IDN?", "Bloomy,ABS,A001,1.0"), ("*CLS", None), OK]
ABS_OPEN_B = [("*IDN?", "Bloomy,ABS,B002,1.0"), ("*CLS", None), OK]
CELL_ENV = {"min_voltage_v": 0.0, "max_voltage_v": 5.0}


def test_channel_list():
    assert channel_list([1, 2, 3, 4, 5, 6, 7, 8]) == "(@1:8)"
    assert channel_list([5, 1, 2, 3]) == "(@1:3,5)"
    assert channel_list([4]) == "(@4)"


def make_cells(pairs_a: list, pairs_b: list):
    res_a = ExpectedProtocolResource(ABS_OPEN_A + pairs_with_checks(*pairs_a))
    res_b = ExpectedProtocolResource(ABS_OPEN_B + pairs_with_checks(*pairs_b))
    unit_a = BloomyAbsUnit(res_a, name="cells_a", address="A", envelope=CELL_ENV)
    unit_b = BloomyAbsUnit(res_b, name="cells_b", address="B", envelope=CELL_ENV)
    cell_map = {c: ("cells_a", c) for c in range(1, 9)} | {
        c: ("cells_b", c - 8) for c in range(9, 17)
    }
    return BloomyAbsCells({"cells_a": unit_a, "cells_b": unit_b}, cell_map), res_a, res_b


def test_bloomy_16_cells_over_two_units():
    cells, res_a, res_b = make_cells(
        [
            ("SOUR3:VOLT 3.6500", None),
            ("MEAS3:VOLT?", "3.6498"),
            ("OUTP3:FAUL OPEN", None),
            ("SOUR:VOLT 3.3000,(@1:8)", None),
            ("OUTP 0,(@1:8)", None),
        ],
        [("SOUR8:VOLT 2.5000", None), ("SOUR:VOLT 3.3000,(@1:8)", None), ("OUTP 0,(@1:8)", None)],
    )
    cells.set_cell_v(3, 3.65)
    assert cells.read_cell_v(3) == pytest.approx(3.6498)
    cells.fault(3, "open")
    cells.set_cell_v(16, 2.5)
    cells.set_all_v(3.3)
    cells.enable(False)
    assert res_a.pairs == [] and res_b.pairs == []


def test_bloomy_list_checked_whole_before_any_cell_moves():
    cells, res_a, res_b = make_cells([], [])
    values = [3.3] * 15 + [5.5]
    with pytest.raises(
        EnvelopeError, match="cell 16 voltage 5.5 V refused.*envelope.cells.max_voltage_v"
    ):
        cells.set_all_v(values)
    with pytest.raises(ValueError, match="16 voltages"):
        cells.set_all_v([3.3] * 4)


def test_bloomy_safe_state_nominal():
    pairs_a = [(f"OUTP{c}:FAUL NONE", None) for c in range(1, 9)]
    pairs_b = [(f"OUTP{c}:FAUL NONE", None) for c in range(1, 9)]
    tail = [("SOUR:VOLT 3.3000,(@1:8)", None), ("OUTP 1,(@1:8)", None)]
    cells, res_a, res_b = make_cells(pairs_a + tail, pairs_b + tail)
    cells.safe_state()
    assert res_a.pairs == [] and res_b.pairs == []


def test_bloomy_sixteen_values_one_error_check_per_unit():
    """Sixteen different voltages: each unit gets its eight setpoints, then one SYST:ERR?."""
    values = [3.2 + 0.01 * c for c in range(1, 17)]
    res_a = ExpectedProtocolResource(
        ABS_OPEN_A + [(f"SOUR{c}:VOLT {values[c - 1]:.4f}", None) for c in range(1, 9)] + [OK]
    )
    res_b = ExpectedProtocolResource(
        ABS_OPEN_B + [(f"SOUR{c}:VOLT {values[c + 7]:.4f}", None) for c in range(1, 9)] + [OK]
    )
    unit_a = BloomyAbsUnit(res_a, name="cells_a", address="A", envelope=CELL_ENV)
    unit_b = BloomyAbsUnit(res_b, name="cells_b", address="B", envelope=CELL_ENV)
    cell_map = {c: ("cells_a", c) for c in range(1, 9)} | {
        c: ("cells_b", c - 8) for c in range(9, 17)
    }
    BloomyAbsCells({"cells_a": unit_a, "cells_b": unit_b}, cell_map).set_all_v(values)
    assert res_a.pairs == [] and res_b.pairs == []
    # Sixteen equal values are one channel-list command per unit.
    cells, res_a, res_b = make_cells(
        [("SOUR:VOLT 3.3000,(@1:8)", None)], [("SOUR:VOLT 3.3000,(@1:8)", None)]
    )
    cells.set_all_v([3.3] * 16)
    assert res_a.pairs == [] and res_b.pairs == []


NTC_MAP = {"cell1": 1, "cell2": 2, "cell3": 3, "cell4": 4, "ambient": 5, "power": 6}
RES_OPEN = [("*IDN?", "bms-hil,RES6,0001,1.0"), ("*CLS", None), OK]


def test_resistor_module_temperature_and_faults():
    pairs = [
        ("SOUR:RES 28704.29,(@1)", None),  # 0 °C through the B-equation
        ("SOUR:RES? (@1)", "28704.1"),
        ("OUTP:STAT OPEN,(@5)", None),
        ("OUTP:STAT SHORT,(@6)", None),
        ("OUTP:STAT NORMAL,(@5)", None),
        ("SOUR:RES 2980,(@2)", None),
    ]
    with expected_protocol(
        ResistorModule,
        RES_OPEN,
        pairs,
        channel_map=NTC_MAP,
        envelope={"min_ohm": 0.0, "max_ohm": 1e6},
    ) as (res, _):
        res.set_temperature_c("cell1", 0.0)
        assert res.read_ohm("cell1") == pytest.approx(28704.1)
        res.open("ambient")
        res.short("power")
        res.normal("ambient")
        res.set_ohm("cell2", 2980)
        with pytest.raises(KeyError, match="no NTC channel 'cell9'"):
            res.set_ohm("cell9", 1000)
        with pytest.raises(EnvelopeError, match="max_ohm"):
            res.set_ohm("cell1", 2e6)


def test_resistor_safe_state_25c_on_every_channel():
    pairs = []
    for ch in range(1, 7):
        pairs += [(f"OUTP:STAT NORMAL,(@{ch})", None), (f"SOUR:RES 10000,(@{ch})", None)]
    with expected_protocol(
        ResistorModule,
        RES_OPEN,
        pairs,
        channel_map=NTC_MAP,
        envelope={"min_ohm": 0.0, "max_ohm": 1e6},
    ) as (res, _):
        res.safe_state()


def test_ntc_models():
    beta = BetaNtc()
    assert beta.ohm_at(25.0) == pytest.approx(10_000.0)
    assert beta.ohm_at(45.0) == pytest.approx(4_850, rel=0.01)
    assert beta.ohm_at(60.0) == pytest.approx(2_980, rel=0.01)
    assert beta.temperature_c(beta.ohm_at(-12.3)) == pytest.approx(-12.3)
    table = TableNtc([(0.0, beta.ohm_at(0.0)), (50.0, beta.ohm_at(50.0))])
    assert table.ohm_at(25.0) == pytest.approx(10_000.0, rel=1e-9)
    with pytest.raises(ValueError, match="outside the NTC table"):
        table.ohm_at(80.0)


SCOPE_OPEN = [
    ("*IDN?", "KEYSIGHT TECHNOLOGIES,DSOX3024T,MY12345678,07.50.2021102830"),
    ("*CLS", None),
    OK,
]
SCOPE_MAP = {"current": 1, "discharge_fet": 2, "charge_fet": 3}


def test_infiniivision_edges():
    pairs = [
        (":TIM:RANG 0.5", None),
        (":SING", None),
        (":MEAS:DEF DEL,+1,-1", None),
        (":MEAS:DEL? CHAN1,CHAN2", "+3.05E-02"),
        (":MEAS:DEF DEL,+1,-1", None),
        (":MEAS:DEL? CHAN1,CHAN3", "9.9E+37"),
        (":MEAS:TEDG? -1,CHAN2", "+3.1000E-02"),
        (":MEAS:TEDG? +2,CHAN1", "+9.90000E+37"),
        (":RUN", None),
    ]
    with expected_protocol(KeysightInfiniiVision, SCOPE_OPEN, pairs, channel_map=SCOPE_MAP) as (
        scope,
        _,
    ):
        scope.arm_single(0.5)
        assert scope.delay_between_edges_s(
            "current", "rise", "discharge_fet", "fall"
        ) == pytest.approx(0.0305)
        assert scope.delay_between_edges_s("current", "rise", "charge_fet", "fall") is None
        assert scope.edge_time_s("discharge_fet", "fall") == pytest.approx(0.031)
        assert scope.edge_time_s("current", "rise", occurrence=2) is None
        scope.safe_state()


def test_infiniivision_waveform_block_with_newline_bytes():
    data = bytes([0, 10, 128, 255])  # 10 is "\n": the block must be read by length
    block = b"#800000004" + data
    preamble = "+0,+0,+4,+1,+1.0E-03,-2.0E-03,+0,+0.5,+0.0,+128"
    pairs = [
        (":WAV:SOUR CHAN1", None),
        (":WAV:FORM BYTE", None),
        (":WAV:POIN:MODE RAW", None),
        (":WAV:PRE?", preamble),
        (":WAV:DATA?", block),
    ]
    with expected_protocol(KeysightInfiniiVision, SCOPE_OPEN, pairs, channel_map=SCOPE_MAP) as (
        scope,
        _,
    ):
        t, v = scope.waveform("current")
    assert t == pytest.approx([-0.002, -0.001, 0.0, 0.001])
    assert v == pytest.approx([-64.0, -59.0, 0.0, 63.5])


# --------------------------------------------------------------------------- relay card

K34972_IDN = "Keysight Technologies,34972A,MY00000007,1.17-1.12-02-02"
K34972_OPEN = [("*IDN?", K34972_IDN), ("*CLS", None), OK]


def relay_card(pairs: list):
    return expected_protocol(
        Keysight34972A,
        K34972_OPEN,
        pairs,
        expected_idn=ExpectedIdn("Keysight Technologies", "34972A"),
    )


def test_34972a_close_open_and_read_back():
    pairs = [
        ("ROUT:CLOS (@101)", None),
        ("ROUT:OPEN (@101,103)", None),
        ("ROUT:CLOS? (@101,102)", "1,0"),
    ]
    with relay_card(pairs) as (card, _):
        card.close_channels([101])
        card.open_channels([101, 103])
        assert card.closed_channels([101, 102]) == [True, False]
        assert card.identity.model == "34972A" and card.identity.serial == "MY00000007"


def test_34972a_refuses_a_channel_the_actuator_lacks_before_sending():
    with relay_card([]) as (card, _):
        for channel in (100, 121, 401):
            with pytest.raises(ValueError, match=f"channel {channel} does not exist"):
                card.close_channels([channel])


def test_34972a_bad_read_back_is_an_instrument_error():
    with relay_card([("ROUT:CLOS? (@101,102)", "1")]) as (card, _):
        with pytest.raises(InstrumentError, match=r"answered '1', expected 2 values"):
            card.closed_channels([101, 102])


def test_34972a_error_queue_names_the_command():
    resource = ExpectedProtocolResource(
        K34972_OPEN + [("ROUT:CLOS (@120)", None), ("SYST:ERR?", '-222,"Data out of range"'), OK]
    )
    card = Keysight34972A(resource, name="relays", address="A")
    with pytest.raises(InstrumentError, match=r"'ROUT:CLOS \(@120\)' caused -222"):
        card.close_channels([120])


def test_a_late_answer_after_a_timeout_is_drained_not_paired_with_the_next_query():
    """A query times out, its answer arrives afterwards: the next command must not read it
    (every later query would be answered by the one before it)."""

    class LateResource(ExpectedProtocolResource):
        def write(self, message: str) -> int:
            if message == "MEAS:VOLT?" and not getattr(self, "late_done", False):
                self.late_done = True  # answer only after the reader gave up
                self.pairs.pop(0)
                return len(message)
            return super().write(message)

        def read(self) -> str:
            if getattr(self, "late_done", False) and not getattr(self, "delivered", False):
                if not getattr(self, "timed_out", False):
                    self.timed_out = True
                    raise TimeoutError("no answer yet")
                self.delivered = True  # the late answer to MEAS:VOLT? arrives now
                self.pending = b"+12.5\n" + self.pending
            return super().read()

    resource = LateResource(N5700_OPEN + [("MEAS:VOLT?", None), ("MEAS:CURR?", "+3.25")])
    psu = KeysightN5700(resource, name="supply", address="ADDR")
    with pytest.raises(InstrumentTimeout):
        psu.measure_voltage_v()
    assert psu.measure_current_a() == 3.25


def test_an_answer_cut_off_by_ctrl_c_is_drained_before_the_safe_state_talks():
    """Ctrl-C lands between a query and its answer: the interrupt goes on up, and the next
    command (the safe state's) reads past the answer it left instead of taking it as its own."""

    class InterruptedResource(ExpectedProtocolResource):
        def read(self) -> str:
            if not getattr(self, "interrupted", False):
                self.interrupted = True
                raise KeyboardInterrupt
            return super().read()

    resource = InterruptedResource(N5700_OPEN + [("MEAS:VOLT?", "+12.5"), ("MEAS:CURR?", "+3.25")])
    resource.interrupted = True  # the opening exchange reads normally
    psu = KeysightN5700(resource, name="supply", address="ADDR")
    resource.interrupted = False
    with pytest.raises(KeyboardInterrupt):
        psu.measure_voltage_v()
    assert psu.measure_current_a() == 3.25


def _resistors(pairs: list) -> tuple[ResistorModule, ExpectedProtocolResource]:
    """A resistor module on a resource replaying exactly ``pairs`` after it opens."""
    resource = ExpectedProtocolResource(RES_OPEN + pairs)
    res = ResistorModule(
        resource,
        name="res",
        address="R",
        channel_map=NTC_MAP,
        envelope={"min_ohm": 0.0, "max_ohm": 1e6},
    )
    return res, resource


def test_a_batch_checks_errors_once_and_an_error_names_every_command():
    pairs = [
        ("OUTP:STAT NORMAL,(@1)", None),
        ("SOUR:RES 10000,(@1)", None),
        ("SYST:ERR?", '-222,"Data out of range"'),
        OK,
    ]
    res, resource = _resistors(pairs)
    with pytest.raises(InstrumentError) as raised:
        with res.batch():
            res.normal("cell1")
            res.set_temperature_c("cell1", 25.0)
    assert str(raised.value) == (
        "res (R): one of 'OUTP:STAT NORMAL,(@1)', 'SOUR:RES 10000,(@1)' caused "
        '-222,"Data out of range"'
    )
    assert resource.pairs == []


def test_a_batch_whose_body_fails_still_drains_the_error_queue():
    """A refusal inside a batch propagates, and what was sent before it is still checked, so
    the next command is not blamed for its errors."""
    pairs = [("SOUR:RES 10000,(@1)", None), OK, ("SOUR:RES 10000,(@2)", None), OK]
    res, resource = _resistors(pairs)
    with pytest.raises(EnvelopeError, match="max_ohm"):
        with res.batch():
            res.set_ohm("cell1", 10000)
            res.set_ohm("cell2", 2e6)
    res.set_ohm("cell2", 10000)
    assert resource.pairs == []
