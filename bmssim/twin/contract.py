"""The Twin contract (docs/ARCHITECTURE.md): what the protocol servers call, and the
introspection the World's snapshot and the tests read. A mixin of ``BmsTwin`` (core.py),
which holds the board and the features it reads here."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from bmssim.twin import levels
from bmssim.twin.activation import ChargeActivation
from bmssim.twin.balancing import Balancing
from bmssim.twin.board import EPS, UNITS_PER_AH, Board, cah_units
from bmssim.twin.busbar import ConnectionFault
from bmssim.twin.coulomb import CoulombCounter
from bmssim.twin.heating import Heating
from bmssim.twin.limiting import CurrentLimiting
from bmssim.twin.overcurrent import Overcurrent, ShortCircuit
from bmssim.twin.params import ParamTable
from bmssim.twin.recording import HistoryRecorder
from bmssim.twin.types import DeviceInfo, Measurements, ParameterBlock, Status, TwinConfig

#: Manual control (0x45) action codes (protocol §9).
ACTION_ON, ACTION_OFF, ACTION_ONESHOT = 0x10, 0x1F, 0x00


class TwinContract:
    """Twin-contract methods over ``self.board`` and the features ``BmsTwin`` builds."""

    board: Board
    table: ParamTable
    config: TwinConfig
    faults: Any
    on_command: Callable[[], None] | None
    _calls: dict[str, tuple[Callable[..., None], ...]]
    coulomb: CoulombCounter
    overcurrent: Overcurrent
    short_circuit: ShortCircuit
    limiting: CurrentLimiting
    activation: ChargeActivation
    balancing: Balancing
    heating: Heating
    history: HistoryRecorder
    connection: ConnectionFault
    _process: Callable[[int], None]
    flags: Callable[[], set[str]]

    def _live_p60(self) -> float:
        return self.table.params[60].quantise(self.board.remaining_u / UNITS_PER_AH)

    def read_block(self) -> ParameterBlock:
        """0x47: the stored block; P60 is the live remaining capacity (protocol §8 [sim])."""
        b = self.board
        values = dict(b.values)
        values[60] = self._live_p60()
        return ParameterBlock(values=values, switches=dict(b.switches), model_name=b.model_name)

    def write_block(self, block: ParameterBlock) -> None:
        """0xA1: validate and store the whole block; P60 sets the remaining capacity. Also
        releases the overcurrent lockouts. Raises ValueError (-> RTN 0x06) naming the item."""
        b = self.board
        values, switches, name = self.table.validate(block.values, block.switches, block.model_name)
        live = self._live_p60()
        b.values, b.switches, b.model_name = values, switches, name
        if values[60] != live:
            # a read-modify-write that leaves P60 as read keeps the exact live count
            b.remaining_u = cah_units(values[60])
        b.remaining_u = min(b.remaining_u, b.full_u())
        for hook in self._calls["block_written"]:
            hook()
        self._after_command()

    def set_remaining_capacity(self, ah: float) -> None:
        """0x49 index 0x3B: the one parameter written alone. 0 <= ah <= full capacity."""
        if isinstance(ah, bool) or not isinstance(ah, int | float) or not math.isfinite(ah):
            raise ValueError(f"P60 remaining capacity {ah!r}: not a number")
        b = self.board
        q = self.table.params[60].quantise(float(ah))
        full = b.values[59]
        if q < 0 or q > full + EPS:
            raise ValueError(f"P60 remaining capacity = {ah} Ah: outside 0 .. {full} Ah (full)")
        b.remaining_u = cah_units(q)
        b.values[60] = q
        self._after_command()

    def control(self, item: int, action: int) -> None:
        """0x45 telecontrol (protocol §9). Items 0-3 take 0x10/0x1F, 4-5 take 0x00.

        Choice: for the FETs 0x1F forces the FET open and 0x10 releases that force (the FET
        follows the protections again); for the current limiter and the heater 0x10 forces
        them on and 0x1F hands them back to automatic control. Item 0 with 0x10 is also the
        "button" of manual charging activation (S54): P73 minutes later it releases the
        undervoltage protection.
        """
        b = self.board
        if item in (0, 1, 2, 3):
            if action not in (ACTION_ON, ACTION_OFF):
                raise ValueError(f"0x45 item {item}: action 0x{action:02X} (0x10 or 0x1F)")
            on = action == ACTION_ON
            if item == 0:
                b.force_dsg_off = not on
                if on:
                    self.activation.press()
            elif item == 1:
                b.force_chg_off = not on
            elif item == 2:
                self.limiting.manual = on
            else:
                self.heating.manual = on
        elif item == 4:
            if action != ACTION_ONESHOT:
                raise ValueError(f"0x45 item 4 (shutdown): action 0x{action:02X} (0x00)")
            b.shutdown = True
        elif item == 5:
            if action != ACTION_ONESHOT:
                raise ValueError(f"0x45 item 5 (factory reset): action 0x{action:02X} (0x00)")
            self._factory_parameters()
        else:
            raise ValueError(f"0x45 item {item}: unknown control item (0..5)")
        self._after_command()

    def _factory_parameters(self) -> None:
        """Item 5: default parameters and switches, overrides and lockouts released.
        Choice: the live remaining capacity is kept (reloading parameters does not discharge
        the battery), clamped to the factory rated capacity."""
        b = self.board
        b.values = self.table.factory_values()
        b.switches = self.table.factory_switches()
        b.model_name = self.config.model_name.ljust(10)[:10]
        b.remaining_u = min(b.remaining_u, b.full_u())
        b.force_chg_off = b.force_dsg_off = False
        self.limiting.manual = self.heating.manual = False
        for hook in self._calls["block_written"]:
            hook()

    def _after_command(self) -> None:
        self._cur_dirty = self._vt_dirty = True
        self._process(self.board.t)
        if self.on_command is not None:
            self.on_command()

    def measurements(self) -> Measurements:
        """0x42 content from the latest samples."""
        b = self.board
        n = b.n_cells()
        full_ah = b.values[59]
        cells, temps = list(b.cells[:n]), list(b.temps)
        current, pack = b.i_ca / 100.0, round(sum(b.cells[:n]), 2)
        soc = b.soc_permille()
        f = self.faults
        if f.telemetry:
            # telemetry deviations: what is reported, not what the board acts on
            cells = [round(f.reported("cell_voltage", v, i + 1), 3) for i, v in enumerate(cells)]
            temps = [
                round(f.reported("cell_temperature", v, k + 1), 1) if k < 4 else v
                for k, v in enumerate(temps)
            ]
            temps[4] = round(f.reported("ambient_temperature", temps[4]), 1)
            temps[5] = round(f.reported("power_temperature", temps[5]), 1)
            current = round(f.reported("current", current), 2)
            pack = round(f.reported("pack_voltage", pack), 2)
            soc = max(0, min(1000, round(f.reported("soc", soc / 10.0) * 10)))
        return Measurements(
            cell_v=cells,
            temps_c=temps,
            current_a=current,
            pack_v=pack,
            port_v=b.port_v,
            remaining_ah=round(b.remaining_u / UNITS_PER_AH, 2),
            full_ah=full_ah,
            rated_ah=full_ah,
            soc_permille=soc,
            cycles=self.coulomb.cycles,
            soh_permille=1000,
        )

    def status(self) -> Status:
        """0x44 content: levels, every set flag by name, balancing, disconnection."""
        b = self.board
        return Status(
            cell_levels=levels.cell_levels(b),
            temp_levels=levels.temp_levels(b),
            current_level=levels.current_level(b),
            voltage_level=levels.voltage_level(b),
            flags=self.flags(),
            balancing=list(self.balancing.cells),
            disconnected=list(b.inputs.cell_disconnected),
        )

    def device_info(self) -> DeviceInfo:
        return DeviceInfo(
            name=self.board.model_name,
            version=tuple(self.faults.version or self.config.version),
            manufacturer=self.config.manufacturer,
        )

    def history_record(self, index: int) -> bytes | None:
        """0x4B: record ``index`` (0 = oldest kept), or None when there is none."""
        entries = self.history.entries
        if not isinstance(index, int) or index < 0 or index >= len(entries):
            return None
        return entries[index].data

    # ================================================================== introspection

    @property
    def now_ms(self) -> int:
        return self.board.t

    @property
    def state(self) -> str:
        """charging | discharging | standby (from the last current sample)."""
        return self.board.state

    def soc_permille(self) -> int:
        return self.board.soc_permille()

    @property
    def history_count(self) -> int:
        return len(self.history.entries)

    def history_times_ms(self) -> list[int]:
        return [h.t_ms for h in self.history.entries]

    def balancing_cell_current_a(self, index: int) -> float:
        """Bleed current drawn from cell ``index`` (0-based) by its balancing resistor."""
        return self.balancing.cell_current_a(index)

    def overcurrent_trips(self, item: int) -> int:
        """Trips in a row counted towards the P71 lockout for P55, P56 or P57."""
        return self.overcurrent.states[item].count

    def locked(self, item: int) -> bool:
        return self.overcurrent.states[item].locked

    def short_circuit_trips(self) -> int:
        """Short-circuit trips in a row counted towards the S40 lockout."""
        return self.short_circuit.st.count

    def short_circuit_locked(self) -> bool:
        return self.short_circuit.st.locked

    @property
    def connection_impedance_mohm(self) -> float | None:
        """The last connection-impedance estimate (P83), None before the first current step."""
        return self.connection.mohm
