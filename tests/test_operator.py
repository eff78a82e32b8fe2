"""Operator prompts: what is asked, what comes back, the evidence kept, timeouts, refusals,
who may be asked at all, and the guards that make room for a prompt."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.operator import (
    Operator,
    OperatorDeclined,
    OperatorTimeout,
    Terminal,
    add_prompt_guard,
    availability,
    operator_name,
)


class PipeTerminal:
    """A terminal on two pipes: the test types into ``keys`` and reads ``screen``."""

    def __init__(self) -> None:
        self.r_in, self.keys = os.pipe()
        self.r_out, self.w_out = os.pipe()
        os.set_blocking(self.r_out, False)
        self.opened = 0

    def factory(self) -> Terminal:
        self.opened += 1
        return Terminal(self.r_in, self.w_out)

    def type(self, text: str) -> None:
        os.write(self.keys, text.encode())

    def screen(self) -> str:
        try:
            return os.read(self.r_out, 65536).decode()
        except BlockingIOError:
            return ""

    def close(self) -> None:
        for fd in (self.r_in, self.keys, self.r_out, self.w_out):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def term() -> Iterator[PipeTerminal]:
    t = PipeTerminal()
    yield t
    t.close()


def test_confirmation_is_evidence_with_prompt_who_when_and_wait(term: PipeTerminal):
    op = Operator("alice", terminal=term.factory)
    term.type("\n")
    answer = op.ask("Press and hold the BMS button now; confirm when held.", case="S04-x")
    assert answer.confirmed
    shown = term.screen()
    assert "Press and hold the BMS button now; confirm when held." in shown
    assert "alice" in shown and "S04-x" in shown and "waiting up to 300 s" in shown
    record = answer.to_dict()
    assert record["prompt"] == "Press and hold the BMS button now; confirm when held."
    assert record["answer"] == "confirmed" and record["who"] == "alice"
    assert record["at"].endswith("+00:00") and record["waited_s"] >= 0.0
    assert record["case"] == "S04-x"


def test_unclear_answer_is_asked_again_then_yes(term: PipeTerminal):
    op = Operator("bob", terminal=term.factory)
    term.type("maybe\nyes\n")
    answer = op.ask("Release the button; confirm when released.", timeout_s=5)
    assert answer.confirmed and answer.typed == "yes"
    assert "please press Enter when done" in term.screen()


def test_no_answer_times_out_with_evidence(term: PipeTerminal):
    op = Operator("carol", terminal=term.factory)
    with pytest.raises(OperatorTimeout) as err:
        op.ask("Press the BMS button briefly", timeout_s=0.2)
    assert err.value.answer.answer == "no answer"
    assert err.value.answer.waited_s >= 0.2
    assert "no operator answer within 0.2 s" in str(err.value)
    assert "no answer within 0.2 s" in term.screen()


def test_decline(term: PipeTerminal):
    op = Operator("dave", terminal=term.factory)
    term.type("n\n")
    with pytest.raises(OperatorDeclined) as err:
        op.ask("Short the BMS output now", timeout_s=5)
    assert err.value.answer.to_dict()["answer"] == "declined"
    assert "the operator (dave) declined" in str(err.value)


def test_typeahead_before_the_prompt_is_not_an_answer_on_a_tty():
    import pty

    controller, device = pty.openpty()
    try:
        os.write(controller, b"\n")  # typed before the prompt
        op = Operator("erin", terminal=lambda: Terminal(device, device))

        def answer_later() -> None:
            import time

            time.sleep(0.3)
            os.write(controller, b"y\n")

        threading.Thread(target=answer_later, daemon=True).start()
        answer = op.ask("Turn the external power switch ON", timeout_s=5)
        assert answer.typed == "y" and answer.waited_s >= 0.25
    finally:
        os.close(controller)
        os.close(device)


def test_guards_surround_every_prompt_capture_first(term: PipeTerminal):
    events: list[str] = []

    def guard(name: str):
        @contextlib.contextmanager
        def cm():
            events.append(f"enter {name}")
            yield
            events.append(f"exit {name}")

        return cm

    remove_progress = add_prompt_guard(guard("progress"))
    remove_capture = add_prompt_guard(guard("capture"), order=-10)
    try:
        term.type("\n")
        Operator("f", terminal=term.factory).ask("x", timeout_s=5)
    finally:
        remove_progress()
        remove_capture()
    assert events == ["enter capture", "enter progress", "exit progress", "exit capture"]
    events.clear()
    term.type("\n")
    Operator("f", terminal=term.factory).ask("y", timeout_s=5)
    assert events == []


def test_who_may_be_asked():
    yes, no = (lambda: True), (lambda: False)
    assert availability(False, {}, tty=yes, stdin_tty=no) is None
    assert availability(False, {}, tty=no, stdin_tty=yes) is None
    assert availability(True, {}, tty=yes, stdin_tty=yes) == "unattended run"
    ci = availability(False, {"CI": "true"}, tty=yes, stdin_tty=yes)
    assert ci is not None and ci.startswith("unattended run") and "CI" in ci
    assert availability(False, {"CI": "0"}, tty=yes, stdin_tty=yes) is None
    none = availability(False, {}, tty=no, stdin_tty=no)
    assert none == "unattended run (no terminal attached)"


def test_operator_name_defaults_to_the_login_name(monkeypatch: pytest.MonkeyPatch):
    assert operator_name("grace") == "grace"
    monkeypatch.setattr("getpass.getuser", lambda: "login-name")
    assert operator_name(None) == "login-name"


# --------------------------------------------------------------------------- end to end
# `bmshil run` on the simulated bench with the button's relay taken out of the bench file:
# under a pty the harness asks for the button, and this test acts as the person, pressing
# the button by closing channel 101 of the simulated relay card over its own SCPI socket.

ROOT = Path(__file__).resolve().parent.parent
S04_ON = "S04-button-switch-failure-switch-on"
HAND_IDS = (
    "S04-button-switch-failure-switch-on",
    "S57-power-on-off-function-switch-on",
    "P73-charging-activation-delay",
    "P83-connection-fault-impedance-function",
    "S32-secondary-disconnection-protection-switch-on",
    "S38-output-short-circuit-protection-switch-on",
    "S40-output-short-circuit-lockout-switch-on",
)


@pytest.fixture(scope="module")
def sim_bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A standalone simulator and its resolved bench file (as YAML data)."""
    from harness.bench import parent_death_preexec

    out = tmp_path_factory.mktemp("sim") / "bench.yaml"
    sim = subprocess.Popen(
        [sys.executable, "-m", "bmssim", "--bench-out", str(out), "--parent-pid", str(os.getpid())],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=parent_death_preexec(),
    )
    try:
        deadline = time.monotonic() + 30
        while not out.exists():
            assert sim.poll() is None, sim.stderr.read().decode()
            assert time.monotonic() < deadline, "simulator did not write its bench file"
            time.sleep(0.05)
        time.sleep(0.2)  # the file is written whole; let the writer close it
        data = yaml.safe_load(out.read_text(encoding="utf-8"))
        assert "button" in data.get("relays", {}), "the simulator wrote no relays"
        yield data
    finally:
        sim.terminate()
        sim.wait(10)


def bench_without(data: dict, path: Path, *names: str) -> Path:
    doc = copy.deepcopy(data)
    for name in names:
        doc["relays"].pop(name, None)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def scpi(address: str, *lines: str) -> list[str]:
    """Send lines to a SCPI socket (``TCPIP0::host::port::SOCKET``); answers of queries."""
    _, host, port, _ = address.split("::")
    answers = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        reader = sock.makefile("rb")
        for line in lines:
            sock.sendall(line.encode() + b"\n")
            if line.endswith("?") or "? " in line:
                answers.append(reader.readline().decode().strip())
    return answers


def records(out: Path) -> dict[str, dict]:
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x]
    return {r["test_id"]: r for r in rows}


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["COLUMNS"] = "120"
    return env


def test_operator_answers_the_button_prompt_through_the_terminal(sim_bench, tmp_path: Path):
    import fcntl
    import pty
    import select
    import struct
    import termios

    bench = bench_without(sim_bench, tmp_path / "no-button.yaml", "button")
    relay_card = sim_bench["instruments"]["relays"]["address"]
    out = tmp_path / "run"
    args = [sys.executable, "-m", "harness", "run", "--bench", str(bench), "--out", str(out)]
    args += ["--results-root", str(tmp_path / "root"), "--operator", "tester", "-k", S04_ON]
    env = child_env()
    pid, fd = pty.fork()
    if pid == 0:  # the child: bmshil run with the pty as its terminal
        os.chdir(ROOT)
        os.execve(sys.executable, args, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    # (what appears on the terminal, what the person does, then Enter)
    script = [
        ("Press and hold the BMS button now", ["ROUT:CLOS (@101)", "ROUT:CLOS? (@101)"], "1"),
        ("Release the button", ["ROUT:OPEN (@101)", "ROUT:CLOS? (@101)"], "0"),
    ]
    screen, seen_to = "", 0
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk.decode("utf-8", errors="replace")
            if script and script[0][0] in screen[seen_to:]:
                marker, lines, state = script.pop(0)
                seen_to = screen.index(marker, seen_to) + len(marker)
                assert scpi(relay_card, *lines) == [state]  # the person acts on the bench
                os.write(fd, b"\n")  # ... and confirms
        else:
            pytest.fail(f"bmshil run did not finish; its terminal:\n{screen[-3000:]}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert not script, f"prompts not seen: {script}; terminal:\n{screen[-3000:]}"
    assert os.waitstatus_to_exitcode(status) == 0, screen[-3000:]
    rec = records(out)[S04_ON]
    assert rec["outcome"] == "passed" and rec["measured"] == 1.0, rec
    prompts = rec["operator"]
    assert [p["prompt"] for p in prompts] == [
        "Press and hold the BMS button now; confirm when held.",
        "Release the button; confirm when released.",
    ]
    assert all(p["answer"] == "confirmed" and p["who"] == "tester" for p in prompts)
    assert all(p["waited_s"] >= 0 and p["at"] for p in prompts)
    assert "PASS" in screen
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["operator"] == "tester" and run_info["attended"] is True


def test_unattended_run_skips_what_needs_a_person_with_the_reason(sim_bench, tmp_path: Path):
    names = list(sim_bench["relays"])
    bench = bench_without(sim_bench, tmp_path / "no-relays.yaml", *names)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--bench", str(bench), "--out", str(out)]
        + ["--results-root", str(tmp_path / "root"), "--unattended"]
        + ["-k", " or ".join(HAND_IDS)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = records(out)
    assert set(got) >= set(HAND_IDS)
    for cid in HAND_IDS:
        assert got[cid]["outcome"] == "skipped", got[cid]
        assert got[cid]["reason"].endswith("; unattended run"), got[cid]["reason"]
    assert got[S04_ON]["reason"] == (
        "needs an operator to press the BMS button (no relays.button on this bench); unattended run"
    )
    assert (
        "no relays.short_circuit" in got["S38-output-short-circuit-protection-switch-on"]["reason"]
    )
