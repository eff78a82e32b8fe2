"""The uncertainty budget of a case's measured value: the procedure's own contribution (its
search bracket or timing step, ``Measurement.method``), the accuracy of the instrument that
applied the stimulus (the bench file's ``accuracy`` of that instrument, function and range),
the device's reporting resolution (``BmsLink.REPORTING_RESOLUTION``), and for a delay timed
on the scope the scope's time-base accuracy.

Which instrument applies a stimulus is the rig's wiring (``Rig.apply``): the cells for a
cell, pack or difference stimulus, the supply for the port voltage and the charge current,
the load for the discharge current, the resistor module for an NTC (its ohm accuracy turned
into kelvin through the NTC's slope at the value), nothing for a SOC written over the link.
A pack is sixteen cell channels: their accuracies add up (the channels of one simulator
share their calibration, so their errors are taken as fully correlated). A difference is
two channels, taken as independent. A value with no entry in the bench file is "not given"
(``uncertainty.not_given``), never zero.
"""

from __future__ import annotations

from typing import Any

from harness.procedures import uncertainty as unc
from harness.procedures.record import Measurement

CELLS = 16
#: Stimulus -> (instrument role, function, channels summed). ``ntc:`` stimuli: resistors.
STIMULUS_SOURCES: dict[str, tuple[str, str, int]] = {
    "cell": ("cells", "voltage", 1),
    "pack": ("cells", "voltage", CELLS),
    "cell_difference": ("cells", "voltage", 2),
    "balance_difference": ("cells", "voltage", 2),
    "port": ("supply", "voltage", 1),
    "charge_current": ("supply", "current", 1),
    "discharge_current": ("load", "current", 1),
    "transient": ("load", "current", 1),
}
#: Quantities whose measured value is a count: exact, no contribution.
EXACT = ("count", "position")


def _instruments(bench: Any, role: str, cell: int = 1) -> list[tuple[str, Any]]:
    """(name, bench-file entry) of the instrument(s) of ``role`` that apply the stimulus."""
    config = getattr(bench, "config", None)
    if config is None:
        return []
    if role == "cells":
        unit = config.channels.cells.get(cell, (None, 0))[0]
        return [(unit, config.instruments[unit])] if unit in config.instruments else []
    return [(role, config.instruments[role])] if role in config.instruments else []


def instrument_accuracy(name: str, entry: Any, function: str, value: float) -> tuple[float, Any]:
    """The half-width of ``entry``'s accuracy for ``function`` at ``value`` and the range
    entry used; raises LookupError naming what is missing."""
    model = entry.idn.model if getattr(entry, "idn", None) else entry.driver
    ranges = [a for a in getattr(entry, "accuracy", []) or [] if a.function == function]
    if not ranges:
        raise LookupError(f"instruments.{name} ({model}) gives no {function} accuracy")
    x = abs(value)
    holding = [a for a in ranges if a.min - 1e-12 <= x <= a.max + 1e-12]
    if not holding:
        spans = ", ".join(f"{a.min:g}-{a.max:g}" for a in ranges)
        raise LookupError(
            f"{x:g} lies outside the {function} ranges of instruments.{name} ({model}): {spans}"
        )
    best = min(holding, key=lambda a: a.max)
    return best.of_reading * x + best.offset, best


def _contribution(source: str, half: float, entry: Any) -> unc.Contribution:
    if entry.distribution == "normal":
        return unc.Contribution(source, half, unc.NORMAL, k=entry.k, note=entry.source)
    return unc.Contribution(source, half, unc.RECTANGULAR, note=entry.source)


def _ntc(bench: Any) -> Any:
    """The NTC model the resistor module applies temperatures through."""
    ntc = getattr(getattr(bench, "resistors", None), "ntc", None)
    if ntc is None:
        from instruments.ntc import BetaNtc

        ntc = BetaNtc()
    return ntc


def stimulus_contributions(bench: Any, case: Any, value: float) -> list[unc.Contribution]:
    """The applying instrument's accuracy at ``value`` (in the measurement's unit)."""
    params = getattr(case, "params", None) or {}
    stimulus = str(params.get("stimulus") or "")
    cell = int(params.get("cell", 1) or 1)
    if not stimulus or stimulus == "soc":
        return []
    if stimulus.startswith("ntc:"):
        found = _instruments(bench, "resistors")
        source = "resistor module accuracy (NTC emulation)"
        if not found:
            return [unc.not_given(source, "the bench file names no resistor module")]
        name, entry = found[0]
        ntc = _ntc(bench)
        ohm_value = ntc.ohm_at(value)
        slope = abs(ntc.ohm_at(value + 0.05) - ntc.ohm_at(value - 0.05)) / 0.1
        try:
            half, used = instrument_accuracy(name, entry, "resistance", ohm_value)
        except LookupError as exc:
            return [unc.not_given(source, str(exc))]
        return [
            _contribution(
                f"{source}: ±{half:.4g} Ω at {ohm_value:.5g} Ω, {slope:.4g} Ω/K",
                half / slope,
                used,
            )
        ]
    if stimulus not in STIMULUS_SOURCES:
        return [unc.not_given(f"{stimulus} stimulus accuracy", "no instrument applies it")]
    role, function, channels = STIMULUS_SOURCES[stimulus]
    found = _instruments(bench, role, cell)
    source = f"{role} {function} accuracy"
    if not found:
        return [unc.not_given(source, f"the bench file names no {role} instrument")]
    name, entry = found[0]
    if channels == 1:
        levels = [value]
    elif channels == 2:
        base = float(params.get("base_v") or params.get("top_v") or 3.3)
        levels = [base, base - abs(value)]
    else:
        levels = [value / channels] * channels
    halves = []
    for level in levels:
        try:
            half, used = instrument_accuracy(name, entry, function, level)
        except LookupError as exc:
            return [unc.not_given(source, str(exc))]
        halves.append(half)
    if channels == 1:
        return [_contribution(f"{source} (instruments.{name})", halves[0], used)]
    if channels == 2:
        return [
            _contribution(f"{source}, channel at {lv:g} V (instruments.{name})", h, used)
            for lv, h in zip(levels, halves, strict=True)
        ]
    return [
        _contribution(
            f"{source}, {channels} channels at {levels[0]:.4g} V summed (instruments.{name})",
            sum(halves),
            used,
        )
    ]


def device_contributions(bench: Any, quantity: str | None) -> list[unc.Contribution]:
    """The device's reporting resolution of ``quantity`` (two readings for a difference)."""
    if quantity is None or quantity in EXACT or quantity == "time":
        return []
    table = getattr(getattr(bench, "bms", None), "REPORTING_RESOLUTION", None)
    step = None if table is None else table.get(quantity)
    if step is None:
        return []
    readings = 2 if quantity == "cell_voltage_difference" else 1
    text = f"device resolution {step:g} ({quantity.replace('_', ' ')})"
    if readings == 2:
        return [unc.resolution(f"{text}, reading {n}", step) for n in (1, 2)]
    return [unc.resolution(text, step)]


def scope_contributions(bench: Any, m: Measurement, seconds: float) -> list[unc.Contribution]:
    """The scope's time-base accuracy over the measured interval (``seconds``)."""
    found = _instruments(bench, "scope")
    source = "scope time-base accuracy"
    if not found:
        return [unc.not_given(source, "the bench file names no scope")]
    name, entry = found[0]
    try:
        half, used = instrument_accuracy(name, entry, "time", seconds)
    except LookupError as exc:
        return [unc.not_given(source, str(exc))]
    return [_contribution(f"{source} (instruments.{name})", half * m.measured / seconds, used)]


def build(bench: Any, case: Any, m: Measurement) -> unc.Budget | None:
    """The whole budget of ``m`` (None when nothing was measured)."""
    if m.measured is None:
        return None
    contributions = list(m.method)
    quantity = getattr(case, "quantity", None)
    params = getattr(case, "params", None) or {}
    if quantity == "time":
        if m.timed_on_scope:
            from bmsspec import SECONDS_PER_UNIT

            seconds = abs(m.measured) * SECONDS_PER_UNIT.get(m.unit, 1.0)
            if seconds > 0:
                contributions += scope_contributions(bench, m, seconds)
    elif quantity not in EXACT and m.tolerance != 0 and params.get("stimulus"):
        # The device acted on its reading of a stimulus the bench applied. A value read
        # back from a register, counted, or judged exactly (a state: acted / did not act,
        # tolerance 0) has neither contribution: it is exact.
        contributions += stimulus_contributions(bench, case, m.measured)
        contributions += device_contributions(bench, quantity)
    return unc.Budget(tuple(contributions))


def complete(bench: Any, case: Any, m: Measurement, rule: str) -> None:
    """Set ``m``'s budget, expanded uncertainty and decision rule."""
    m.rule = rule
    budget = build(bench, case, m)
    if budget is not None:
        m.set_budget(budget)
