"""Run one plan case on an open bench: nominal state, isolation, the procedure, back to nominal.

``run_case`` is the one entry point the pytest plugin (and any script) calls. The case names
its procedure (``registry.py``) and carries the setup the plan produced, so the plan stays
data and the procedures stay reusable.
"""

from __future__ import annotations

from typing import Any

from harness.procedures import budget, expect, hands, power, registry, threshold
from harness.procedures import uncertainty as unc
from harness.procedures.record import BenchFault, CaseNotTestable, Measurement, Recorder
from harness.procedures.rig import Observation, Rig
from harness.procedures.setup import Nominal, Setup
from harness.procedures.uncertainty import SIMPLE


def _configure_nominal(rig: Rig, case: Any, nominal: Nominal) -> bool:
    """The case's block (spec values plus its overrides) and the nominal remaining capacity
    the plan gives (SOC 50 %); True if written."""
    spec = rig.spec
    values = {p.number: p.default for p in spec.parameters}
    values.update({int(k): float(v) for k, v in (case.overrides or {}).items()})
    switches = {s.number: s.default for s in spec.switches}
    switches.update({int(k): bool(v) for k, v in (case.switch_overrides or {}).items()})
    explicit = frozenset(int(k) for k in (case.overrides or {}))
    wrote = rig.configure(values, switches, explicit)
    if nominal.remaining_ah is not None:
        # Through the single remaining-capacity write, only when it differs.
        tele = rig.bench.bms.telemetry()
        if abs(tele.remaining_ah - nominal.remaining_ah) > 0.05:
            rig.bench.bms.set_remaining_capacity(nominal.remaining_ah)
    return wrote


def _nominal_steps(rig: Rig, case: Any) -> None:
    """Hand-steps the case's nominal state needs in force (S57: the power switch ON)."""
    for name in (case.params or {}).get("nominal_steps", []) or []:
        if rig.hands is not None and name not in rig.hands.active:
            rig.hands.activate(name, "part of this case's nominal state")


def _still_active(rig: Rig) -> str:
    """What keeps the state from being clean, named (``expect.clean_state``)."""
    left = expect.clean_state(rig.observe(None))
    return "still active: " + (", ".join(left) if left else "nothing by now (cleared late)")


def prepare(rig: Rig, case: Any) -> Observation:
    """Nominal state plus the case's isolating overrides (one block write when needed),
    then a verified clean start: no alarm, protection, fault or activation flag raised and
    both FETs closed (``expect.clean_state``). Returns the observation that showed it.

    A latched state that neither the recovery delay nor a block write clears is cleared by
    power-cycling the BMS when the bench has a ``bms_power`` relay (then the block and SOC
    are set again); without one the case is a bench error, "nominal state unreachable",
    naming what is still raised."""
    nominal = Nominal.from_case(case)
    rig.rated_ah = nominal.rated_ah
    with rig.rec.step("nominal state"):
        rig.nominal_stimuli()
        rig.wake_if_shut_down()
        wrote = _configure_nominal(rig, case, nominal)
        _nominal_steps(rig, case)
        settled = _wait_clean(rig, 3.0)
        if not settled and rig.wake_if_shut_down():
            # A shortened standby-shutdown delay just written can put an idle BMS to sleep.
            settled = _wait_clean(rig, 3.0)
        if not settled:
            # Lock-outs and latched protections clear with a block write (BEHAVIOUR.md P71).
            if not wrote:
                rig.rewrite_block()
            settled = _wait_clean(rig, nominal.clear_after_write_s)
        if not settled and power.can_power_cycle(rig.bench):
            latched = _still_active(rig)
            power.power_cycle(rig, f"nominal state unreachable: {latched}")
            rig.nominal_stimuli()
            _configure_nominal(rig, case, nominal)
            settled = _wait_clean(rig, nominal.clear_after_power_cycle_s)
            if not settled:
                raise BenchFault(
                    f"nominal state unreachable after a power-cycle: {_still_active(rig)} "
                    f"(before it: {latched})"
                )
        if not settled:
            raise BenchFault(f"nominal state unreachable: {_still_active(rig)}")
    with rig.rec.step(f"clean start: {expect.clean_text(settled)}"):
        pass
    return settled


def _wait_clean(rig: Rig, timeout_s: float) -> Observation | None:
    """The first observation within ``timeout_s`` with nothing raised and both FETs
    closed; None when there is none."""
    return rig.wait_until(lambda o: not expect.clean_state(o), timeout_s=timeout_s, poll_s=0.5)


def restore(rig: Rig) -> None:
    """Back to nominal stimuli after a case (parameters are restored by the next prepare)."""
    with rig.rec.step("back to nominal"):
        rig.nominal_stimuli()


def run_case(
    bench: Any,
    spec: Any,
    case: Any,
    recorder: Recorder | None = None,
    *,
    operator: Any = None,
    operator_absent: str | None = None,
    evidence: Any = None,
    rule: str = SIMPLE,
) -> Measurement:
    """Run one case; returns its measurement (the verdict is ``measurement.outcome``).

    ``operator`` (``harness.operator.Operator``) does the case's hand-steps the bench has no
    relay for; without one (``operator_absent`` says why: "unattended run") such a case is
    not testable. ``evidence`` (test id -> the run's final record or None) serves a case
    proven by another's verdict, which touches no bench. ``rule`` is the decision rule the
    measurement is judged by (``uncertainty.RULES``); its budget is completed here
    (``budget.complete``). Raises ``CaseNotTestable`` when the
    case cannot run on this bench and ``BenchFault`` when the bench, not the device, failed.
    """
    if not getattr(case, "testable", True):
        raise CaseNotTestable(case.reason or "not testable on this bench")
    rig = Rig(bench, spec, recorder)
    rig.params = dict(case.params or {})
    rig.setup = Setup(case.id, rig.params)
    rig.evidence = evidence
    if case.procedure in registry.WITHOUT_BENCH:
        m = Measurement(
            name=case.id, unit=case.unit or "", expected=case.expected, tolerance=case.tolerance
        )
        m.rule = rule
        _dispatch(rig, case, m)
        return m
    # Before anything moves: who does each hand-step (or why nobody can).
    rig.hands = hands.for_case(rig, case, operator, operator_absent)
    if rig.hands.modes:
        with rig.rec.step(f"hand-steps: {rig.hands.describe()}"):
            pass
    m = _attempt(rig, case)
    budget.complete(bench, case, m, rule)
    if rig.resolution_lost:
        lost = "timing resolution lost to the link: " + rig.resolution_lost[0]
        if m.decision in unc.CONDITIONAL:
            # The widened interval reaches both sides of a limit: the verdict would be the
            # link's, not the device's. Not measured again (a repeat would start from the
            # state this attempt left: a trip count, a lock-out), so a bench error.
            raise BenchFault(
                f"{lost}; measured {m.measured:g} ± {m.uncertainty:.3g} {m.unit} against "
                f"{m.expected:g} +- {m.tolerance:g} {m.unit} cannot be decided"
            )
        m.note = "; ".join(filter(None, [m.note, lost]))
    return m


def _attempt(rig: Rig, case: Any) -> Measurement:
    """One attempt of a bench case: prepare, the procedure, back to nominal."""
    m = Measurement(
        name=case.id,
        unit=case.unit or "",
        expected=case.expected,
        tolerance=case.tolerance,
    )
    try:
        clean = prepare(rig, case)
    except BaseException:
        _release_hands(rig, in_flight=True)
        raise
    m.check("clean start", True, expect.clean_text(clean))
    ok = False
    try:
        _dispatch(rig, case, m)
        ok = True
    except threshold.DeviceDidNotRecover as exc:
        m.check("recovers", False, exc.seen, str(exc))
        ok = True
    finally:
        m.probes = rig.probes
        try:
            _release_hands(rig, in_flight=not ok)
        finally:
            restore(rig)
    return m


def _release_hands(rig: Rig, in_flight: bool) -> None:
    """Every hand-step still in force goes back; with an exception already on its way a
    failure here is logged and the first exception kept (the bench's safe state puts the
    relays back on every exit anyway)."""
    if rig.hands is None or not rig.hands.active:
        return
    if not in_flight:
        rig.hands.release_all()
        return
    import sys

    interrupted = isinstance(sys.exc_info()[1], KeyboardInterrupt)
    try:
        # Interrupted (Ctrl-C, SIGTERM): no prompt; the relays go back.
        rig.hands.release_all(relays_only=interrupted)
    except Exception as exc:  # noqa: BLE001 - the exception in flight is the one to report
        import logging

        logging.getLogger(__name__).error("hand-steps not released: %s", exc)


def _dispatch(rig: Rig, case: Any, m: Measurement) -> None:
    """Run the procedure the case names (``harness/procedures/registry.py``)."""
    registry.lookup(case.procedure)(rig, case, m)
