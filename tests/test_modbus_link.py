"""The Modbus link against a fake pymodbus client serving the register map file (the
Seplos V3 layout): decoding through the map, one read and one write a block, exceptions as
BmsRejected, and what the map lacks (absent, never faked)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
from pymodbus.exceptions import ConnectionException, ModbusIOException

from bmsspec import load_spec
from instruments.bms.modbus_decode import encode_parameter
from instruments.bms.modbus_link import ModbusLink, load_register_map, runs
from instruments.errors import BenchLost, BmsLinkError, BmsRejected

SPEC = load_spec()
MAP = load_register_map()


FUNCTION = {"ir": 4, "co": 1, "w_r": 16, "w_co": 15}


class FakeClient:
    """Serves the map's blocks as dicts of raw values (an address of a block no row lists
    reads 0), answering like pymodbus responses (function code, registers or bits, echoed
    address and count for writes). Parameters hold the spec defaults, switches their
    defaults.

    ``script`` (one entry per call, consumed in order; empty = answer normally):
    ``"timeout"`` raises ``ModbusIOException`` as pymodbus does when no valid answer came,
    ``"lost"`` raises ``ConnectionException``, ``"other"`` answers with another function's
    answer, ``"short"`` with one register or bit too few. ``socket`` is an optional fake
    pyserial port (RTU) whose ``in_waiting`` the link checks and drains."""

    def __init__(self) -> None:
        self.input: dict[int, int] = {}
        self.coils: dict[int, bool] = {}
        for block in MAP.blocks:
            table = self.input if block.table == "registers" else self.coils
            for a in range(block.start, block.start + block.count):
                table[a] = 0 if block.table == "registers" else False
        for n, reg in MAP.parameters().items():
            self.input[reg.address] = encode_parameter(
                reg, SPEC.param(n).default, SPEC.param(n).unit
            )
        for n, bit in MAP.switches().items():
            self.coils[bit.address] = SPEC.switch(n).default
        self.calls: list[tuple[str, int, int]] = []
        self.refuse: int | None = None
        self.script: list[str] = []
        self.comm_params = SimpleNamespace(timeout_connect=0.5)
        self.timeouts: list[float] = []
        self.socket: Any = None
        self.call_times: list[float] = []

    def _answer(self, table: dict, name: str, address: int, count: int, key: str):
        self.calls.append((name, address, count))
        self.timeouts.append(self.comm_params.timeout_connect)
        action = self.script.pop(0) if self.script else ""
        if action == "timeout":
            raise ModbusIOException("No response received after 0 retries")
        if action == "lost":
            raise ConnectionException("port gone")
        if action.startswith("late"):  # "late:<s>": the answer comes, after the timeout
            size = (
                8
                if name.startswith("w_")
                else 5 + (2 * count if key == "registers" else (count + 7) // 8)
            )
            self.socket.arrive(float(action.partition(":")[2]), bytes(size))
            raise ModbusIOException("No response received after 0 retries")
        if self.socket is not None:
            self.call_times.append(self.socket.now)
        if self.refuse is not None:
            return SimpleNamespace(isError=lambda: True, exception_code=self.refuse)
        values = [table[a] for a in range(address, address + count)]  # KeyError = address 02
        code = FUNCTION[name]
        if action == "other":
            code = 1 if code != 1 else 4
        if action == "short":
            values = values[:-1]
        fields = {} if name.startswith("w_") else {key: values}
        return SimpleNamespace(
            isError=lambda: False, function_code=code, address=address, count=count, **fields
        )

    def read_input_registers(self, address, *, count, device_id):
        return self._answer(self.input, "ir", address, count, "registers")

    def read_coils(self, address, *, count, device_id):
        return self._answer(self.coils, "co", address, count, "bits")

    def write_registers(self, address, values, *, device_id):
        self.input.update(zip(range(address, address + len(values)), values, strict=True))
        return self._answer(self.input, "w_r", address, len(values), "registers")

    def write_coils(self, address, values, *, device_id):
        self.coils.update(zip(range(address, address + len(values)), values, strict=True))
        return self._answer(self.coils, "w_co", address, len(values), "bits")

    def close(self) -> None:
        pass


def make(**kw: Any) -> tuple[ModbusLink, FakeClient]:
    client = FakeClient()
    return ModbusLink("fake", spec=SPEC, register_map=MAP, client=client, **kw), client


def by_name(name: str) -> int:
    return next(r.address for r in MAP.registers if r.name == name)


def test_runs():
    assert runs([5, 1, 2, 3, 7], 125) == [(1, 3), (5, 1), (7, 1)]
    assert runs(list(range(10)), 4) == [(0, 4), (4, 4), (8, 2)]


def test_telemetry_through_the_map_one_read_a_block():
    link, client = make()
    client.input[by_name("current")] = (-1234) & 0xFFFF
    client.input[by_name("cell_voltage_16")] = 3456
    client.input[by_name("ambient_temperature")] = 2731 + 452
    client.input[by_name("soc")] = 505
    t = link.telemetry()
    assert t.current_a == pytest.approx(-12.34)
    assert t.cell_v[15] == pytest.approx(3.456) and len(t.cell_v) == 16
    assert t.ambient_c == pytest.approx(45.2)
    assert t.soc_pct == pytest.approx(50.5)
    assert t.rated_ah == pytest.approx(SPEC.param(59).default)  # SPA: the parameter P59
    assert t.port_v is None  # V3 reports no port voltage: not invented
    assert [name for name, _, _ in client.calls] == ["ir"] * 3  # PIA, PIB, SPA


def test_status_names_the_flags_the_layout_carries_and_no_other():
    link, client = make()
    flags = MAP.flags()
    for name in ("cell_overvoltage_protection", "charge_fet", "standby"):
        client.coils[flags[name].address] = True
    client.coils[next(b.address for b in MAP.coils if b.source == "balancing[4]")] = True
    client.coils[next(b.address for b in MAP.coils if b.source == "cell_high[2]")] = True
    s = link.status()
    assert set(s.flags) == set(flags) < set(SPEC.flag_names)
    assert "secondary_trip_protection" not in s.flags  # not reported, not False
    assert s.active() == ["cell_overvoltage_protection", "charge_fet", "standby"]
    assert s.charge_fet and not s.discharge_fet and s.system_states == ["standby"]
    assert s.balancing == [i == 4 for i in range(16)]
    assert s.cell_levels == [2 if i == 2 else 0 for i in range(16)]
    assert [name for name, _, _ in client.calls] == ["co"]  # PIC in one read


def test_block_read_modify_write_in_one_write_a_block():
    link, client = make()
    back = link.write_parameters({57: -240.0, 72: 7.0}, switches={10: False})
    assert back.values[57] == pytest.approx(-240.0) and back.switches[10] is False
    assert back.values[72] == pytest.approx(7.0)  # minutes, kept as 0.1 s by the board
    assert client.input[MAP.parameters()[72].address] == 4200
    assert back.values[1] == pytest.approx(SPEC.param(1).default)
    assert 19 not in back.values and 41 not in back.switches  # not in the V3 layout
    assert [name for name, _, _ in client.calls].count("w_r") == 1
    assert [name for name, _, _ in client.calls].count("w_co") == 1


def test_a_value_off_the_register_step_is_refused_before_any_write():
    link, client = make()
    with pytest.raises(BmsLinkError, match=r"P55 cannot be written.*step 1 A"):
        link.write_parameters({55: 110.5})
    assert not any(name.startswith("w_") for name, _, _ in client.calls)
    assert link.resolution(55) == 1.0 and link.resolution(5) == pytest.approx(0.001)


def test_single_remaining_capacity_register():
    link, client = make()
    link.set_remaining_capacity(42.5)
    assert client.input[MAP.parameters()[60].address] == 4250
    assert client.calls[-1] == ("w_r", MAP.parameters()[60].address, 1)


def test_device_info_from_via():
    link, client = make()
    via = next(t for t in MAP.text if t.source == "device_info.manufacturer")
    for k, word in enumerate((b"XZ", b"H-", b"El")):
        client.input[via.address + k] = int.from_bytes(word, "big")
    version = next(t for t in MAP.text if t.source == "device_info.version")
    client.input[version.address] = 0x3135  # "15": a real board's firmware 1.5
    info = link.device_info()
    assert info.manufacturer == "XZH-El" and info.version == "1.5"
    client.input[version.address] = 0x1004
    assert link.device_info().version == "16.4"


def test_exception_becomes_rejected_with_meaning():
    link, client = make()
    client.refuse = 0x03
    with pytest.raises(BmsRejected, match=r"illegal data value"):
        link.read_parameters()


def test_what_the_map_lacks_is_refused_not_faked():
    link, _ = make()
    with pytest.raises(BmsLinkError, match="history records is not available over Modbus"):
        link.history_record(0)
    with pytest.raises(BmsLinkError, match="control"):
        link.control(0, 0x1F)


def test_a_map_without_the_fet_bits_is_refused_at_open():
    partial = load_register_map()
    partial.coils[:] = [b for b in partial.coils if b.source != "flag.charge_fet"]
    with pytest.raises(BmsLinkError, match="lacks flag.charge_fet"):
        ModbusLink("fake", spec=SPEC, register_map=partial, client=FakeClient())


# -- the transaction policy -------------------------------------------------------------


class FakeRtuPort:
    """The pyserial port under an RTU client, in virtual time: ``in_waiting``, ``read`` and
    ``timeout`` as the link uses them to drain; ``arrive`` schedules bytes."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timeout: float | None = 0.5
        self.buffer = b""
        self.pending: list[tuple[float, bytes]] = []

    def clock(self) -> float:
        return self.now

    def arrive(self, delay_s: float, data: bytes) -> None:
        self.pending.append((self.now + delay_s, data))
        self.pending.sort(key=lambda p: p[0])

    def _deliver(self) -> None:
        while self.pending and self.pending[0][0] <= self.now:
            self.buffer += self.pending.pop(0)[1]

    @property
    def in_waiting(self) -> int:
        self._deliver()
        return len(self.buffer)

    def read(self, n: int) -> bytes:
        deadline = self.now + (self.timeout or 0.0)
        self._deliver()
        while len(self.buffer) < n and self.pending and self.pending[0][0] <= deadline:
            self.now = max(self.now, self.pending[0][0])
            self._deliver()
        if len(self.buffer) < n:
            self.now = max(deadline, math.nextafter(self.now, math.inf))
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


def rtu(**kw: Any) -> tuple[ModbusLink, FakeClient, FakeRtuPort]:
    port = FakeRtuPort()
    link, client = make(clock=port.clock, **kw)
    client.socket = port
    return link, client, port


@pytest.mark.parametrize("baud", [9600, 19200])
def test_timeout_is_rtu_line_time_plus_margin(baud: int):
    link, client = make(baud=baud, timeout_s=0.5)
    link.telemetry()
    counts = [count for _, _, count in client.calls]
    expected = [(8 + 5 + 2 * n) * 10 / baud + 0.5 for n in counts]
    assert client.timeouts == pytest.approx(expected)
    link.status()
    bits = [n for name, _, n in client.calls if name == "co"]
    assert client.timeouts[-len(bits) :] == pytest.approx(
        [(8 + 5 + (n + 7) // 8) * 10 / baud + 0.5 for n in bits]
    )
    assert link.timeout_for(8, 255) - 0.5 == pytest.approx(263 * 10 / baud)


def test_timeout_on_tcp_is_the_margin():
    link, client = make(transport="tcp", timeout_s=0.3)
    link.telemetry()
    assert set(client.timeouts) == {0.3}


def test_retries_are_bounded_naming_every_problem():
    link, client = make(retries=3)
    client.script = ["timeout"] * 4
    with pytest.raises(BmsLinkError, match=r"telemetry over Modbus fake.*4 attempts") as err:
        link.telemetry()
    assert str(err.value).count("no valid answer within") == 4
    assert len(client.calls) == 4
    assert link.stats["timeouts"] == 4 and link.stats["retries"] == 3


def test_a_timeout_is_retried():
    link, client = make()
    client.script = ["timeout"]
    assert len(link.telemetry().cell_v) == 16
    assert link.stats["timeouts"] == 1 and link.stats["retries"] == 1


@pytest.mark.parametrize("action", ["other", "short"])
def test_an_answer_that_does_not_fit_the_request_is_refused(action: str):
    link, client = make()
    client.script = [action]
    assert len(link.telemetry().cell_v) == 16
    assert link.stats["corrupt"] == 1 and link.stats["retries"] == 1
    link, client = make(retries=1)
    client.script = [action] * 2
    with pytest.raises(
        BmsLinkError, match="answer refused: (function code 1, expected 4|.* registers, expected)"
    ):
        link.telemetry()


def test_a_write_must_echo_its_address_and_count():
    link, client = make(retries=0)
    client.script = ["other"]
    with pytest.raises(BmsLinkError, match="set remaining capacity.*function code"):
        link.set_remaining_capacity(42.5)


def test_lost_after_consecutive_failures_and_reset_by_a_valid_answer():
    link, client = make(retries=0, lost_after=2)
    client.script = ["timeout", "", "timeout"]
    with pytest.raises(BmsLinkError):
        link.set_remaining_capacity(1.0)
    assert link.consecutive_failures == 1
    link.set_remaining_capacity(1.0)
    assert link.consecutive_failures == 0
    with pytest.raises(BmsLinkError):
        link.set_remaining_capacity(1.0)
    client.script = ["timeout"]
    with pytest.raises(BenchLost, match="BMS link on fake") as lost:
        link.set_remaining_capacity(1.0)
    assert "2 consecutive exchanges" in lost.value.detail


def test_an_exception_answer_is_an_answer():
    link, client = make(retries=0, lost_after=2)
    client.script = ["timeout"]
    with pytest.raises(BmsLinkError):
        link.set_remaining_capacity(1.0)
    client.refuse = 0x03
    with pytest.raises(BmsRejected):
        link.set_remaining_capacity(1.0)
    assert link.consecutive_failures == 0


def test_a_lost_connection_is_bench_lost_at_once():
    link, client = make(retries=3)
    client.script = ["lost"]
    with pytest.raises(BenchLost, match="BMS link on fake"):
        link.telemetry()
    assert len(client.calls) == 1


def test_rtu_late_answer_is_drained_before_the_retry():
    link, client, port = rtu(late_guard_s=1.0)
    client.script = ["late:0.3"]
    link.set_remaining_capacity(1.0)
    assert client.call_times == [pytest.approx(0.3)]  # the retry came after the late bytes
    assert port.in_waiting == 0
    assert link.stats["timeouts"] == 1 and link.stats["stale_discarded"] == 1


def test_rtu_bytes_waiting_before_a_request_cost_an_attempt():
    link, client, port = rtu()
    port.arrive(0.0, bytes(8))
    link.set_remaining_capacity(1.0)
    assert len(client.calls) == 1 and link.stats["retries"] == 1
    assert link.stats["stale_discarded"] == 1 and port.in_waiting == 0
