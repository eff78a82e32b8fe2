"""``Bench``: everything on the bench, opened from a bench file, left safe on every exit.

    with Bench.open("fixtures/sim.yaml") as bench:
        bench.cells.set_cell_v(3, 3.70)
        bench.clock.sleep(2.0)
        assert bench.bms.status().flags["cell_overvoltage_protection"]

Opening: if the file has ``launch``, the command is started (its own process group, so a
terminal Ctrl-C reaches the harness, not the bench), the harness waits for the resolved
bench file it writes, and loads that. Then every instrument driver and the BMS link open.

Leaving, whatever the reason (normal end, exception, Ctrl-C, SIGTERM): the safe state
(load off, supply off, cells 3.300 V, NTCs 25 °C), each step attempted even if an earlier
one fails; then instruments close; the launched child is terminated last, so the safe state
is applied while the instruments still answer.

This module does not know whether the bench is simulated: only the clock kind and the
generic launch step differ between benches.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from harness import PROJECT_ROOT
from harness.benchfile import BenchFile, BenchFileError, Instrument, LaunchFile, load_bench_file
from harness.clock import ControlChannel, RealClock, SimClock
from instruments.bmslink import BmsLink
from instruments.cellsim import CellSimulator
from instruments.errors import BenchError
from instruments.load import Load
from instruments.registry import DRIVERS
from instruments.relays import BenchRelays, Relays
from instruments.resistors import Resistors
from instruments.scope import Scope
from instruments.supply import Supply

log = logging.getLogger(__name__)

CHILD_TERMINATE_S = 10.0


class BenchStartError(BenchError):
    """The bench could not be brought up (launch, resolved file, an instrument, the link)."""


class SafeStateError(BenchError):
    """One or more safe-state steps failed; the message lists every one."""


class Bench:
    """An open bench. Build with ``Bench.open(path)``; attributes are the interfaces."""

    supply: Supply
    load: Load
    cells: CellSimulator
    resistors: Resistors
    scope: Scope | None
    bms: BmsLink
    clock: RealClock | SimClock

    def __init__(self, config: BenchFile, path: Path) -> None:
        self.config = config
        self.path = path
        self.bench_id = config.bench
        self.settle = config.settle
        self.capabilities: dict[str, bool] = config.capabilities.model_dump()
        self.scope = None
        #: The hand-steps wired to relays (bench file ``relays``); None when it names none.
        self.relays: Relays | None = None
        self._closers: list[Callable[[], None]] = []
        self._drivers: list[Any] = []

    # -- opening -----------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path | str) -> Iterator[Bench]:
        """Bring the bench up, yield it, and leave it safe on every exit."""
        path = Path(path)
        config = load_bench_file(path)
        try:
            with _signals_raise(), _launched(config, path) as (resolved, resolved_path):
                bench = cls(resolved, resolved_path)
                try:
                    bench._open_all()
                    yield bench
                finally:
                    with _signals_deferred():
                        bench._leave()
        except Terminated as exc:
            # Safe state restored and the bench closed: end the process as SIGTERM asks.
            raise SystemExit(128 + exc.signum) from None

    def _open_all(self) -> None:
        cfg = self.config
        self.clock = SimClock(cfg.clock.address) if cfg.clock.kind == "sim" else RealClock()
        self._closers.append(self.clock.close)
        if cfg.relays:
            # First, so every later step (and every exit) can put the relays safe.
            self.relays = self._open_relays()
        self.supply = self._open_driver("supply", cfg.instruments["supply"])
        self.load = self._open_driver("load", cfg.instruments["load"])
        self.resistors = self._open_driver(
            "resistors", cfg.instruments["resistors"], channel_map=cfg.channels.ntc
        )
        self.cells = self._open_cells()
        if "scope" in cfg.instruments:
            self.scope = self._open_driver(
                "scope", cfg.instruments["scope"], channel_map=cfg.channels.scope
            )
        self.bms = self._open_bms()
        self._closers.append(self.bms.close)

    def _open_driver(self, name: str, entry: Instrument, **extra: Any) -> Any:
        from instruments.scpi_instrument import ExpectedIdn

        cls = DRIVERS[entry.driver].load()
        section = getattr(self.config.envelope, DRIVERS[entry.driver].role, None)
        try:
            driver = cls.connect(
                name=name,
                address=entry.address,
                visa_library=self.config.visa_library,
                timeout_s=entry.timeout_s,
                expected_idn=ExpectedIdn(entry.idn.manufacturer, entry.idn.model)
                if entry.idn
                else None,
                envelope=section.model_dump() if section is not None else {},
                calibration_due=entry.calibration_due,
                calibration_certificate=entry.calibration_certificate,
                calibrated_on=entry.calibrated_on,
                **extra,
            )
        except BenchError as exc:
            raise BenchStartError(f"bench {self.bench_id} ({self.path}): {exc}") from exc
        self._drivers.append(driver)
        self._closers.append(driver.close)
        return driver

    def _open_relays(self) -> Relays:
        """The relay cards the ``relays`` mapping names, as one ``Relays`` by hand-step."""
        cfg = self.config
        cards = {
            name: self._open_driver(name, cfg.instruments[name])
            for name in dict.fromkeys(r.instrument for r in cfg.relays.values())
        }
        try:
            return BenchRelays.from_mapping(cfg.relays, cards)
        except ValueError as exc:
            raise BenchStartError(f"bench {self.bench_id} ({self.path}): relays: {exc}") from exc

    def _open_cells(self) -> CellSimulator:
        cell_map = self.config.channels.cells
        units = {
            name: self._open_driver(name, entry)
            for name, entry in self.config.instruments_of("cells").items()
        }
        drivers = {self.config.instruments[name].driver for name in units}
        if len(drivers) != 1:
            raise BenchStartError(f"{self.path}: cell units mix drivers {sorted(drivers)}")
        assembler = DRIVERS[drivers.pop()].load_assembler()
        if assembler is None:
            raise BenchStartError(f"{self.path}: the cell driver cannot assemble 16 cells")
        return assembler(units, {cell: tuple(unit) for cell, unit in cell_map.items()})

    def _open_bms(self) -> BmsLink:
        bms = self.config.bms
        try:
            if bms.protocol == "seplos_v2":
                from instruments.bms.seplos_link import SeplosLink

                return SeplosLink(
                    bms.port,
                    baud=bms.baud,
                    address=bms.address,
                    timeout_s=bms.timeout_s,
                    retries=bms.retries,
                    late_guard_s=bms.late_guard_s,
                    lost_after=bms.lost_after,
                )
            from instruments.bms.modbus_link import ModbusLink

            return ModbusLink(
                bms.port,
                transport="tcp" if bms.protocol == "modbus_tcp" else "rtu",
                baud=bms.baud,
                address=bms.address,
                timeout_s=bms.timeout_s,
                retries=bms.retries,
                late_guard_s=bms.late_guard_s,
                lost_after=bms.lost_after,
            )
        except BenchError as exc:
            raise BenchStartError(f"bench {self.bench_id} ({self.path}): {exc}") from exc

    # -- what procedures and reports use -------------------------------------------------

    @property
    def drivers(self) -> list[Any]:
        """Every open instrument driver (each answers ``*IDN?``)."""
        return list(self._drivers)

    @property
    def identities(self) -> dict[str, dict[str, Any]]:
        """What each instrument said it is (``*IDN?``), with its calibration record from the
        bench file: ``calibration_due``, ``calibration_certificate``, ``calibrated_on``
        (ISO dates and the certificate id; None when the bench file gives none)."""
        out: dict[str, dict[str, Any]] = {}
        for driver in self._drivers:
            ident = driver.identity
            due = ident.calibration_due
            done = getattr(ident, "calibrated_on", None)
            out[ident.name] = {
                "address": ident.address,
                "manufacturer": ident.manufacturer,
                "model": ident.model,
                "serial": ident.serial,
                "firmware": ident.firmware,
                "calibration_due": due.isoformat() if due else None,
                "calibration_certificate": getattr(ident, "calibration_certificate", None),
                "calibrated_on": done.isoformat() if done else None,
            }
        return out

    @property
    def sim_control(self) -> ControlChannel | None:
        """The simulator's control channel when the clock is a sim clock, else None."""
        return self.clock.channel if isinstance(self.clock, SimClock) else None

    def safe_state(self) -> None:
        """Every relay in its safe position first (button released, BMS powered, no short,
        no series resistor), then load off, supply off, cells 3.300 V, NTCs 25 °C (scope
        left running).

        Every step is attempted even if an earlier one fails; ``SafeStateError`` then lists
        each failure, so no source stays on because another one did not answer. When the
        relays had the BMS's supply cut, the BMS is given its boot time to answer again
        (bounded), so the next exchange does not meet a silent link.
        """
        steps: list[tuple[str, Callable[[], None]]] = []
        relays = self.relays
        powered_up = False
        if relays is not None:
            if relays.has("bms_power"):
                try:
                    powered_up = relays.is_active("bms_power")
                except Exception:  # noqa: BLE001 - the relay step below says what failed
                    powered_up = True
            steps.append(("relays", relays.safe_state))
        for name in ("load", "supply", "cells", "resistors", "scope"):
            part = getattr(self, name, None)
            if part is not None:
                steps.append((name, part.safe_state))
        failures = []
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - every step must be attempted
                failures.append(f"{name}: {exc}")
                log.error("safe state: %s failed: %s", name, exc)
        if powered_up and getattr(self, "bms", None) is not None:
            from harness.procedures.power import BOOT_TIMEOUT_S, wait_for_bms

            try:
                wait_for_bms(self.bms, self.clock, BOOT_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - said with the rest
                failures.append(f"BMS after its supply was restored: {exc}")
        if failures:
            raise SafeStateError("safe state incomplete: " + "; ".join(failures))

    # -- leaving -----------------------------------------------------------------------

    def _leave(self) -> None:
        in_flight = sys.exc_info()[1]
        error: Exception | None = None
        try:
            self.safe_state()
        except SafeStateError as exc:
            error = exc
        for close in reversed(self._closers):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - close everything we can
                log.warning("closing: %s", exc)
        if error is not None:
            if in_flight is None:
                raise error
            in_flight.add_note(str(error))


# -- launch ------------------------------------------------------------------------------


#: Linux prctl option: signal the calling process gets when its parent dies.
PR_SET_PDEATHSIG = 1
#: Environment variable naming the process a launched bench must not outlive (set for
#: the child; ``python -m bmssim`` watches that process and stops when it is gone).
PARENT_PID_ENV = "BMSHIL_PARENT_PID"


def parent_death_preexec(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` after which the child gets ``signum`` when this process dies.

    Linux only (``prctl(PR_SET_PDEATHSIG)`` through ctypes); None elsewhere, where the child
    must watch its parent itself (``python -m bmssim --parent-pid``). If the parent is
    already gone when the child gets there, the child sends itself ``signum`` at once.

    Caveat: the kernel sends the signal when the *thread* that forked the child exits, not
    the process. Call Popen from the thread that owns the child for its whole life (the
    bench is opened, used and left in one thread), never from a short-lived helper thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec
        prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signum)

    return preexec


@contextlib.contextmanager
def _launched(config: BenchFile | LaunchFile, path: Path) -> Iterator[tuple[BenchFile, Path]]:
    """Run a launch file's command and yield the resolved bench file it writes; terminate
    the child on the way out (after the bench's own exit has run). A complete bench file is
    yielded as is.

    Placeholders in the command: ``{python}`` (this interpreter), ``{bench_out}`` (the file
    the harness waits for), ``{workdir}`` (the temporary directory holding it and the
    child's logs). The child dies with this process: SIGTERM through PR_SET_PDEATHSIG on
    Linux, and ``BMSHIL_PARENT_PID`` in its environment for a bench that watches its parent
    itself (and for whatever a wrapper script starts). If this process is killed outright,
    only the child can remove ``{workdir}`` (bmssim: ``--remove-on-exit {workdir}``)."""
    if isinstance(config, BenchFile):
        yield config, path
        return
    workdir = Path(tempfile.mkdtemp(prefix="bmshil-bench-"))
    bench_out = workdir / "bench.yaml"
    placeholders = {
        "{python}": sys.executable,
        "{bench_out}": str(bench_out),
        "{workdir}": str(workdir),
    }
    command = []
    for part in config.launch.command:
        for key, value in placeholders.items():
            part = part.replace(key, value)
        command.append(part)
    env = dict(os.environ, **{PARENT_PID_ENV: str(os.getpid())})
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        # Own session: a terminal's Ctrl-C goes to the harness, which leaves the bench safe
        # and then stops the child itself. Popen runs in the thread that owns the bench
        # (see parent_death_preexec for why that matters).
        child = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=parent_death_preexec(),
        )
    try:
        resolved = _wait_for_bench_file(
            child, bench_out, config.launch.ready_timeout_s, command, stderr_path, path
        )
        yield resolved, bench_out
    finally:
        with _signals_deferred():
            _terminate(child)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_bench_file(
    child: subprocess.Popen[bytes],
    bench_out: Path,
    timeout_s: float,
    command: list[str],
    stderr_path: Path,
    path: Path,
) -> BenchFile:
    deadline = time.monotonic() + timeout_s
    while not bench_out.exists():
        code = child.poll()
        if code is not None:
            raise BenchStartError(
                f"{path}: launch command {' '.join(command)} exited with {code} before writing "
                f"the bench file; its stderr:\n{_tail(stderr_path)}"
            )
        if time.monotonic() > deadline:
            raise BenchStartError(
                f"{path}: launch command {' '.join(command)} did not write {bench_out} within "
                f"{timeout_s:g} s; its stderr:\n{_tail(stderr_path)}"
            )
        time.sleep(0.05)
    try:
        resolved = load_bench_file(bench_out)
    except BenchFileError as exc:
        raise BenchStartError(f"{path}: the launched bench wrote an invalid file: {exc}") from exc
    if not isinstance(resolved, BenchFile):
        raise BenchStartError(f"{path}: the launched bench wrote another launch file")
    return resolved


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no stderr)"
    return text[-limit:] or "(empty)"


def _terminate(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group (its own session: the child and whatever it
    started without a session of its own), SIGKILL after ``CHILD_TERMINATE_S``."""
    if child.poll() is not None:
        return
    _signal_group(child, signal.SIGTERM)
    try:
        child.wait(CHILD_TERMINATE_S)
    except subprocess.TimeoutExpired:
        log.warning("bench process %d ignored SIGTERM; killing it", child.pid)
        _signal_group(child, signal.SIGKILL)
        child.wait()


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(child.pid, signum)  # start_new_session: the group id is the child's pid
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)


# -- signals -----------------------------------------------------------------------------


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Terminated(KeyboardInterrupt):
    """SIGTERM while the bench is open.

    A KeyboardInterrupt, so that whatever stops on Ctrl-C stops on SIGTERM too: pytest ends
    the session instead of counting a SystemExit as one failed test and going on. Once the
    bench has left its safe state behind, ``Bench.open`` turns it into SystemExit(143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """While the bench is open, SIGINT raises KeyboardInterrupt and SIGTERM Terminated in the
    main thread, so the context manager's exit (the safe state) runs for both."""
    if not _in_main_thread():
        yield
        return
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, _raise_interrupt),
        signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_exit),
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """During the safe state, a second Ctrl-C/SIGTERM is held back until it is done, so an
    impatient second press cannot leave a source on."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in pending[:1]:
            os.kill(os.getpid(), signum)
