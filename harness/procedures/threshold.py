"""Threshold procedure: find a trip point, or a recovery point, by bisection.

A naive search ramps the stimulus in resolution steps from the nominal value and dwells at
each step: 350 probes for a cell from 3.300 V to 3.650 V at 1 mV. Here the search brackets
the threshold between a value that does not act and one that does, then halves the bracket,
resetting the device between probes when a probe acted. Each probe still dwells past the
confirmation time, so the result is the static threshold, and the cost is
``log2(range / resolution)`` probes plus resets: tens, not hundreds.

The trip value reported is the lowest (high side) or highest (low side) value that acted;
its uncertainty is the final bracket width. The verdict rests on two observations at that
probe (DOMAIN.md): the flag the BMS reports, and the current at the terminals: a protection
must stop it, an alarm must not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.procedures import channels, stability
from harness.procedures.expect import Expectation, StateWatch
from harness.procedures.record import Measurement
from harness.procedures.rig import STOPPED_A, Observation, Rig, fet_state


@dataclass
class ThresholdSetup:
    """Everything a threshold search needs, as the plan's case gives it
    (``harness/plan/thresholds.py``): nothing here is looked up in the spec."""

    stimulus: str  # rig stimulus name (cell, pack, port, ntc:cell1, charge_current, ...)
    direction: str  # high: acts when the value rises to the trip; low: when it falls
    flag: str | None  # status flag that reports the function ('balancing', 'heater' too)
    action: str | None  # 'charge' / 'discharge' / 'both' FET opens, or None (alarm, notice)
    safe: float  # a value where the function certainly does not act (and has recovered)
    far: float  # a value where it certainly acts (search bound)
    resolution: float
    dwell_s: float
    condition: str
    cell: int = 1
    reset_timeout_s: float = 30.0
    #: -1 when the spec gives the value negative (discharge currents): searched in magnitude.
    sign: int = 1
    #: Each edge's decision repeated this often from a clean approach, moved at most this
    #: many steps while it chatters (harness/procedures/stability.py).
    repeats: int = 1
    chatter_steps: int = 0

    @classmethod
    def from_case(cls, case: Any) -> ThresholdSetup:
        """The setup of a trip or recovery case. The plan's ``start``/``stop`` are in the
        spec's sign and run from where the function is quiet (trip) or active (recovery) to
        the other side."""
        p = case.params
        sign = int(p.get("sign", 1))
        start, stop = float(p["start"]), float(p["stop"])
        if sign < 0:
            start, stop = abs(start), abs(stop)
        safe, far = (stop, start) if case.kind == "recovery" else (start, stop)
        return cls(
            stimulus=str(p["stimulus"]),
            direction=str(p["direction"]),
            flag=p.get("flag"),
            action=p.get("fet"),
            safe=safe,
            far=far,
            resolution=float(p["resolution"]),
            dwell_s=float(p["dwell_s"]),
            condition=str(p["condition"]),
            cell=int(p.get("cell", 1)),
            reset_timeout_s=float(p["reset_timeout_s"]),
            sign=sign,
            repeats=int(p.get("repeats", 1)),
            chatter_steps=int(p.get("chatter_steps", 0)),
        )


def _acted(obs: Observation, setup: ThresholdSetup) -> bool:
    """Did the function act at this probe? The flag, or for a protection the FET opening.

    Counting a FET that opened without its flag as "acted" lets a silent protection be
    located (and then failed for its missing flag) instead of reported as never tripping.
    """
    if obs.flag:
        return True
    if setup.action == "charge":
        return not obs.charge_fet and obs.supply_a < STOPPED_A
    if setup.action == "discharge":
        return not obs.discharge_fet and obs.load_a < STOPPED_A
    if setup.action == "both":
        return not obs.charge_fet and not obs.discharge_fet
    return False


def _beyond(a: float, b: float, direction: str) -> bool:
    """True when ``a`` lies on the acting side of ``b``."""
    return a > b if direction == "high" else a < b


def _grid(value: float, resolution: float) -> float:
    return round(round(value / resolution) * resolution, 10)


def _probe(rig: Rig, setup: ThresholdSetup, value: float, watch: StateWatch | None) -> Observation:
    """One probe at ``value``; its whole state goes to ``watch`` (when given)."""
    obs = rig.probe(setup.stimulus, value, setup.flag, setup.dwell_s, cell=setup.cell)
    if watch is not None:
        watch.see(obs, acted=_acted(obs, setup))
    return obs


#: How often a reset looks whether the function has released (s of bench time).
RESET_POLL_S = 0.5


def reset(rig: Rig, setup: ThresholdSetup, watch: StateWatch | None = None) -> Observation:
    """Return the stimulus to the safe value and wait for the function to clear, then hold
    it there one more dwell and see it stay clear.

    What the device reports can clear before the function itself has released: balancing's
    per-cell bits drop as soon as the spread falls, the balancing function stops one
    confirmation time later. A probe inside the hysteresis band right after the bits drop
    would find the function still running and read as acting (P63 measured 0.022-0.024 V
    on a conforming device, or failed as not repeatable). Holding the safe value for one
    dwell (longer than the confirmation time) lets the function release first.

    The release is polled every ``RESET_POLL_S`` (not every dwell): the hold that follows
    is what proves it stays clear, and a coarser poll only adds bench time after it."""
    rig.apply(setup.stimulus, setup.safe, cell=setup.cell)
    deadline = rig.now() + setup.reset_timeout_s
    while True:
        remaining = deadline - rig.now()
        obs = None
        if remaining > 0:
            obs = rig.wait_until(
                lambda o: not _acted(o, setup) and rig.condition_flowing(o),
                timeout_s=remaining,
                poll_s=min(setup.dwell_s, RESET_POLL_S),
                flag=setup.flag,
            )
        if obs is None:
            last = rig.observe(setup.flag)
            raise DeviceDidNotRecover(
                f"{setup.flag or 'function'} still active {setup.reset_timeout_s:g} s after "
                f"the stimulus returned to {setup.safe:g}",
                seen=f"{setup.reset_timeout_s:g} s after the stimulus returned to "
                f"{setup.safe:g}: " + last.describe(setup.flag),
            )
        held = _probe(rig, setup, setup.safe, watch)
        if not _acted(held, setup) and rig.condition_flowing(held):
            return held


class DeviceDidNotRecover(Exception):
    """The device stayed tripped with the stimulus back at a safe value (a product defect).

    The message is the failure sentence; ``seen`` is what the last observation showed."""

    def __init__(self, message: str, seen: str | None = None) -> None:
        super().__init__(message)
        self.seen = seen or message


def _at(value: float, unit: str, obs: Observation, setup: ThresholdSetup) -> str:
    """What a probe saw at one stimulus value."""
    return f"at {value:g} {unit}: {obs.describe(setup.flag)}"


def find_trip(
    rig: Rig, setup: ThresholdSetup, m: Measurement, watch: StateWatch | None = None
) -> Observation | None:
    """Bisect between ``safe`` (does not act) and ``far`` (acts). Returns the observation at
    the reported trip value, or None when nothing acted up to ``far``. Every probe's whole
    state goes to ``watch`` (when given)."""
    first = _probe(rig, setup, setup.safe, watch)
    if _acted(first, setup):
        m.check(
            "inactive at the safe value",
            False,
            _at(setup.safe, m.unit, first, setup),
            f"already active at {setup.safe:g} {m.unit}",
        )
        return None
    at_far = _probe(rig, setup, setup.far, watch)
    if not _acted(at_far, setup):
        m.check(
            "acts within the search range",
            False,
            _at(setup.far, m.unit, at_far, setup),
            f"did not act up to {setup.far:g} {m.unit}",
        )
        return None
    quiet, acting, acting_obs = setup.safe, setup.far, at_far
    while abs(acting - quiet) > setup.resolution * 1.0001:
        mid = _grid((quiet + acting) / 2, setup.resolution)
        if mid in (quiet, acting):
            break
        if acting_obs is not None and _acted(acting_obs, setup):
            # The last probe acted: bring the device back before probing from below.
            reset(rig, setup, watch)
            acting_obs = None
        obs = _probe(rig, setup, mid, watch)
        if _acted(obs, setup):
            acting, acting_obs = mid, obs
        else:
            quiet = mid
            acting_obs = None
    # Both edges repeated until stable, from a clean approach (stability.py); the last
    # acting probe gives the verdict's observations.
    state = {"acted": acting_obs is not None}

    def decide(value: float) -> tuple[bool, Observation]:
        if state["acted"]:
            reset(rig, setup, watch)
        obs = _probe(rig, setup, value, watch)
        state["acted"] = _acted(obs, setup)
        return state["acted"], obs

    step = setup.resolution if acting > quiet else -setup.resolution
    edges = stability.stabilise(
        decide, quiet, acting, step, max(1, setup.repeats), setup.chatter_steps
    )
    if not stability.report(m, edges, max(1, setup.repeats)):
        return None
    return edges.final


def _failed(
    m: Measurement, setup: ThresholdSetup, name: str, value: float, obs: Observation, what: str
) -> None:
    """A failed check of the recovery search at ``value`` ("did not act at 3.7 V"); the search
    ends with it (returns None)."""
    m.check(name, False, _at(value, m.unit, obs, setup), f"{what} {value:g} {m.unit}")


def find_recovery(
    rig: Rig,
    setup: ThresholdSetup,
    drive: float,
    m: Measurement,
    watch: StateWatch | None = None,
) -> Observation | None:
    """Trip the function at ``drive``, then bisect between ``drive`` (stays active) and
    ``safe`` (clears) for the value at which it clears. Every probe's whole state goes to
    ``watch`` (when given)."""
    tripped = _probe(rig, setup, drive, watch)
    if not _acted(tripped, setup):
        return _failed(m, setup, "trips before recovery", drive, tripped, "did not act at")
    holding, clearing = drive, setup.safe
    active = True
    while abs(holding - clearing) > setup.resolution * 1.0001:
        mid = _grid((holding + clearing) / 2, setup.resolution)
        if mid in (holding, clearing):
            break
        if not active:
            again = _probe(rig, setup, drive, watch)
            if not _acted(again, setup):
                return _failed(m, setup, "trips again", drive, again, "did not act again at")
        obs = _probe(rig, setup, mid, watch)
        if _acted(obs, setup):
            holding, active = mid, True
        else:
            clearing, active = mid, False
    if clearing == setup.safe:
        # The bracket never moved off the safe value: confirm that it clears there at all
        # (a latched function stays active; repeating its edges would only say "unstable").
        confirm = _probe(rig, setup, clearing, watch)
        if _acted(confirm, setup):
            return _failed(m, setup, "recovers", clearing, confirm, "still active at")
        active = False
    # Both edges repeated until stable (stability.py): each decision trips the function at
    # ``drive`` first, then probes the value; "acted" here means it cleared.
    state = {"active": active}

    def decide(value: float) -> tuple[bool, Observation]:
        if not state["active"]:
            again = _probe(rig, setup, drive, watch)
            if not _acted(again, setup):
                raise _NoTrip(again)
        obs = _probe(rig, setup, value, watch)
        state["active"] = _acted(obs, setup)
        return not state["active"], obs

    step = setup.resolution if clearing > holding else -setup.resolution
    try:
        edges = stability.stabilise(
            decide, holding, clearing, step, max(1, setup.repeats), setup.chatter_steps
        )
    except _NoTrip as exc:
        m.check(
            "trips again",
            False,
            _at(drive, m.unit, exc.obs, setup),
            f"did not act again at {drive:g} {m.unit}",
        )
        return None
    if not stability.report(m, edges, max(1, setup.repeats), acted_word="cleared"):
        return None
    return edges.final


class _NoTrip(Exception):
    def __init__(self, obs: Observation) -> None:
        self.obs = obs


def judge_action(m: Measurement, setup: ThresholdSetup, obs: Observation, *, tripped: bool) -> None:
    """The second observation: what happened to the current at the terminals."""
    at = "" if obs.stimulus is None else f" at {obs.stimulus:g} {m.unit}"
    charge = f"charge current {obs.supply_a:.2f} A, charge FET {fet_state(obs.charge_fet)}"
    discharge = (
        f"discharge current {obs.load_a:.2f} A, discharge FET {fet_state(obs.discharge_fet)}"
    )
    if tripped:
        m.check(
            "flag reported",
            obs.flag,
            f"{setup.flag} {'reported' if obs.flag else 'not reported'}{at}",
            f"{setup.flag} not reported when the function acted{at}",
        )
    if setup.action is None:
        if setup.condition == "charging":
            m.check(
                "current keeps flowing",
                obs.supply_a >= STOPPED_A,
                charge + at,
                f"charge current stopped ({obs.supply_a:.2f} A){at}: a function without a "
                "FET action must not interrupt it",
            )
        elif setup.condition == "discharging":
            m.check(
                "current keeps flowing",
                obs.load_a >= STOPPED_A,
                discharge + at,
                f"discharge current stopped ({obs.load_a:.2f} A){at}: a function without a "
                "FET action must not interrupt it",
            )
        return
    if tripped:
        if setup.action in ("charge", "both") and setup.condition == "charging":
            m.check(
                "charge current stopped",
                obs.supply_a < STOPPED_A and not obs.charge_fet,
                charge + at,
                f"charge current not stopped by the protection{at}: {charge}",
            )
        if setup.action in ("discharge", "both") and setup.condition == "discharging":
            m.check(
                "discharge current stopped",
                obs.load_a < STOPPED_A and not obs.discharge_fet,
                discharge + at,
                f"discharge current not stopped by the protection{at}: {discharge}",
            )
        if setup.action == "charge" and setup.condition != "charging":
            m.check(
                "charge FET open",
                not obs.charge_fet,
                f"charge FET {fet_state(obs.charge_fet)}{at}",
                f"charge FET still closed{at}",
            )
        if setup.action == "discharge" and setup.condition != "discharging":
            m.check(
                "discharge FET open",
                not obs.discharge_fet,
                f"discharge FET {fet_state(obs.discharge_fet)}{at}",
                f"discharge FET still closed{at}",
            )
    else:
        if setup.condition == "charging":
            m.check(
                "charging resumes",
                obs.supply_a >= STOPPED_A,
                f"{charge} after recovery{at}",
                f"charging did not resume after recovery{at}: {charge}",
            )
        elif setup.condition == "discharging":
            m.check(
                "discharging resumes",
                obs.load_a >= STOPPED_A,
                f"{discharge} after recovery{at}",
                f"discharging did not resume after recovery{at}: {discharge}",
            )


def naive_ramp_probes(safe: float, trip: float, resolution: float) -> int:
    """Probes a 1-step ramp would need from ``safe`` to ``trip`` (the benchmark's baseline)."""
    return int(abs(trip - safe) / resolution) + 1


__all__ = [
    "DeviceDidNotRecover",
    "ThresholdSetup",
    "find_recovery",
    "find_trip",
    "judge_action",
    "naive_ramp_probes",
    "reset",
]


def run(rig: Rig, case: Any, m: Measurement) -> None:
    """A trip or recovery case: the search the plan set up, then the action at the probe
    that acted (flag and current), and the whole state at every probe
    (``harness/procedures/expect.py``)."""
    setup = ThresholdSetup.from_case(case)
    watch = StateWatch(Expectation.from_params(case.params, m.unit, rig.spec))
    if "base_v" in case.params:
        rig.difference_base_v = float(case.params["base_v"])
    if setup.condition in ("charging", "discharging", "charger"):
        rig.condition(setup.condition)
        rig.settle()
    else:
        rig.condition("standby")
    try:
        if case.kind == "trip":
            obs = find_trip(rig, setup, m, watch)
            if obs is not None:
                judge_action(m, setup, obs, tripped=True)
                channels.prove(rig, case, setup, m, _acted, reset, DeviceDidNotRecover)
        else:
            obs = find_recovery(rig, setup, setup.far, m, watch)
            if obs is not None:
                judge_action(m, setup, obs, tripped=False)
    finally:
        # What was seen up to a device that did not recover counts too.
        watch.report(m)
    if m.measured is not None:
        m.naive_probes = naive_ramp_probes(setup.safe, m.measured, setup.resolution)
    if setup.sign < 0 and m.measured is not None:
        m.measured = -m.measured
