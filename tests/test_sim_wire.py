"""The whole simulator over the real wire: ``python -m bmssim`` as a child process.

What a harness sees: a bench file appears, a pty path behaves like a serial port speaking
Seplos V2 (requests from the protocol document answered, corrupt ones answered with the
RTN error frames), Modbus TCP and RTU serve telemetry, the control channel moves virtual
time, and every instrument answers ``*IDN?`` over VISA sockets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pyvisa
import serial
import yaml
from pymodbus.client import ModbusSerialClient, ModbusTcpClient

from bmssim import seplos_codec as sc
from bmsspec import load_spec
from harness.bench import parent_death_preexec

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec()
ACK = b"~200046000000FDB4\r"
READY_TIMEOUT_S = 30.0

# §7.4 of the protocol document: the captured 0x47 block; the 0xA1 write of it (frame 2)
# carries checksum B2AC.
BLOCK_HEX = (
    "003C"
    "0DAC0D480B540C1C0E420D480A8C0C1C0D4805DC15E01518122012C01680151810E012C0189C17D4"
    "0C9F0C810ABF0ADD0CD10C9F0A470AAB0CB30C810A470AC90CD10C9F0A150AAB0AAB0B0F0C9F0C81"
    "0AAB0AC90D030CD10A470AAB0E2F0DFD0E930DFD3A9838A4C374C43C3E80C1808AD007D03E801D4C"
    "1B321E1E140A100A0A1E3C0505010A0A1EF0300F0560506409000D00"
    "08FFFFFF3FBF9FAF1E"
    "313130312D5A41313120"
)
WRITE_A1_CAPTURE = "~200046A18152" + BLOCK_HEX + "B2AC"


def start_sim(tmp: Path, *extra: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ``python -m bmssim`` and wait for its bench file; fail with its output if it dies.

    The simulator dies with the test process (PDEATHSIG, ``--parent-pid``), so a pytest
    killed by its timeout cannot leave one behind."""
    bench_out = tmp / "sim-bench.yaml"
    log = (tmp / "bmssim.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bmssim", "--bench-out", str(bench_out)]
        + ["--parent-pid", str(os.getpid()), *extra],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=parent_death_preexec(),
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not bench_out.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_sim(proc)
            pytest.fail(f"bmssim did not come up:\n{(tmp / 'bmssim.log').read_text()}")
        time.sleep(0.05)
    return proc, yaml.safe_load(bench_out.read_text())


def stop_sim(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bmssim")


@pytest.fixture(scope="module")
def sim(sim_dir: Path) -> Iterator[dict[str, Any]]:
    proc, bench = start_sim(sim_dir)
    try:
        yield bench
    finally:
        stop_sim(proc)


@pytest.fixture(scope="module")
def port(sim: dict[str, Any]) -> Iterator[serial.Serial]:
    with serial.Serial(sim["bms"]["port"], sim["bms"]["baud"], timeout=1.0) as ser:
        yield ser


@pytest.fixture(scope="module")
def control(sim: dict[str, Any]) -> Iterator[Any]:
    host, _, p = sim["clock"]["address"].rpartition(":")
    with socket.create_connection((host, int(p)), timeout=5) as sock:
        stream = sock.makefile("rwb")

        def call(**request: Any) -> dict[str, Any]:
            stream.write(json.dumps(request).encode() + b"\n")
            stream.flush()
            return json.loads(stream.readline())

        yield call


def exchange(ser: serial.Serial, frame: str | bytes, *, timeout: float = 1.0) -> bytes:
    """Send one frame, return the answer up to CR (b"" on silence)."""
    data = frame.encode() + b"\r" if isinstance(frame, str) else frame
    ser.reset_input_buffer()
    ser.timeout = timeout
    ser.write(data)
    return ser.read_until(b"\r")


def answer_info(raw: bytes) -> bytes:
    frame = sc.decode_frame(raw)
    assert (frame.adr, frame.cid2) == (0, 0), raw
    return frame.info


def frame_text(
    adr: int, cid2: int, info: bytes = b"", *, ver: int = 0x20, cid1: int = 0x46
) -> bytes:
    return sc.encode_frame(adr, cid2, info, ver=ver, cid1=cid1)


# --------------------------------------------------------------------------- bench file


def test_bench_file_is_resolved(sim: dict[str, Any]) -> None:
    assert sim["bench"] == "sim" and "launch" not in sim
    assert sim["clock"]["kind"] == "sim"
    assert set(sim["instruments"]) == {
        "supply", "load", "cells_a", "cells_b", "resistors", "scope", "relays"
    }  # fmt: skip
    assert sim["bms"] == {"protocol": "seplos_v2", "port": sim["bms"]["port"], "baud": 19200,
                          "address": 0}  # fmt: skip
    assert os.path.exists(sim["bms"]["port"]) and os.path.exists(sim["bms_endpoints"]["modbus_rtu"])
    assert sim["bms_endpoints"]["seplos_tcp"].startswith("socket://127.0.0.1:")
    assert sim["capabilities"]["heater"] is True and sim["capabilities"]["lcd"] is False
    assert sim["capabilities"]["button"] is True  # the relay card (tests/test_sim_relays.py)
    assert len(sim["channels"]["cells"]) == 16


def test_bench_file_loads_with_the_harness_loader(sim: dict[str, Any], sim_dir: Path) -> None:
    from harness.benchfile import load_bench_file

    bench = load_bench_file(sim_dir / "sim-bench.yaml")
    assert bench.bms.port == sim["bms"]["port"]
    assert set(bench.bms_endpoints) == {"seplos_tcp", "modbus_tcp", "modbus_rtu"}
    assert bench.capabilities.heater and bench.capabilities.button
    assert set(bench.relays) == set(sim["relays"])


# --------------------------------------------------------------------------- Seplos V2 on the pty


def test_telemetry_0x42(port: serial.Serial) -> None:
    t = sc.Telemetry.decode(answer_info(exchange(port, "~20004642E00200FD37")))
    assert len(t.cell_v) == 16 and all(2.0 < v < 4.0 for v in t.cell_v)
    assert t.pack_v == pytest.approx(sum(t.cell_v), abs=0.05)
    assert len(t.temps_c) == 6 and all(-40 < c < 100 for c in t.temps_c)
    assert 0 <= t.soc_permille <= 1000 and t.full_ah > 0
    assert t.soc_permille == int(1000 * t.remaining_ah / t.full_ah + 1e-9)


def test_status_0x44(port: serial.Serial) -> None:
    info = answer_info(exchange(port, "~20004644E00200FD35"))
    assert len(info) == 49 and info[48] == info[38]  # the mode byte mirrors the system state
    status = sc.StatusAnswer.decode(info, SPEC.flags)
    assert status.flags & {"discharging", "charging", "standby", "float_charging", "shutdown",
                           "fully_charged"}  # fmt: skip


def test_parameters_0x47(port: serial.Serial) -> None:
    block = sc.ParameterBlockWire.decode(answer_info(exchange(port, "~20004647E00200FD32")), SPEC)
    assert block.values[5] == pytest.approx(SPEC.param(5).default)
    assert block.values[66] == 16
    assert len(block.model_name) == 10


def test_protocol_version_0x4f(port: serial.Serial) -> None:
    assert exchange(port, "~2000464F0000FD9A") == ACK
    assert exchange(port, "~2000464FE00200FD23") == ACK


def test_device_info_0x51(port: serial.Serial) -> None:
    info = sc.DeviceInfo.decode(answer_info(exchange(port, "~200046510000FDAE")))
    assert info.name.startswith("1101-") and len(info.name) == 10


def test_remaining_capacity_0x49(port: serial.Serial) -> None:
    assert exchange(port, "~200046498008003B1D4CFBD6") == ACK  # 75.00 Ah
    t = sc.Telemetry.decode(answer_info(exchange(port, "~20004642E00200FD37")))
    assert t.remaining_ah == pytest.approx(75.0, abs=0.01)
    assert t.soc_permille == int(1000 * 75.0 / t.full_ah)
    other_index = frame_text(0, 0x49, bytes([0, 0x04, 0x0E, 0x42]))
    assert exchange(port, other_index) == b"~200046060000FDAE\r"


def _write_and_read_back(port: serial.Serial, request: str | bytes, block_hex: str) -> None:
    """0xA1 the block, expect the ACK, read 0x47 and compare; always restore the old block."""
    before = answer_info(exchange(port, "~20004647E00200FD32"))
    try:
        assert exchange(port, request) == ACK
        after = sc.ParameterBlockWire.decode(
            answer_info(exchange(port, "~20004647E00200FD32")), SPEC
        )
        written = sc.ParameterBlockWire.decode(bytes.fromhex(block_hex), SPEC)
        assert after.values == pytest.approx(written.values, abs=0.011)
        assert after.switches == written.switches
        assert after.model_name == "1101-ZA11 "
    finally:
        assert exchange(port, frame_text(0, 0xA1, before)) == ACK


def test_captured_whole_block_write_0xa1(port: serial.Serial) -> None:
    assert sc.decode_frame((WRITE_A1_CAPTURE + "\r").encode()).cid2 == 0xA1  # checksum B2AC
    _write_and_read_back(port, WRITE_A1_CAPTURE, BLOCK_HEX)


def test_whole_block_write_0xa1_round_trip(port: serial.Serial) -> None:
    """The captured block with P55 (index 0x36) at 150.00 A, inside the spec's range."""
    block_hex = BLOCK_HEX.replace("3E80C1808AD0", "3A98C1808AD0")
    assert block_hex != BLOCK_HEX
    _write_and_read_back(port, frame_text(0, 0xA1, bytes.fromhex(block_hex)), block_hex)


def test_a1_format_and_value_errors(port: serial.Serial) -> None:
    block = bytearray(bytes.fromhex(BLOCK_HEX))
    assert exchange(port, frame_text(0, 0xA1, bytes(block[:-1]))) == b"~200046050000FDAF\r"
    block[1] = 0x3B  # count of 2-byte parameters
    assert exchange(port, frame_text(0, 0xA1, bytes(block))) == b"~200046050000FDAF\r"
    block[1] = 0x3C
    block[2 + 2 * 4 : 4 + 2 * 4] = (1000).to_bytes(2, "big")  # P5 = 1.000 V, below its recovery
    assert exchange(port, frame_text(0, 0xA1, bytes(block))) == b"~200046060000FDAE\r"


@pytest.mark.parametrize(
    ("request_frame", "answer"),
    [
        (b"~20004642E00200FD38\r", b"~200046020000FDB2\r"),  # CHKSUM
        (frame_text(0, 0x42, b"\x00").replace(b"E002", b"F002"), b"~200046030000FDB1\r"),
        (frame_text(0, 0x99, b"\x00"), b"~200046040000FDB0\r"),  # CID2
        (frame_text(0, 0x42, b"\x00", cid1=0x47), frame_text(0, 0xE1, cid1=0x47)),
        (frame_text(0, 0x42, b"\x00", ver=0x21), frame_text(0, 0x01, ver=0x21)),
        (frame_text(0, 0x45, b"\x00\x00"), frame_text(0, 0x05)),  # 0x45 needs 3 bytes
    ],
)
def test_corrupt_frames_get_rtn_errors(
    port: serial.Serial, request_frame: bytes, answer: bytes
) -> None:
    if b"F002" in request_frame:  # bad LCHKSUM with a CHKSUM that matches it
        body = request_frame[1:-6]
        request_frame = b"~" + body + b"%04X\r" % sc.chksum(body)
    assert exchange(port, request_frame) == answer


def test_other_address_is_silent(port: serial.Serial) -> None:
    assert exchange(port, "~20014642E00201FD35", timeout=0.3) == b""


def test_garbage_and_split_frames(port: serial.Serial) -> None:
    port.reset_input_buffer()
    port.write(b"\x00\xff garbage ~2000")
    time.sleep(0.05)
    port.write(b"~2000464F00")
    time.sleep(0.05)
    port.write(b"00FD9A\r")
    port.timeout = 1.0
    assert port.read_until(b"\r") == ACK


def test_seplos_over_tcp(sim: dict[str, Any]) -> None:
    with serial.serial_for_url(sim["bms_endpoints"]["seplos_tcp"], timeout=1.0) as tcp:
        t = sc.Telemetry.decode(answer_info(exchange(tcp, "~20004642E00200FD37")))
    assert len(t.cell_v) == 16


def test_link_faults_from_the_control_channel(
    sim: dict[str, Any], port: serial.Serial, control: Any
) -> None:
    line = sim["bms"]["port"]
    request = b"~2000464F0000FD9A\r"

    def await_after_request(s: float) -> tuple[float, dict[str, Any]]:
        counts = control(op="line_counts", line=line)
        assert counts["served"] is True, counts
        port.reset_input_buffer()
        port.write(request)
        t0 = control(op="now")["now_s"]
        waited = control(
            op="await_line",
            s=s,
            line=line,
            sent=counts["read"] + len(request),
            received=counts["written"],
        )
        return t0, waited

    try:
        assert control(op="faults", faults={"link": {"drop_every": 2}}) == {"ok": True}
        replies = [exchange(port, "~2000464F0000FD9A", timeout=0.3) for _ in range(4)]
        assert replies.count(ACK) == 2 and replies.count(b"") == 2
        assert control(op="faults", faults={"link": {"corrupt_every": 1}})["ok"]
        with pytest.raises(sc.FrameError) as bad:
            sc.decode_frame(exchange(port, "~2000464F0000FD9A"))
        assert bad.value.rtn == sc.Rtn.CHKSUM_ERROR
        # Late on the virtual clock: nothing however long the wall clock runs, the answer
        # once the bench clock has passed its instant.
        assert control(op="faults", faults={"link": {"late_every": 1, "late_s": 0.3}})["ok"]
        assert exchange(port, "~2000464F0000FD9A", timeout=0.2) == b""
        assert control(op="advance", s=0.25)["ok"]
        assert port.read_until(b"\r") == b""
        assert control(op="advance", s=0.1)["ok"]
        assert port.read_until(b"\r") == ACK
        # await_line: the clock runs until the late answer is out, not to the end of s.
        t0, waited = await_after_request(5.0)
        assert waited["input"] is True and 0.299 <= waited["now_s"] - t0 < 0.35, waited
        assert port.read_until(b"\r") == ACK
        # A dropped answer: await_line runs the whole time and reports no input.
        assert control(op="faults", faults={"link": {"drop_every": 1}})["ok"]
        t0, waited = await_after_request(1.0)
        assert waited["input"] is False and waited["now_s"] - t0 == pytest.approx(1.0, abs=0.05)
    finally:
        assert control(op="faults", faults={})["ok"]
    assert exchange(port, "~2000464F0000FD9A") == ACK
    # An answer on time: await_line returns once it is out (its line time), however early
    # the request is still on its way through the pty.
    t0, waited = await_after_request(5.0)
    assert waited["input"] is True and waited["now_s"] - t0 < 0.05, waited
    assert port.read_until(b"\r") == ACK
    # A line the simulator does not serve on a pty: not served, the clock does not move.
    assert control(op="line_counts", line="/dev/null") == {"ok": True, "served": False}


# --------------------------------------------------------------------------- Modbus


def _check_modbus_telemetry(client: Any) -> None:
    """The Seplos V3 blocks as a public client reads them (FC 4 PIA x 18, PIB x 26)."""
    pia = client.read_input_registers(0x1000, count=0x12, device_id=1)
    assert not pia.isError(), pia
    pib = client.read_input_registers(0x1100, count=0x1A, device_id=1)
    assert not pib.isError(), pib
    cells = pib.registers[:16]
    assert all(2000 < mv < 4000 for mv in cells)
    assert pia.registers[0] == pytest.approx(sum(cells) / 10, abs=5)
    temps = pib.registers[16:20] + pib.registers[24:26]  # 0x1114-0x1117 reserved
    assert all(2331 < raw < 3731 for raw in temps)  # -40..100 °C in 0.1 K


def test_modbus_tcp(sim: dict[str, Any]) -> None:
    host, _, p = sim["bms_endpoints"]["modbus_tcp"].rpartition(":")
    p5_address = 0x130D  # V3 SPA: cell over-voltage protection
    with ModbusTcpClient(host, port=int(p), timeout=2) as client:
        _check_modbus_telemetry(client)
        p5 = client.read_input_registers(p5_address, count=1, device_id=1)
        assert p5.registers == [SPEC.param(5).encode(SPEC.param(5).default)]
        assert not client.write_registers(p5_address, [3600], device_id=1).isError()
        assert client.read_input_registers(p5_address, count=1, device_id=1).registers == [3600]
        refused = client.write_registers(p5_address, [1000], device_id=1)  # below recovery P6
        assert refused.isError() and refused.exception_code == 3
        assert not client.write_registers(p5_address, p5.registers, device_id=1).isError()
        assert client.read_input_registers(0x0FFF, count=1, device_id=1).exception_code == 2
        # the V3 board's four function codes only: holding registers are refused (01)
        assert client.read_holding_registers(p5_address, count=1, device_id=1).exception_code == 1
        assert client.write_register(p5_address, 3600, device_id=1).exception_code == 1
        pic = client.read_coils(0x1200, count=0x90, device_id=1)
        assert not pic.isError()
        assert pic.bits[0x78] and pic.bits[0x79]  # 0x1278/0x1279: discharge and charge FET on
        sfa = client.read_coils(0x1400, count=0x50, device_id=1)
        assert sfa.bits[1] is SPEC.switch(10).default  # 0x1401: cell over-voltage protection
        assert client.write_coils(0x1240, [True], device_id=1).exception_code == 2  # PIC


def test_modbus_rtu(sim: dict[str, Any]) -> None:
    client = ModbusSerialClient(sim["bms_endpoints"]["modbus_rtu"], baudrate=19200, timeout=2)
    assert client.connect()
    try:
        _check_modbus_telemetry(client)
    finally:
        client.close()


# --------------------------------------------------------------------------- control channel


def test_control_channel_time(control: Any) -> None:
    now = control(op="now")
    assert now["ok"]
    moved = control(op="advance", s=1.5)
    assert moved["ok"] and moved["now_s"] == pytest.approx(now["now_s"] + 1.5)
    assert control(op="advance", s=-1)["ok"] is False
    assert control(op="bogus")["ok"] is False
    snap = control(op="snapshot")
    assert snap["ok"] and isinstance(snap["snapshot"], dict)
    assert control(op="mode", mode="real") == {"ok": True}
    try:
        refused = control(op="advance", s=1)
        assert refused["ok"] is False and "real" in refused["error"]
        t0 = control(op="now")["now_s"]
        time.sleep(0.3)
        assert control(op="now")["now_s"] - t0 == pytest.approx(0.3, abs=0.15)
    finally:
        assert control(op="mode", mode="virtual") == {"ok": True}
    t1 = control(op="now")["now_s"]
    time.sleep(0.1)
    assert control(op="now")["now_s"] == t1  # virtual: time stands still


def test_harness_sim_clock_drives_the_control_channel(sim: dict[str, Any]) -> None:
    from harness.clock import SimClock

    clock = SimClock(sim["clock"]["address"])
    try:
        t0 = clock.now()
        clock.sleep(10.0)
        assert clock.now() == pytest.approx(t0 + 10.0)
    finally:
        clock.close()


def test_the_shared_clock_page_reads_what_the_control_channel_answers(
    sim: dict[str, Any], port: serial.Serial, control: Any
) -> None:
    """The resolved bench file names the clock page; reading it gives the control channel's
    time after an advance and after a serial exchange (whose line time moved the clock)."""
    from harness.clock import SimClock

    assert sim["clock"]["shared"].endswith(".clock")
    clock = SimClock(sim["clock"]["address"], sim["clock"]["shared"])
    try:
        clock.sleep(2.5)
        assert clock.now() == control(op="now")["now_s"]
        before = clock.now()
        exchange(port, "~20004647E00200FD32")  # a parameter block: about 0.19 s of line
        assert clock.now() == control(op="now")["now_s"] > before + 0.15
    finally:
        clock.close()


def test_control_reset(port: serial.Serial, control: Any) -> None:
    assert exchange(port, "~200046498008003B1D4CFBD6") == ACK
    assert control(op="reset") == {"ok": True}
    block = sc.ParameterBlockWire.decode(answer_info(exchange(port, "~20004647E00200FD32")), SPEC)
    assert block.values[5] == pytest.approx(SPEC.param(5).default)


# --------------------------------------------------------------------------- instruments


def test_every_instrument_answers_idn(sim: dict[str, Any]) -> None:
    rm = pyvisa.ResourceManager("@py")
    try:
        for name, inst in sim["instruments"].items():
            res = rm.open_resource(inst["address"], read_termination="\n", write_termination="\n")
            try:
                res.timeout = 2000
                fields = [f.strip() for f in res.query("*IDN?").split(",")]
            finally:
                res.close()
            assert fields[:2] == [inst["idn"]["manufacturer"], inst["idn"]["model"]], name
    finally:
        rm.close()


# --------------------------------------------------------------------------- process


def test_shutdown_over_the_control_channel(tmp_path: Path) -> None:
    proc, bench = start_sim(tmp_path)
    try:
        host, _, p = bench["clock"]["address"].rpartition(":")
        with socket.create_connection((host, int(p)), timeout=5) as sock:
            sock.sendall(b'{"op": "shutdown"}\n')
            assert json.loads(sock.makefile().readline()) == {"ok": True}
        assert proc.wait(10) == 0
        assert (tmp_path / "sim-bench.yaml").exists()  # the user's file is left in place
    finally:
        stop_sim(proc)


def test_faults_file_and_sigterm(tmp_path: Path) -> None:
    """``--faults FILE`` is in force from the start; SIGTERM closes everything cleanly."""
    faults = tmp_path / "faults.yaml"
    faults.write_text("link: {corrupt_every: 1}\n")
    proc, bench = start_sim(tmp_path, "--faults", str(faults))
    try:
        with serial.Serial(bench["bms"]["port"], 19200, timeout=1.0) as ser:
            with pytest.raises(sc.FrameError) as bad:
                sc.decode_frame(exchange(ser, "~2000464F0000FD9A"))
        assert bad.value.rtn == sc.Rtn.CHKSUM_ERROR
    finally:
        assert stop_sim(proc) == 0
    assert "bmssim: stopped" in (tmp_path / "bmssim.log").read_text()
