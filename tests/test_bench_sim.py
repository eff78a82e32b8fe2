"""The whole layer over the real wire: ``Bench.open("fixtures/sim.yaml")`` launches the
simulator; every driver sets and reads back; the BMS link reads and writes; the device then
behaves per what was written; and the safe state holds on SIGINT and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import FIXTURES_DIR, PROJECT_ROOT
from harness.bench import Bench, parent_death_preexec
from harness.benchfile import BenchFile, load_bench_file
from instruments.bms.modbus_link import ModbusLink
from instruments.bmslink import ControlAction, ControlItem
from instruments.errors import BmsRejected, EnvelopeError

SIM_BENCH = FIXTURES_DIR / "sim.yaml"


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    with Bench.open(SIM_BENCH) as b:
        yield b


@pytest.fixture
def nominal(bench: Bench) -> Iterator[Bench]:
    bench.safe_state()
    yield bench
    bench.safe_state()


def test_identities_recorded(bench: Bench):
    ids = bench.identities
    assert set(ids) == {"supply", "load", "cells_a", "cells_b", "resistors", "scope", "relays"}
    assert ids["relays"]["model"] == "34972A"  # the relay card of the hand-steps
    assert ids["supply"]["model"] == "N5767A" and ids["supply"]["serial"]
    assert bench.capabilities["simulated_cells"] is True
    assert bench.sim_control is not None


def test_supply_sets_and_reads_back(nominal: Bench):
    b = nominal
    b.supply.set_voltage_v(54.0)
    b.supply.set_current_limit_a(8.0)
    b.supply.output(True)
    b.clock.sleep(1.0)
    assert b.supply.measure_voltage_v() == pytest.approx(54.0, abs=0.05)
    assert b.supply.measure_current_a() == pytest.approx(8.0, abs=0.1)
    t = b.bms.telemetry()
    assert t.current_a == pytest.approx(8.0, abs=0.1) and t.port_v == pytest.approx(54.0, abs=0.05)
    with pytest.raises(EnvelopeError, match="max_voltage_v"):
        b.supply.set_voltage_v(b.config.envelope.supply.max_voltage_v + 1)


def test_load_sets_and_reads_back(nominal: Bench):
    b = nominal
    b.load.set_current_a(12.0)
    b.load.input(True)
    b.clock.sleep(1.0)
    assert b.load.measure_current_a() == pytest.approx(12.0, abs=0.1)
    assert b.load.measure_voltage_v() == pytest.approx(52.8, abs=0.2)
    assert b.bms.telemetry().current_a == pytest.approx(-12.0, abs=0.1)


def test_cells_set_and_read_back(nominal: Bench):
    b = nominal
    b.cells.set_cell_v(1, 3.10)
    b.cells.set_cell_v(16, 3.45)
    assert b.cells.read_cell_v(1) == pytest.approx(3.10, abs=0.002)
    assert b.cells.read_cell_v(16) == pytest.approx(3.45, abs=0.002)
    b.clock.sleep(0.5)
    t = b.bms.telemetry()
    assert t.cell_v[0] == pytest.approx(3.10, abs=0.002)
    assert t.cell_v[15] == pytest.approx(3.45, abs=0.002)
    b.cells.set_all_v([3.2 + 0.01 * i for i in range(16)])
    assert b.cells.read_cell_v(9) == pytest.approx(3.28, abs=0.002)


def test_resistors_set_and_read_back(nominal: Bench):
    b = nominal
    b.resistors.set_temperature_c("ambient", 45.0)
    assert b.resistors.read_ohm("ambient") == pytest.approx(4_850, rel=0.01)
    b.resistors.set_temperature_c("cell2", 5.0)
    b.clock.sleep(0.5)
    t = b.bms.telemetry()
    assert t.ambient_c == pytest.approx(45.0, abs=0.5)
    assert t.cell_temp_c[1] == pytest.approx(5.0, abs=0.5)
    b.resistors.open("cell3")
    b.clock.sleep(2.0)
    assert b.bms.status().flags["temperature_sensor_fault"]


def test_scope_times_the_transient_trip(nominal: Bench):
    b = nominal
    assert b.scope is not None
    b.load.set_current_a(5.0)
    b.load.configure_transient(5.0, 250.0, 1.0, 0.5, "pulse")
    b.load.transient(True)
    b.load.input(True)
    b.clock.sleep(0.5)
    b.scope.arm_single(0.5)
    b.load.trigger()
    b.clock.sleep(0.5)
    # The current probe reads the discharge step as a rising edge (probe orientation on this
    # bench); the discharge FET gate falls when the transient protection (P69, 30 ms) acts.
    delay = b.scope.delay_between_edges_s("current", "rise", "discharge_fet", "fall")
    assert delay is not None and 0.025 < delay < 0.040
    assert b.scope.edge_time_s("discharge_fet", "fall") == pytest.approx(delay, abs=0.002)
    assert b.scope.delay_between_edges_s("current", "rise", "charge_fet", "fall") is None
    t, v = b.scope.waveform("discharge_fet")
    assert len(t) == len(v) > 10 and max(v) > min(v)
    assert b.bms.status().flags["transient_overcurrent_protection"]
    b.load.safe_state()
    b.clock.sleep(65.0)  # P70: the output retries 60 s after an overcurrent trip
    assert b.bms.status().discharge_fet


def test_bms_reads(bench: Bench):
    assert bench.bms.protocol_version() == "2.0"
    info = bench.bms.device_info()
    assert info.name.strip() == "1101-HIL1" and info.version == "16.4"
    block = bench.bms.read_parameters()
    assert block.model_name.strip() == "1101-HIL1"
    assert len(block.values) == 87 and len(block.switches) == 64
    status = bench.bms.status()
    assert len(status.flags) == len(bench.bms.spec.flags)
    assert len(status.cell_levels) == 16 and len(status.balancing) == 16


def test_block_write_then_device_behaves_per_written_values(nominal: Bench):
    b = nominal
    original = b.bms.read_parameters()
    try:
        back = b.bms.write_parameters({1: 3.40, 2: 3.35})
        assert back.values[1] == pytest.approx(3.40)
        b.cells.set_cell_v(7, 3.42)  # above the new P1, below the default 3.55
        b.clock.sleep(3.0)
        assert b.bms.status().flags["cell_high_voltage_alarm"]
        b.cells.set_cell_v(7, 3.30)
        b.clock.sleep(3.0)
        assert not b.bms.status().flags["cell_high_voltage_alarm"]
        back = b.bms.write_parameters(switches={9: False})
        b.cells.set_cell_v(7, 3.42)
        b.clock.sleep(3.0)
        assert not b.bms.status().flags["cell_high_voltage_alarm"]
    finally:
        b.bms.write_parameters(
            {1: original.values[1], 2: original.values[2]}, switches={9: original.switches[9]}
        )


def test_single_remaining_capacity_write(nominal: Bench):
    b = nominal
    t0 = b.bms.telemetry()
    b.bms.set_remaining_capacity(30.0)
    t = b.bms.telemetry()
    assert t.remaining_ah == pytest.approx(30.0, abs=0.02)
    assert t.soc_pct == pytest.approx(100 * 30.0 / t.full_ah, abs=0.1)
    with pytest.raises(BmsRejected, match="invalid data"):
        b.bms.set_remaining_capacity(t.full_ah + 50)
    b.bms.set_remaining_capacity(t0.remaining_ah)


def test_control_discharge_fet(nominal: Bench):
    b = nominal
    assert b.bms.status().discharge_fet
    b.bms.control(ControlItem.DISCHARGE_FET, ControlAction.OFF)
    assert not b.bms.status().discharge_fet
    b.bms.control(ControlItem.DISCHARGE_FET, ControlAction.ON)
    b.clock.sleep(3.0)
    assert b.bms.status().discharge_fet


def test_modbus_tcp_link_reads_the_same_device(bench: Bench):
    endpoint = bench.config.bms_endpoints["modbus_tcp"]
    link = ModbusLink(endpoint, transport="tcp", address=bench.config.bms.address)
    try:
        block, v2 = link.read_parameters(), bench.bms.read_parameters()
        # the rows the Seplos V3 layout carries, the same values as over Seplos V2
        assert len(block.values) == 76 and len(block.switches) == 49
        assert block.values == pytest.approx({n: v2.values[n] for n in block.values})
        assert block.switches == {n: v2.switches[n] for n in block.switches}
        assert link.telemetry().cell_v == pytest.approx(bench.bms.telemetry().cell_v, abs=0.002)
        flags, v2_flags = link.status().flags, bench.bms.status().flags
        assert flags == {n: v2_flags[n] for n in flags}
    finally:
        link.close()


# -- safe state on signals ---------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    from harness.bench import Bench
    with Bench.open(sys.argv[1]) as b:
        b.cells.set_all_v(3.45)
        b.cells.set_cell_v(2, 3.0)
        b.supply.set_voltage_v(54.0)
        b.supply.set_current_limit_a(5.0)
        b.supply.output(True)
        b.load.set_current_a(20.0)
        b.load.input(True)
        b.resistors.set_temperature_c("ambient", 40.0)
        print("ready", flush=True)
        time.sleep(60)
    """
)


@pytest.fixture
def standalone_sim(tmp_path: Path) -> Iterator[BenchFile]:
    out = tmp_path / "bench.yaml"
    sim = subprocess.Popen(
        [sys.executable, "-m", "bmssim", "--bench-out", str(out), "--parent-pid", str(os.getpid())],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=parent_death_preexec(),  # dies with the test process, even on a timeout
    )
    try:
        deadline = time.monotonic() + 30
        while not out.exists():
            assert sim.poll() is None, sim.stderr.read().decode()
            assert time.monotonic() < deadline, "simulator did not write its bench file"
            time.sleep(0.05)
        resolved = load_bench_file(out)
        assert isinstance(resolved, BenchFile)
        yield resolved
    finally:
        sim.terminate()
        sim.wait(10)


def snapshot(address: str) -> dict:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b'{"op": "snapshot"}\n')
        reply = sock.makefile("rb").readline()
    answer = json.loads(reply)
    assert answer["ok"], answer
    return answer["snapshot"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_safe_state_on_signal(standalone_sim: BenchFile, tmp_path: Path, signum: int):
    bench_path = tmp_path / "bench.yaml"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(bench_path)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = child.stdout.readline()
        assert line.strip() == b"ready", child.stderr.read().decode()
        before = snapshot(standalone_sim.clock.address)
        assert before["supply"]["output"] and before["load"]["input_on"]
        os.kill(child.pid, signum)
        code = child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    # KeyboardInterrupt ends Python by re-raising SIGINT (-2); SIGTERM exits 143 after the bench:
    # either way the process ended through the context manager's exit, not by the signal.
    assert code == (-signal.SIGINT if signum == signal.SIGINT else 128 + signal.SIGTERM)
    after = snapshot(standalone_sim.clock.address)
    assert after["supply"]["output"] is False
    assert after["load"]["input_on"] is False
    assert [c["voltage_set_v"] for c in after["cells"]] == pytest.approx([3.3] * 16)
    assert all(c["output"] and c["fault"] == "NONE" for c in after["cells"])
    assert [n["ohms"] for n in after["ntc"]] == pytest.approx([10_000.0] * 6, rel=1e-4)
