"""The SCPI engine of the simulated bench parses the way instruments do.

A driver that only works against a lenient parser would fail on the real bench, and one that
works only against a strict one might be refused by the simulator for a legal command; these
tests pin the SCPI rules the simulator implements (short/long forms, optional nodes, suffixes,
``;`` joining, case, units) and the error queue a driver relies on to notice refusals.
"""

from __future__ import annotations

import asyncio

import pytest

from bmssim.scpi import (
    Args,
    Command,
    ErrorQueue,
    ScpiError,
    ScpiInstrument,
    ScpiServer,
    definite_block,
    format_float,
    parse_channel_list,
    parse_number,
)


class Toy(ScpiInstrument):
    """A small instrument whose command table exercises every parser feature."""

    idn = "bms-hil,TOY,0,1.0"

    def __init__(self) -> None:
        self.voltage = 0.0
        self.current = 0.0
        self.output: dict[int, bool] = {}
        self.width = 0.0
        self.mode = "CONT"
        self.changes = 0
        self.triggers = 0
        super().__init__()

    def commands(self) -> list[Command]:
        volt = "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]"
        curr = "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]"

        def set_volt(a: Args) -> None:
            self.voltage = a.number(0, "V", low=0.0, high=60.0, minimum=0.0, maximum=60.0)

        def set_curr(a: Args) -> None:
            self.current = a.number(0, "A", low=0.0, high=100.0)

        def set_output(a: Args) -> None:
            self.output[a.suffix(0, 1)] = a.boolean(0)

        def set_width(a: Args) -> None:
            self.width = a.number(0, "S", low=0.0, high=10.0)

        def set_mode(a: Args) -> None:
            self.mode = a.keyword(0, ("CONTinuous", "PULSe", "TOGGle"))

        return [
            Command(volt, set_volt, params=(1, 1)),
            Command(volt + "?", lambda _: format_float(self.voltage)),
            Command(curr, set_curr, params=(1, 1)),
            Command(curr + "?", lambda _: format_float(self.current)),
            Command("OUTPut#[:STATe]", set_output, params=(1, 1)),
            Command("OUTPut#[:STATe]?", lambda a: str(int(self.output.get(a.suffix(0, 1), 0)))),
            Command("MEASure#[:SCALar]:VOLTage[:DC]?", lambda a: f"M{a.suffix(0, 1)}"),
            Command("MEASure#[:SCALar]:CURRent[:DC]?", lambda a: f"I{a.suffix(0, 1)}"),
            Command("[SOURce:]CURRent:TRANsient:AWIDth", set_width, params=(1, 1)),
            Command("[SOURce:]CURRent:TRANsient:MODE", set_mode, params=(1, 1)),
            Command("[SOURce:]CURRent:TRANsient:MODE?", lambda _: self.mode),
            Command("SILent?", lambda _: None),
        ]

    def on_change(self) -> None:
        self.changes += 1

    def trigger(self) -> None:
        self.triggers += 1

    def ask(self, message: str) -> str | None:
        answer = self.handle_message(message)
        return None if answer is None else answer.decode("latin-1").rstrip("\n")

    def error(self) -> str:
        answer = self.ask("SYST:ERR?")
        assert answer is not None
        return answer


@pytest.fixture
def toy() -> Toy:
    return Toy()


# -- header forms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "VOLT 12.5",
        "VOLTage 12.5",
        "volt 12.5",
        "Voltage 12.5",
        ":VOLT 12.5",
        "SOUR:VOLT 12.5",
        ":SOURce:VOLTage:LEVel:IMMediate:AMPLitude 12.5",
        "SOUR:VOLT:AMPL 12.5",
        "VOLT:LEV 12.5",
        "volt:imm 12.5",
    ],
)
def test_short_long_case_colon_and_optional_nodes(toy: Toy, message: str) -> None:
    assert toy.handle_message(message) is None
    assert toy.voltage == 12.5
    assert toy.error() == '0,"No error"'


@pytest.mark.parametrize("bad", ["VOL 1", "VOLTA 1", "SOURC:VOLT 1", "VOLT:LEVEL:FOO 1", "LEV 1"])
def test_partial_or_unknown_keywords_are_undefined_headers(toy: Toy, bad: str) -> None:
    toy.handle_message(bad)
    assert toy.voltage == 0.0
    assert toy.error() == '-113,"Undefined header"'


def test_numeric_suffix_selects_the_channel(toy: Toy) -> None:
    toy.handle_message("OUTP3 1;OUTP 1;OUTPut5:STATe ON")
    assert toy.output == {3: True, 1: True, 5: True}
    assert toy.ask("OUTP3?;OUTP2?;MEAS3:VOLT?;MEAS:CURR?") == "1;0;M3;I1"


def test_queries_in_one_message_join_with_semicolons(toy: Toy) -> None:
    assert toy.ask("VOLT 5;CURR 2;VOLT?;CURR?;*OPC?") == "+5.00000000E+00;+2.00000000E+00;1"


def test_relative_path_after_semicolon(toy: Toy) -> None:
    # SOUR:VOLT 5;CURR 2 -> SOUR:CURR 2 (same subsystem); MEAS3:VOLT?;CURR? -> MEAS3:CURR?
    toy.handle_message("SOUR:VOLT 5;CURR 2")
    assert (toy.voltage, toy.current) == (5.0, 2.0)
    assert toy.ask("MEAS3:VOLT?;CURR?") == "M3;I3"
    # CURR:TRAN:AWID 1;MODE PULS -> CURR:TRAN:MODE PULS
    toy.handle_message("CURR:TRAN:AWID 1;MODE PULS")
    assert (toy.width, toy.mode) == (1.0, "PULS")
    # The path carries over a chain: the third unit is still under CURR:TRAN.
    toy.handle_message("CURR:TRAN:MODE CONT;AWID 2;MODE TOGG")
    assert (toy.width, toy.mode) == (2.0, "TOGG")
    assert toy.error() == '0,"No error"'


def test_full_path_after_semicolon_still_works(toy: Toy) -> None:
    toy.handle_message("CURR:TRAN:MODE TOGG;VOLT 7;:CURR 3")
    assert (toy.mode, toy.voltage, toy.current) == ("TOGG", 7.0, 3.0)
    assert toy.error() == '0,"No error"'


def test_common_commands(toy: Toy) -> None:
    assert toy.ask("*IDN?") == "bms-hil,TOY,0,1.0"
    assert toy.ask("*OPC?") == "1"
    toy.handle_message("*TRG")
    assert toy.triggers == 1
    assert toy.ask("syst:err:next?") == '0,"No error"'
    assert toy.ask("SYSTem:ERRor?") == '0,"No error"'


def test_message_without_query_has_no_answer(toy: Toy) -> None:
    assert toy.handle_message("VOLT 1;CURR 1") is None
    assert toy.handle_message("") is None
    assert toy.handle_message("SILent?") is None


def test_state_change_hook_runs_after_each_executed_setting(toy: Toy) -> None:
    toy.handle_message("VOLT 1;CURR 1;VOLT?;BOGUS 3")
    assert toy.changes == 2


# -- numbers, units, keywords --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("52", "V", 52.0),
        ("52 V", "V", 52.0),
        ("52V", "V", 52.0),
        ("500 mV", "V", 0.5),
        ("500 mA", "A", 0.5),
        ("500 MA", "A", 0.5),  # MA on an ampere value is milliampere
        ("1.5e1", "A", 15.0),
        ("10 mS", "S", 0.01),
        ("10 ms", "S", 0.01),
        ("30us", "S", 30e-6),
        ("4.7 kOHM", "OHM", 4700.0),
        ("1 MOHM", "OHM", 1e6),
        ("2 kohm", "OHM", 2000.0),
        ("-.5", "V", -0.5),
        ("+3.3000", "V", 3.3),
    ],
)
def test_numbers_with_units_and_multipliers(text: str, unit: str, value: float) -> None:
    assert parse_number(text, unit) == pytest.approx(value)


def test_wrong_suffix_and_non_numbers_are_refused() -> None:
    with pytest.raises(ScpiError) as bad_suffix:
        parse_number("5 V", "A")
    assert bad_suffix.value.code == -131
    with pytest.raises(ScpiError) as not_number:
        parse_number("five", "V")
    assert not_number.value.code == -104


def test_min_max_keywords(toy: Toy) -> None:
    toy.handle_message("VOLT MAX")
    assert toy.voltage == 60.0
    toy.handle_message("VOLT MIN")
    assert toy.voltage == 0.0
    toy.handle_message("CURR MAX")  # CURR declares no MAX
    assert toy.error() == '-224,"Illegal parameter value"'


def test_booleans(toy: Toy) -> None:
    for text, expected in [("ON", True), ("OFF", False), ("1", True), ("0", False), ("on", True)]:
        toy.handle_message(f"OUTP {text}")
        assert toy.output[1] is expected
    toy.handle_message("OUTP MAYBE")
    assert toy.error() == '-224,"Illegal parameter value"'


def test_keywords_accept_short_and_long_forms(toy: Toy) -> None:
    toy.handle_message("CURR:TRAN:MODE pulse")
    assert toy.mode == "PULS"
    toy.handle_message("CURR:TRAN:MODE TOGGLE")
    assert toy.mode == "TOGG"
    toy.handle_message("CURR:TRAN:MODE SQUARE")
    assert toy.mode == "TOGG"
    assert toy.error() == '-224,"Illegal parameter value"'


@pytest.mark.parametrize(
    ("text", "channels"),
    [
        ("(@1)", [1]),
        ("(@1:8)", [1, 2, 3, 4, 5, 6, 7, 8]),
        ("(@1,3,5)", [1, 3, 5]),
        ("(@1:3,6)", [1, 2, 3, 6]),
        ("( @ 2 )", [2]),
    ],
)
def test_channel_lists(text: str, channels: list[int]) -> None:
    assert parse_channel_list(text, 8) == channels


def test_channel_list_errors() -> None:
    with pytest.raises(ScpiError) as out_of_range:
        parse_channel_list("(@1:9)", 8)
    assert out_of_range.value.code == -222
    with pytest.raises(ScpiError) as not_a_list:
        parse_channel_list("1:8", 8)
    assert not_a_list.value.code == -104


# -- error queue -----------------------------------------------------------------------------


def test_out_of_range_is_queued_and_not_executed(toy: Toy) -> None:
    toy.handle_message("VOLT 10")
    toy.handle_message("VOLT 61")
    assert toy.voltage == 10.0
    assert toy.error() == '-222,"Data out of range"'
    assert toy.error() == '0,"No error"'


def test_error_codes(toy: Toy) -> None:
    toy.handle_message("VOLT")
    toy.handle_message("VOLT 1,2")
    toy.handle_message("VOLT abc")
    toy.handle_message("NOPE?")
    assert [toy.error() for _ in range(5)] == [
        '-109,"Missing parameter"',
        '-108,"Parameter not allowed"',
        '-104,"Data type error"',
        '-113,"Undefined header"',
        '0,"No error"',
    ]
    assert toy.voltage == 0.0


def test_failing_unit_does_not_stop_the_rest_of_the_message(toy: Toy) -> None:
    assert toy.ask("VOLT 99;CURR 4;CURR?") == "+4.00000000E+00"
    assert toy.voltage == 0.0
    assert toy.error() == '-222,"Data out of range"'


def test_cls_clears_the_queue_and_esr_reports_error_classes(toy: Toy) -> None:
    assert toy.ask("*ESR?") == "128"  # PON: the instrument has just been powered on
    toy.handle_message("BOGUS")
    toy.handle_message("VOLT 99")
    # Error queue not empty (SCPI bit 2); ESB stays 0 while *ESE enables nothing.
    assert toy.ask("*STB?") == str(0x04)
    toy.handle_message("*ESE 48")
    assert toy.ask("*STB?") == str(0x04 | 0x20)
    assert toy.ask("*ESR?") == str(0x20 | 0x10)
    assert toy.ask("*ESR?") == "0"
    toy.handle_message("*CLS")
    assert toy.error() == '0,"No error"'
    assert toy.ask("*ESE?") == "48"  # *CLS leaves the enable registers alone


# -- IEEE 488.2 status model -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "bit"),
    [
        (-113, 0x20),
        (-102, 0x20),
        (-222, 0x10),
        (-211, 0x10),
        (-300, 0x08),
        (-350, 0x08),
        (-410, 0x04),
        (-420, 0x04),
        (42, 0x08),
    ],
)
def test_each_error_class_sets_its_esr_bit(toy: Toy, code: int, bit: int) -> None:
    toy.ask("*ESR?")
    toy.queue_error(ScpiError(code, "x"))
    assert toy.ask("*ESR?") == str(bit)


def test_ese_sre_registers_and_the_summary_bits(toy: Toy) -> None:
    toy.handle_message("*CLS")
    assert toy.ask("*STB?") == "0"
    assert toy.ask("*ESE?;*SRE?") == "0;0"
    toy.handle_message("*ESE 32;*SRE 36")
    assert toy.ask("*ESE?;*SRE?") == "32;36"
    toy.handle_message("VOLT 99")  # an execution error: not enabled by *ESE 32
    assert toy.ask("*STB?") == str(0x04 | 0x40)  # queue not empty, enabled by SRE -> MSS
    toy.handle_message("NOPE")  # command error: ESB now
    assert toy.ask("*STB?") == str(0x04 | 0x20 | 0x40)
    toy.handle_message("*CLS")
    assert toy.ask("*STB?") == "0"
    # *SRE cannot enable bit 6; 0..255 only, rounded; out of range is -222 and not applied.
    toy.handle_message("*SRE 255;*ESE 7.6")
    assert toy.ask("*SRE?;*ESE?") == "191;8"
    toy.handle_message("*ESE 256")
    toy.handle_message("*ESE -1")
    assert toy.ask("*ESE?") == "8"
    assert [toy.error(), toy.error()] == ['-222,"Data out of range"'] * 2
    toy.handle_message("*ESE")
    assert toy.error() == '-109,"Missing parameter"'


def test_mav_reports_a_response_waiting_in_the_same_message(toy: Toy) -> None:
    toy.handle_message("*CLS")
    assert toy.ask("*STB?") == "0"
    assert toy.ask("VOLT?;*STB?") == f"{format_float(0.0)};16"
    toy.handle_message("*SRE 16")
    assert toy.ask("*IDN?;*STB?").endswith(";80")  # MAV enabled -> MSS


def test_opc_wai_tst_opt_and_rst_keep_the_status(toy: Toy) -> None:
    toy.handle_message("*CLS;*ESE 1;*OPC;*WAI")
    assert toy.ask("*STB?") == str(0x20)
    assert toy.ask("*ESR?") == "1"
    assert toy.ask("*TST?;*OPT?;*OPC?") == "0;0;1"
    toy.handle_message("*ESE 255;*SRE 4;VOLT 5;*RST")
    assert toy.ask("*ESE?;*SRE?") == "255;4"


def test_definite_blocks_are_one_parameter_and_keep_separators() -> None:
    class Sink(ScpiInstrument):
        def __init__(self) -> None:
            self.got: list[list[str]] = []
            super().__init__()

        def commands(self) -> list[Command]:
            return [Command("DATA", lambda a: self.got.append(a.params), params=(1, 3))]

    sink = Sink()
    block = definite_block(b'{"a": 1, "b": "x;y"}').decode()
    assert sink.handle_message(f"DATA {block};DATA 1,{block},2;*OPC?") == b"1\n"
    assert sink.got == [[block], ["1", block, "2"]]
    assert sink.handle_message("SYST:ERR?") == b'0,"No error"\n'


def test_queue_overflow_keeps_the_oldest_and_marks_the_loss() -> None:
    queue = ErrorQueue(capacity=3)
    for code in (-1, -2, -3, -4, -5):
        queue.push(code, "x")
    assert [queue.pop()[0] for _ in range(4)] == [-1, -2, -350, 0]


def test_handler_bug_becomes_a_device_error_not_a_dead_session() -> None:
    class Broken(ScpiInstrument):
        def commands(self) -> list[Command]:
            return [Command("BOOM?", lambda _: str(1 / 0))]

    inst = Broken()
    assert inst.handle_message("BOOM?;*OPC?") == b"1\n"
    assert inst.handle_message("SYST:ERR?") == b'-300,"Device-specific error"\n'


def test_definite_block_header() -> None:
    assert definite_block(b"abc") == b"#800000003abc"


# -- the TCP server ------------------------------------------------------------------------------


def test_server_answers_several_clients_in_the_running_loop() -> None:
    async def scenario() -> list[bytes]:
        toy = Toy()
        async with ScpiServer(toy) as server:
            assert server.port > 0
            assert server.address == f"TCPIP0::127.0.0.1::{server.port}::SOCKET"
            r1, w1 = await asyncio.open_connection("127.0.0.1", server.port)
            r2, w2 = await asyncio.open_connection("127.0.0.1", server.port)
            w1.write(b"VOLT 3.5;*OPC?\n")
            await w1.drain()
            answers = [await asyncio.wait_for(r1.readline(), 5)]
            # The second client sees the first one's setting: one instrument, shared.
            w2.write(b"VOLT?;*IDN?\r\n")
            await w2.drain()
            answers.append(await asyncio.wait_for(r2.readline(), 5))
            for writer in (w1, w2):
                writer.close()
                await writer.wait_closed()
        return answers

    answers = asyncio.run(scenario())
    assert answers == [b"1\n", b"+3.50000000E+00;bms-hil,TOY,0,1.0\n"]
