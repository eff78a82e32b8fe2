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
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.bench_process import CHILD_TERMINATE_S as CHILD_TERMINATE_S
from harness.bench_process import PARENT_PID_ENV as PARENT_PID_ENV
from harness.bench_process import PR_SET_PDEATHSIG as PR_SET_PDEATHSIG
from harness.bench_process import BenchStartError, _launched
from harness.bench_process import _signal_group as _signal_group
from harness.bench_process import _tail as _tail
from harness.bench_process import _terminate as _terminate
from harness.bench_process import _wait_for_bench_file as _wait_for_bench_file
from harness.bench_process import parent_death_preexec as parent_death_preexec
from harness.bench_signals import Terminated, _signals_deferred, _signals_raise
from harness.bench_signals import _in_main_thread as _in_main_thread
from harness.bench_signals import _raise_exit as _raise_exit
from harness.bench_signals import _raise_interrupt as _raise_interrupt
from harness.benchfile import BenchFile, Instrument, load_bench_file
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
        self.clock = (
            SimClock(cfg.clock.address, cfg.clock.shared)
            if cfg.clock.kind == "sim"
            else RealClock()
        )
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
                    bench_clock=self.clock,
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
