"""A serial link timed on the bench clock (instruments/bms/line.py ``ClockedLine``) and the
timing resolution a polled delay achieved (harness/procedures/delay.py ``poll_resolution``),
and a switch decision that resolution cannot make (S48, harness/procedures/switch.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.procedures import switch
from harness.procedures.delay import poll_resolution
from harness.procedures.record import BenchFault, Measurement
from harness.procedures.rig import Observation
from instruments.bms.line import WALL_DELIVERY_S, WALL_GRACE_S, ClockedLine


class FakeSerial:
    """Characters become readable when the fake clock says so; records read timeouts."""

    def __init__(self) -> None:
        self.buffer = b""
        self.timeout: float | None = None
        self.timeouts: list[float | None] = []
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def flush(self) -> None:
        pass

    def read(self, n: int) -> bytes:
        self.timeouts.append(self.timeout)
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


class FakeBenchClock:
    """A bench clock that serves one line: the answer (if any) comes out at ``answer_at``."""

    def __init__(self, port: FakeSerial, answer: bytes | None, answer_at: float) -> None:
        self.t = 100.0
        self.port = port
        self.answer, self.answer_at = answer, answer_at
        self.waits: list[tuple[float, int, int]] = []

    def now(self) -> float:
        return self.t

    def line_counts(self, line: str) -> tuple[int, int] | None:
        return (40, 900) if line == "/dev/pts/9" else None

    def wait_line(self, seconds: float, *, line: str, sent: int, received: int) -> bool:
        self.waits.append((seconds, sent, received))
        if self.answer is not None and self.t + seconds >= self.answer_at:
            self.t = max(self.t, self.answer_at)
            self.port.buffer += self.answer
            self.answer = None
            return True
        self.t += seconds
        return False


def test_an_answer_that_never_comes_costs_bench_time_not_wall_time() -> None:
    port = FakeSerial()
    clock = FakeBenchClock(port, answer=None, answer_at=0)
    line = ClockedLine(port, "/dev/pts/9", clock)
    assert line.clocked and (line.sent, line.received) == (40, 900)  # the simulator's counts
    line.write(b"~request\r")
    assert line.read_within(1, 0.17) == b""
    # A brief wall-time grace, then the bench clock ran the whole timeout.
    assert port.timeouts == [WALL_GRACE_S, 0]
    assert clock.waits == [(0.17, 49, 900)]
    assert clock.t == pytest.approx(100.17)


def test_a_late_answer_is_read_when_the_bench_clock_reaches_it() -> None:
    port = FakeSerial()
    clock = FakeBenchClock(port, answer=b"~answer\r", answer_at=100.6)
    line = ClockedLine(port, "/dev/pts/9", clock)
    assert line.read_within(8, 1.0) == b"~answer\r"
    assert clock.t == pytest.approx(100.6)  # stopped at the answer, not at the end of 1 s
    assert port.timeouts[-1] == WALL_DELIVERY_S
    assert line.received == 908


def test_a_line_the_clock_does_not_serve_is_timed_by_the_line_itself() -> None:
    port = FakeSerial()
    clock = FakeBenchClock(port, answer=None, answer_at=0)
    line = ClockedLine(port, "socket://127.0.0.1:5000", clock)
    assert not line.clocked
    assert line.read_within(1, 0.17) == b""
    assert port.timeouts == [0.17] and clock.waits == []


def test_a_clock_that_does_not_move_is_an_error_not_a_hang() -> None:
    port = FakeSerial()
    clock = FakeBenchClock(port, answer=None, answer_at=0)
    clock.wait_line = lambda seconds, **_: False  # type: ignore[method-assign]
    line = ClockedLine(port, "/dev/pts/9", clock)
    with pytest.raises(RuntimeError, match="did not move"):
        line.read_within(1, 0.0001)


def obs(t_s: float, gap_s: float | None) -> Observation:
    return Observation(
        t_s=t_s,
        stimulus=None,
        flag=True,
        flags={},
        charge_fet=False,
        discharge_fet=True,
        supply_a=0.0,
        load_a=0.0,
        gap_s=gap_s,
    )


class FakeRig:
    def __init__(self) -> None:
        self.resolution_lost: list[str] = []


def test_a_poll_on_time_keeps_its_polling_period() -> None:
    rig = FakeRig()
    # The status exchange's line time comes on top of the period: still on time.
    assert poll_resolution(rig, obs(10.0, 0.11), 0.05, "polling period 0.05 s") == (
        0.05,
        "polling period 0.05 s",
    )
    assert rig.resolution_lost == []


def test_a_poll_delayed_by_lost_replies_widens_the_bracket_and_says_why() -> None:
    rig = FakeRig()
    width, source = poll_resolution(rig, obs(10.0, 1.37), 0.05, "polling period 0.05 s", 5.0)
    assert width == pytest.approx(1.37)
    assert source == "polling period 0.05 s, stretched to 1.37 s by lost link replies"
    assert "came 1.37 s after the one before it" in rig.resolution_lost[0]
    # The first poll of a timed window counts its gap from the window's start.
    rig = FakeRig()
    assert poll_resolution(rig, obs(10.02, 3.0), 0.05, "p", since=10.0) == (0.05, "p")
    assert rig.resolution_lost == []


def _soft_start_switch(monkeypatch, measured_ms: float, bracket_ms: float, lost: list[str]):
    def timed(rig, inner) -> None:
        inner.measured = measured_ms
        inner.bracket(bracket_ms, "polling period")

    monkeypatch.setattr(switch.delay, "soft_start", timed)
    rig = SimpleNamespace(
        resolution_lost=lost, setup=SimpleNamespace(num=lambda key: {"soft_start_ms": 2000.0}[key])
    )
    m = Measurement(name="S48-off", unit="")
    switch.soft_start(rig, None, m)
    return m


def test_a_soft_start_decided_by_lost_replies_is_a_bench_error(monkeypatch) -> None:
    # S48 off: full current at once, but the deciding poll came 1.39 s late
    with pytest.raises(BenchFault, match="on both sides of the 1000 ms"):
        _soft_start_switch(monkeypatch, 1390.0, 1380.0, ["the deciding poll came 1.39 s after"])
    # the same late poll past the half on both edges: the soft start acted (S48 on)
    assert _soft_start_switch(monkeypatch, 3058.0, 1330.0, ["late"]).measured == 1.0
    # no reply lost: the polling period decides as before
    assert _soft_start_switch(monkeypatch, 1390.0, 10.0, []).measured == 1.0
    assert _soft_start_switch(monkeypatch, 12.0, 10.0, []).measured == 0.0
