"""The simulated bench as one object: World, instrument servers, BMS endpoints, control channel.

:class:`SimBench` starts everything in the running asyncio loop on free loopback ports (and
two ptys), then describes itself as a resolved bench file (docs/ARCHITECTURE.md "Bench
files") so the harness opens the simulator exactly as it opens a real bench: VISA socket
addresses for the instruments, a serial device path for the BMS.

Nothing it starts outlives the run that started it: with a parent to watch
(``--parent-pid``, default ``$BMSHIL_PARENT_PID``) it polls that process and stops when the
process is gone or its own parent changes; with ``--remove-on-exit DIR`` it removes the
launch work directory and its bench file on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bmssim.clock import SharedClockPage
from bmssim.control import ControlServer
from bmssim.faults import Faults
from bmssim.instruments.bloomy_abs import BloomyAbs
from bmssim.instruments.itech_it8500 import ItechIt8500
from bmssim.instruments.keysight_34972a import Keysight34972A
from bmssim.instruments.keysight_infiniivision import KeysightInfiniiVision
from bmssim.instruments.keysight_n5700 import KeysightN5700
from bmssim.instruments.resistor_module import ResistorModule
from bmssim.modbus_server import DEFAULT_MAP, ModbusRtuEndpoint, ModbusTcpEndpoint, start_modbus
from bmssim.parent_watch import _HAVE_PROC as _HAVE_PROC
from bmssim.parent_watch import PARENT_PID_ENV as PARENT_PID_ENV
from bmssim.parent_watch import PARENT_POLL_S, ParentWatch
from bmssim.parent_watch import _proc_stat as _proc_stat
from bmssim.parent_watch import process_alive as process_alive
from bmssim.scpi import ScpiInstrument, ScpiServer
from bmssim.seplos_server import SeplosDevice, SeplosServer
from bmssim.twin.types import TwinConfig
from bmsspec.capabilities import DEFAULTS as CAPABILITY_DEFAULTS

_log = logging.getLogger(__name__)

BENCH_ID = "sim"
SEPLOS_BAUD = 19200
BMS_ADDRESS = 0
#: The endpoint the bench file's ``bms.port`` names for each protocol.
BMS_PORTS = {"seplos_v2": "seplos_pty", "modbus_rtu": "modbus_rtu", "modbus_tcp": "modbus_tcp"}
#: Measurement noise used by ``--noise``: typical of a BMS front end (1 mV cell ADC LSB,
#: 0.1 °C NTC resolution).
NOISE_MV = 1.0
NOISE_C = 0.1

#: Bench-file driver name of each instrument role.
DRIVERS = {
    "supply": "keysight_n5700",
    "load": "itech_it8500",
    "cells_a": "bloomy_abs",
    "cells_b": "bloomy_abs",
    "resistors": "resistor_module",
    "scope": "keysight_infiniivision",
    "relays": "keysight_34972a",
}
ENVELOPE = {
    "supply": {"max_voltage_v": 65.0, "max_current_a": 120.0},
    "load": {"max_current_a": 300.0},
    "cells": {"min_voltage_v": 0.0, "max_voltage_v": 5.0},
    "resistors": {"min_ohm": 0.0, "max_ohm": 1_000_000.0},
}
#: What the simulated bench has without its relay card (``--no-relays``): the project's
#: capability defaults (``bmsspec.capabilities``) plus a heater output on the twin and a
#: scope; no button, shorting contactor, external switch, secondary-trip, LCD, Bluetooth
#: or parallel hardware.
CAPABILITIES = {**CAPABILITY_DEFAULTS, "heater": True, "scope": True, "simulated_cells": True}
#: What the relay card adds (``SimOptions.relays``, the default): every hand-step of
#: ``bmssim/world.py`` ``RELAY_CHANNELS``. The launch file fixtures/sim.yaml declares the
#: bench's capabilities for planning without starting the simulator.
RELAY_CAPABILITIES = {
    "button": True,
    "switch": True,
    "secondary_trip": True,
    "short_circuit": True,
    "bms_power": True,
    "connection_fault": True,
}
assert set(CAPABILITIES) | set(RELAY_CAPABILITIES) <= set(CAPABILITY_DEFAULTS)
CHANNELS = {
    "cells": {n: ["cells_a" if n <= 8 else "cells_b", (n - 1) % 8 + 1] for n in range(1, 17)},
    "ntc": {"cell1": 1, "cell2": 2, "cell3": 3, "cell4": 4, "ambient": 5, "power": 6},
    "scope": {"current": 1, "discharge_fet": 2, "charge_fet": 3},
}
SETTLE = {"setpoint_s": 0.0, "poll_interval_s": 0.05}
#: Months between a simulated instrument's calibration and its due date.
CALIBRATION_INTERVAL_MONTHS = 12
#: Opens the resolved bench file: what the calibration keys of a simulated bench mean.
BENCH_FILE_HEADER = """\
# Resolved bench file of the simulated bench, written by bmssim at start-up ({started_on}).
# Calibration records below are SIMULATED CERTIFICATES, not a lab's: every simulated
# instrument is an exact model, "calibrated" on the simulator's start date
# (calibrated_on) with the certificate id SIM-CAL-<model>-<serial>, and due
# {months} months later (calibration_due). The dates are computed at every start, never
# fixed, so a simulated bench can never be past calibration due (which would make every
# `bmshil run` refuse it, or need --allow-overdue), while the report still shows the
# calibration columns exactly as for a real bench.
"""
#: Only a directory with this name prefix is removed by ``--remove-on-exit`` (the prefix of
#: the harness's launch work directories), so a mistyped path cannot cost a user's files.
WORKDIR_PREFIX = "bmshil-bench-"


@dataclass
class SimOptions:
    """Command-line options of ``python -m bmssim``."""

    bench_out: Path | None = None
    faults_file: Path | None = None
    realtime: bool = False
    seed: int = 0
    noise: bool = False
    #: Device profile (bmssim/twin/profile.py) and its line error rate (None: its default).
    profile: str = "ideal"
    line_error_rate: float | None = None
    host: str = "127.0.0.1"
    modbus_map: Path = DEFAULT_MAP
    #: Stop when this process is gone (or our own parent changes); None: no watching.
    parent_pid: int | None = None
    #: Launch work directory to remove on exit (with ``bench_out``); None: leave files alone.
    remove_on_exit: Path | None = None
    #: Serve the relay card and describe it (instrument, ``relays`` mapping, capabilities) in
    #: the bench file; False (``--no-relays``): a bench file without them, for a harness whose
    #: bench-file model does not know them yet.
    relays: bool = True
    #: The BMS link the bench file names: ``seplos_v2`` (the pty), ``modbus_rtu`` (the
    #: Modbus pty) or ``modbus_tcp``; every endpoint is served whichever it is.
    bms_protocol: str = "seplos_v2"


def calibration_record(idn: str, started_on: dt.date) -> dict[str, Any]:
    """The simulated calibration of the instrument answering ``idn`` (``*IDN?``) for a
    simulator started on ``started_on``: ``calibrated_on`` that date, ``calibration_due``
    :data:`CALIBRATION_INTERVAL_MONTHS` later, certificate ``SIM-CAL-<model>-<serial>``.

    Computed from the start date, never a fixed date, so a simulated bench is never past
    due: a fixed date would one day make every run on the simulator refuse to start (or
    need ``--allow-overdue``, which would then be on every report)."""
    fields = [f.strip() for f in idn.split(",")] + ["", "", ""]
    model, serial = (f.replace(" ", "_") or "unknown" for f in fields[1:3])
    return {
        "calibration_due": _add_months(started_on, CALIBRATION_INTERVAL_MONTHS),
        "calibration_certificate": f"SIM-CAL-{model}-{serial}",
        "calibrated_on": started_on,
    }


def _add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months; the 29th-31st of a month that the target
    lacks becomes its last day (29 Feb 2028 + 12 months = 28 Feb 2029)."""
    import calendar

    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def remove_run_files(directory: Path | None, bench_out: Path | None) -> None:
    """``--remove-on-exit``: remove the bench file and the launch work directory; the
    directory only if it is a real directory named ``bmshil-bench-*``."""
    if directory is None:
        return
    if bench_out is not None:
        bench_out = Path(bench_out)
        if bench_out.is_file() or bench_out.is_symlink():
            with contextlib.suppress(OSError):
                bench_out.unlink()
    directory = Path(directory)
    if directory.is_symlink() or not directory.is_dir():
        if directory.exists():
            _log.warning("--remove-on-exit %s: not a directory; left alone", directory)
        return
    if not directory.name.startswith(WORKDIR_PREFIX):
        _log.warning(
            "--remove-on-exit %s: name does not start with %r; left alone",
            directory,
            WORKDIR_PREFIX,
        )
        return
    shutil.rmtree(directory, ignore_errors=True)


class SimBench:
    """Owns every part of the simulated bench; ``start``, ``serve_until_stopped``, ``stop``."""

    def __init__(
        self, options: SimOptions, spec: Any | None = None, parent_watch: ParentWatch | None = None
    ) -> None:
        self.options = options
        if parent_watch is None and options.parent_pid is not None:
            parent_watch = ParentWatch(options.parent_pid)
        self.parent_watch = parent_watch
        self.stop_reason: str | None = None
        if spec is None:
            from bmsspec import load_spec

            spec = load_spec()
        self.spec = spec
        self.world: Any = None
        self.instruments: dict[str, ScpiInstrument] = {}
        self.scpi_servers: dict[str, ScpiServer] = {}
        self.seplos: SeplosServer | None = None
        self.modbus_tcp: ModbusTcpEndpoint | None = None
        self.modbus_rtu: ModbusRtuEndpoint | None = None
        self.control: ControlServer | None = None
        self.clock_page: SharedClockPage | None = None
        self._stop = asyncio.Event()
        #: The simulator's start date: its simulated calibrations date from it.
        self.started_on: dt.date = dt.date.today()

    # ------------------------------------------------------------------ assembly

    def _build_world(self) -> Any:
        from bmssim.world import World

        faults = (
            Faults.load(self.options.faults_file, self.spec)
            if self.options.faults_file
            else Faults.empty()
        )
        config = TwinConfig(
            seed=self.options.seed,
            noise_mv=NOISE_MV if self.options.noise else 0.0,
            noise_c=NOISE_C if self.options.noise else 0.0,
            profile=self.options.profile,
            line_error_rate=self.options.line_error_rate,
        )
        return World(self.spec, twin_config=config, faults=faults)

    def _build_instruments(self) -> dict[str, ScpiInstrument]:
        w = self.world
        instruments: dict[str, ScpiInstrument] = {
            "supply": KeysightN5700(w),
            "load": ItechIt8500(w),
            "cells_a": BloomyAbs(w, offset=0),
            "cells_b": BloomyAbs(w, offset=8),
            "resistors": ResistorModule(w),
            "scope": KeysightInfiniiVision(w),
        }
        if self.options.relays:
            instruments["relays"] = Keysight34972A(w)
        return instruments

    def _real(self) -> bool:
        """The clock runs in real time (``--realtime`` or the control channel's mode op)."""
        return self.control is not None and self.control.mode == "real"

    async def start(self) -> None:
        """Start every endpoint; on any failure close what was opened and re-raise."""
        try:
            self.world = self._build_world()
            if self.options.bench_out is not None:
                # Beside the bench file: the harness on this machine reads the time there.
                self.clock_page = SharedClockPage.create(Path(f"{self.options.bench_out}.clock"))
                # First observer: the time is on the page before a held reply goes out.
                self.world.clock.observers.insert(0, self.clock_page.publish)
                self.clock_page.publish(self.world.clock.now_ms)
            self.instruments = self._build_instruments()
            host = self.options.host
            for name, instrument in self.instruments.items():
                self.scpi_servers[name] = await ScpiServer(instrument, host=host).start()
            # The serial lines take their time at the baud rate the bench file states: on
            # the virtual clock in virtual mode, in wall time in real-time mode.
            device = SeplosDevice(
                self.world, self.spec, address=BMS_ADDRESS, baud=SEPLOS_BAUD, realtime=self._real
            )
            self.seplos = await SeplosServer(device, host=host).start()
            self.modbus_tcp, self.modbus_rtu = await start_modbus(
                self.world,
                self.spec,
                map_path=self.options.modbus_map,
                host=host,
                baud=SEPLOS_BAUD,
                realtime=self._real,
            )
            self.control = await ControlServer(
                self.world,
                set_faults=self.set_faults,
                faults_in_force=self.faults_in_force,
                reset=self.reset,
                shutdown=self.request_stop,
                await_line=self.await_line,
                line_counts=self.line_counts,
                host=host,
            ).start()
            if self.options.realtime:
                self.control.set_mode("real")
        except BaseException:
            await self.stop()
            raise

    # ------------------------------------------------------------------ control hooks

    def set_faults(self, data: dict[str, Any]) -> None:
        """Replace the faults in force (control channel ``faults``)."""
        faults = Faults.from_dict(data, self.spec, source="control channel")
        setter = getattr(self.world, "set_faults", None)
        if callable(setter):
            setter(faults)
        else:
            self.world.faults = faults
        self.world.settle()

    def faults_in_force(self) -> dict[str, Any]:
        """The faults in force, as a faults YAML (control channel ``faults_in_force``):
        ``firmware`` list, ``link`` counters, ``version`` (None: the factory one)."""
        data = self.world.faults.to_dict()
        data.setdefault("version", None)
        return data

    def reset(self) -> None:
        """Device to factory state, every instrument to its ``*RST`` state."""
        world_reset = getattr(self.world, "reset", None)
        if callable(world_reset):
            world_reset()
        for instrument in self.instruments.values():
            instrument.reset()
        self.world.settle()

    def _pty_serving(self, line: str) -> SeplosServer | None:
        """The Seplos server if ``line`` is its pty (the only line await_line serves)."""
        return self.seplos if self.seplos and line == self.seplos.pty_path else None

    def line_counts(self, line: str) -> tuple[int, int] | None:
        """Control channel ``line_counts`` (SeplosServer.line_counts)."""
        server = self._pty_serving(line)
        return None if server is None else server.line_counts()

    def await_line(self, ms: int, line: str, sent: int, received: int) -> bool | None:
        """Control channel ``await_line`` (SeplosServer.await_answer): the harness's serial
        link waits this way, so its timeouts are bench time."""
        server = self._pty_serving(line)
        return None if server is None else server.await_answer(ms, sent, received)

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def serve_until_stopped(self) -> None:
        """Serve until ``request_stop`` (signal, control-channel shutdown) or, with a parent
        to watch, until the parent is gone."""
        watcher = None
        if self.parent_watch is not None:
            watcher = asyncio.get_running_loop().create_task(self._watch_parent())
        try:
            await self._stop.wait()
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    async def _watch_parent(self, interval_s: float = PARENT_POLL_S) -> None:
        assert self.parent_watch is not None
        while not self._stop.is_set():
            reason = self.parent_watch.gone()
            if reason is not None:
                self.stop_reason = reason
                _log.info("%s; stopping", reason)
                self.request_stop()
                return
            await asyncio.sleep(interval_s)

    def parent_gone(self) -> bool:
        return self.parent_watch is not None and self.parent_watch.gone() is not None

    def remove_run_files(self) -> None:
        """``--remove-on-exit``: the work directory and the bench file (see
        :func:`remove_run_files`)."""
        remove_run_files(self.options.remove_on_exit, self.options.bench_out)

    async def stop(self) -> None:
        """Close every endpoint (ptys, sockets). Files are left alone (``remove_run_files``
        removes the ones ``--remove-on-exit`` names)."""
        if self.control is not None:
            await self.control.stop()
        for server in (self.modbus_tcp, self.modbus_rtu, self.seplos):
            if server is not None:
                with contextlib.suppress(Exception):
                    await server.stop()
        for server in self.scpi_servers.values():
            with contextlib.suppress(Exception):
                await server.stop()

    # ------------------------------------------------------------------ description

    def endpoints(self) -> dict[str, str]:
        """Where each endpoint listens, for the console and the bench file."""
        assert self.seplos and self.modbus_tcp and self.modbus_rtu and self.control
        out = {name: server.address for name, server in self.scpi_servers.items()}
        out.update(
            {
                "clock": self.control.address,
                "seplos_pty": self.seplos.pty_path,
                "seplos_tcp": self.seplos.tcp_url,
                "modbus_tcp": f"{self.options.host}:{self.modbus_tcp.port}",
                "modbus_rtu": self.modbus_rtu.pty_path,
            }
        )
        return out

    def bench_document(self) -> dict[str, Any]:
        """The resolved bench file (no ``launch`` key: it describes a running bench)."""
        ep = self.endpoints()
        instruments: dict[str, Any] = {}
        for name, instrument in self.instruments.items():
            fields = [f.strip() for f in instrument.idn.split(",")]
            instruments[name] = {
                "driver": DRIVERS[name],
                "address": ep[name],
                "idn": {"manufacturer": fields[0], "model": fields[1]},
                **calibration_record(instrument.idn, self.started_on),
            }
        document: dict[str, Any] = {
            "bench": BENCH_ID,
            "description": "Simulated bench (bmssim), resolved at start-up",
            "clock": {
                "kind": "sim",
                "address": ep["clock"],
                **({"shared": str(self.clock_page.path)} if self.clock_page else {}),
            },
            "instruments": instruments,
            "channels": CHANNELS,
            "bms": {
                "protocol": self.options.bms_protocol,
                "port": ep[BMS_PORTS[self.options.bms_protocol]],
                "baud": SEPLOS_BAUD,
                "address": BMS_ADDRESS,
            },
            "bms_endpoints": {
                "seplos_tcp": ep["seplos_tcp"],
                "modbus_tcp": ep["modbus_tcp"],
                "modbus_rtu": ep["modbus_rtu"],
            },
            "envelope": ENVELOPE,
            "capabilities": dict(CAPABILITIES),
            "settle": SETTLE,
        }
        if self.options.relays:
            document["relays"] = relay_mapping()
            document["capabilities"].update(RELAY_CAPABILITIES)
        return document

    def write_bench_file(self, path: Path) -> None:
        """Write the bench file atomically: a reader polling for it never sees half a file.
        It opens with a comment saying its calibration records are simulated."""
        header = BENCH_FILE_HEADER.format(
            started_on=self.started_on.isoformat(), months=CALIBRATION_INTERVAL_MONTHS
        )
        write_atomic(path, header + yaml.safe_dump(self.bench_document(), sort_keys=False))


def relay_mapping() -> dict[str, dict[str, Any]]:
    """The bench file's ``relays`` section: each hand-step's instrument and channel, and for
    the connection fault the resistor it inserts (Ω) and the cell whose reading it shifts."""
    from bmssim.world import CONNECTION_FAULT_CELL, CONNECTION_FAULT_OHM, RELAY_CHANNELS

    mapping: dict[str, dict[str, Any]] = {
        name: {"instrument": "relays", "channel": channel}
        for name, channel in RELAY_CHANNELS.items()
    }
    mapping["connection_fault"].update(ohm=CONNECTION_FAULT_OHM, cell=CONNECTION_FAULT_CELL)
    return mapping


def write_atomic(path: Path, text: str) -> None:
    """Temp file in the target directory, fsync, rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a bench file is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
