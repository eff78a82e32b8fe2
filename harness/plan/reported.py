"""Report cases: what the BMS reports against what the bench applied (``reported.yaml``).

One case per entry of ``test_plans/reported.yaml`` (``bmsspec/reported.py``): its settings
are applied one after the other, and each channel's reported value is compared with the
value the bench applied, within the channel quantity's stated accuracy (the band of its
``tolerances.yaml`` row at the applied level, computed here: the procedure computes none).
Every channel is a check of its own, named after it, and the verdict; the case's measured
value is the deviation of the channel that came nearest to (or went furthest past) its
accuracy, named in the note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bmsspec import Spec
from bmsspec.reported import CELLS, REPORTED_AS, ReportRecipe, ReportSetting
from harness.plan.common import SETUP_S, Case, cid, grid, missing, value

#: Bench seconds to read one setting back: the telemetry, the status, the bench's own
#: read-backs (16 cell channels, six resistor channels, supply and load).
READ_S = 2.0
#: Bench seconds for a current to start flowing and settle (soft start included).
SETTLE_S = 3.0
#: How a channel is named in its check and in the record.
LABELS = {
    "ntc:cell1": "cell NTC 1",
    "ntc:cell2": "cell NTC 2",
    "ntc:cell3": "cell NTC 3",
    "ntc:cell4": "cell NTC 4",
    "ntc:ambient": "ambient NTC",
    "ntc:power": "power NTC",
    "charge_current": "current charging",
    "discharge_current": "current discharging",
    "pack": "pack voltage",
    "soc": "SOC",
}
#: The operating condition a current stimulus needs (the others are applied in standby).
CONDITIONS = {"charge_current": "charging", "discharge_current": "discharging"}


def report_cases(spec: Spec, caps: Mapping[str, bool]) -> list[Case]:
    return [report_case(spec, r, caps) for r in spec.reported]


def label(stimulus: str, cell: int | None = None) -> str:
    return f"cell {cell}" if stimulus == "cell" else LABELS.get(stimulus, stimulus)


def _channels(spec: Spec, setting: ReportSetting) -> list[dict[str, Any]]:
    """The setting's channels, each with its level computed and its accuracy at it."""
    if setting.cells is not None:
        seq = setting.cells
        first = float(value(spec, seq.first))
        raw = [
            ("cell", k, first + ((k - 1 + seq.rotate) % CELLS) * seq.step)
            for k in range(1, CELLS + 1)
        ]
    else:
        raw = [(c.stimulus, c.cell, float(value(spec, c.level))) for c in setting.channels]
    out = []
    for stimulus, cell, level in raw:
        quantity = REPORTED_AS[stimulus]
        accuracy = spec.accuracy(quantity)
        level = grid(level, 0.001)
        out.append(
            {
                "stimulus": stimulus,
                **({"cell": cell} if cell is not None else {}),
                "label": label(stimulus, cell),
                "quantity": quantity,
                "level": level,
                "accuracy": round(accuracy.band(level), 6),
                "condition": CONDITIONS.get(stimulus, "standby"),
            }
        )
    return out


def _where(settings: list[list[dict[str, Any]]]) -> str:
    """The channels the case drives, for the record: "cells 1-16", "current charging, ..."."""
    labels: list[str] = []
    for channels in settings:
        for ch in channels:
            name = "cells 1-16" if ch["stimulus"] == "cell" else ch["label"]
            if name not in labels:
                labels.append(name)
    return ", ".join(labels)


def report_case(spec: Spec, r: ReportRecipe, caps: Mapping[str, bool]) -> Case:
    row = spec.item(r.item)
    settings = [_channels(spec, s) for s in r.settings]
    channels = [ch for s in settings for ch in s]
    unit = spec.accuracy(channels[0]["quantity"]).unit
    currents = sum(1 for s in settings if any(ch["condition"] != "standby" for ch in s))
    est = SETUP_S + len(settings) * (r.dwell_s + READ_S) + currents * SETTLE_S
    reason = missing(r.needs, caps)
    return Case(
        id=cid(row, f"report-{r.name}"),
        item=row.item,
        number=row.number,
        kind="report",
        category="reported values",
        quantity=r.name.replace("-", "_"),
        condition="standby" if not currents else None,
        # The verdict is the channels' checks, each at its own accuracy; the measured value
        # (the largest deviation) has no one tolerance of its own.
        expected=None,
        tolerance=None,
        unit=unit,
        procedure="report",
        params={
            "settings": settings,
            "dwell_s": r.dwell_s,
            "channel": _where(settings),
            "filed": r.filed,
            # every value applied, for the plan's reach check
            "stimuli": [{"stimulus": ch["stimulus"], "level": ch["level"]} for ch in channels],
        },
        suites=list(r.suites),
        est_bench_s=0.0 if reason else round(est, 1),
        testable=reason is None,
        reason=reason,
    )
