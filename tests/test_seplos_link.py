"""The client Seplos V2 codec against the protocol document's captured frames, and the link
against a fake serial port (retries, bounds, never acting on a corrupt frame)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pytest
import serial

from bmsspec import load_spec
from instruments.bms import seplos_codec as codec
from instruments.bms.line import LATE_GUARD_S, REPLY_MARGIN_S
from instruments.bms.seplos_link import SeplosLink
from instruments.bmslink import ControlAction, ControlItem
from instruments.errors import BenchLost, BmsLinkError, BmsRejected

SPEC = load_spec()

TELEMETRY_1 = (
    "~2000460010960000100D010D020D010D010D000D000CFF0D000D010D020D020D010D000D020D000D0006"
    "0B1E0B140B110B210B450B20000014CE1D0C0A3E8001D03E80000103E814CEFFFBFFFD0067000BDD9C"
)
TELEMETRY_2 = (
    "~2000460010960001100CD70CE90CF40CD60CEF0CE50CE10CDC0CE90CF00CE80CEF0CEA0CDA0CDE0CD806"
    "0BA60BA00B970BA60BA50BA2FD5C14A0344E0A426803134650004603E8149F0000000000000000DC6C"
)
STATUS = (
    "~20004600806200001000000000000000000000000000000000060000000000000000140000000000000300"
    "001000000000000000000010EB33"
)
DEVICE_INFO = [
    "~20004600C040313130312D5A41313120100443414E3A504E475F4459455F4C7578705F544242F02E",
    "~20004600C040313130312D5350313520020743414E50726F746F636F6C3A536F666172202020F046",
]
BLOCK_INFO = (
    "003C0DAC0D480B540C1C0E420D480A8C0C1C0D4805DC15E01518122012C01680151810E012C0189C17D4"
    "0C9F0C810ABF0ADD0CD10C9F0A470AAB0CB30C810A470AC90CD10C9F0A150AAB0AAB0B0F0C9F0C81"
    "0AAB0AC90D030CD10A470AAB0E2F0DFD0E930DFD3A9838A4C374C43C3E80C1808AD007D03E801D4C"
    "1B321E1E140A100A0A1E3C0505010A0A1EF0300F0560506409000D00"
    "08FFFFFF3FBF9FAF1E313130312D5A41313120"
)
BLOCK_ANSWER = "~200046008152" + BLOCK_INFO + "B2BE"


def frame_of(text: str) -> codec.Frame:
    return codec.decode_frame(text.encode() + b"\r")


@pytest.mark.parametrize(
    ("adr", "cid2", "info", "wire"),
    [
        (0, 0x42, "00", "~20004642E00200FD37"),
        (1, 0x42, "01", "~20014642E00201FD35"),
        (15, 0x42, "0F", "~200F4642E0020FFD0B"),
        (0, 0x44, "00", "~20004644E00200FD35"),
        (15, 0x44, "0F", "~200F4644E0020FFD09"),
        (0, 0x47, "00", "~20004647E00200FD32"),
        (0, 0x4F, "", "~2000464F0000FD9A"),
        (0, 0x51, "", "~200046510000FDAE"),
        (0, 0x45, "00001F", "~20004645A00600001FFC5D"),
        (0, 0x45, "00011F", "~20004645A00600011FFC5C"),
        (0, 0x45, "000110", "~20004645A006000110FC72"),
        (1, 0x45, "01011F", "~20014645A00601011FFC5A"),
        (0, 0x49, "003B1D4C", "~200046498008003B1D4CFBD6"),
        (1, 0x49, "013B2F12", "~200146498008013B2F12FBE5"),
        (0, 0x4B, "0000", "~2000464BC0040000FCC7"),
        (0, 0x00, "", "~200046000000FDB4"),
        (1, 0x00, "", "~200146000000FDB3"),
        (0, 0x06, "", "~200046060000FDAE"),
        (0, 0xE2, "", "~200046E20000FD9D"),
    ],
)
def test_documented_frames_encode_and_decode(adr: int, cid2: int, info: str, wire: str):
    frame = codec.Frame(adr=adr, cid2=cid2, info=bytes.fromhex(info))
    assert codec.encode_frame(frame) == wire.encode() + b"\r"
    assert codec.decode_frame(wire.encode() + b"\r") == frame


def test_request_builders_match_documented_frames():
    assert codec.remaining_capacity_info(0, 75.00).hex().upper() == "003B1D4C"
    assert codec.remaining_capacity_info(1, 120.50).hex().upper() == "013B2F12"
    assert codec.control_info(0, ControlItem.DISCHARGE_FET, ControlAction.OFF).hex() == "00001f"
    assert codec.history_info(0).hex() == "0000"


def test_lchksum_table():
    for lenid, length in [
        (0, 0x0000),
        (2, 0xE002),
        (4, 0xC004),
        (6, 0xA006),
        (8, 0x8008),
        (0x12, 0xD012),
        (0x40, 0xC040),
        (0x62, 0x8062),
        (0x96, 0x1096),
        (0x152, 0x8152),
    ]:
        assert (codec.lchksum(lenid) << 12) | lenid == length


@pytest.mark.parametrize(
    ("wire", "problem"),
    [
        ("~20004642E00200FD38", "CHKSUM wrong"),
        ("~20004642F00200FD27", "LENGTH checksum wrong"),
        ("~20004642E00200FD3", "INFO characters"),
        ("20004642E00200FD37", "does not start"),
        ("~20004642E002", "too short"),
    ],
)
def test_corrupt_frames_are_refused(wire: str, problem: str):
    with pytest.raises(codec.FrameError, match=problem):
        codec.decode_frame(wire.encode())


def test_non_hex_info_with_a_valid_checksum_is_refused():
    body = b"20004642E0020Z"
    with pytest.raises(codec.FrameError, match="not hex"):
        codec.decode_frame(b"~" + body + b"%04X" % codec.chksum(body) + b"\r")


def test_telemetry_capture_1_decodes_to_documented_values_and_back():
    frame = frame_of(TELEMETRY_1)
    t, extras = codec.decode_telemetry(frame.info)
    assert t.cell_v == pytest.approx(
        [
            3.329,
            3.330,
            3.329,
            3.329,
            3.328,
            3.328,
            3.327,
            3.328,
            3.329,
            3.330,
            3.330,
            3.329,
            3.328,
            3.330,
            3.328,
            3.328,
        ]
    )
    assert t.cell_temp_c == pytest.approx([11.5, 10.5, 10.2, 11.8])
    assert (t.ambient_c, t.power_c) == pytest.approx((15.4, 11.7))
    assert t.current_a == 0.0
    assert (t.pack_v, t.port_v) == pytest.approx((53.26, 53.26))
    assert (t.remaining_ah, t.full_ah, t.rated_ah) == pytest.approx((74.36, 160.0, 160.0))
    assert (t.soc_pct, t.cycles, t.soh_pct) == pytest.approx((46.4, 1, 100.0))
    assert extras.reserved == (0xFFFB, 0xFFFD, 0x0067, 0x000B)
    assert codec.encode_telemetry(t, extras) == frame.info
    assert codec.encode_frame(frame).decode() == TELEMETRY_1 + "\r"


def test_telemetry_capture_2_discharging():
    frame = frame_of(TELEMETRY_2)
    t, extras = codec.decode_telemetry(frame.info)
    assert extras.group == 1
    assert t.current_a == pytest.approx(-6.76)
    assert (t.pack_v, t.remaining_ah, t.full_ah, t.soc_pct) == pytest.approx(
        (52.80, 133.90, 170.0, 78.7)
    )
    assert (t.rated_ah, t.cycles, t.soh_pct, t.port_v) == pytest.approx((180.0, 70, 100.0, 52.79))
    assert [*t.cell_temp_c, t.ambient_c, t.power_c] == pytest.approx(
        [25.1, 24.5, 23.6, 25.1, 25.0, 24.7]
    )
    assert codec.encode_telemetry(t, extras) == frame.info


def test_status_capture_decodes_and_encodes_back():
    frame = frame_of(STATUS)
    s = codec.decode_status(frame.info, SPEC.flags)
    assert set(s.flags) == set(SPEC.flag_names)
    assert s.charge_fet and s.discharge_fet and not s.current_limit_fet and not s.heater
    assert s.system_states == ["standby"]
    assert s.flags["standby"] and s.flags["charge_fet"]
    assert [
        n for n, on in s.flags.items() if on and n not in {"standby", "charge_fet", "discharge_fet"}
    ] == []
    assert s.cell_levels == [0] * 16 and s.temperature_levels == [0] * 6
    assert s.balancing == [False] * 16 and s.disconnected == [False] * 16
    assert codec.encode_status(s, SPEC.flags) == frame.info


def test_status_flag_bits_land_on_their_names():
    frame = frame_of(STATUS)
    info = bytearray(frame.info)
    info[30] |= 0b10  # cell_overvoltage_protection
    info[33] |= 0b10000  # transient_overcurrent_protection
    info[37] |= 0b1000000  # cell 15 balancing
    info[39] |= 0b1  # cell 1 disconnected
    s = codec.decode_status(bytes(info), SPEC.flags)
    assert s.flags["cell_overvoltage_protection"] and s.flags["transient_overcurrent_protection"]
    assert s.balancing[14] and s.balancing.count(True) == 1
    assert s.disconnected[0] and s.disconnected.count(True) == 1
    assert codec.encode_status(s, SPEC.flags) == bytes(info)


@pytest.mark.parametrize(
    ("wire", "name", "version", "maker"),
    [
        (DEVICE_INFO[0], "1101-ZA11 ", "16.4", "CAN:PNG_DYE_Luxp_TBB"),
        (DEVICE_INFO[1], "1101-SP15 ", "2.7", "CANProtocol:Sofar   "),
    ],
)
def test_device_info_captures(wire: str, name: str, version: str, maker: str):
    frame = frame_of(wire)
    info = codec.decode_device_info(frame.info)
    assert (info.name, info.version, info.manufacturer) == (name, version, maker)
    assert codec.encode_device_info(info) == frame.info


def test_parameter_block_capture_decodes_to_documented_values_and_back():
    frame = frame_of(BLOCK_ANSWER)
    raw = codec.decode_block(frame.info)
    block = codec.block_values(raw, SPEC.parameters, SPEC.switches)
    documented = {
        1: 3.500,
        2: 3.400,
        4: 3.100,
        5: 3.650,
        10: 1.500,
        15: 57.60,
        17: 43.20,
        19: 63.00,
        21: 50.0,
        27: -10.0,
        35: -15.0,
        49: 100.0,
        51: 150.00,
        53: -155.00,
        56: -160.00,
        57: -300.00,
        58: 2000,
        59: 160.00,
        60: 75.00,
        61: 0.50,
        63: 0.030,
        66: 16,
        69: 30,
        70: 60,
        77: 240,
        78: 48,
        83: 10.0,
        86: 13,
    }
    for number, value in documented.items():
        assert block.values[number] == pytest.approx(value), f"P{number}"
    switch_bits = int.from_bytes(bytes.fromhex("FFFFFF3FBF9FAF1E"), "little")
    for s in SPEC.switches:
        assert block.switches[s.number] == bool(switch_bits >> s.bit & 1), f"S{s.number}"
    assert block.model_name == "1101-ZA11 "
    again = codec.block_raw(block, SPEC.parameters, SPEC.switches)
    assert codec.encode_block(again) == frame.info


def test_captured_0xA1_writes_are_reproduced():
    block = codec.block_values(
        codec.decode_block(frame_of(BLOCK_ANSWER).info), SPEC.parameters, SPEC.switches
    )
    block.values[59] = 170.00
    raw = codec.block_raw(block, SPEC.parameters, SPEC.switches)
    wire = codec.encode_frame(codec.Frame(adr=0, cid2=0xA1, info=codec.encode_block(raw)))
    at = 4 + 4 * 0x3A  # P59 rated capacity, the one word Battery Monitor changed
    expected = BLOCK_INFO[:at] + "4268" + BLOCK_INFO[at + 4 :]
    assert wire.decode() == "~200046A18152" + expected + "B2B8\r"
    block.values[59] = 160.00
    raw = codec.block_raw(block, SPEC.parameters, SPEC.switches)
    wire = codec.encode_frame(codec.Frame(adr=0, cid2=0xA1, info=codec.encode_block(raw)))
    assert wire.decode() == "~200046A18152" + BLOCK_INFO + "B2AC\r"


def test_block_refuses_a_value_its_field_cannot_carry():
    block = codec.block_values(
        codec.decode_block(frame_of(BLOCK_ANSWER).info), SPEC.parameters, SPEC.switches
    )
    block.values[66] = 300  # a 1-byte field
    with pytest.raises(ValueError, match="P66"):
        codec.block_raw(block, SPEC.parameters, SPEC.switches)


# -- the link over a fake serial port ---------------------------------------------------


class FakeSerial:
    """A serial port in virtual time whose far end is ``respond(request_frame) -> reply``.

    A reply is ``None`` (silence), bytes (they arrive at once) or a list of
    ``(delay_s, bytes)`` chunks, each arriving ``delay_s`` after the request. ``read``
    behaves like pyserial's (wait for ``n`` characters or the timeout) by moving the
    virtual clock ``now`` to the next arrival or to the timeout; nothing sleeps.
    ``fail`` (an exception) is raised by the next read or write: the port went away.
    """

    def __init__(self, respond: Callable[[codec.Frame], Reply]) -> None:
        self.respond = respond
        self.now = 0.0
        self.timeout: float | None = 0.05
        self.buffer = b""
        self.pending: list[tuple[float, bytes]] = []  # (arrival time, characters)
        self.requests: list[codec.Frame] = []
        self.sent_at: list[float] = []
        self.fail: Exception | None = None

    def clock(self) -> float:
        return self.now

    def arrive(self, delay_s: float, data: bytes) -> None:
        """Schedule ``data`` to arrive ``delay_s`` from now (line noise, a stale frame)."""
        self.pending.append((self.now + delay_s, data))
        self.pending.sort(key=lambda p: p[0])

    def _deliver(self) -> None:
        while self.pending and self.pending[0][0] <= self.now:
            self.buffer += self.pending.pop(0)[1]

    @property
    def in_waiting(self) -> int:
        if self.fail:
            raise self.fail
        self._deliver()
        return len(self.buffer)

    def write(self, data: bytes) -> int:
        if self.fail:
            raise self.fail
        frame = codec.decode_frame(data)
        self.requests.append(frame)
        self.sent_at.append(self.now)
        answer = self.respond(frame)
        if isinstance(answer, bytes):
            answer = [(0.0, answer)]
        for delay_s, chunk in answer or []:
            self.arrive(delay_s, chunk)
        return len(data)

    def read(self, n: int) -> bytes:
        if self.fail:
            raise self.fail
        deadline = self.now + (self.timeout or 0.0)
        self._deliver()
        while len(self.buffer) < n and self.pending and self.pending[0][0] <= deadline:
            self.now = max(self.now, self.pending[0][0])
            self._deliver()
        if len(self.buffer) < n:  # pyserial: what there is once the timeout has passed
            self.now = max(deadline, math.nextafter(self.now, math.inf))
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def flush(self) -> None:
        pass

    def reset_input_buffer(self) -> None:
        self.buffer = b""

    def close(self) -> None:
        pass


Reply = bytes | list[tuple[float, bytes]] | None


def link_to(respond: Callable[[codec.Frame], Reply], **kw) -> tuple[SeplosLink, FakeSerial]:
    port = FakeSerial(respond)
    kw.setdefault("timeout_s", 0.05)
    link = SeplosLink("fake://", spec=SPEC, serial_port=port, clock=port.clock, **kw)
    return link, port


def reply(info: bytes = b"", rtn: int = 0, adr: int = 0) -> bytes:
    return codec.encode_frame(codec.Frame(adr=adr, cid2=rtn, info=info))


def corrupt(wire: bytes) -> bytes:
    return wire[:-5] + (b"0000" if wire[-5:-1] != b"0000" else b"1111") + b"\r"


def test_link_telemetry_and_requests_on_the_wire():
    link, port = link_to(lambda f: TELEMETRY_1.encode() + b"\r")
    assert link.telemetry().pack_v == pytest.approx(53.26)
    assert codec.encode_frame(port.requests[0]) == b"~20004642E00200FD37\r"


def test_link_retries_a_corrupt_reply_then_succeeds():
    replies = [corrupt(TELEMETRY_1.encode() + b"\r"), b"garbage~~", TELEMETRY_1.encode() + b"\r"]
    link, port = link_to(lambda f: replies.pop(0))
    assert link.telemetry().soc_pct == pytest.approx(46.4)
    assert len(port.requests) == 3


def test_link_raises_after_the_bound_naming_command_and_problem():
    link, port = link_to(lambda f: corrupt(TELEMETRY_1.encode() + b"\r"), retries=3)
    with pytest.raises(BmsLinkError, match=r"telemetry .*4 attempts.*CHKSUM wrong"):
        link.telemetry()
    assert len(port.requests) == 4


def test_link_missing_reply_raises_after_retries():
    link, port = link_to(lambda f: None, retries=2)
    with pytest.raises(BmsLinkError, match=r"status .*3 attempts.*no complete answer"):
        link.status()
    assert len(port.requests) == 3


def test_link_ignores_answers_from_another_address():
    answers = [reply(adr=1), reply()]
    link, port = link_to(lambda f: answers.pop(0))
    assert link.protocol_version() == "2.0"
    assert len(port.requests) == 2


def test_link_rtn_raises_rejected_with_meaning():
    link, _ = link_to(lambda f: reply(rtn=0x06))
    with pytest.raises(BmsRejected, match=r"set remaining capacity: RTN 0x06 \(invalid data\)"):
        link.set_remaining_capacity(300.0)


def test_link_history_no_data_is_none():
    link, port = link_to(lambda f: reply(rtn=0x07))
    assert link.history_record(0) is None
    assert codec.encode_frame(port.requests[0]) == b"~2000464BC0040000FCC7\r"


class FakeBms:
    """Just enough of a device to test read-modify-write: stores the block it is sent."""

    def __init__(self, apply_writes: bool = True, corrupt_reads: bool = False) -> None:
        self.info = bytes.fromhex(BLOCK_INFO)
        self.apply_writes = apply_writes
        self.corrupt_reads = corrupt_reads
        self.writes: list[bytes] = []

    def __call__(self, frame: codec.Frame) -> bytes:
        if frame.cid2 == 0x47:
            wire = reply(self.info)
            return corrupt(wire) if self.corrupt_reads else wire
        if frame.cid2 == 0xA1:
            self.writes.append(frame.info)
            if self.apply_writes:
                self.info = frame.info
            return reply()
        if frame.cid2 in (0x45, 0x49):
            return reply()
        return reply(rtn=0x04)


def test_write_parameters_is_read_modify_write_and_verified():
    bms = FakeBms()
    link, port = link_to(bms)
    back = link.write_parameters({1: 3.45}, switches={31: True})
    assert back.values[1] == pytest.approx(3.45) and back.switches[31] is True
    assert [f.cid2 for f in port.requests] == [0x47, 0xA1, 0x47]
    before, after = bytes.fromhex(BLOCK_INFO), bms.writes[0]
    changed = [i for i in range(len(before)) if before[i] != after[i]]
    assert changed == [
        3,
        151 + 3,
    ]  # P1 low byte (0x0DAC -> 0x0D7A) and switch byte 3 (S31 = bit 30)


def test_write_parameters_detects_a_write_not_applied():
    link, _ = link_to(FakeBms(apply_writes=False))
    with pytest.raises(BmsLinkError, match=r"not applied: P1 wrote 3.45 read 3.5"):
        link.write_parameters({1: 3.45})


def test_corrupt_block_is_never_written_back():
    bms = FakeBms(corrupt_reads=True)
    link, port = link_to(bms)
    with pytest.raises(BmsLinkError, match="read parameters"):
        link.write_parameters({1: 3.45})
    assert bms.writes == [] and {f.cid2 for f in port.requests} == {0x47}


def test_control_and_remaining_capacity_frames():
    link, port = link_to(FakeBms())
    link.control(ControlItem.DISCHARGE_FET, ControlAction.OFF)
    link.set_remaining_capacity(75.0)
    assert [codec.encode_frame(f) for f in port.requests] == [
        b"~20004645A00600001FFC5D\r",
        b"~200046498008003B1D4CFBD6\r",
    ]


# -- the transaction policy (virtual time: nothing sleeps) ------------------------------

TELEMETRY_INFO = frame_of(TELEMETRY_1).info
STATUS_ANSWER = STATUS.encode() + b"\r"


def numbered(n: int) -> bytes:
    """A telemetry answer whose remaining capacity says which request it answers."""
    t, extras = codec.decode_telemetry(TELEMETRY_INFO)
    return reply(codec.encode_telemetry(dataclasses.replace(t, remaining_ah=float(n)), extras))


class Numbering:
    """Answers request k with ``numbered(k)``; ``late`` maps k to its delay in seconds."""

    def __init__(self, late: dict[int, float] | None = None) -> None:
        self.late = late or {}
        self.count = 0

    def __call__(self, frame: codec.Frame) -> Reply:
        self.count += 1
        return [(self.late.get(self.count, 0.0), numbered(self.count))]


def test_a_late_answer_is_drained_before_the_retry_and_never_read_later():
    device = Numbering(late={1: 0.6})  # beyond the 0.5 s margin + line time
    link, port = link_to(device, timeout_s=0.5)
    timeout = link.timeout_for(codec.CID2_TELEMETRY, 20)
    assert 0.5 < timeout < 0.6
    assert link.telemetry().remaining_ah == 2  # the retry's answer
    assert port.sent_at[1] >= 0.6  # the retry waited for the late answer and dropped it
    assert link.telemetry().remaining_ah == 3  # the next exchange: its own answer
    assert link.stats == {
        "exchanges": 2,
        "retries": 1,
        "timeouts": 1,
        "corrupt": 0,
        "stale_discarded": 1,
    }


def test_an_answer_later_than_the_guard_is_discarded_when_it_shows_up():
    device = Numbering(late={1: 0.9})
    link, port = link_to(device, timeout_s=0.5, late_guard_s=0.2)
    assert link.telemetry().remaining_ah == 2  # guard passed without it; the retry answered
    port.now += 1.0  # the procedure waits; meanwhile answer 1 arrives
    assert port.in_waiting > 0
    # The next exchange finds it waiting: discarded, the attempt counted, request 3 answered.
    assert link.telemetry().remaining_ah == 3
    assert len(port.requests) == 3 and port.in_waiting == 0
    # (the first drain found nothing within its guard: nothing discarded there)
    assert link.stats["stale_discarded"] == 1 and link.stats["retries"] == 2


def test_characters_waiting_before_a_request_cost_an_attempt():
    link, port = link_to(Numbering())
    port.arrive(0.0, numbered(99))  # a stale frame already on the line
    assert link.telemetry().remaining_ah == 1
    assert len(port.requests) == 1 and link.stats["retries"] == 1
    assert link.stats["stale_discarded"] == 1
    link, port = link_to(Numbering(), retries=0)
    port.arrive(0.0, numbered(98))
    with pytest.raises(BmsLinkError, match="characters waiting before the request"):
        link.telemetry()
    assert port.requests == []


def test_a_second_answer_on_the_line_makes_the_exchange_ambiguous():
    answers = [[(0.0, numbered(1)), (0.0, numbered(1))], numbered(2)]
    link, port = link_to(lambda f: answers.pop(0))
    assert link.telemetry().remaining_ah == 2
    assert len(port.requests) == 2 and link.stats["stale_discarded"] == 1


@pytest.mark.parametrize("cid2", [codec.CID2_READ_PARAMETERS, codec.CID2_PROTOCOL_VERSION])
def test_timeout_is_line_time_of_request_and_answer_plus_margin(cid2: int):
    slow, fast = (
        SeplosLink("fake://", spec=SPEC, serial_port=FakeSerial(lambda f: None), baud=b)
        for b in (9600, 19200)
    )
    answer_chars = {codec.CID2_READ_PARAMETERS: 18 + 2 * 169, codec.CID2_PROTOCOL_VERSION: 18}
    chars = 20 + answer_chars[cid2]
    margin = REPLY_MARGIN_S  # the default turnaround margin
    assert slow.timeout_for(cid2, 20) == pytest.approx(chars * 10 / 9600 + margin)
    assert fast.timeout_for(cid2, 20) == pytest.approx(chars * 10 / 19200 + margin)
    assert slow.timeout_for(cid2, 20) - margin == pytest.approx(
        2 * (fast.timeout_for(cid2, 20) - margin)
    )


def test_timeouts_scale_with_baud_rate_and_answer_length_on_the_wire():
    line_9600 = (20 + 18 + 2 * 169) * 10 / 9600
    delay = 0.5 + 0.75 * line_9600  # inside the 9600 timeout, beyond the 19200 one
    for baud, timeouts in ((9600, 0), (19200, 1)):
        bms = FakeBms()
        first = [True]

        def respond(frame: codec.Frame, bms=bms, first=first) -> Reply:
            answer = bms(frame)
            if first[0]:
                first[0] = False
                return [(delay, answer)]
            return answer

        link, port = link_to(respond, timeout_s=0.5, baud=baud)
        assert link.read_parameters().values[1] == pytest.approx(3.5)
        assert link.stats["timeouts"] == timeouts, baud
        assert len(port.requests) == 1 + timeouts
    # the short 0x4F answer gets a shorter timeout than the 0x47 block at the same baud
    link, _ = link_to(lambda f: None, baud=9600)
    assert link.timeout_for(0x4F, 18) < link.timeout_for(0x47, 20)


def test_retries_are_bounded_and_each_waits_the_guard():
    link, port = link_to(lambda f: None, retries=2, timeout_s=0.5, late_guard_s=1.0)
    with pytest.raises(BmsLinkError, match=r"telemetry .*3 attempts.*no complete answer") as err:
        link.telemetry()
    assert str(err.value).count("no complete answer") == 3
    assert len(port.requests) == 3
    assert link.stats["timeouts"] == 3 and link.stats["retries"] == 2
    timeout = link.timeout_for(codec.CID2_TELEMETRY, 20)
    assert port.now == pytest.approx(3 * (timeout + 1.0), abs=1e-6)


def test_a_corrupt_reply_is_drained_and_retried():
    good = TELEMETRY_1.encode() + b"\r"
    replies: list[Reply] = [corrupt(good), good]
    link, port = link_to(lambda f: replies.pop(0))
    assert link.telemetry().pack_v == pytest.approx(53.26)
    assert link.stats["corrupt"] == 1 and link.stats["retries"] == 1
    assert len(port.requests) == 2


def test_an_answer_of_another_command_is_refused():
    # A stale 0x44 answer arriving for a 0x45 control, then the real acknowledgement.
    replies: list[Reply] = [STATUS_ANSWER, reply()]
    link, port = link_to(lambda f: replies.pop(0))
    link.control(ControlItem.CHARGE_FET, ControlAction.OFF)
    assert len(port.requests) == 2 and link.stats["corrupt"] == 1
    # 0x44 answers given to 0x42 and 0x4F, 0x42 answers given to 0x44: never parsed.
    for call, wrong, expected in (
        (
            lambda lk: lk.telemetry(),
            STATUS_ANSWER,
            "0x42 answer INFO of 49 bytes, expected 75 for 16 cells",
        ),
        (lambda lk: lk.protocol_version(), STATUS_ANSWER, "INFO of 49 bytes, expected 0"),
        (
            lambda lk: lk.status(),
            TELEMETRY_1.encode() + b"\r",
            "0x44 answer INFO of 75 bytes, expected 49 for 16 cells",
        ),
        (lambda lk: lk.device_info(), STATUS_ANSWER, "expected 32"),
    ):
        link, port = link_to(lambda f, wrong=wrong: wrong, retries=1)
        with pytest.raises(BmsLinkError, match=expected):
            call(link)
        assert len(port.requests) == 2


def test_lost_after_consecutive_failures_raises_bench_lost():
    link, port = link_to(lambda f: None, retries=0, lost_after=3)
    for n in (1, 2):
        with pytest.raises(BmsLinkError):
            link.status()
        assert link.consecutive_failures == n
    with pytest.raises(BenchLost) as lost:
        link.status()
    assert lost.value.what == "BMS link on fake://"
    assert "3 consecutive exchanges" in lost.value.detail and "status" in lost.value.detail
    assert len(port.requests) == 3


def test_a_valid_answer_resets_the_failure_count():
    answers: list[Reply] = [None, None, reply(), None, None, reply(rtn=0x06), None, None]
    link, _ = link_to(lambda f: answers.pop(0), retries=0, lost_after=3)
    for _ in range(2):
        with pytest.raises(BmsLinkError):
            link.protocol_version()
    assert link.consecutive_failures == 2
    assert link.protocol_version() == "2.0"
    assert link.consecutive_failures == 0
    for _ in range(2):
        with pytest.raises(BmsLinkError):
            link.protocol_version()
    with pytest.raises(BmsRejected):  # a refusal is an answer: the link is alive
        link.set_remaining_capacity(300.0)
    assert link.consecutive_failures == 0
    for _ in range(2):
        with pytest.raises(BmsLinkError):
            link.protocol_version()


@pytest.mark.parametrize(
    "error", [OSError(5, "Input/output error"), serial.SerialException("gone")]
)
def test_a_port_error_is_bench_lost_at_once(error: Exception):
    link, port = link_to(lambda f: reply())
    assert link.protocol_version() == "2.0"
    port.fail = error
    with pytest.raises(BenchLost, match="BMS link on fake://") as lost:
        link.protocol_version()
    assert "port failed" in lost.value.detail


def test_history_record_must_have_the_record_layouts_length():
    record = bytes(range(77))
    link, _ = link_to(lambda f: reply(record))
    assert link.history_record(0).raw == record
    link, _ = link_to(lambda f: STATUS_ANSWER, retries=0)
    with pytest.raises(BmsLinkError, match="0x4B answer INFO of 49 bytes, expected 77"):
        link.history_record(0)


# -- the link at the line's pace ----------------------------------------------------------


class PortClock:
    """A bench clock on the fake port's virtual time: ``sleep`` moves it."""

    def __init__(self, port: FakeSerial) -> None:
        self.port = port
        self.slept: list[float] = []

    def now(self) -> float:
        return self.port.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.port.now += seconds


def test_a_lost_reply_costs_its_line_time_the_margin_and_the_guard():
    answers: list[Reply] = [None, STATUS_ANSWER]
    link, port = link_to(lambda f: answers.pop(0), timeout_s=REPLY_MARGIN_S)
    assert link.late_guard_s == LATE_GUARD_S  # the default guard
    link, port = link_to(
        lambda f: answers.pop(0), timeout_s=REPLY_MARGIN_S, late_guard_s=REPLY_MARGIN_S
    )
    link.status()
    timeout = link.timeout_for(codec.CID2_STATUS, 20)
    line = (20 + 18 + 2 * (33 + 16)) * 10 / 19200  # 0x44 request and 16-cell answer
    assert timeout == pytest.approx(line + REPLY_MARGIN_S)
    # the retry went out after the timeout and its drain: line time + 2 margins here
    assert port.sent_at[1] == pytest.approx(timeout + REPLY_MARGIN_S, abs=1e-6)
    assert port.sent_at[1] < 0.3
    assert link.stats["timeouts"] == 1 and link.stats["retries"] == 1


def test_a_corrupt_reply_is_retried_at_once_without_waiting_the_guard():
    good = TELEMETRY_1.encode() + b"\r"
    replies: list[Reply] = [corrupt(good), good]
    link, port = link_to(lambda f: replies.pop(0), timeout_s=0.5, late_guard_s=1.0)
    assert link.telemetry().pack_v == pytest.approx(53.26)
    assert port.sent_at[1] < 0.01  # no guard: the corrupt frame was the answer owed
    assert link.stats["corrupt"] == 1 and link.stats["stale_discarded"] == 0


def test_a_frame_arriving_behind_a_refused_one_is_read_to_its_end_and_discarded():
    good = TELEMETRY_1.encode() + b"\r"
    # a wrong-address answer, right behind it the start of another frame that ends later
    tail = good[:40], good[40:]
    replies: list[Reply] = [[(0.0, reply(adr=1) + tail[0]), (0.05, tail[1])], good]
    link, port = link_to(lambda f: replies.pop(0))
    assert link.telemetry().pack_v == pytest.approx(53.26)
    assert port.sent_at[1] >= 0.05  # the drain waited for the end of the frame under way
    assert link.stats["stale_discarded"] == 1 and len(port.requests) == 2
    assert link.stats["retries"] == 1  # drained in the attempt, not found waiting later


def test_transactions_keep_the_lines_pace_on_the_bench_clock():
    port = FakeSerial(lambda f: STATUS_ANSWER)  # answers at once: faster than any line
    pace = PortClock(port)
    link = SeplosLink(
        "fake://", spec=SPEC, serial_port=port, clock=port.clock, pace_clock=pace, baud=9600
    )
    for _ in range(3):
        link.status()
    line = (20 + len(STATUS_ANSWER)) * 10 / 9600  # request + the answer received
    gaps = [b - a for a, b in zip(port.sent_at, port.sent_at[1:], strict=False)]
    assert gaps == [pytest.approx(line)] * 2
    assert link.pace.waited_s == pytest.approx(2 * line)
    # a slower caller is not held back: the line was free long ago
    port.now += 1.0
    link.status()
    assert pace.slept == [pytest.approx(line)] * 2


def test_without_a_bench_clock_the_line_itself_is_the_pace():
    link, port = link_to(lambda f: STATUS_ANSWER)
    link.status()
    link.status()
    assert port.sent_at == [0.0, 0.0] and link.pace.waited_s == 0.0


def test_after_a_timeout_the_next_transaction_waits_for_the_longest_answer():
    answers: list[Reply] = [None, STATUS_ANSWER]
    port = FakeSerial(lambda f: answers.pop(0))
    pace = PortClock(port)
    link = SeplosLink(
        "fake://", spec=SPEC, serial_port=port, clock=port.clock, pace_clock=pace, retries=1
    )
    link.status()
    # the timeout already covered the longest answer's line time: nothing more to wait
    assert pace.slept == []
    assert port.sent_at[1] > link.timeout_for(codec.CID2_STATUS, 20)
