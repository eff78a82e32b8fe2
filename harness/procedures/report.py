"""What the BMS reports against what the bench applied, channel by channel.

The case's ``settings`` (``harness/plan/reported.py``) are applied one after the other; each
is held ``dwell_s`` (past the device's sampling), then the telemetry (0x42) is read with
the status and the bench's own read-backs. Every channel is one check named after it: the
value reported, the value applied and the stated accuracy the plan gives
(``cell 7 reported 3.330 V, applied 3.300 V, accuracy ±0.010 V``). "Applied" is what the
bench measured, not what it was asked for: the cell simulator's read-back, the resistor
module's resistance through the NTC model, the current at the terminals (supply and load
read-backs, + charging), the remaining capacity written over the full capacity in force.

The whole state is judged at each reading too: the levels are chosen where nothing acts, so
any raised flag, an open FET or a current that disagrees with the FETs is a failure.
"""

from __future__ import annotations

import math
from typing import Any

from harness.procedures import expect
from harness.procedures.record import BenchFault, Measurement
from harness.procedures.rig import CELLS, Observation, Rig

#: Slack for a float that sits exactly at the accuracy.
_EPS = 1e-9


def _digits(accuracy: float) -> int:
    """Decimals that show a deviation of ``accuracy``: 0.010 V -> 3, 2 °C -> 1."""
    if accuracy <= 0:
        return 3
    return max(0, -math.floor(math.log10(accuracy))) + 1


def _apply(rig: Rig, channels: list[dict[str, Any]]) -> tuple[str, dict[str, float]]:
    """Apply one setting; returns its operating condition and the SOC written (by stimulus)."""
    written: dict[str, float] = {}
    cells = [ch for ch in channels if ch["stimulus"] == "cell"]
    if cells:
        volts = list(rig.cells_v)
        for ch in cells:
            volts[int(ch["cell"]) - 1] = float(ch["level"])
        rig.set_cells(volts)
    condition = "standby"
    for ch in channels:
        stimulus, level = str(ch["stimulus"]), float(ch["level"])
        if stimulus == "cell":
            continue
        if stimulus == "soc":
            if rig.rated_ah is None:
                raise BenchFault("a SOC report needs the rated capacity in force (params.nominal)")
            ah = round(rig.rated_ah * level / 100.0, 2)
            rig.stimulus_value = level
            rig.bench.bms.set_remaining_capacity(ah)
            written["soc"] = ah / rig.rated_ah * 100.0
        elif ch["condition"] != "standby":
            condition = str(ch["condition"])
            rig.apply(stimulus, abs(level))
            rig.condition(condition, current_a=abs(level))
        else:
            rig.apply(stimulus, level)
    if condition != "standby":
        rig.settle()
    return condition, written


def _applied(rig: Rig, ch: dict[str, Any], obs: Observation, written: dict[str, float]) -> float:
    """What the bench applied on the channel, from its own read-back."""
    stimulus = str(ch["stimulus"])
    if stimulus == "cell":
        return float(rig.bench.cells.read_cell_v(int(ch["cell"])))
    if stimulus == "pack":
        return sum(float(rig.bench.cells.read_cell_v(k)) for k in range(1, CELLS + 1))
    if stimulus.startswith("ntc:"):
        resistors = rig.bench.resistors
        return float(resistors.ntc.temperature_c(resistors.read_ohm(stimulus.split(":", 1)[1])))
    if stimulus in ("charge_current", "discharge_current"):
        return obs.terminal_a
    if stimulus == "soc":
        return written["soc"]
    raise BenchFault(f"{rig.setup.case_id}: stimulus {stimulus!r} has no read-back")


def _reported(ch: dict[str, Any], tele: Any) -> float | None:
    """What the BMS reports for the channel (None: the telemetry does not carry it)."""
    stimulus = str(ch["stimulus"])
    if stimulus == "cell":
        k = int(ch["cell"])
        return float(tele.cell_v[k - 1]) if k <= len(tele.cell_v) else None
    if stimulus == "pack":
        return float(tele.pack_v)
    if stimulus.startswith("ntc:"):
        name = stimulus.split(":", 1)[1]
        if name == "ambient":
            return float(tele.ambient_c)
        if name == "power":
            return float(tele.power_c)
        k = int(name.removeprefix("cell"))
        return float(tele.cell_temp_c[k - 1]) if k <= len(tele.cell_temp_c) else None
    if stimulus in ("charge_current", "discharge_current"):
        return float(tele.current_a)
    if stimulus == "soc":
        return float(tele.soc_pct)
    return None


def run(rig: Rig, case: Any, m: Measurement) -> None:
    """Each setting applied and read back; one check per channel (at the accuracy the plan
    gives it), the whole state at each reading. The measured value is the deviation
    (reported - applied) of the channel that used the largest share of its accuracy; the
    note names that channel and its accuracy."""
    settings = rig.setup.params.get("settings")
    if not isinstance(settings, list) or not settings:
        raise BenchFault(f"{rig.setup.case_id}: the plan gives no settings (recipe reported.yaml)")
    dwell = rig.setup.num("dwell_s")
    unit = m.unit
    worst: tuple[float, float, float, str] | None = None
    watches: dict[str, expect.StateWatch] = {}
    for i, channels in enumerate(settings, start=1):
        which = f" (setting {i})" if len(settings) > 1 else ""
        with rig.rec.step(f"setting {i}: " + ", ".join(_level_text(ch, unit) for ch in channels)):
            condition, written = _apply(rig, channels)
            rig.wait(dwell)
            tele = rig.bench.bms.telemetry()
            obs = rig.observe(None)
        watch = watches.setdefault(
            condition,
            expect.StateWatch(expect.Expectation(flag=None, action=None, condition=condition)),
        )
        watch.see(obs, acted=False)
        for ch in channels:
            name = str(ch["label"])
            accuracy = float(ch["accuracy"])
            reported = _reported(ch, tele)
            applied = _applied(rig, ch, obs, written)
            d = _digits(accuracy)
            if reported is None:
                m.check(
                    f"reported{which}",
                    False,
                    f"{name} not in the telemetry (applied {applied:.{d}f} {unit})",
                    channel=name,
                )
                continue
            dev = reported - applied
            text = (
                f"{name} reported {reported:.{d}f} {unit}, applied {applied:.{d}f} {unit}, "
                f"accuracy ±{accuracy:.{d}f} {unit}"
            )
            m.check(f"reported{which}", abs(dev) <= accuracy + _EPS, text, text, name)
            share = abs(dev) / accuracy if accuracy > 0 else math.inf
            if worst is None or share > worst[0]:
                worst = (share, dev, accuracy, name)
        if condition != "standby":
            rig.condition("standby")
    for watch in watches.values():
        watch.report(m)
    if worst is not None:
        _, dev, accuracy, name = worst
        d = _digits(accuracy)
        m.measured = round(dev, d + 2)
        m.note = (
            f"largest deviation: {name}, {dev:+.{d}f} {unit} of ±{accuracy:.{d}f} {unit}; "
            f"filed under {case.item}: {rig.setup.params.get('filed', '')}"
        )


def _level_text(ch: dict[str, Any], unit: str) -> str:
    return f"{ch['label']} {float(ch['level']):g} {unit}"
