"""The relay card of the simulated bench on the real wire: ``python -m bmssim`` serves a
Keysight 34972A with a 34903A actuator in slot 1 (channels 101-120) over a SCPI socket,
describes it in the resolved bench file (instrument, ``relays`` mapping, capabilities;
omitted with ``--no-relays``), and its channels act on the BMS behind the other links: with
the BMS supply cut (channel 102) the Seplos V2 and Modbus endpoints stay silent, and they
stay silent through the boot."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pyvisa
import serial
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from test_sim_wire import ACK, exchange, start_sim, stop_sim

from bmssim.instruments.keysight_34972a import IDN
from bmsspec import load_spec

SPEC = load_spec()
PING = "~2000464F0000FD9A"  # 0x4F protocol version: the shortest request with an answer

RELAYS_MAPPING = {
    "button": {"instrument": "relays", "channel": 101},
    "bms_power": {"instrument": "relays", "channel": 102},
    "power_switch": {"instrument": "relays", "channel": 103},
    "secondary_trip": {"instrument": "relays", "channel": 104},
    "short_circuit": {"instrument": "relays", "channel": 105},
    "connection_fault": {"instrument": "relays", "channel": 106, "ohm": 0.020, "cell": 8},
}
HAND_STEPS = (
    "button",
    "switch",
    "secondary_trip",
    "short_circuit",
    "bms_power",
    "connection_fault",
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    proc, bench = start_sim(tmp_path_factory.mktemp("bmssim-relays"))
    try:
        yield bench
    finally:
        stop_sim(proc)


class Scpi:
    """A plain socket to one SCPI instrument: ``send`` a line, ``query`` a line."""

    def __init__(self, address: str) -> None:
        _, host, port, _ = address.split("::")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.stream = self.sock.makefile("rwb")

    def send(self, line: str) -> None:
        self.stream.write(line.encode() + b"\n")
        self.stream.flush()

    def command(self, line: str) -> None:
        """``send`` and wait until the instrument has executed it (``*OPC?``), so what
        another link sees next already follows."""
        assert self.query(f"{line};*OPC?").endswith("1")

    def query(self, line: str) -> str:
        self.send(line)
        return self.stream.readline().decode().rstrip("\n")

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


@pytest.fixture
def card(sim: dict[str, Any], control: Any) -> Iterator[Scpi]:
    assert control(op="reset") == {"ok": True}
    scpi = Scpi(sim["instruments"]["relays"]["address"])
    try:
        yield scpi
    finally:
        scpi.send("*RST;*CLS")
        scpi.query("*OPC?")
        scpi.close()
        control(op="reset")


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


@pytest.fixture(scope="module")
def port(sim: dict[str, Any]) -> Iterator[serial.Serial]:
    with serial.Serial(sim["bms"]["port"], sim["bms"]["baud"], timeout=1.0) as ser:
        yield ser


def errors(card: Scpi) -> list[str]:
    """Drain the error queue (without the final ``+0,"No error"``)."""
    out = []
    while (e := card.query("SYST:ERR?")) != '+0,"No error"':
        out.append(e)
        assert len(out) < 25
    return out


# --------------------------------------------------------------------------- bench file


def test_bench_file_has_the_relay_card(sim: dict[str, Any]) -> None:
    relays = sim["instruments"]["relays"]
    assert relays["driver"] == "keysight_34972a"
    assert relays["idn"] == {"manufacturer": "Keysight Technologies", "model": "34972A"}
    kind, host, port_s, suffix = relays["address"].split("::")
    assert (kind, host, suffix) == ("TCPIP0", "127.0.0.1", "SOCKET") and int(port_s) > 0
    assert sim["relays"] == RELAYS_MAPPING
    assert all(sim["capabilities"][name] is True for name in HAND_STEPS)


def test_no_relays_omits_card_mapping_and_capabilities(tmp_path: Path) -> None:
    proc, bench = start_sim(tmp_path, "--no-relays")
    try:
        assert "relays" not in bench and "relays" not in bench["instruments"]
        caps = bench["capabilities"]
        assert not any(caps.get(name) for name in HAND_STEPS)
        # Every capability is declared (bmsspec.capabilities); without the card these are off.
        assert caps["bms_power"] is False and caps["connection_fault"] is False
    finally:
        stop_sim(proc)


# --------------------------------------------------------------------------- SCPI


def test_identity_and_reset(card: Scpi) -> None:
    assert card.query("*IDN?") == IDN == "Keysight Technologies,34972A,MY00000007,1.17-1.12-02-02"
    card.send("ROUT:CLOS (@101:120)")
    assert card.query("ROUT:CLOS? (@101,120)") == "1,1"
    card.send("*RST")
    assert card.query("ROUT:CLOS? (@101:120)") == ",".join(["0"] * 20)
    assert card.query("SYST:ERR?") == '+0,"No error"'


def test_close_open_and_query_channel_lists(card: Scpi) -> None:
    card.send("ROUT:CLOS (@101)")
    assert card.query("ROUT:CLOS? (@101,102)") == "1,0"
    assert card.query("ROUT:OPEN? (@101)") == "0"
    assert card.query("ROUT:OPEN? (@102)") == "1"
    card.send("ROUT:CLOS (@103,105)")
    card.send("ROUT:CLOS (@110:112)")
    assert card.query("ROUT:CLOS? (@101:106)") == "1,0,1,0,1,0"
    assert card.query("ROUT:CLOS? (@112,110,101)") == "1,1,1"  # list order
    card.send("ROUT:OPEN (@101,110:112)")
    assert card.query("ROUT:CLOS? (@101:112)") == "0,0,1,0,1,0,0,0,0,0,0,0"
    card.send("ROUT:CLOS:EXCL (@104)")  # every other channel opened first
    assert card.query("ROUT:CLOS? (@101:106)") == "0,0,0,1,0,0"
    assert errors(card) == []


def test_long_forms_case_and_joined_commands(card: Scpi) -> None:
    card.send(":ROUTe:CLOSe (@101)")
    card.send("route:close (@102)")
    assert card.query("ROUTe:CLOSe? (@101,102);:ROUTe:OPEN? (@101,102)") == "1,1;0,0"
    card.send("ROUT:OPEN (@101);CLOS (@103)")  # the second resolves under ROUT:
    assert card.query("rout:clos? (@101:103)") == "0,1,1"
    assert errors(card) == []


def test_unknown_channels_are_errors_and_change_nothing(card: Scpi) -> None:
    card.send("ROUT:CLOS (@101)")
    for bad in ("(@100)", "(@121)", "(@201)", "(@102,121)", "(@118:122)"):
        card.send(f"ROUT:CLOS {bad}")
        assert errors(card) == ['-222,"Data out of range"'], bad
    card.send("ROUT:OPEN (@101,999)")
    assert errors(card) == ['-222,"Data out of range"']
    assert card.query("ROUT:CLOS? (@101:120)") == "1" + ",0" * 19  # nothing changed
    assert card.query("ROUT:CLOS? (@121);*OPC?") == "1"  # a failed query answers nothing
    assert errors(card) == ['-222,"Data out of range"']
    card.send("ROUT:CLOS")
    card.send("ROUT:CLOS 101")
    card.send("ROUT:SHUT (@101)")
    assert errors(card) == [
        '-109,"Missing parameter"',
        '-104,"Data type error"',
        '-113,"Undefined header"',
    ]
    card.send("*CLS")
    assert card.query("SYST:ERR?") == '+0,"No error"'


def test_the_card_answers_through_pyvisa(sim: dict[str, Any], card: Scpi) -> None:
    rm = pyvisa.ResourceManager("@py")
    try:
        res = rm.open_resource(
            sim["instruments"]["relays"]["address"], read_termination="\n", write_termination="\n"
        )
        try:
            res.timeout = 2000
            assert res.query("*IDN?").split(",")[:2] == ["Keysight Technologies", "34972A"]
            res.write("ROUT:CLOS (@104)")
            assert res.query("ROUT:CLOS? (@104)") == "1"
        finally:
            res.close()
    finally:
        rm.close()


# --------------------------------------------------------------------------- what the channels do


def test_channels_reach_the_bms_and_the_snapshot(card: Scpi, control: Any) -> None:
    card.command("ROUT:CLOS (@101,104)")
    snap = control(op="snapshot")["snapshot"]
    assert snap["relays"]["closed"] == [101, 104]
    assert snap["relays"]["button"] is True and snap["relays"]["secondary_trip"] is True
    assert control(op="reset") == {"ok": True}  # reset opens every channel
    assert control(op="snapshot")["snapshot"]["relays"]["closed"] == []
    assert card.query("ROUT:CLOS? (@101,104)") == "0,0"


def test_bms_link_silent_while_unpowered_and_booting(
    sim: dict[str, Any], card: Scpi, control: Any, port: serial.Serial
) -> None:
    host, _, p = sim["bms_endpoints"]["modbus_tcp"].rpartition(":")
    rtu = ModbusSerialClient(
        sim["bms_endpoints"]["modbus_rtu"], baudrate=19200, timeout=0.5, retries=0
    )
    assert rtu.connect()
    with ModbusTcpClient(host, port=int(p), timeout=0.5, retries=0) as tcp, rtu:

        def modbus_answers() -> bool:
            """Modbus TCP and RTU both answer (True) or both stay silent (False)."""
            answered = []
            for client in (tcp, rtu):
                try:
                    reply = client.read_input_registers(0x1100, count=1, device_id=1)
                except ModbusIOException:
                    answered.append(False)  # no answer within the timeout
                else:
                    answered.append(not reply.isError())
            assert answered[0] == answered[1], answered
            return answered[0]

        assert exchange(port, PING) == ACK and modbus_answers()
        card.command("ROUT:CLOS (@102)")  # the BMS supply cut
        assert card.query("ROUT:CLOS? (@102)") == "1"
        assert control(op="snapshot")["snapshot"]["bms"]["power"] == "off"
        assert exchange(port, PING, timeout=0.3) == b""
        assert not modbus_answers()
        assert control(op="advance", s=10.0)["ok"]
        assert exchange(port, PING, timeout=0.3) == b""
        card.command("ROUT:OPEN (@102)")  # back: the board boots for 2 s
        assert control(op="snapshot")["snapshot"]["bms"]["power"] == "booting"
        assert exchange(port, PING, timeout=0.3) == b""
        assert not modbus_answers()
        assert control(op="advance", s=1.9)["ok"]
        assert exchange(port, PING, timeout=0.3) == b""
        assert control(op="advance", s=0.1)["ok"]
        assert control(op="snapshot")["snapshot"]["bms"]["power"] == "on"
        assert exchange(port, PING) == ACK
        assert modbus_answers()
        with serial.serial_for_url(sim["bms_endpoints"]["seplos_tcp"], timeout=1.0) as seplos:
            assert exchange(seplos, PING) == ACK
