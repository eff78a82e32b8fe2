"""The Seplos link's transaction policy over the real simulator (``python -m bmssim``): with
every third reply delivered late (beyond the response timeout, within its drain), every
status read still reflects the stimulus applied just before it, never a stale answer to an
earlier request. The policy's details are tested on a fake port in tests/test_seplos_link.py.
Also: the simulated line takes its time on the virtual clock."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bmsspec import load_spec
from harness.clock import SimClock
from instruments.bms.seplos_link import SeplosLink

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec()
READY_TIMEOUT_S = 30.0
NOMINAL_V, HIGH_V = 3.30, 3.58  # between P1 (cell high-voltage alarm, 3.55) and P5 (3.65)
LEVEL_NORMAL, LEVEL_HIGH = 0x00, 0x02


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[dict[str, Any]]:
    bench_out = tmp_path / "sim-bench.yaml"
    log = (tmp_path / "bmssim.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bmssim", "--bench-out", str(bench_out)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not bench_out.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"bmssim did not come up:\n{(tmp_path / 'bmssim.log').read_text()}")
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
        log.close()


class LineClient:
    """One request per line, one answer per line (control channel JSON, or SCPI)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.stream = self.sock.makefile("rwb")

    def ask(self, line: str) -> str:
        self.stream.write(line.encode() + b"\n")
        self.stream.flush()
        return self.stream.readline().decode().strip()

    def send(self, line: str) -> None:
        self.stream.write(line.encode() + b"\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def test_status_reads_reflect_the_stimulus_despite_late_replies(sim: dict[str, Any]) -> None:
    host, _, port = sim["clock"]["address"].rpartition(":")
    control = LineClient(host, int(port))

    def call(**request: Any) -> dict[str, Any]:
        return json.loads(control.ask(json.dumps(request)))

    units: dict[str, LineClient] = {}
    for name, entry in sim["instruments"].items():
        if entry["driver"] == "bloomy_abs":
            _, unit_host, unit_port, _ = entry["address"].split("::")
            units[name] = LineClient(unit_host, int(unit_port))

    def set_cell(cell: int, volts: float) -> None:
        unit, channel = sim["channels"]["cells"][cell]
        units[unit].send(f"SOUR{channel}:VOLT {volts:.3f}")
        assert units[unit].ask("*OPC?") == "1"  # the command has been applied

    # The link waits on the bench clock, as the harness opens it: the late replies are late
    # on the virtual clock, and the drain after a timeout waits for them there.
    clock = SimClock(sim["clock"]["address"], sim["clock"].get("shared"))
    link = SeplosLink(sim["bms"]["port"], baud=sim["bms"]["baud"], spec=SPEC, bench_clock=clock)
    # late beyond the line-derived timeout, within the drain that follows it
    late_s = link.timeout_for(0x44, 20) + link.late_guard_s / 2
    assert late_s > link.timeout_for(0x44, 20) + 0.4
    t0 = time.monotonic()
    try:
        assert call(op="faults", faults={"link": {"late_every": 3, "late_s": late_s}})["ok"]
        seen = []
        for step, cell in enumerate([1, 5, 9, 16, 2, 12, 7, 3]):
            previous = [1, 5, 9, 16, 2, 12, 7, 3][step - 1] if step else None
            if previous is not None:
                set_cell(previous, NOMINAL_V)
            set_cell(cell, HIGH_V)
            assert call(op="advance", s=0.5)["ok"]
            levels = link.status().cell_levels
            seen.append(levels)
            expected = [LEVEL_HIGH if i + 1 == cell else LEVEL_NORMAL for i in range(16)]
            assert levels == expected, (
                f"step {step}: cell {cell} at {HIGH_V} V, status says {levels}; stats {link.stats}"
            )
        # The fault did bite (replies 3 and 6 came late) and the link drained them.
        assert link.stats["timeouts"] >= 2, link.stats
        assert link.stats["stale_discarded"] >= 2, link.stats
        assert link.consecutive_failures == 0
    finally:
        call(op="faults", faults={})
        link.close()
        clock.close()
        for unit in units.values():
            unit.close()
        control.close()
    assert time.monotonic() - t0 < 30.0


def test_the_simulated_line_takes_its_time_on_the_virtual_clock(sim: dict[str, Any]) -> None:
    host, _, port = sim["clock"]["address"].rpartition(":")
    control = LineClient(host, int(port))

    def now() -> float:
        return json.loads(control.ask(json.dumps({"op": "now"})))["now_s"]

    link = SeplosLink(sim["bms"]["port"], baud=sim["bms"]["baud"], spec=SPEC)
    assert sim["bms"]["baud"] == 19200
    try:
        for read, answer_chars in ((link.read_parameters, 356), (link.status, 116)):
            before = now()
            read()
            took = now() - before
            # request (20 characters) + 2 ms turnaround + answer, 10 bits each, in whole ms
            want = (20 + answer_chars) * 10 / 19200 + 0.002
            assert took == pytest.approx(want, abs=0.0015), read
        # the 0x47 block alone: about 185 ms of line time at 19200 baud
        assert 356 * 10 / 19200 == pytest.approx(0.185, abs=0.001)
    finally:
        link.close()
        control.close()
