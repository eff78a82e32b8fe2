"""Procedures by name: a plan case's ``procedure`` -> the function that runs it.

Every entry takes ``(rig, case, measurement)`` and reads its setup from the case
(``case.params``, ``case.expected``, ``case.number`` for the row it writes): the plan
decided the stimulus, the FETs, the condition, the delay and the flag. A new kind of test is
a procedure module plus one entry here (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.procedures import (
    activation,
    delay,
    direction,
    evidence,
    function,
    hardware,
    hold,
    onset,
    quiet,
    readback,
    report,
    switch,
    threshold,
    timers,
)
from harness.procedures.record import BenchFault, Measurement
from harness.procedures.rig import Rig

Procedure = Callable[[Rig, Any, Measurement], None]

#: Procedures that touch no bench (a verdict read from another case's record): the runner
#: skips the nominal state and the return to it.
WITHOUT_BENCH = frozenset({"evidence"})


def _amps(case: Any) -> float:
    p = case.params
    return abs(float(p.get("current_a", p.get("discharge_a", 20.0))))


def _value(case: Any) -> float:
    if "value" not in case.params:
        raise BenchFault(f"{case.id}: the plan gives no value to write")
    return float(case.params["value"])


def _live(case: Any) -> tuple[int, ...]:
    """Parameters the device moves itself: a block comparison skips them."""
    return tuple(int(n) for n in case.params.get("live", ()))


def _soc(rig: Rig, case: Any, m: Measurement) -> None:
    write = case.params.get("write_ah")
    function.soc_reported(rig, m, None if write is None else float(write))


def _impedance(rig: Rig, case: Any, m: Measurement) -> None:
    function.impedance_compensation(
        rig, m, rig.setup.count("position"), rig.setup.text("observe"), _amps(case)
    )


PROCEDURES: dict[str, Procedure] = {
    "threshold": threshold.run,
    "quiet": quiet.run,
    "hold": hold.run,
    "report": report.run,
    "evidence": evidence.run,
    "readback.write": lambda rig, c, m: readback.write_and_read_back(
        rig, m, c.number, _value(c), _live(c)
    ),
    "readback.out_of_range": lambda rig, c, m: readback.out_of_range_refused(
        rig, m, c.number, _value(c), _live(c)
    ),
    "readback.single_write": lambda rig, c, m: readback.remaining_capacity_single_write(
        rig, m, _value(c), _live(c)
    ),
    "readback.bit": switch.bit,
    "delay.soft_start": lambda rig, c, m: delay.soft_start(rig, m),
    "delay.overcurrent": lambda rig, c, m: delay.overcurrent_delay(
        rig, m, str(c.params["side"]), str(c.params["flag"])
    ),
    "delay.transient": lambda rig, c, m: delay.transient_delay(rig, m, str(c.params["flag"])),
    "delay.overcurrent_recovery": lambda rig, c, m: delay.overcurrent_recovery(rig, m),
    "delay.lockout": lambda rig, c, m: delay.lockout(
        rig, m, kind=str(c.params.get("lockout", "discharge"))
    ),
    "delay.current_limit": lambda rig, c, m: function.current_limit_passive(
        rig, m, expect_limit=True
    ),
    "delay.manual_activation": lambda rig, c, m: activation.manual_activation(rig, m),
    "delay.auto_activation": lambda rig, c, m: activation.auto_activation(rig, m, expect=True),
    "delay.history_interval": lambda rig, c, m: function.history_interval(
        rig, m, working=bool(c.params["working"])
    ),
    "delay.standby_shutdown": lambda rig, c, m: function.standby_shutdown(rig, m, expect=True),
    "delay.static_balancing_time": lambda rig, c, m: function.static_balancing_time(
        rig, m, expect_stop=True
    ),
    "function.soc": _soc,
    "function.series_count": lambda rig, c, m: function.series_count(rig, m),
    "function.gap_compensation": lambda rig, c, m: function.gap_compensation(rig, m),
    "function.auto_activation_waiting": lambda rig, c, m: activation.auto_activation_waiting(
        rig, m
    ),
    "function.cycle_count": lambda rig, c, m: function.cycle_count(rig, m, amps=_amps(c)),
    "function.impedance_compensation": _impedance,
    "direction.busbar_compensation": lambda rig, c, m: direction.busbar_compensation(rig, m),
    "direction.coulomb_counting": lambda rig, c, m: direction.coulomb_counting(rig, m),
    "onset.current_limit": lambda rig, c, m: onset.current_limit_onset(rig, m),
    "timers.overcurrent_restart": lambda rig, c, m: timers.overcurrent_restart(rig, m),
    "timers.static_balancing_restart": lambda rig, c, m: timers.static_balancing_restart(rig, m),
    "function.connection_fault": lambda rig, c, m: hardware.connection_fault(rig, m, c.number),
    **switch.PROCEDURES,
}


def lookup(name: str) -> Procedure:
    """The procedure of that name; BenchFault naming it when there is none."""
    try:
        return PROCEDURES[name]
    except KeyError:
        known = ", ".join(sorted(PROCEDURES))
        raise BenchFault(f"no procedure named {name!r} (known: {known})") from None
