"""The simulated bench as one object: World, instrument servers, BMS endpoints, control channel.

:class:`SimBench` starts everything in the running asyncio loop on free loopback ports (and
two ptys), then describes itself as a resolved bench file (docs/ARCHITECTURE.md "Bench
files") so the harness opens the simulator exactly as it opens a real bench: VISA socket
addresses for the instruments, a serial device path for the BMS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bmssim.control import ControlServer
from bmssim.faults import Faults
from bmssim.instruments.bloomy_abs import BloomyAbs
from bmssim.instruments.itech_it8500 import ItechIt8500
from bmssim.instruments.keysight_infiniivision import KeysightInfiniiVision
from bmssim.instruments.keysight_n5700 import KeysightN5700
from bmssim.instruments.resistor_module import ResistorModule
from bmssim.modbus_server import DEFAULT_MAP, ModbusRtuEndpoint, ModbusTcpEndpoint, start_modbus
from bmssim.scpi import ScpiInstrument, ScpiServer
from bmssim.seplos_server import SeplosDevice, SeplosServer
from bmssim.twin.types import TwinConfig

_log = logging.getLogger(__name__)

BENCH_ID = "sim"
SEPLOS_BAUD = 19200
BMS_ADDRESS = 0
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
}
ENVELOPE = {
    "supply": {"max_voltage_v": 65.0, "max_current_a": 120.0},
    "load": {"max_current_a": 300.0},
    "cells": {"min_voltage_v": 0.0, "max_voltage_v": 5.0},
    "resistors": {"min_ohm": 0.0, "max_ohm": 1_000_000.0},
}
#: What the simulated bench has: a heater output on the twin, a scope, simulated cells; no
#: shorting contactor, no external switch, no secondary-trip, LCD, Bluetooth or parallel
#: hardware. fixtures/sim.yaml declares the same for planning without starting the simulator.
CAPABILITIES = {
    "heater": True,
    "secondary_trip": False,
    "simulated_cells": True,
    "scope": True,
    "button": False,
    "short_circuit": False,
    "switch": False,
    "lcd": False,
    "bluetooth": False,
    "parallel": False,
}
CHANNELS = {
    "cells": {n: ["cells_a" if n <= 8 else "cells_b", (n - 1) % 8 + 1] for n in range(1, 17)},
    "ntc": {"cell1": 1, "cell2": 2, "cell3": 3, "cell4": 4, "ambient": 5, "power": 6},
    "scope": {"current": 1, "discharge_fet": 2, "charge_fet": 3},
}
SETTLE = {"setpoint_s": 0.0, "poll_interval_s": 0.05}


@dataclass
class SimOptions:
    """Command-line options of ``python -m bmssim``."""

    bench_out: Path | None = None
    faults_file: Path | None = None
    realtime: bool = False
    seed: int = 0
    noise: bool = False
    host: str = "127.0.0.1"
    modbus_map: Path = DEFAULT_MAP


class SimBench:
    """Owns every part of the simulated bench; ``start``, ``serve_until_stopped``, ``stop``."""

    def __init__(self, options: SimOptions, spec: Any | None = None) -> None:
        self.options = options
        if spec is None:
            from harness.spec import load_spec

            spec = load_spec()
        self.spec = spec
        self.world: Any = None
        self.instruments: dict[str, ScpiInstrument] = {}
        self.scpi_servers: dict[str, ScpiServer] = {}
        self.seplos: SeplosServer | None = None
        self.modbus_tcp: ModbusTcpEndpoint | None = None
        self.modbus_rtu: ModbusRtuEndpoint | None = None
        self.control: ControlServer | None = None
        self._stop = asyncio.Event()

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
        )
        return World(self.spec, twin_config=config, faults=faults)

    def _build_instruments(self) -> dict[str, ScpiInstrument]:
        w = self.world
        return {
            "supply": KeysightN5700(w),
            "load": ItechIt8500(w),
            "cells_a": BloomyAbs(w, offset=0),
            "cells_b": BloomyAbs(w, offset=8),
            "resistors": ResistorModule(w),
            "scope": KeysightInfiniiVision(w),
        }

    async def start(self) -> None:
        """Start every endpoint; on any failure close what was opened and re-raise."""
        try:
            self.world = self._build_world()
            self.instruments = self._build_instruments()
            host = self.options.host
            for name, instrument in self.instruments.items():
                self.scpi_servers[name] = await ScpiServer(instrument, host=host).start()
            device = SeplosDevice(self.world, self.spec, address=BMS_ADDRESS)
            self.seplos = await SeplosServer(device, host=host).start()
            self.modbus_tcp, self.modbus_rtu = await start_modbus(
                self.world, self.spec, map_path=self.options.modbus_map, host=host
            )
            self.control = await ControlServer(
                self.world,
                set_faults=self.set_faults,
                reset=self.reset,
                shutdown=self.request_stop,
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

    def reset(self) -> None:
        """Device to factory state, every instrument to its ``*RST`` state."""
        world_reset = getattr(self.world, "reset", None)
        if callable(world_reset):
            world_reset()
        for instrument in self.instruments.values():
            instrument.reset()
        self.world.settle()

    def request_stop(self) -> None:
        self._stop.set()

    async def serve_until_stopped(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        """Close every endpoint (ptys, sockets). Files the user owns are left alone."""
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
            }
        return {
            "bench": BENCH_ID,
            "description": "Simulated bench (bmssim), resolved at start-up",
            "clock": {"kind": "sim", "address": ep["clock"]},
            "instruments": instruments,
            "channels": CHANNELS,
            "bms": {
                "protocol": "seplos_v2",
                "port": ep["seplos_pty"],
                "baud": SEPLOS_BAUD,
                "address": BMS_ADDRESS,
            },
            "bms_endpoints": {
                "seplos_tcp": ep["seplos_tcp"],
                "modbus_tcp": ep["modbus_tcp"],
                "modbus_rtu": ep["modbus_rtu"],
            },
            "envelope": ENVELOPE,
            "capabilities": CAPABILITIES,
            "settle": SETTLE,
        }

    def write_bench_file(self, path: Path) -> None:
        """Write the bench file atomically: a reader polling for it never sees half a file."""
        write_atomic(path, yaml.safe_dump(self.bench_document(), sort_keys=False))


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
