"""Bench relays with fakes: names and safe positions, every relay attempted in the safe
state and before the sources; hand-steps decided before anything moves (relay, person, or
skipped with the reason); the power-cycle and the wait for a booting BMS."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from harness.bench import Bench, SafeStateError
from harness.procedures import hands as hands_mod
from harness.procedures import power
from harness.procedures.record import BenchFault, CaseNotTestable, Recorder
from instruments.errors import BenchLost, BmsLinkError, InstrumentError
from instruments.relays import BenchRelays, RelayCard, RelayWiring, UnknownRelay


class FakeCard(RelayCard):
    def __init__(self, log: list[str] | None = None, fail: set[int] | None = None) -> None:
        self.closed: set[int] = set()
        self.log = log if log is not None else []
        self.fail = fail or set()

    def _check(self, channels: Sequence[int]) -> None:
        for c in channels:
            if c in self.fail:
                raise InstrumentError(f"channel {c} does not answer")

    def close_channels(self, channels: Sequence[int]) -> None:
        self.log.append(f"close {list(channels)}")
        self._check(channels)
        self.closed |= set(channels)

    def open_channels(self, channels: Sequence[int]) -> None:
        self.log.append(f"open {list(channels)}")
        self._check(channels)
        self.closed -= set(channels)

    def closed_channels(self, channels: Sequence[int]) -> list[bool]:
        return [c in self.closed for c in channels]


def bank(card: FakeCard) -> BenchRelays:
    return BenchRelays(
        [
            RelayWiring("button", card, 101),
            RelayWiring("bms_power", card, 102, safe_closed=True),  # NO wiring: closed = on
            RelayWiring("connection_fault", card, 106, ohm=0.02, cell=8),
        ]
    )


def test_activate_and_release_follow_the_safe_position():
    card = FakeCard()
    relays = bank(card)
    relays.activate("button")
    assert relays.is_closed("button") and relays.is_active("button")
    relays.activate("bms_power")  # safe is closed: active is open
    assert not relays.is_closed("bms_power") and relays.is_active("bms_power")
    relays.release("bms_power")
    assert relays.is_closed("bms_power") and not relays.is_active("bms_power")
    assert relays.wiring("connection_fault").ohm == 0.02
    assert relays.names == ["button", "bms_power", "connection_fault"]


def test_unknown_relay_is_refused_before_anything_is_sent():
    card = FakeCard()
    relays = bank(card)
    with pytest.raises(UnknownRelay, match="'short_circuit' refused.*nothing was sent"):
        relays.close("short_circuit")
    assert card.log == []


def test_a_relay_map_with_a_shared_channel_or_unknown_name_is_refused():
    card = FakeCard()
    with pytest.raises(ValueError, match="share channel 101"):
        BenchRelays([RelayWiring("button", card, 101), RelayWiring("bms_power", card, 101)])
    with pytest.raises(ValueError, match="unknown relay 'buton'"):
        BenchRelays([RelayWiring("buton", card, 101)])


def test_safe_state_attempts_every_relay_and_reports_each_failure():
    card = FakeCard(fail={101})
    relays = bank(card)
    card.closed = {101, 106}
    with pytest.raises(InstrumentError) as err:
        relays.safe_state()
    text = str(err.value)
    assert "relay button: channel 101 does not answer" in text
    assert "relay button not in its safe position" in text
    assert card.log == ["open [101]", "close [102]", "open [106]"]
    assert 106 not in card.closed and 102 in card.closed


class Part:
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    def safe_state(self) -> None:
        self.log.append(self.name)
        if self.fail:
            raise InstrumentError(f"{self.name} did not answer")


def bare_bench(log: list[str], relays: Any, **parts: Any) -> Bench:
    bench = Bench.__new__(Bench)
    bench.relays = relays
    bench.scope = None
    for name in ("load", "supply", "cells", "resistors"):
        setattr(bench, name, parts.get(name, Part(name, log)))
    return bench


def test_bench_safe_state_puts_relays_first_and_goes_on_when_they_fail():
    log: list[str] = []
    card = FakeCard(log, fail={101})
    card.closed = {101}
    bench = bare_bench(log, bank(card))
    with pytest.raises(SafeStateError) as err:
        bench.safe_state()
    assert log[:3] == ["open [101]", "close [102]", "open [106]"]
    assert log[3:] == ["load", "supply", "cells", "resistors"]
    assert "relays: relay button" in str(err.value)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class BootingLink:
    """A BMS link that stays silent until ``up_at`` (bench seconds), counting failures as the
    real links do; ``retries`` is what the power module turns down during the boot."""

    def __init__(self, clock: FakeClock, up_at: float, lost_after: int = 3) -> None:
        self.clock, self.up_at, self.lost_after = clock, up_at, lost_after
        self.retries = 3
        self.consecutive_failures = 0
        self.polls: list[tuple[float, int]] = []

    def device_info(self) -> str:
        self.polls.append((self.clock.now(), self.retries))
        if self.clock.now() < self.up_at:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.lost_after:
                raise BenchLost("BMS link", "silent")
            raise BmsLinkError("no answer")
        self.consecutive_failures = 0
        return "1101-HIL1"


def test_wait_for_bms_polls_quietly_until_it_answers():
    clock = FakeClock()
    link = BootingLink(clock, up_at=2.0, lost_after=2)
    waited = power.wait_for_bms(link, clock, timeout_s=30.0)
    assert 2.0 <= waited <= 8.0
    assert all(retries == 0 for _, retries in link.polls)  # no retries while it boots
    assert link.retries == 3 and link.consecutive_failures == 0  # restored


def test_wait_for_bms_gives_up_at_its_bound():
    clock = FakeClock()
    link = BootingLink(clock, up_at=1e9)
    with pytest.raises(BenchLost, match=r"no answer .* after its supply was restored"):
        power.wait_for_bms(link, clock, timeout_s=5.0)
    assert clock.now() == pytest.approx(5.0, abs=4.1)
    assert link.retries == 3


class FakeRig:
    def __init__(self, relays: Any = None, link: Any = None) -> None:
        self.clock = FakeClock()
        self.bench = SimpleNamespace(
            relays=relays, bms=link or BootingLink(self.clock, up_at=0.0), clock=self.clock
        )
        self.rec = Recorder()
        self.forgot = False
        self.hands = None

    def wait(self, s: float) -> None:
        self.clock.sleep(s)

    def now(self) -> float:
        return self.clock.now()

    def forget_parameters(self) -> None:
        self.forgot = True


def test_power_cycle_cuts_waits_restores_and_waits_for_the_boot():
    log: list[str] = []
    card = FakeCard(log)
    rig = FakeRig(BenchRelays([RelayWiring("bms_power", card, 102)]))
    rig.bench.bms = BootingLink(rig.clock, up_at=power.POWER_OFF_S + 2.0)
    booted = power.power_cycle(rig, "nominal state unreachable: still active: x")
    assert log == ["close [102]", "open [102]"]
    assert booted >= 2.0 and rig.forgot
    assert rig.rec.steps[0].startswith("power-cycle the BMS through the bms_power relay")
    assert "answered" in rig.rec.steps[1]
    assert power.can_power_cycle(rig.bench)
    assert not power.can_power_cycle(SimpleNamespace(relays=None))


def case(*steps: str, **params: Any) -> Any:
    return SimpleNamespace(id="S04-x", params={"hand_steps": list(steps), **params})


class FakeOperator:
    def __init__(self, name: str = "alice", answers: list[str] | None = None) -> None:
        self.name = name
        self.asked: list[str] = []
        self.answers = list(answers or [])

    def ask(self, prompt: str, *, timeout_s: float | None = None, case: str | None = None):
        from harness.operator import Answer, OperatorDeclined, OperatorTimeout

        self.asked.append(prompt)
        outcome = self.answers.pop(0) if self.answers else "confirmed"
        answer = Answer(prompt, outcome, self.name, "2026-01-01T00:00:00+00:00", "", 1.5)
        if outcome == "no answer":
            raise OperatorTimeout("no operator answer within 1 s", answer)
        if outcome == "declined":
            raise OperatorDeclined("the operator declined", answer)
        return answer


def test_hand_steps_by_relay_when_wired():
    card = FakeCard()
    rig = FakeRig(bank(card))
    hands = hands_mod.for_case(rig, case("button", "connection_fault"), FakeOperator())
    assert hands.modes == {"button": "relay", "connection_fault": "relay"}
    assert hands.values == {"ohm": 0.02, "mohm": 20.0, "cell": 8}
    hands.activate("button")
    assert card.closed == {101} and hands.active == {"button"}
    hands.pulse("connection_fault", 0.5)
    assert 106 not in card.closed
    hands.release_all()
    assert card.closed == set() and hands.active == set()


def test_hand_steps_by_a_person_keep_the_evidence():
    rig = FakeRig(relays=None)
    op = FakeOperator("bob")
    hands = hands_mod.for_case(rig, case("button"), op)
    assert hands.modes == {"button": "operator"}
    hands.activate("button")
    hands.release("button")
    hands.pulse("button", 0.5)
    assert op.asked == [
        "Press and hold the BMS button now; confirm when held.",
        "Release the button; confirm when released.",
        "Press the BMS button briefly (about half a second) and release it; confirm when done.",
    ]
    assert [e["who"] for e in rig.rec.operator] == ["bob"] * 3
    assert rig.rec.operator[0]["answer"] == "confirmed"
    assert rig.rec.operator[0]["waited_s"] == 1.5
    assert any("operator bob" in s for s in rig.rec.steps)


def test_connection_fault_prompt_says_which_lead_and_resistance():
    rig = FakeRig(relays=None)
    op = FakeOperator()
    hands = hands_mod.for_case(rig, case("connection_fault", ohm=0.03, cell=5), op)
    hands.activate("connection_fault")
    assert "cell 5" in op.asked[0] and "30 mΩ" in op.asked[0]


def test_no_relay_and_nobody_to_ask_skips_naming_the_relay():
    rig = FakeRig(bank(FakeCard()))
    with pytest.raises(CaseNotTestable) as err:
        hands_mod.for_case(rig, case("button", "short_circuit"), None, "unattended run")
    assert str(err.value) == (
        "needs an operator to short the BMS output (no relays.short_circuit on this bench); "
        "unattended run"
    )
    with pytest.raises(CaseNotTestable, match="needs an operator to press the BMS button"):
        hands_mod.for_case(FakeRig(None), case("button"), None, "unattended run")


def test_operator_timeout_is_a_bench_fault_and_a_refusal_a_skip_both_with_evidence():
    rig = FakeRig(None)
    hands = hands_mod.for_case(rig, case("button"), FakeOperator(answers=["no answer"]))
    with pytest.raises(BenchFault, match="operator step not done"):
        hands.activate("button")
    hands = hands_mod.for_case(rig, case("button"), FakeOperator(answers=["declined"]))
    with pytest.raises(CaseNotTestable, match="operator step not done"):
        hands.activate("button")
    assert [e["answer"] for e in rig.rec.operator] == ["no answer", "declined"]


def test_release_all_without_prompts_when_interrupted():
    card = FakeCard()
    relays = BenchRelays([RelayWiring("button", card, 101)])
    rig = FakeRig(relays)
    op = FakeOperator()
    hands = hands_mod.Hands(rig, {"button": "relay", "short_circuit": "operator"}, op)
    hands.activate("button")
    hands.activate("short_circuit")
    op.asked.clear()
    hands.release_all(relays_only=True)
    assert card.closed == set() and op.asked == []
    assert hands.active == {"short_circuit"}
    with contextlib.suppress(Exception):
        hands.release_all()
    assert op.asked == ["Remove the short from the BMS output; confirm when removed."]


# --------------------------------------------------------------------------- on the wire


def snapshot(address: str) -> dict:
    import json
    import socket

    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b'{"op": "snapshot"}\n')
        answer = json.loads(sock.makefile("rb").readline())
    assert answer["ok"], answer
    return answer["snapshot"]


def test_simulated_bench_relays_and_the_safe_state_after_a_supply_cut():
    from harness import FIXTURES_DIR

    with Bench.open(FIXTURES_DIR / "sim.yaml") as bench:
        relays = bench.relays
        assert relays is not None and "relays" in bench.identities
        assert relays.names == [
            "button",
            "bms_power",
            "power_switch",
            "secondary_trip",
            "short_circuit",
            "connection_fault",
        ]
        assert relays.wiring("connection_fault").cell == 8
        relays.activate("button")
        relays.activate("bms_power")  # the BMS's supply cut: the link goes silent
        assert relays.is_closed("button") and relays.is_active("bms_power")
        closed = snapshot(bench.config.clock.address)["relays"]["closed"]
        assert closed == [101, 102]
        with pytest.raises(UnknownRelay):
            relays.close("heater")
        bench.safe_state()  # relays safe first, then the BMS is waited for while it boots
        assert not relays.is_closed("button") and not relays.is_active("bms_power")
        assert bench.bms.device_info().name.strip() == "1101-HIL1"
        assert snapshot(bench.config.clock.address)["relays"]["closed"] == []


def test_a_latched_protection_is_power_cycled_away_for_the_next_case(tmp_path):
    """P25 latched by a firmware fault: its case fails, the next one starts clean after a
    power-cycle through the bms_power relay (recorded as a step)."""
    import glob
    import json
    import subprocess
    import sys

    from harness import PROJECT_ROOT

    faults = tmp_path / "latch.yaml"
    faults.write_text("firmware:\n  - {item: P25, kind: latch}\n", encoding="utf-8")
    out = tmp_path / "run"
    trip, after = "P25-charging-overtemperature-protection-trip", "P27-charging-undertemperature"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--out", str(out), "--sim-faults", str(faults)]
        + ["--results-root", str(tmp_path / "root"), "--unattended"]
        + ["-k", f"{trip} or {after}-protection-trip"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x]
    got = {r["test_id"]: r for r in rows}
    assert got[trip]["outcome"] == "failed"
    assert got[f"{after}-protection-trip"]["outcome"] == "passed"
    steps: dict[str, list[str]] = {}
    for path in glob.glob(str(out / "allure-results" / "*-result.json")):
        data = json.loads(open(path, encoding="utf-8").read())
        names = [s["name"] for top in data.get("steps", []) for s in top.get("steps", [])]
        steps[data["name"]] = names
    (p27,) = [v for k, v in steps.items() if k.startswith("P27")]
    assert any(s.startswith("power-cycle the BMS through the bms_power relay") for s in p27)
    assert any("charge_overtemperature_protection" in s for s in p27)
