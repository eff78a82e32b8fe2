"""What a case needs of the BMS link, against what the bench's link carries
(``instruments.bms.coverage.LinkCoverage``): a case that needs a flag, a parameter, a switch,
a telemetry value or an operation the link does not carry, or writes a value off the step
the link keeps a row in, is untestable on that bench, with the reason.

The Seplos V2 link carries the whole spec (coverage None: nothing is judged). The Modbus
link carries what the Seplos V3 layout shares with the spec (``test_plans/
modbus_registers.yaml``). Nothing here knows a row by number: the case's own fields, its
recipe's params and the row's ``switch`` say what it needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from bmsspec import Spec
from instruments.bms.coverage import LinkCoverage

#: Link operations a procedure uses beyond telemetry, status and the parameter block.
LINK_OPERATIONS: dict[str, frozenset[str]] = {
    "delay.history_interval": frozenset({"history"}),
    "switch.history": frozenset({"history"}),
    "delay.soft_start": frozenset({"control"}),
}
#: Telemetry field each reported stimulus is read from (``harness/procedures/report.py``).
REPORTED_FIELD = {
    "cell": "cell_v",
    "pack": "pack_v",
    "charge_current": "current_a",
    "discharge_current": "current_a",
    "soc": "soc_pct",
    "ntc:ambient": "ambient_c",
    "ntc:power": "power_c",
}
#: What ``rig.observe`` reads for these "flags" instead of a status flag.
_OBSERVED_OTHERWISE = frozenset({"balancing", "heater"})
_OPERATION_TEXT = {"history": "history records (0x4B)", "control": "0x45 control"}


def _flags_needed(case: Any) -> list[str]:
    """The flags a case judges by: its own and the one it triggers with. Its couplings (and
    a quiet case's ``expect``) are flags it may see beside its own, not ones it needs: a
    link that does not report one cannot show it, which the whole-state check allows."""
    p = case.params or {}
    names = [case.flag] + [p.get(key) for key in ("flag", "trigger_flag")]
    return [n for n in dict.fromkeys(names) if isinstance(n, str) and n not in _OBSERVED_OTHERWISE]


def _fields_needed(case: Any) -> list[str]:
    fields = []
    for setting in (case.params or {}).get("settings") or []:
        for ch in setting:
            stim = str(ch.get("stimulus", ""))
            cell_ntc = stim.startswith("ntc:cell")
            fields.append("cell_temp_c" if cell_ntc else REPORTED_FIELD.get(stim))
    return [f for f in dict.fromkeys(fields) if f]


def _off_grid(value: float, step: float) -> bool:
    counts = value / step
    return not math.isclose(counts, round(counts), abs_tol=1e-6)


def link_reason(spec: Spec, case: Any, coverage: LinkCoverage) -> str | None:
    """Why ``case`` cannot run over the link ``coverage`` describes, or None."""
    link = coverage.link
    flags = [f for f in _flags_needed(case) if f not in coverage.flags]
    if flags:
        return f"{link} does not report {', '.join(flags)}"
    rows: list[int] = []
    switches: list[int] = []
    if case.item.startswith("P"):
        rows.append(case.number)
        governing = spec.param(case.number).switch
        if governing is not None:
            switches.append(governing)
    elif case.item.startswith("S"):
        switches.append(case.number)
    rows += [int(n) for n in case.overrides or {}]
    switches += [int(n) for n in case.switch_overrides or {}]
    lacking = [f"P{n}" for n in dict.fromkeys(rows) if n not in coverage.parameters]
    lacking += [f"S{n}" for n in dict.fromkeys(switches) if n not in coverage.switches]
    if lacking:
        return f"{link} neither sets nor reads {', '.join(lacking)}"
    writes = dict(case.overrides or {})
    if case.item.startswith("P") and isinstance((case.params or {}).get("value"), (int, float)):
        writes[case.number] = float(case.params["value"])
    for n, v in writes.items():
        step = coverage.parameters[int(n)]
        if _off_grid(float(v), step):
            unit = spec.param(int(n)).unit
            return f"{link} keeps P{n} in steps of {step:g} {unit}; the case writes {v:g} {unit}"
    fields = [f for f in _fields_needed(case) if f not in coverage.telemetry]
    if fields:
        return f"{link} does not report the telemetry {', '.join(fields)}"
    ops = sorted(LINK_OPERATIONS.get(case.procedure, frozenset()) - coverage.operations)
    if ops:
        return f"{link} offers no {', '.join(_OPERATION_TEXT.get(o, o) for o in ops)}"
    return None


def apply(spec: Spec, cases: Iterable[Any], coverage: LinkCoverage | None) -> None:
    """Mark every testable case the link cannot carry untestable, with the reason."""
    if coverage is None:
        return
    for case in cases:
        if case.testable:
            reason = link_reason(spec, case, coverage)
            if reason is not None:
                case.testable, case.reason, case.est_bench_s = False, reason, 0.0
