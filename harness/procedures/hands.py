"""Hand-steps: what a person would do at the bench, done by a relay or asked of a person.

A plan case names the hand-steps it needs (``params["hand_steps"]``). Before anything
moves, :func:`for_case` decides how each is done: by the bench's relay of that name
(``bench.relays``), else by the operator (a terminal prompt), else not at all, and the case
is skipped naming the missing relay and why nobody can be asked ("needs an operator to press
the BMS button (no relays.button on this bench); unattended run").

Procedures then say ``rig.hands.activate("button")``, ``release("button")``,
``pulse("button", 0.5)``; each is a recorded step, and every operator answer is kept as
evidence in the result record. :meth:`Hands.release_all` puts back whatever is still in
force when the case ends, however it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.procedures.record import BenchFault, CaseNotTestable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandStep:
    """One hand-step in the lab's words."""

    name: str
    #: The bench capability that says the hardware is there.
    capability: str
    #: "needs an operator ..." completes with this.
    need: str
    #: Prompt that puts the step in force, prompt that ends it, prompt of a brief pulse.
    activate: str
    release: str
    pulse: str | None = None


HAND_STEPS: dict[str, HandStep] = {
    s.name: s
    for s in (
        HandStep(
            "button",
            "button",
            "to press the BMS button",
            "Press and hold the BMS button now; confirm when held.",
            "Release the button; confirm when released.",
            "Press the BMS button briefly (about half a second) and release it; confirm when done.",
        ),
        HandStep(
            "bms_power",
            "bms_power",
            "to switch the BMS's own supply off and on",
            "Switch the BMS's own supply OFF now; confirm when it is off.",
            "Switch the BMS's own supply back ON; confirm when it is on.",
        ),
        HandStep(
            "power_switch",
            "switch",
            "to work the external power switch",
            "Turn the external (self-locking) power switch ON; confirm when it is on.",
            "Turn the external (self-locking) power switch OFF; confirm when it is off.",
        ),
        HandStep(
            "secondary_trip",
            "secondary_trip",
            "to assert the secondary-trip input",
            "Assert the secondary-trip input now; confirm when asserted.",
            "Release the secondary-trip input; confirm when released.",
        ),
        HandStep(
            "short_circuit",
            "short_circuit",
            "to short the BMS output",
            "Short the BMS output now (close the shorting contactor); confirm when shorted.",
            "Remove the short from the BMS output; confirm when removed.",
        ),
        HandStep(
            "connection_fault",
            "connection_fault",
            "to put a series resistor in a cell's sense lead",
            "Put the series resistor in the sense lead of cell {cell} ({mohm:g} mΩ); confirm "
            "when it is in.",
            "Take the series resistor out of cell {cell}'s sense lead; confirm when it is out.",
        ),
    )
}


def hand_steps_of(case: Any) -> list[str]:
    return [str(s) for s in (getattr(case, "params", None) or {}).get("hand_steps", [])]


class Hands:
    """The hand-steps of one case and how each is done (``relay`` or ``operator``)."""

    def __init__(
        self,
        rig: Any,
        modes: dict[str, str],
        operator: Any = None,
        *,
        case_id: str | None = None,
        timeout_s: float | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        self.rig = rig
        self.modes = dict(modes)
        self.operator = operator
        self.case_id = case_id
        self.timeout_s = timeout_s
        #: Placeholders of the prompts (the connection fault's cell and mΩ).
        self.values = dict(values or {})
        self.active: set[str] = set()

    # -- what the procedures call ----------------------------------------------------
    def mode(self, name: str) -> str:
        try:
            return self.modes[name]
        except KeyError:
            raise BenchFault(
                f"the procedure needs hand-step {name!r}, which the plan case does not name"
            ) from None

    def by_relay(self, name: str) -> bool:
        return self.mode(name) == "relay"

    def activate(self, name: str, why: str = "") -> None:
        """Put the step in force (relay to its active position, or ask the person)."""
        step = HAND_STEPS[name]
        how = self.mode(name)
        with self.rig.rec.step(self._title("in force", name, how, why)):
            if how == "relay":
                self.rig.bench.relays.activate(name)
            else:
                self._ask(step.activate)
        self.active.add(name)

    def release(self, name: str, why: str = "") -> None:
        """End the step (relay back to its safe position, or ask the person)."""
        step = HAND_STEPS[name]
        how = self.mode(name)
        with self.rig.rec.step(self._title("released", name, how, why)):
            if how == "relay":
                self.rig.bench.relays.release(name)
            else:
                self._ask(step.release)
        self.active.discard(name)

    def pulse(self, name: str, hold_s: float, why: str = "") -> None:
        """A brief activation: the relay held ``hold_s`` bench seconds, or one prompt."""
        step = HAND_STEPS[name]
        how = self.mode(name)
        if how == "relay" or step.pulse is None:
            self.activate(name, why)
            try:
                self.rig.wait(hold_s)
            finally:
                self.release(name, why)
            return
        with self.rig.rec.step(self._title(f"pulsed (~{hold_s:g} s)", name, how, why)):
            self._ask(step.pulse)

    def release_all(self, relays_only: bool = False) -> None:
        """Whatever is still in force goes back (relays first; a person is asked unless
        ``relays_only``). Every step is attempted; the first failure is raised at the end."""
        first: Exception | None = None
        for name in sorted(self.active, key=lambda n: self.mode(n) != "relay"):
            if relays_only and self.mode(name) != "relay":
                continue
            try:
                self.release(name, "end of the case")
                if name == "bms_power":
                    # The BMS boots before anything else asks it (or asks whether it lives).
                    from harness.procedures.power import BOOT_TIMEOUT_S, wait_for_bms

                    wait_for_bms(self.rig.bench.bms, self.rig.bench.clock, BOOT_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - release every one
                log.error("hand-step %s not released: %s", name, exc)
                first = first or exc
        if first is not None:
            raise first

    def describe(self) -> str:
        parts = []
        for name, how in self.modes.items():
            if how == "relay":
                wiring = self.rig.bench.relays.wiring(name)
                channel = getattr(wiring, "channel", None)
                parts.append(f"{name} by relay" + (f" (channel {channel})" if channel else ""))
            else:
                who = getattr(self.operator, "name", "the operator")
                parts.append(f"{name} by {who}")
        return ", ".join(parts)

    # -- helpers ---------------------------------------------------------------------
    def _title(self, what: str, name: str, how: str, why: str) -> str:
        by = "relay" if how == "relay" else f"operator {getattr(self.operator, 'name', '')}"
        return f"hand-step {name} {what} ({by.strip()})" + (f": {why}" if why else "")

    def _ask(self, template: str) -> None:
        from harness.operator import OperatorDeclined, OperatorTimeout

        prompt = template.format(**self.values) if self.values else template
        try:
            answer = self.operator.ask(prompt, timeout_s=self.timeout_s, case=self.case_id)
        except OperatorTimeout as exc:
            self.rig.rec.operator_answer(exc.answer.to_dict())
            raise BenchFault(f"operator step not done: {exc}") from exc
        except OperatorDeclined as exc:
            self.rig.rec.operator_answer(exc.answer.to_dict())
            raise CaseNotTestable(f"operator step not done: {exc}") from exc
        self.rig.rec.operator_answer(answer.to_dict())


def modes_for(
    names: Iterable[str],
    relays: Any,
    operator: Any,
    absent_reason: str | None,
) -> dict[str, str]:
    """How each hand-step is done; raises ``CaseNotTestable`` when one can be done by
    neither a relay nor a person."""
    modes: dict[str, str] = {}
    for name in names:
        if name not in HAND_STEPS:
            raise BenchFault(f"unknown hand-step {name!r} in the plan case")
        if relays is not None and relays.has(name):
            modes[name] = "relay"
        elif operator is not None:
            modes[name] = "operator"
        else:
            why = absent_reason or "unattended run"
            raise CaseNotTestable(
                f"needs an operator {HAND_STEPS[name].need} (no relays.{name} on this bench); {why}"
            )
    return modes


def for_case(rig: Any, case: Any, operator: Any = None, absent_reason: str | None = None) -> Hands:
    """The case's hand-steps on this bench (before anything moves)."""
    params = getattr(case, "params", None) or {}
    names = hand_steps_of(case)
    relays = getattr(rig.bench, "relays", None)
    modes = modes_for(names, relays, operator, absent_reason)
    values: dict[str, Any] = {}
    if "connection_fault" in modes:
        ohm, cell = params.get("ohm", 0.020), params.get("cell", 8)
        if modes["connection_fault"] == "relay":
            wiring = relays.wiring("connection_fault")
            ohm = getattr(wiring, "ohm", None) or ohm
            cell = getattr(wiring, "cell", None) or cell
        values = {"ohm": float(ohm), "mohm": float(ohm) * 1000.0, "cell": int(cell)}
    return Hands(
        rig,
        modes,
        operator,
        case_id=getattr(case, "id", None),
        timeout_s=params.get("operator_timeout_s"),
        values=values,
    )
