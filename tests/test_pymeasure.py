"""A generic driver works against the simulated bench, not only the harness's own.

``python -m bmssim`` runs as a child process (as in ``test_sim_wire.py``); its resolved
bench file gives the VISA socket addresses. Two kinds of client talk to it:

* plain pyvisa-py, with IEEE 488.2 checks every simulated instrument must pass (the
  mandatory common commands, the status registers, ``*OPT?``), each query answered well
  inside a 2 s timeout;
* PyMeasure 0.16.0's ``KeysightN5767A`` and ``KeysightDSOX1102G`` (the InfiniiVision class
  PyMeasure has; the DSOX1102G is a 1000 X-Series model, which shares the command set), used
  as a user would: every property they define, setters read back, the setup round trip, the
  screenshot.

Two PyMeasure 0.16.0 quirks are worked around here, not in the simulator: its
``KeysightN5767A.__init__`` calls ``VISAAdapter.config()``, which ``VISAAdapter`` no longer
has (the same bug as pymeasure issue #440 for the Keithley 2000), so the supply is opened
through an adapter that provides a no-op ``config``; and ``download_image`` reads the block
with ``read_bytes(-1)``, i.e. until the VISA timeout (6 s by the class's default), so the
screenshot test lowers the timeout for that one call.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.bench import parent_death_preexec

pyvisa = pytest.importorskip("pyvisa")
pymeasure = pytest.importorskip("pymeasure")

from pymeasure.adapters import VISAAdapter  # noqa: E402
from pymeasure.instruments.keysight import KeysightDSOX1102G, KeysightN5767A  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 30.0
QUERY_TIMEOUT_MS = 2000
TERMINATION = {"read_termination": "\n", "write_termination": "\n"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# PyMeasure marks both classes "not known whether it supports SCPI" (a FutureWarning).
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


# -- the simulator -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``python -m bmssim`` and its resolved bench file; the child dies with this process."""
    tmp = tmp_path_factory.mktemp("bmssim-pymeasure")
    bench_out = tmp / "sim-bench.yaml"
    log_path = tmp / "bmssim.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bmssim", "--bench-out", str(bench_out)]
            + ["--parent-pid", str(os.getpid())],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=parent_death_preexec(),
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not bench_out.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"bmssim did not come up:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield yaml.safe_load(bench_out.read_text())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(scope="module")
def control(sim: dict[str, Any]) -> Iterator[Callable[..., dict[str, Any]]]:
    host, _, port = sim["clock"]["address"].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        stream = sock.makefile("rwb")

        def call(**request: Any) -> dict[str, Any]:
            stream.write(json.dumps(request).encode() + b"\n")
            stream.flush()
            answer = json.loads(stream.readline())
            assert answer["ok"], answer
            return answer

        yield call


@pytest.fixture
def fresh(control: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Device and instruments back to their reset state before the test."""
    control(op="reset")
    return control


def address(sim: dict[str, Any], name: str) -> str:
    return sim["instruments"][name]["address"]


@pytest.fixture(scope="module")
def rm() -> Iterator[Any]:
    manager = pyvisa.ResourceManager("@py")
    yield manager
    manager.close()


# -- IEEE 488.2 on every simulated instrument ----------------------------------------------------

INSTRUMENTS = ["supply", "load", "cells_a", "cells_b", "resistors", "scope", "relays"]


@pytest.fixture(params=INSTRUMENTS)
def inst(request: pytest.FixtureRequest, sim: dict[str, Any], rm: Any, fresh: Any) -> Iterator[Any]:
    name = request.param
    if name not in sim["instruments"]:
        pytest.skip(f"this bench serves no {name}")
    resource = rm.open_resource(address(sim, name), timeout=QUERY_TIMEOUT_MS, **TERMINATION)
    try:
        resource.write("*CLS")
        yield resource
    finally:
        resource.close()


def error_code(resource: Any) -> int:
    return int(resource.query("SYST:ERR?").split(",")[0])


def test_ese_and_sre_registers(inst: Any) -> None:
    assert inst.query("*ESE?") == "0" and inst.query("*SRE?") == "0"
    assert inst.query("*ESE 32;*ESE?") == "32"
    assert inst.query("*SRE 4;*SRE?") == "4"
    inst.write("*SRE 0;*ESE 0")


def test_a_bad_command_sets_esr_bit_5_and_stb_bit_5(inst: Any) -> None:
    inst.write("*ESE 32")
    assert int(inst.query("*STB?")) & 0x24 == 0
    inst.write("NOSUCH:COMMand 1")
    stb = int(inst.query("*STB?"))
    assert stb & 0x20, f"*STB? {stb}: ESB not set"
    assert stb & 0x04, f"*STB? {stb}: error queue bit not set"
    assert int(inst.query("*ESR?")) & 0x20
    assert int(inst.query("*ESR?")) == 0  # read clears it
    assert error_code(inst) == -113
    assert int(inst.query("*STB?")) & 0x24 == 0
    inst.write("*ESE 0")


def test_tst_opt_opc_wai(inst: Any) -> None:
    assert inst.query("*TST?") == "0"
    options = inst.query("*OPT?")
    assert options and all(part.strip() for part in options.split(","))
    assert inst.query("*OPC?") == "1"
    inst.write("*OPC;*WAI")
    assert int(inst.query("*ESR?")) & 0x01
    assert inst.query("*IDN?").count(",") == 3
    assert error_code(inst) == 0


def test_stb_reports_mav_and_the_service_request_summary(inst: Any) -> None:
    assert inst.query("*IDN?;*STB?").rsplit(";", 1)[1] == "16"  # a response is queued
    inst.write("*SRE 16")
    assert inst.query("*OPC?;*STB?") == "1;80"  # MAV enabled: MSS too
    inst.write("*SRE 0")


def test_options_per_model(sim: dict[str, Any], rm: Any) -> None:
    expected = {"supply": "0", "load": "0", "cells_a": "0", "resistors": "0"}
    for name, answer in expected.items():
        with rm.open_resource(address(sim, name), timeout=QUERY_TIMEOUT_MS, **TERMINATION) as r:
            assert r.query("*OPT?") == answer, name
    with rm.open_resource(address(sim, "scope"), timeout=QUERY_TIMEOUT_MS, **TERMINATION) as r:
        fields = r.query("*OPT?").split(",")
        assert fields[:2] == ["0", "0"] and len(fields) > 2 and set(fields) == {"0"}


# -- PyMeasure's KeysightN5767A ----------------------------------------------------------------


class _ConfigurableVISAAdapter(VISAAdapter):
    """PyMeasure 0.16.0's KeysightN5767A calls ``adapter.config()`` (gone from VISAAdapter)."""

    def config(self, **_: Any) -> None:
        pass


@pytest.fixture
def supply(sim: dict[str, Any], fresh: Any) -> Iterator[KeysightN5767A]:
    adapter = _ConfigurableVISAAdapter(
        address(sim, "supply"), visa_library="@py", timeout=QUERY_TIMEOUT_MS, **TERMINATION
    )
    psu = KeysightN5767A(adapter)
    try:
        yield psu
    finally:
        psu.adapter.close()


def test_n5767a_identity_options_and_status(supply: KeysightN5767A) -> None:
    assert supply.id.startswith("Agilent Technologies,N5767A,")
    assert supply.options == "0"
    assert supply.complete == "1"
    supply.clear()
    assert supply.status == "0"
    assert supply.check_errors() == []


def test_n5767a_setpoints_measurements_and_output(
    supply: KeysightN5767A, fresh: Callable[..., dict[str, Any]]
) -> None:
    supply.voltage_range = 54.0
    supply.current_range = 5.0
    assert supply.voltage_range == pytest.approx(54.0)
    assert supply.current_range == pytest.approx(5.0)
    assert not supply.is_enabled()
    assert supply.voltage == pytest.approx(52.8, abs=0.05)  # the pack, on its terminals
    assert supply.current == pytest.approx(0.0)
    supply.enable()
    assert supply.complete == "1"  # the write is done before the clock moves (another socket)
    fresh(op="advance", s=1.0)
    assert supply.is_enabled()
    assert supply.voltage == pytest.approx(54.0, abs=0.05)
    assert supply.current == pytest.approx(5.0, abs=0.1)  # CC into the 52.8 V pack
    supply.current_range = 30  # the driver truncates to its 25 A model range
    assert supply.current_range == pytest.approx(25.0)
    supply.disable()
    assert not supply.is_enabled()
    assert supply.current == pytest.approx(0.0)
    assert supply.check_errors() == []
    supply.reset()
    assert supply.voltage_range == pytest.approx(0.0)


def test_n5767a_refusals_reach_check_errors(supply: KeysightN5767A) -> None:
    supply.voltage_range = 54.0
    supply.write("VOLT:PROT:LEV 50")  # the manual: OVP at least 1.05 x the setpoint
    assert [int(e[0]) for e in supply.check_errors()] == [-222]
    assert float(supply.ask("VOLT:PROT:LEV?")) == pytest.approx(66.0)
    assert int(supply.ask("*ESR?")) & 0x10  # an execution error


# -- PyMeasure's InfiniiVision driver (KeysightDSOX1102G) --------------------------------------


@pytest.fixture
def scope(sim: dict[str, Any], fresh: Any) -> Iterator[KeysightDSOX1102G]:
    dso = KeysightDSOX1102G(address(sim, "scope"), visa_library="@py", **TERMINATION)
    try:
        dso.clear_status()
        yield dso
        assert dso.check_errors() == []
    finally:
        dso.adapter.close()


def test_dsox_identity_and_options(scope: KeysightDSOX1102G) -> None:
    assert scope.id.startswith("KEYSIGHT TECHNOLOGIES,DSOX3024T,")
    assert scope.options[:2] == ["0", "0"]  # PyMeasure splits the answer at the commas
    assert scope.complete == "1"


def test_dsox_timebase(scope: KeysightDSOX1102G) -> None:
    assert scope.timebase == {"MODE": "MAIN", "REF": "LEFT", "MAIN:RANG": 0.5, "POS": 0.0}
    for mode in ("window", "xy", "roll", "main"):
        scope.timebase_mode = mode
        assert scope.timebase_mode == mode
    scope.timebase_range = 0.2
    assert scope.timebase_range == pytest.approx(0.2)
    assert scope.timebase_scale == pytest.approx(0.02)
    scope.timebase_scale = 0.01
    assert scope.timebase_range == pytest.approx(0.1)
    scope.timebase_offset = 0.01  # REF CENTer; POSition 10 ms
    assert scope.timebase_offset == pytest.approx(0.01)
    assert scope.timebase == {"MODE": "MAIN", "REF": "CENT", "MAIN:RANG": 0.1, "POS": 0.01}
    # The window follows: 50 ms before the reference, the trigger 10 ms before it.
    preamble = scope.waveform_preamble
    assert preamble["xorigin"] == pytest.approx(-0.04)
    expected = scope.timebase
    scope.timebase_setup()
    assert scope.timebase == expected


def test_dsox_channels(scope: KeysightDSOX1102G) -> None:
    assert scope.ch1.current_configuration == {
        "CHAN": 1, "RANG": 40.0, "OFFS": 0.0, "COUP": "DC", "IMP": "ONEM", "DISP": True,
        "BWL": False, "INV": False, "LAB": '"1"', "UNIT": "AMP", "PROB": 10.0,
        "PROB:SKEW": 0.0, "STYP": "SING",
    }  # fmt: skip
    assert scope.ch2.display is False
    scope.ch1.scale = 20.0
    scope.ch1.offset = -100.0
    assert scope.ch1.scale == pytest.approx(20.0)
    assert scope.ch1.range == pytest.approx(160.0)
    assert scope.ch1.offset == pytest.approx(-100.0)
    scope.ch2.setup(
        bwlimit=True, coupling="ac", display=True, invert=True, offset=0.5,
        probe_attenuation=1, vertical_range=1.6,
    )  # fmt: skip
    assert (scope.ch2.bwlimit, scope.ch2.coupling, scope.ch2.display) == (True, "ac", True)
    assert scope.ch2.invert is True
    assert scope.ch2.probe_attenuation == pytest.approx(1.0)
    assert scope.ch2.range == pytest.approx(1.6)
    assert scope.ch2.scale == pytest.approx(0.2)
    assert scope.ch2.offset == pytest.approx(0.5)
    # PyMeasure's current_configuration splits each field at its space, so a label with a
    # space would break it (a driver limitation; the real scope answers the same string).
    scope.ch2.label = "dsg_fet"
    assert scope.ask(":CHANnel2:LABel?") == '"DSG_FET"'
    config = scope.ch2.current_configuration
    assert (config["BWL"], config["COUP"], config["INV"], config["PROB"]) == (True, "AC", True, 1.0)
    # The probe ratio carries scale and offset with it, as on the real scope.
    scope.ch2.probe_attenuation = 10
    assert scope.ch2.scale == pytest.approx(2.0) and scope.ch2.offset == pytest.approx(5.0)
    with pytest.raises(ValueError):
        scope.ch(3)


def test_dsox_acquire_trigger_and_waveform(
    scope: KeysightDSOX1102G, fresh: Callable[..., dict[str, Any]]
) -> None:
    for kind in ("average", "hresolution", "peak", "normal"):
        scope.acquisition_type = kind
        assert scope.acquisition_type == kind
    for mode in ("segmented", "realtime"):
        scope.acquisition_mode = mode
        assert scope.acquisition_mode == mode
    # The trigger has no PyMeasure property: what a generic driver sends, raw.
    assert scope.ask(":TRIGger:MODE?") == "EDGE"
    scope.write(":TRIGger:MODE GLITch;:TRIGger:SWEep NORMal")
    assert scope.ask(":TRIGger:MODE?;:TRIGger:SWEep?") == "GLIT;NORM"
    scope.write(":TRIGger:EDGE:SOURce CHANnel2;:TRIGger:EDGE:LEVel 0.5;:TRIGger:EDGE:SLOPe NEG")
    assert scope.ask(":TRIG:SOUR?;:TRIG:LEV?;:TRIG:SLOP?") == "CHAN2;+5.00000000E-01;NEG"
    scope.write(":TRIGger:MODE EDGE")
    scope.timebase_range = 0.1
    scope.digitize("channel1")
    assert scope.complete == "1"  # armed before the clock moves (another socket)
    fresh(op="advance", s=0.2)
    assert scope.ask(":TER?") == "+1"
    scope.waveform_source = "channel2"
    assert scope.waveform_source == "channel2"
    for fmt in ("word", "byte", "ascii"):
        scope.waveform_format = fmt
        assert scope.waveform_format == fmt
    scope.waveform_points_mode = "normal"
    assert scope.waveform_points_mode == "normal"
    scope.waveform_points = 1000
    assert scope.waveform_points == 1000
    preamble = scope.waveform_preamble
    assert preamble["format"] == "ASCII" and preamble["type"] == "NORMAL"
    assert preamble["points"] == 1000 and preamble["xincrement"] == pytest.approx(1e-4)
    data = scope.waveform_data
    assert len(data) == 1000 and all(isinstance(v, float) for v in data)
    assert set(data) == {1.0}  # the discharge FET stays closed on a quiet bench
    values, pre = scope.download_data(source="channel1", points=1000)
    assert values.shape == (1000,) and pre["points"] == 1000
    scope.single()
    scope.run()
    scope.stop()


def test_dsox_system_setup_round_trip(scope: KeysightDSOX1102G) -> None:
    initial = scope.system_setup
    assert initial.startswith("#8") and int(initial[2:10]) == len(initial) - 10
    scope.ch1.display = not scope.ch1.display
    scope.ch2.display = not scope.ch2.display
    scope.timebase_range = 0.02
    assert scope.system_setup != initial
    scope.system_setup = initial
    assert scope.system_setup == initial
    assert scope.ch1.display is True and scope.timebase_range == pytest.approx(0.5)
    # *LRN? gives the same setup as a command.
    assert scope.ask("*LRN?") == ":SYST:SET " + initial
    scope.write(":SYSTem:SETup #15hello")  # not a setup of this scope: refused, nothing changes
    assert [int(e[0]) for e in scope.check_errors()] == [-224]
    assert scope.system_setup == initial


def test_dsox_resets_and_autoscale(scope: KeysightDSOX1102G) -> None:
    scope.write(":TIMebase:POSition 0.1")
    scope.autoscale()
    assert scope.timebase_offset == 0.0
    assert scope.ch2.display is True and scope.ch(2).current_configuration["DISP"] is True
    scope.default_setup()
    assert scope.ch2.display is False
    scope.timebase_mode = "roll"
    scope.factory_reset()
    assert scope.timebase_mode == "main"


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == PNG_SIGNATURE
    chunks: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, kind
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            break
    return chunks


def test_dsox_screenshot_is_a_valid_png(scope: KeysightDSOX1102G) -> None:
    scope.ch2.display = True
    connection = scope.adapter.connection
    timeout = connection.timeout
    connection.timeout = 300  # download_image reads until the VISA timeout (see the docstring)
    try:
        image = bytes(scope.download_image(format_="png", color_palette="color"))
    finally:
        connection.timeout = timeout
    assert image.endswith(b"\n")  # the driver keeps the message terminator
    chunks = _png_chunks(image[:-1])
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert (width, height) == (800, 480)
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (width + 1)
    # The other formats, through pyvisa's block reader.
    for fmt, magic in (("BMP", b"BM"), ("BMP8bit", b"BM"), ("PNG", PNG_SIGNATURE)):
        block = scope.adapter.connection.query_binary_values(
            f":DISPlay:DATA? {fmt},GRAYscale", datatype="B", container=bytes
        )
        assert block.startswith(magic), fmt
