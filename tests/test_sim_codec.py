"""The simulator's Seplos V2 codec against every captured and computed frame of the protocol doc.

Frames are copied from /work/shared/protocols/seplos-v2.md (§2.4, §5.1, §6.5, §7.4, §10).
Decode-then-encode must give the captured bytes back exactly, and the decoded values must
be the ones the document derives by hand, so a symmetric bug (encode and decode wrong in
the same way) cannot pass.
"""

from __future__ import annotations

import pytest

from bmssim import seplos_codec as sc
from bmsspec import load_spec

SPEC = load_spec()

# §7.4: the captured 0x47 answer, reassembled from the document's readable split.
BLOCK_HEX = (
    "00"
    "3C"
    "0DAC0D480B540C1C0E420D480A8C0C1C0D4805DC15E01518122012C01680151810E012C0189C17D4"
    "0C9F0C810ABF0ADD0CD10C9F0A470AAB0CB30C810A470AC90CD10C9F0A150AAB0AAB0B0F0C9F0C81"
    "0AAB0AC90D030CD10A470AAB0E2F0DFD0E930DFD3A9838A4C374C43C3E80C1808AD007D03E801D4C"
    "1B"
    "321E1E140A100A0A1E3C0505010A0A1EF0300F0560506409000D00"
    "08"
    "FFFFFF3FBF9FAF1E"
    "313130312D5A41313120"
)
ANSWER_47 = "~200046008152" + BLOCK_HEX + "B2BE"
# §7.4 frame 1: rated capacity (index 0x3A) 170.00 Ah instead of 160.00 Ah.
WRITE_A1_RATED_170 = "~200046A18152" + BLOCK_HEX.replace("07D03E801D4C", "07D042681D4C") + "B2B8"
# §7.4 frame 2: the unchanged block written back.
WRITE_A1_SAME = "~200046A18152" + BLOCK_HEX + "B2AC"

ANSWER_42_IDLE = (
    "~2000460010960000100D010D020D010D010D000D000CFF0D000D010D020D020D010D000D020D000D00060B1E"
    "0B140B110B210B450B20000014CE1D0C0A3E8001D03E80000103E814CEFFFBFFFD0067000BDD9C"
)
ANSWER_42_DISCHARGING = (
    "~2000460010960001100CD70CE90CF40CD60CEF0CE50CE10CDC0CE90CF00CE80CEF0CEA0CDA0CDE0CD8060BA6"
    "0BA00B970BA60BA50BA2FD5C14A0344E0A426803134650004603E8149F0000000000000000DC6C"
)
ANSWER_44 = (
    "~20004600806200001000000000000000000000000000000000060000000000000000140000000000000300"
    "001000000000000000000010EB33"
)
ANSWER_51 = [
    "~20004600C040313130312D5A41313120100443414E3A504E475F4459455F4C7578705F544242F02E",
    "~20004600C040313130312D5350313520020743414E50726F746F636F6C3A536F666172202020F046",
]

# §2.4: computed (and partly captured) request frames and empty answers.
REQUESTS = [
    "~20004642E00200FD37",
    "~20014642E00201FD35",
    "~200F4642E0020FFD0B",
    "~20004644E00200FD35",
    "~200F4644E0020FFD09",
    "~20004647E00200FD32",
    "~2000464F0000FD9A",
    "~2000464FE00200FD23",
    "~200046510000FDAE",
    "~20004645A00600001FFC5D",
    "~20004645A00600011FFC5C",
    "~20004645A006000110FC72",
    "~20014645A00601011FFC5A",
    "~20004645A006000210FC71",
    "~20004645A006000310FC70",
    "~20004645A006000400FC70",
    "~20004645A006000500FC6F",
    "~200046498008003B1D4CFBD6",
    "~200146498008013B2F12FBE5",
    "~2000464BC0040000FCC7",
    "~2000464E200E07E8030F0C2238FA85",
    "~200046A20000FDA1",
]
EMPTY_ANSWERS = {
    "~200046000000FDB4": (0, sc.Rtn.OK),
    "~200146000000FDB3": (1, sc.Rtn.OK),
    "~200046020000FDB2": (0, sc.Rtn.CHKSUM_ERROR),
    "~200046030000FDB1": (0, sc.Rtn.LCHKSUM_ERROR),
    "~200046040000FDB0": (0, sc.Rtn.CID2_INVALID),
    "~200046060000FDAE": (0, sc.Rtn.INVALID_DATA),
    "~200046E20000FD9D": (0, sc.Rtn.EXECUTION_FAILED),
}

# §7.2 "Decoded" column, P1..P87 in spec units.
CAPTURED_VALUES = {
    1: 3.5, 2: 3.4, 3: 2.9, 4: 3.1, 5: 3.65, 6: 3.4, 7: 2.7, 8: 3.1,
    9: 3.4, 10: 1.5, 11: 56.0, 12: 54.0, 13: 46.4, 14: 48.0, 15: 57.6, 16: 54.0,
    17: 43.2, 18: 48.0, 19: 63.0, 20: 61.0, 21: 50.0, 22: 47.0, 23: 2.0, 24: 5.0,
    25: 55.0, 26: 50.0, 27: -10.0, 28: 0.0, 29: 52.0, 30: 47.0, 31: -10.0, 32: 3.0,
    33: 55.0, 34: 50.0, 35: -15.0, 36: 0.0, 37: 0.0, 38: 10.0, 39: 50.0, 40: 47.0,
    41: 0.0, 42: 3.0, 43: 60.0, 44: 55.0, 45: -10.0, 46: 0.0, 47: 90.0, 48: 85.0,
    49: 100.0, 50: 85.0, 51: 150.0, 52: 145.0, 53: -155.0, 54: -153.0, 55: 160.0, 56: -160.0,
    57: -300.0, 58: 2000.0, 59: 160.0, 60: 75.0, 61: 0.5, 62: 0.3, 63: 0.03, 64: 0.02,
    65: 10.0, 66: 16.0, 67: 10.0, 68: 10.0, 69: 30.0, 70: 60.0, 71: 5.0, 72: 5.0,
    73: 1.0, 74: 10.0, 75: 10.0, 76: 30.0, 77: 240.0, 78: 48.0, 79: 15.0, 80: 5.0,
    81: 96.0, 82: 80.0, 83: 10.0, 84: 9.0, 85: 0.0, 86: 13.0, 87: 0.0,
}  # fmt: skip
# §7.3 "Capture" column: switches off in FF FF FF 3F BF 9F AF 1E (S = bit + 1).
CAPTURED_SWITCHES_OFF = {31, 32, 39, 46, 47, 53, 55, 57, 62, 63, 64}


def wire(text: str) -> bytes:
    return text.encode("ascii") + b"\r"


# --------------------------------------------------------------------------- framing


@pytest.mark.parametrize(
    ("lenid", "length"),
    [(0, 0x0000), (2, 0xE002), (4, 0xC004), (6, 0xA006), (8, 0x8008), (0x12, 0xD012),
     (0x40, 0xC040), (0x62, 0x8062), (0x96, 0x1096), (0x152, 0x8152)],
)  # fmt: skip
def test_length_field_matches_the_worked_table(lenid: int, length: int) -> None:
    assert sc.length_field(lenid) == length


def test_chksum_worked_example() -> None:
    assert sc.chksum(b"20004642E00200") == 0xFD37


ALL_FRAMES = (
    REQUESTS
    + list(EMPTY_ANSWERS)
    + [ANSWER_47, WRITE_A1_RATED_170, WRITE_A1_SAME, ANSWER_42_IDLE, ANSWER_42_DISCHARGING]
    + [ANSWER_44, *ANSWER_51]
)


@pytest.mark.parametrize("text", ALL_FRAMES)
def test_every_frame_decodes_and_reencodes_identically(text: str) -> None:
    frame = sc.decode_frame(wire(text))
    assert frame.ver == 0x20 and frame.cid1 == 0x46
    assert frame.encode() == wire(text)


@pytest.mark.parametrize(("text", "expected"), list(EMPTY_ANSWERS.items()))
def test_empty_answers_are_error_frames(text: str, expected: tuple[int, sc.Rtn]) -> None:
    adr, rtn = expected
    assert sc.error_frame(adr, rtn) == wire(text)
    frame = sc.decode_frame(wire(text))
    assert (frame.adr, frame.cid2, frame.info) == (adr, rtn, b"")


def test_lower_case_hex_is_accepted() -> None:
    body = b"20004642e00200"  # the checksum covers the characters as sent, lower case included
    frame = sc.decode_frame(b"~" + body + b"%04x\r" % sc.chksum(body))
    assert (frame.cid2, frame.info) == (0x42, b"\x00")


def test_bad_chksum_names_rtn_02_and_the_address() -> None:
    with pytest.raises(sc.FrameError) as info:
        sc.decode_frame(b"~20014642E00201FD36\r")
    assert info.value.rtn == sc.Rtn.CHKSUM_ERROR and info.value.adr == 1


def test_bad_lchksum_names_rtn_03() -> None:
    body = b"20004642F00200"  # LCHKSUM F instead of E, CHKSUM recomputed so only LENGTH is bad
    with pytest.raises(sc.FrameError) as info:
        sc.decode_frame(b"~" + body + b"%04X\r" % sc.chksum(body))
    assert info.value.rtn == sc.Rtn.LCHKSUM_ERROR


def test_lenid_disagreeing_with_info_is_rtn_03() -> None:
    body = b"20004642E0020000"  # LENID 2 but 4 INFO chars
    with pytest.raises(sc.FrameError) as info:
        sc.decode_frame(b"~" + body + b"%04X\r" % sc.chksum(body))
    assert info.value.rtn == sc.Rtn.LCHKSUM_ERROR


def test_non_hex_info_with_a_valid_checksum_is_a_format_error() -> None:
    body = b"20004642E002ZZ"
    with pytest.raises(sc.FrameError) as info:
        sc.decode_frame(b"~" + body + b"%04X\r" % sc.chksum(body))
    assert info.value.rtn == sc.Rtn.FORMAT_ERROR


def test_reader_handles_pieces_garbage_and_cut_frames() -> None:
    reader = sc.FrameReader()
    stream = b"\x00\xffnoise~2000464" + wire("~20004642E00200FD37") + wire("~200046510000FDAE")
    out: list[sc.Frame | sc.FrameError] = []
    for i in range(0, len(stream), 3):  # three bytes at a time
        out += reader.feed(stream[i : i + 3])
    assert [f.cid2 for f in out if isinstance(f, sc.Frame)] == [0x42, 0x51]
    assert not [f for f in out if isinstance(f, sc.FrameError)]


def test_reader_reports_a_corrupt_frame_then_recovers() -> None:
    reader = sc.FrameReader()
    out = reader.feed(b"~20004642E00200FD38\r~20004644E00200FD35\r")
    assert isinstance(out[0], sc.FrameError) and out[0].rtn == sc.Rtn.CHKSUM_ERROR
    assert isinstance(out[1], sc.Frame) and out[1].cid2 == 0x44


def test_reader_drops_an_overlong_frame_without_cr() -> None:
    reader = sc.FrameReader()
    assert reader.feed(b"~" + b"2" * (sc.MAX_FRAME_CHARS + 10)) == []
    assert [f.cid2 for f in reader.feed(wire("~20004642E00200FD37"))] == [0x42]


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize(
    ("text", "group"),
    [("~20004642E00200FD37", 0), ("~20014642E00201FD35", 1), ("~200F4644E0020FFD09", 15),
     ("~20004647E00200FD32", 0), ("~2000464FE00200FD23", 0), ("~2000464F0000FD9A", None),
     ("~200046510000FDAE", None)],
)  # fmt: skip
def test_group_requests(text: str, group: int | None) -> None:
    info = sc.decode_frame(wire(text)).info
    assert sc.decode_group(info, optional=True) == group
    assert sc.encode_group(group) == info


@pytest.mark.parametrize(
    ("text", "item", "action"),
    [("~20004645A00600001FFC5D", 0, 0x1F), ("~20004645A00600011FFC5C", 1, 0x1F),
     ("~20004645A006000210FC71", 2, 0x10), ("~20004645A006000400FC70", 4, 0x00),
     ("~20004645A006000500FC6F", 5, 0x00)],
)  # fmt: skip
def test_control_requests(text: str, item: int, action: int) -> None:
    frame = sc.decode_frame(wire(text))
    control = sc.Control.decode(frame.info)
    assert (control.item, control.action) == (item, action)
    assert sc.encode_frame(frame.adr, sc.Cid2.CONTROL, control.encode()) == wire(text)


def test_set_parameter_request_remaining_capacity() -> None:
    frame = sc.decode_frame(wire("~200146498008013B2F12FBE5"))
    request = sc.SetParameter.decode(frame.info)
    assert (request.group, request.index, request.value_raw()) == (1, 0x3B, 12050)
    assert sc.encode_frame(1, sc.Cid2.SET_PARAMETER, request.encode()) == frame.encode()
    with pytest.raises(ValueError):
        sc.SetParameter(group=0, index=0x3B, raw=b"\x01").value_raw()


def test_history_request() -> None:
    frame = sc.decode_frame(wire("~2000464BC0040000FCC7"))
    assert sc.HistoryRequest.decode(frame.info).index == 0
    assert sc.HistoryRequest(0).encode() == frame.info


# --------------------------------------------------------------------------- answers


def test_telemetry_idle_capture() -> None:
    frame = sc.decode_frame(wire(ANSWER_42_IDLE))
    t = sc.Telemetry.decode(frame.info)
    assert t.cell_v[:3] == [3.329, 3.330, 3.329] and len(t.cell_v) == 16
    assert t.temps_c == [11.5, 10.5, 10.2, 11.8, 15.4, 11.7]
    assert (t.current_a, t.pack_v, t.remaining_ah, t.full_ah) == (0.0, 53.26, 74.36, 160.0)
    assert (t.soc_permille, t.rated_ah, t.cycles, t.soh_permille, t.port_v) == (
        464,
        160.0,
        1,
        1000,
        53.26,
    )
    assert t.reserved == (0xFFFB, 0xFFFD, 0x0067, 0x000B)
    assert sc.encode_frame(0, sc.Rtn.OK, t.encode()) == wire(ANSWER_42_IDLE)


def test_telemetry_discharging_capture_with_group_1() -> None:
    frame = sc.decode_frame(wire(ANSWER_42_DISCHARGING))
    t = sc.Telemetry.decode(frame.info)
    assert t.group == 1
    assert (t.current_a, t.pack_v, t.remaining_ah, t.full_ah) == (-6.76, 52.80, 133.90, 170.0)
    assert (t.soc_permille, t.rated_ah, t.cycles, t.port_v) == (787, 180.0, 70, 52.79)
    assert t.temps_c == [25.1, 24.5, 23.6, 25.1, 25.0, 24.7]
    assert sc.encode_frame(0, sc.Rtn.OK, t.encode()) == wire(ANSWER_42_DISCHARGING)


def test_status_capture() -> None:
    frame = sc.decode_frame(wire(ANSWER_44))
    s = sc.StatusAnswer.decode(frame.info, SPEC.flags)
    assert s.flags == {"discharge_fet", "charge_fet", "standby"}
    assert s.cell_levels == [0] * 16 and s.temp_levels == [0] * 6
    assert s.mode is None  # the last byte equals the system state
    assert not any(s.balancing) and not any(s.disconnected)
    assert sc.encode_frame(0, sc.Rtn.OK, s.encode(SPEC.flags)) == wire(ANSWER_44)


def test_status_encodes_flags_by_name_and_mirrors_the_system_state() -> None:
    s = sc.StatusAnswer(
        cell_levels=[0] * 15 + [2],
        temp_levels=[0] * 6,
        current_level=0,
        voltage_level=0,
        flags={"cell_overvoltage_protection", "charging", "discharge_fet", "heater"},
        balancing=[False] * 8 + [True] + [False] * 7,
        disconnected=[True] + [False] * 15,
    )
    info = s.encode(SPEC.flags)
    assert len(info) == 49
    assert info[30] == 0b10  # event 2 bit 1
    assert info[35] == 0b1001  # discharge FET + heater
    assert (info[36], info[37]) == (0, 1)  # cell 9 balancing
    assert info[38] == 0b10 and info[48] == 0b10  # charging, copied to the last byte
    assert (info[39], info[40]) == (1, 0)
    assert info[18] == 2
    assert sc.StatusAnswer.decode(info, SPEC.flags) == s
    with pytest.raises(ValueError, match="not_a_flag"):
        sc.StatusAnswer(**{**s.__dict__, "flags": {"not_a_flag"}}).encode(SPEC.flags)


def test_parameter_block_capture_decodes_to_the_documented_values() -> None:
    frame = sc.decode_frame(wire(ANSWER_47))
    block = sc.ParameterBlockWire.decode(frame.info, SPEC)
    assert block.values == pytest.approx(CAPTURED_VALUES, abs=1e-9)
    assert {n for n, on in block.switches.items() if not on} == CAPTURED_SWITCHES_OFF
    assert block.model_name == "1101-ZA11 "
    assert sc.encode_frame(0, sc.Rtn.OK, block.encode(SPEC)) == wire(ANSWER_47)


@pytest.mark.parametrize(
    ("text", "rated_ah"), [(WRITE_A1_RATED_170, 170.0), (WRITE_A1_SAME, 160.0)]
)
def test_captured_a1_writes(text: str, rated_ah: float) -> None:
    frame = sc.decode_frame(wire(text))
    assert frame.cid2 == sc.Cid2.WRITE_PARAMETERS
    block = sc.ParameterBlockWire.decode(frame.info, SPEC)
    assert block.values[59] == pytest.approx(rated_ah)
    assert sc.encode_frame(0, sc.Cid2.WRITE_PARAMETERS, block.encode(SPEC)) == wire(text)


def test_parameter_block_format_errors() -> None:
    info = bytes.fromhex(BLOCK_HEX)
    with pytest.raises(sc.BlockFormatError):
        sc.ParameterBlockWire.decode(info[:-1], SPEC)
    bad_count = bytearray(info)
    bad_count[1] = 0x3B
    with pytest.raises(sc.BlockFormatError, match="3B/1B/08"):
        sc.ParameterBlockWire.decode(bytes(bad_count), SPEC)


def test_parameter_block_rejects_a_value_the_encoding_cannot_carry() -> None:
    block = sc.ParameterBlockWire.decode(bytes.fromhex(BLOCK_HEX), SPEC)
    block.values[61] = 3.0  # 1 byte at 0.01 V: max 2.55 V
    with pytest.raises(ValueError, match="P61"):
        block.encode(SPEC)


@pytest.mark.parametrize(
    ("text", "name", "version", "maker"),
    [(ANSWER_51[0], "1101-ZA11 ", (0x10, 0x04), "CAN:PNG_DYE_Luxp_TBB"),
     (ANSWER_51[1], "1101-SP15 ", (0x02, 0x07), "CANProtocol:Sofar   ")],
)  # fmt: skip
def test_device_info_captures(text: str, name: str, version: tuple[int, int], maker: str) -> None:
    frame = sc.decode_frame(wire(text))
    info = sc.DeviceInfo.decode(frame.info)
    assert (info.name, info.version, info.manufacturer) == (name, version, maker)
    assert sc.encode_frame(0, sc.Rtn.OK, info.encode()) == wire(text)
