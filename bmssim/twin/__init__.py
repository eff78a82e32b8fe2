"""The BMS twin: the Seplos V2 16S board's behaviour (docs/ARCHITECTURE.md "Twin contract",
docs/BEHAVIOUR.md). ``from bmssim.twin import BmsTwin, TwinConfig, ParameterBlock``."""

from bmssim.twin.core import BmsTwin, HistoryEntry
from bmssim.twin.history import decode_record, encode_record
from bmssim.twin.ntc import ohms_at, temperature_c
from bmssim.twin.types import (
    DeviceInfo,
    Measurements,
    ParameterBlock,
    SenseInputs,
    Status,
    TwinConfig,
    TwinOutputs,
)

__all__ = [
    "BmsTwin",
    "DeviceInfo",
    "HistoryEntry",
    "Measurements",
    "ParameterBlock",
    "SenseInputs",
    "Status",
    "TwinConfig",
    "TwinOutputs",
    "decode_record",
    "encode_record",
    "ohms_at",
    "temperature_c",
]
