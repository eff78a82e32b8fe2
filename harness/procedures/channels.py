"""Every channel: a trip found on one channel, proven on each of the others.

A function on a per-channel quantity (the highest of 16 cells, the coldest of four cell NTCs)
must see every channel: a scan that skips cell 16 passes a search that only drives cell 1.
After the threshold search located the trip on the reference channel, each other channel the
plan lists (``params.channels``) gets a go/no-go pair: ``channel_margin`` short of the
measured trip (must not act, held for the dwell) and ``channel_margin`` beyond it (must act:
the flag reported and, for a protection, its FET open; an alarm must leave the operating
current flowing). Between channels the device is reset as the search resets it (the channel
back to the quiet value until the function clears, then held there one dwell).

Each pair is two checks named after the channel ("cell 16 quiet just short", "cell 16
acts"), each with its ``channel``; the measurement's ``channel`` names the reference and the
channels swept. Nothing here knows a row: stimulus, flag, FETs, condition, dwell, the channel
list, how a channel is named and driven and the margin are the plan's
(``harness/plan/thresholds.py`` ``every_channel``, from the stimulus's ``every_channel``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from harness.procedures.record import Measurement
from harness.procedures.rig import STOPPED_A, Observation, Rig


def channel_range(label: str, channels: list[int]) -> str:
    """``("cell", [2, ..., 16])`` -> "cells 2-16"; gaps listed: "cell NTCs 2, 4"."""
    if not channels:
        return ""
    if len(channels) == 1:
        return f"{label} {channels[0]}"
    ordered = sorted(channels)
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{label}s {ordered[0]}-{ordered[-1]}"
    return f"{label}s " + ", ".join(str(n) for n in ordered)


def _problems(obs: Observation, setup: Any) -> list[str]:
    """What is missing from "the function acted" at this observation (empty: it acted)."""
    out: list[str] = []
    if not obs.flag:
        out.append(f"{setup.flag} not reported")
    if setup.action in ("charge", "both") and obs.charge_fet:
        out.append("charge FET still closed")
    if setup.action in ("discharge", "both") and obs.discharge_fet:
        out.append("discharge FET still closed")
    if setup.action is None and setup.condition == "charging" and obs.supply_a < STOPPED_A:
        out.append(f"charge current stopped ({obs.supply_a:.2f} A) by a function without a FET")
    if setup.action is None and setup.condition == "discharging" and obs.load_a < STOPPED_A:
        out.append(f"discharge current stopped ({obs.load_a:.2f} A) by a function without a FET")
    return out


def prove(
    rig: Rig,
    case: Any,
    setup: Any,
    m: Measurement,
    acted: Callable[[Observation, Any], bool],
    reset: Callable[[Rig, Any], Observation],
    stuck: type[Exception],
) -> None:
    """The go/no-go pair on every channel the plan lists, after a successful search on the
    reference channel (``m.measured``, in the search's magnitude). ``setup`` is the search's
    ``ThresholdSetup``; ``acted``/``reset`` are the search's, ``stuck`` the exception its reset
    raises when the function does not clear (recorded as the channel's "recovers" check).
    The probes the pairs and their resets take are counted in ``m.channel_probes``."""
    params = case.params or {}
    if params.get("channel") is not None:
        m.channel = str(params["channel"])
    if not params.get("channels") or m.measured is None:
        return
    before = rig.probes
    try:
        _pairs(rig, params, setup, m, acted, reset, stuck)
    finally:
        m.channel_probes = rig.probes - before


def _pairs(
    rig: Rig,
    params: dict[str, Any],
    setup: Any,
    m: Measurement,
    acted: Callable[[Observation, Any], bool],
    reset: Callable[[Rig, Any], Observation],
    stuck: type[Exception],
) -> None:
    reference = str(params.get("channel"))
    label = rig.setup.text("channel_label")
    margin = rig.setup.num("channel_margin")
    template = params.get("channel_stimulus")
    high = setup.direction == "high"
    trip = float(m.measured or 0.0)
    short = round(trip - margin if high else trip + margin, 6)
    beyond = round(trip + margin if high else trip - margin, 6)
    # Never past the search's own bounds: its far value stays clear of a neighbouring row
    # (an alarm's search stops short of the protection on the same quantity).
    bounded = ""
    if (beyond > setup.far) if high else (beyond < setup.far):
        beyond, bounded = setup.far, ", at the search bound"
    if (short < setup.safe) if high else (short > setup.safe):
        short = setup.safe
    unit = f" {m.unit}" if m.unit else ""
    sign = setup.sign
    minus, plus = ("-", "+") if high else ("+", "-")

    def at(value: float) -> str:
        return f"{value * sign:g}{unit}"

    def basis(pm: str) -> str:
        text = f"measured trip on {reference} {at(trip)} {pm} margin {margin:g}{unit}"
        return text + (bounded if pm == plus else "")

    driven: list[int] = []
    try:
        reset(rig, setup)
    except stuck as exc:
        m.check(
            f"{reference} recovers before the channels",
            False,
            f"{reference}: {getattr(exc, 'seen', exc)}",
            f"{reference}: {exc}",
            channel=reference,
        )
        return
    for n in params["channels"]:
        name = f"{label} {n}"
        chan = dataclasses.replace(
            setup,
            stimulus=template.format(n=n) if template else setup.stimulus,
            cell=setup.cell if template else int(n),
        )
        driven.append(int(n))
        m.channel = f"{reference} (search), {channel_range(label, driven)} (go/no-go)"
        quiet = rig.probe(chan.stimulus, short, chan.flag, chan.dwell_s, cell=chan.cell)
        calm = not acted(quiet, chan)
        m.check(
            f"{name} quiet just short",
            calm,
            f"{name} at {at(short)} ({basis(minus)}), held {chan.dwell_s:g} s: "
            + quiet.describe(chan.flag),
            f"{name}: acted at {at(short)} ({basis(minus)}), a trip earlier than "
            f"{reference}'s: {quiet.describe(chan.flag)}",
            channel=name,
        )
        try:
            if not calm:
                reset(rig, chan)
            act = rig.probe(chan.stimulus, beyond, chan.flag, chan.dwell_s, cell=chan.cell)
            missing = _problems(act, chan)
            m.check(
                f"{name} acts",
                not missing,
                f"{name} at {at(beyond)} ({basis(plus)}): " + act.describe(chan.flag),
                f"{name}: {'; '.join(missing)} at {at(beyond)} ({basis(plus)}); saw "
                + act.describe(chan.flag),
                channel=name,
            )
            reset(rig, chan)
        except stuck as exc:
            m.check(
                f"{name} recovers",
                False,
                f"{name}: {getattr(exc, 'seen', exc)}",
                f"{name}: {exc}",
                channel=name,
            )
            return
    note = (
        f"go/no-go on {channel_range(label, driven)} at {margin:g}{unit} short of / beyond "
        f"the trip measured on {reference}"
    )
    m.note = f"{m.note}; {note}" if m.note else note
