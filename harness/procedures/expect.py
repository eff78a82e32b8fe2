"""The whole reported state against what the case expects of it.

A threshold case used to look at its own flag and one FET: a protection that also opened
the other FET, an alarm raised by another row, a fault latched by an earlier case went
unnoticed. Here every observation is compared as a whole:

- **flags**: only the case's flag and the couplings its recipe declares
  (``recipe.threshold.couplings``, ``params["couplings"]``) may be raised; what the BMS
  reports that is its state, not an event (:data:`SYSTEM_STATES`), the FET bits (compared
  as FETs) and what a stimulus raises whatever row is tested (:data:`SIDE_EFFECTS`) are
  declared here, once;
- **FETs**: when the function has not acted both are closed; when it acted the FETs of its
  action (``params["fet"]``: charge | discharge | both | None) are open, the other closed.
  A declared coupling that is itself a protection may hold its own FETs open while it is
  raised (a cell at 2.0 V for the charge prohibition is below the undervoltage protection
  too): which FETs is read from the recipe of the row that raises that flag
  (``acts: {flag, fets}``), never written here;
- **current at the terminals**: an open FET passes no current on its side; a closed one
  passes the operating condition's current (charging: the charger's, discharging: the
  load's).

A deviation is reported once per case (:class:`StateWatch`), at the first observation that
showed it, with how many observations showed it. :func:`clean_state` is the same rule for
the start of every case: nothing raised, both FETs closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.procedures.rig import STOPPED_A, Observation, fet_state

#: The system byte's states (``rig.observe`` folds them into ``flags``): what the BMS is
#: doing, not something it raised. ``shutdown`` is not among them: a shut-down BMS has
#: opened both FETs, which no case expects.
SYSTEM_STATES = frozenset({"charging", "discharging", "float_charging", "fully_charged", "standby"})

#: The on/off byte's FET bits: compared as the observation's FETs, not as flags.
FET_BITS = frozenset({"charge_fet", "discharge_fet"})

#: Flags a stimulus raises on a conforming device whatever row the case tests, by the
#: stimulus's name (``recipe.threshold.stimulus``). Empty: every flag a row's stimulus
#: raises beside its own is declared in that row's recipe as a coupling.
SIDE_EFFECTS: Mapping[str, frozenset[str]] = {}

#: The sides of a FET action.
SIDES = ("charge", "discharge")


def raised(obs: Observation) -> list[str]:
    """The flags set in ``obs`` that are events: neither a system state nor a FET bit."""
    return [k for k, v in obs.flags.items() if v and k not in SYSTEM_STATES and k not in FET_BITS]


def _fet(obs: Observation, side: str) -> bool:
    return obs.charge_fet if side == "charge" else obs.discharge_fet


def _amps(obs: Observation, side: str) -> float:
    return obs.supply_a if side == "charge" else obs.load_a


def opens(action: str | None) -> frozenset[str]:
    """The FET sides an action opens."""
    if action is None:
        return frozenset()
    return frozenset(SIDES) if action == "both" else frozenset({action})


@dataclass(frozen=True)
class Expectation:
    """What a case expects of the whole state (from the plan's params)."""

    flag: str | None
    action: str | None
    condition: str
    stimulus: str = ""
    couplings: frozenset[str] = frozenset()
    unit: str = ""
    #: -1 when the plan searches a negative spec value in magnitude (discharge currents).
    sign: int = 1
    #: Coupling flag -> the FET sides it holds open while raised (a coupled protection).
    holds: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], unit: str = "", spec: Any = None
    ) -> Expectation:
        """From a case's params; ``spec`` gives what each coupled protection opens."""
        couplings = frozenset(params.get("couplings") or ())
        return cls(
            flag=params.get("flag"),
            action=params.get("fet"),
            condition=str(params.get("condition", "standby")),
            stimulus=str(params.get("stimulus", "")),
            couplings=couplings,
            unit=unit,
            sign=int(params.get("sign", 1)),
            holds=coupled_actions(spec, couplings),
        )

    @property
    def allowed(self) -> frozenset[str]:
        """Flags that may be raised while the case runs."""
        own = {self.flag} if self.flag else set()
        return frozenset(own) | self.couplings | SIDE_EFFECTS.get(self.stimulus, frozenset())

    @property
    def who(self) -> str:
        return self.flag or "the function"


def coupled_actions(spec: Any, couplings: Iterable[str]) -> dict[str, frozenset[str]]:
    """The FET sides each coupled flag opens, from the recipe of the row that raises it
    (``recipe.threshold.acts``); flags no row's recipe opens a FET for are left out."""
    wanted = set(couplings)
    out: dict[str, frozenset[str]] = {}
    for p in getattr(spec, "parameters", None) or ():
        r = p.recipe.threshold if p.recipe is not None else None
        if r is None or r.acts.flag not in wanted or r.acts.fets == "none":
            continue
        out[r.acts.flag] = out.get(r.acts.flag, frozenset()) | opens(r.acts.fets)
    return out


@dataclass(frozen=True)
class Deviation:
    """One way an observation differs from the expectation: ``subject`` names the flag, FET
    or current (the check's name), ``failure`` says what was wrong (without where)."""

    subject: str
    failure: str
    seen: str


def compare(obs: Observation, exp: Expectation, *, acted: bool) -> list[Deviation]:
    """Every way ``obs`` differs from ``exp`` (``acted``: the function acted at it)."""
    out: list[Deviation] = []
    for name in raised(obs):
        if name not in exp.allowed:
            out.append(Deviation(f"flag {name}", f"unexpected flag {name}", f"{name} raised"))
    open_sides = opens(exp.action) if acted else frozenset()
    held = frozenset().union(*(exp.holds.get(f, frozenset()) for f in raised(obs)))
    for side in SIDES:
        closed = _fet(obs, side)
        subject = f"{side} FET"
        if side in open_sides and closed:
            out.append(Deviation(subject, f"{side} FET still closed", f"{side} FET closed"))
        elif side not in open_sides and not closed and side not in held:
            if not acted:
                why = f"{exp.who} has not acted"
            elif exp.action is None:
                why = f"{exp.who} opens no FET"
            else:
                why = f"{exp.who} opens only the {exp.action} FET"
            out.append(Deviation(subject, f"{side} FET open although {why}", f"{side} FET open"))
    out.extend(_currents(obs, exp))
    return out


def _currents(obs: Observation, exp: Expectation) -> Iterable[Deviation]:
    """The current at the terminals against the FETs and the operating condition."""
    for side in SIDES:
        amps, closed = _amps(obs, side), _fet(obs, side)
        subject = f"{side} current"
        seen = f"{side} current {amps:.2f} A, {side} FET {fet_state(closed)}"
        if not closed and amps >= STOPPED_A:
            yield Deviation(
                subject, f"{side} current {amps:.2f} A although the {side} FET is open", seen
            )
        flowing_condition = "charging" if side == "charge" else "discharging"
        if closed and exp.condition == flowing_condition and amps < STOPPED_A:
            yield Deviation(
                subject,
                f"{side} current {amps:.2f} A although the {side} FET is closed while "
                f"{flowing_condition}",
                seen,
            )


def where(obs: Observation, exp: Expectation) -> str:
    """ " at 3.66 V" for an observation with a stimulus value (in the spec's sign), else ""."""
    if obs.stimulus is None:
        return ""
    return f" at {exp.sign * obs.stimulus:g} {exp.unit}".rstrip()


@dataclass
class StateWatch:
    """Collects the whole-state deviations of one case's observations; reports each
    distinct one once (:meth:`report`)."""

    expect: Expectation
    seen: int = 0
    first: dict[tuple[str, str], tuple[Deviation, Observation]] = field(default_factory=dict)
    times: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Every event flag raised at some observation.
    flags: set[str] = field(default_factory=set)
    #: Where the observations were made, when not at a stimulus value in the case's unit
    #: (a delay's end: "where the FET opened").
    place: str | None = None

    def see(self, obs: Observation, *, acted: bool) -> Observation:
        """Compare one observation; returns it (so a probe can be wrapped)."""
        self.seen += 1
        self.flags.update(raised(obs))
        for dev in compare(obs, self.expect, acted=acted):
            key = (dev.subject, dev.failure)
            self.first.setdefault(key, (dev, obs))
            self.times[key] = self.times.get(key, 0) + 1
        return obs

    def report(self, m: Any) -> None:
        """One check per distinct deviation; one passing check when there was none. No
        check at all when nothing was observed (a check must rest on an observation)."""
        if self.seen == 0:
            return
        if not self.first:
            flags = ", ".join(sorted(self.flags)) or "none"
            m.check(
                "whole state",
                True,
                f"{_observations(self.seen)}: flags raised: {flags}; FETs "
                f"{_fets_text(self.expect.action)}; currents agree with the FETs and the "
                f"{self.expect.condition} condition",
            )
            return
        for key, (dev, obs) in self.first.items():
            at = f" {self.place}" if self.place else where(obs, self.expect)
            n = self.times[key]
            state = obs.describe(self.expect.flag)
            m.check(
                f"whole state: {dev.subject}",
                False,
                f"{dev.seen}{at} ({n} of {_observations(self.seen)}): {state}",
                f"{dev.failure}{at}",
            )


def _observations(n: int) -> str:
    return f"{n} observation" + ("" if n == 1 else "s")


def _fets_text(action: str | None) -> str:
    if action is None:
        return "closed throughout"
    if action == "both":
        return "closed until it acted, then both open"
    other = "discharge" if action == "charge" else "charge"
    return f"closed until it acted, then the {action} FET open and the {other} FET closed"


def clean_state(obs: Observation) -> list[str]:
    """What keeps ``obs`` from being a clean start (empty when clean): every raised flag by
    name, then each open FET."""
    out = sorted(raised(obs))
    out += [f"{side} FET open" for side in SIDES if not _fet(obs, side)]
    return out


def clean_text(obs: Observation) -> str:
    """A clean start in words (what the clean-start check saw)."""
    states = sorted(k for k, v in obs.flags.items() if v and k in SYSTEM_STATES)
    return (
        "no alarm, protection, fault or activation flag raised"
        + (f" (system state {', '.join(states)})" if states else "")
        + f"; charge FET {fet_state(obs.charge_fet)}, discharge FET "
        f"{fet_state(obs.discharge_fet)}; charge current {obs.supply_a:.2f} A, discharge "
        f"current {obs.load_a:.2f} A"
    )


def judge_at(
    m: Any,
    params: Mapping[str, Any],
    obs: Observation,
    *,
    acted: bool,
    condition: str,
    place: str,
    spec: Any = None,
) -> None:
    """The whole state at one observation of a procedure that looks once (a delay's end):
    ``params`` give flag, FETs and couplings as for a threshold case, ``condition`` the
    operating condition in force, ``place`` where it was seen ("where the FET opened")."""
    exp = Expectation.from_params({**params, "condition": condition}, m.unit, spec)
    watch = StateWatch(exp, place=place)
    watch.see(obs, acted=acted)
    watch.report(m)
