"""What a bench file's BMS link carries, for the plan (``harness/plan/link.py``): None for
the Seplos V2 link (the whole spec), the register map's coverage for a Modbus link (the
Seplos V3 layout). A launch file says its link's protocol in ``bms_protocol``; one that does
not is taken as Seplos V2, the simulator's default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.benchfile import BenchFile, LaunchFile, load_bench_file
from instruments.bms.coverage import LinkCoverage


def protocol_of(path: Path | str) -> str:
    bench = load_bench_file(path)
    if isinstance(bench, LaunchFile):
        return bench.bms_protocol or "seplos_v2"
    assert isinstance(bench, BenchFile)
    return bench.bms.protocol


def coverage_of(path: Path | str, spec: Any) -> LinkCoverage | None:
    """The coverage of the bench file's link; raises ``BenchFileError`` for a bad file."""
    if protocol_of(path) == "seplos_v2":
        return None
    from instruments.bms.modbus_link import LINK_NAME
    from instruments.bms.modbus_map import coverage, load_register_map

    return coverage(load_register_map(spec=spec), spec, LINK_NAME)
