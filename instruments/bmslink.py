"""``BmsLink``: everything a procedure may ask of the BMS, whatever the wire."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import IntEnum
from typing import ClassVar

from instruments.bms.types import DeviceInfo, HistoryRecord, ParameterBlock, Status, Telemetry


class ControlItem(IntEnum):
    """0x45 control items (protocol §9)."""

    DISCHARGE_FET = 0x00
    CHARGE_FET = 0x01
    CURRENT_LIMIT = 0x02
    HEATER = 0x03
    SHUTDOWN = 0x04
    FACTORY_RESET = 0x05


class ControlAction(IntEnum):
    """0x45 actions: on/enable, off/disable, and the one-shot code of items 4 and 5."""

    ON = 0x10
    OFF = 0x1F
    ONE_SHOT = 0x00


class BmsLink(ABC):
    """The BMS as procedures see it. The device only accepts whole-block parameter writes;
    remaining capacity is the single value that may be written alone (DOMAIN.md)."""

    #: The step in which the device reports each quantity (Seplos V2 0x42, protocols/
    #: seplos-v2.md section 5: cells 1 mV, temperatures 0.1 K, current 10 mA, pack and port
    #: 10 mV, capacities 10 mAh, SOC 0.1 %; the Modbus map carries the same scales). The
    #: device acts on readings known to this step: the uncertainty budget's "device
    #: resolution" (``harness/procedures/budget.py``).
    REPORTING_RESOLUTION: ClassVar[Mapping[str, float]] = {
        "cell_voltage": 0.001,
        "cell_voltage_difference": 0.001,
        "pack_voltage": 0.01,
        "port_voltage": 0.01,
        "cell_temperature": 0.1,
        "ambient_temperature": 0.1,
        "power_temperature": 0.1,
        "charge_current": 0.01,
        "discharge_current": 0.01,
        "soc": 0.1,
        "capacity": 0.01,
    }

    @abstractmethod
    def telemetry(self) -> Telemetry:
        """Cell voltages, temperatures, current, capacities (0x42)."""

    @abstractmethod
    def status(self) -> Status:
        """Alarm/protection flags, FETs, balancing, system state (0x44)."""

    @abstractmethod
    def protocol_version(self) -> str:
        """Protocol version the device speaks, e.g. "2.0" (0x4F)."""

    @abstractmethod
    def device_info(self) -> DeviceInfo:
        """Device name, software version and manufacturer (0x51)."""

    @abstractmethod
    def read_parameters(self) -> ParameterBlock:
        """The whole parameter block (0x47)."""

    @abstractmethod
    def write_block(self, block: ParameterBlock) -> None:
        """Write the whole block as given (0xA1), without verification."""

    def write_parameters(
        self,
        values: Mapping[int, float] | None = None,
        switches: Mapping[int, bool] | None = None,
        model_name: str | None = None,
    ) -> ParameterBlock:
        """Read-modify-write of the whole block, then re-read to verify.

        Returns the block read back. Raises ``BmsLinkError`` when the read-back differs from
        what was written (the write was accepted but not applied).
        """
        from instruments.errors import BmsLinkError

        block = self.read_parameters()
        wanted = block.copy()
        for number, value in (values or {}).items():
            if number not in wanted.values:
                raise KeyError(f"no parameter P{number} in the block")
            wanted.values[number] = float(value)
        for number, on in (switches or {}).items():
            if number not in wanted.switches:
                raise KeyError(f"no switch S{number} in the block")
            wanted.switches[number] = bool(on)
        if model_name is not None:
            wanted.model_name = model_name
        self.write_block(wanted)
        back = self.read_parameters()
        wrong = self._differences(wanted, back, values or {}, switches or {})
        if wrong:
            raise BmsLinkError(f"parameter write not applied: {'; '.join(wrong)}")
        return back

    def _differences(
        self,
        wanted: ParameterBlock,
        back: ParameterBlock,
        values: Mapping[int, float],
        switches: Mapping[int, bool],
    ) -> list[str]:
        """What the read-back contradicts among the items the caller asked to change."""
        wrong = []
        for number in values:
            got, want = back.values.get(number), wanted.values[number]
            if got is None or abs(got - want) > self.resolution(number) / 2 + 1e-9:
                wrong.append(f"P{number} wrote {want} read {got}")
        for number in switches:
            if back.switches.get(number) != wanted.switches[number]:
                wrong.append(
                    f"S{number} wrote {wanted.switches[number]} read {back.switches.get(number)}"
                )
        return wrong

    def resolution(self, number: int) -> float:
        """Smallest step of parameter ``number`` on the wire (read-back tolerance)."""
        return 0.0

    @abstractmethod
    def set_remaining_capacity(self, ah: float) -> None:
        """The one single-value write: remaining capacity (0x49 index 0x3B)."""

    def write_remaining_capacity(self, ah: float) -> None:
        """Alias of ``set_remaining_capacity`` (the name the procedures use)."""
        self.set_remaining_capacity(ah)

    @abstractmethod
    def control(self, item: ControlItem | int, action: ControlAction | int) -> None:
        """Switch a FET, the heater, shut down or factory-reset (0x45)."""

    @abstractmethod
    def history_record(self, index: int = 0) -> HistoryRecord | None:
        """One history record (0x4B); None when the device has none."""

    @abstractmethod
    def close(self) -> None:
        """Release the port."""
