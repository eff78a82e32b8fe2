"""Preflight: is this bench fit to run the plan, before the first stimulus?

``bmshil check`` runs all of it and prints a table; ``bmshil run`` runs the refusing part
(calibration past due, the safe state) when it opens the bench. After a bench error,
``unresponsive`` tells a broken case from a lost bench: if the simulator, an instrument or
the BMS link no longer answers, the run stops instead of going on case after case.

Generic over benches: it uses only the bench interfaces, so a real bench and the simulated
one are checked the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

#: What the safe state must read back as (DOMAIN.md: sources off, cells nominal, 25 °C).
SAFE_CELL_V = 3.300
SAFE_CELL_TOLERANCE_V = 0.010
SAFE_CURRENT_A = 0.5
NTC_25C_OHM = 10_000.0
NTC_TOLERANCE = 0.05


@dataclass
class Line:
    """One row of the preflight table."""

    what: str
    ok: bool
    seen: str


def overdue_instruments(bench: Any, today: dt.date | None = None) -> list[dict[str, str]]:
    """Instruments whose calibration due date lies before ``today``."""
    today = today or dt.date.today()
    out = []
    for name, ident in sorted(bench.identities.items()):
        due = ident.get("calibration_due")
        if due and dt.date.fromisoformat(str(due)) < today:
            out.append({"instrument": name, "calibration_due": str(due)})
    return out


def unresponsive(bench: Any) -> tuple[str, str] | None:
    """``(what, detail)`` of the first part of the bench that no longer answers, else None.

    Asked after a case hit a bench error: the clock (the simulator's control channel on a
    simulated bench), every instrument (``*IDN?``), then the BMS link (device info)."""
    try:
        bench.clock.now()
    except Exception as exc:  # noqa: BLE001 - any failure means the clock is gone
        return "bench clock", str(exc)
    for driver in getattr(bench, "drivers", []):
        try:
            driver.query(driver.IDN_QUERY)
        except Exception as exc:  # noqa: BLE001
            return f"instrument {driver.name}", str(exc)
    try:
        bench.bms.device_info()
    except Exception as exc:  # noqa: BLE001
        return f"BMS link on {getattr(bench.bms, 'port_name', 'its port')}", str(exc)
    return None


def check_bench(bench: Any, allow_overdue: bool = False) -> list[Line]:
    """Every preflight check on an open bench, each with what was seen."""
    lines: list[Line] = []
    for name, ident in sorted(bench.identities.items()):
        lines.append(
            Line(
                f"{name} identity",
                True,
                f"{ident.get('manufacturer')} {ident.get('model')} "
                f"(serial {ident.get('serial') or '-'}, firmware {ident.get('firmware') or '-'}) "
                f"at {ident.get('address')}",
            )
        )
    overdue = {o["instrument"] for o in overdue_instruments(bench)}
    for name, ident in sorted(bench.identities.items()):
        due = ident.get("calibration_due")
        cert = ident.get("calibration_certificate")
        if not due:
            lines.append(Line(f"{name} calibration", True, "no due date given in the bench file"))
        elif name in overdue:
            accepted = " (accepted: --allow-overdue)" if allow_overdue else ""
            lines.append(Line(f"{name} calibration", allow_overdue, f"past due {due}{accepted}"))
        else:
            lines.append(
                Line(
                    f"{name} calibration",
                    True,
                    f"due {due}" + (f", certificate {cert}" if cert else ""),
                )
            )
    try:
        dev = bench.bms.device_info()
        lines.append(
            Line(
                "BMS link",
                True,
                f"{dev.name.strip()} firmware {dev.version} ({dev.manufacturer.strip()})",
            )
        )
    except Exception as exc:  # noqa: BLE001 - reported as a failed line
        lines.append(Line("BMS link", False, f"no device info: {exc}"))
    try:
        bench.safe_state()
        lines.extend(read_back_safe_state(bench))
    except Exception as exc:  # noqa: BLE001
        lines.append(Line("safe state", False, f"could not be applied: {exc}"))
    return lines


def read_back_safe_state(bench: Any) -> list[Line]:
    """The safe state as the instruments read it back."""
    lines = []
    supply_a = bench.supply.measure_current_a()
    lines.append(
        Line(
            "safe state: supply", abs(supply_a) < SAFE_CURRENT_A, f"output current {supply_a:.3f} A"
        )
    )
    load_a = bench.load.measure_current_a()
    lines.append(
        Line("safe state: load", abs(load_a) < SAFE_CURRENT_A, f"input current {load_a:.3f} A")
    )
    cells = [bench.cells.read_cell_v(c) for c in range(1, 17)]
    worst = max(abs(v - SAFE_CELL_V) for v in cells)
    lines.append(
        Line(
            "safe state: cells",
            worst <= SAFE_CELL_TOLERANCE_V,
            f"16 cells {min(cells):.3f}..{max(cells):.3f} V",
        )
    )
    ohms = {ch: bench.resistors.read_ohm(ch) for ch in bench.resistors.channels}
    bad = {ch: o for ch, o in ohms.items() if abs(o / NTC_25C_OHM - 1) > NTC_TOLERANCE}
    lines.append(
        Line(
            "safe state: NTCs",
            not bad,
            f"{len(ohms)} channels at 25 °C ({min(ohms.values()):.0f}..{max(ohms.values()):.0f} Ω)"
            if not bad
            else f"off 25 °C: {bad}",
        )
    )
    return lines


def plan_on_bench(cases: list[Any]) -> tuple[list[Any], list[Any]]:
    """The cases this bench can run, and those it cannot (each with its reason)."""
    runnable = [c for c in cases if getattr(c, "testable", True)]
    not_runnable = [c for c in cases if not getattr(c, "testable", True)]
    return runnable, not_runnable


def run_check(bench_file: Any, suite: str | None, allow_overdue: bool, console: Any) -> int:
    """``bmshil check``: open the bench, check it, show what the plan can run. Exit code."""
    from rich.table import Table

    from bmsspec import SpecError, load_spec
    from harness.bench import Bench
    from harness.benchfile import BenchFileError, bench_capabilities
    from harness.plan import build_plan

    try:
        spec = load_spec()
        caps = bench_capabilities(bench_file)
    except (BenchFileError, SpecError) as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True, highlight=False)
        return 2
    lines: list[Line] = []
    try:
        with Bench.open(bench_file) as bench:
            lines = check_bench(bench, allow_overdue)
    except BenchFileError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True, highlight=False)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bench that cannot open fails the check
        lines.append(Line("bench opens", False, str(exc)))
    table = Table(title=f"preflight: {bench_file}", show_lines=False)
    table.add_column("check")
    table.add_column("ok")
    table.add_column("seen", overflow="fold")
    for line in lines:
        table.add_row(line.what, "[green]yes[/]" if line.ok else "[red]NO[/]", line.seen)
    console.print(table)
    from harness.link_coverage import coverage_of
    from harness.reach import reach_of

    link = coverage_of(bench_file, spec)
    cases = build_plan(spec, caps, suite=suite, reach=reach_of(bench_file), link=link)
    runnable, not_runnable = plan_on_bench(cases)
    console.print(
        f"plan{' (' + suite + ')' if suite else ''}: {len(runnable)} of {len(cases)} cases "
        f"runnable on this bench, {len(not_runnable)} not:"
    )
    reasons: dict[str, list[str]] = {}
    for case in not_runnable:
        reasons.setdefault(case.reason or "not testable", []).append(case.id)
    for reason, ids in sorted(reasons.items()):
        shown = ", ".join(ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")
        console.print(f"  {len(ids):>3} {reason}: {shown}", soft_wrap=True, highlight=False)
    failed = [line for line in lines if not line.ok]
    if failed:
        console.print(f"[red]preflight failed[/]: {'; '.join(line.what for line in failed)}")
        return 1
    console.print("[green]preflight passed[/]")
    return 0


__all__ = [
    "Line",
    "check_bench",
    "overdue_instruments",
    "plan_on_bench",
    "read_back_safe_state",
    "run_check",
    "unresponsive",
]
