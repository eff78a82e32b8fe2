"""Functions that depend on the direction of the current, proven in the direction the case
names: busbar compensation and coulomb counting while charging as well as discharging.

The direction is the bench's: the sign of the current at the terminals (supply and load
read-backs, + charging), never the sign the BMS reports, so a BMS that misreports its
current cannot make its compensation or its counter look right. The current it reports is
checked against the terminals separately.
"""

from __future__ import annotations

from harness.procedures.record import BenchFault, Measurement
from harness.procedures.rig import Observation, Rig

#: How closely the reported current must follow the terminals: 1 % of reading, 0.5 A floor
#: (test_plans/tolerances.yaml, charge/discharge current).
CURRENT_ABS_A = 0.5
CURRENT_REL = 0.01


def _direction(rig: Rig) -> str:
    direction = rig.setup.text("direction")
    if direction not in ("charging", "discharging"):
        raise BenchFault(
            f"{rig.setup.case_id}: params 'direction' {direction!r}: charging or discharging"
        )
    return direction


def _flow(rig: Rig, direction: str, amps: float) -> Observation:
    """The current of ``direction`` at ``amps`` flowing (a bench fault when it does not)."""
    if direction == "charging":
        rig.apply("charge_current", amps)
    else:
        rig.apply("discharge_current", amps)
    rig.condition(direction, current_a=amps)
    return rig.settle()


def check_reported_current(rig: Rig, m: Measurement, reported_a: float, terminal_a: float) -> bool:
    """The BMS reports the current with the terminals' sign (+ charging) and magnitude."""
    band = max(CURRENT_ABS_A, CURRENT_REL * abs(terminal_a))
    return m.check(
        "reported current direction",
        abs(reported_a - terminal_a) <= band,
        f"BMS reports {reported_a:+.2f} A, terminals {terminal_a:+.2f} A (+ charging)",
        f"reported current {reported_a:+.2f} A, expected {terminal_a:+.2f} +- {band:.2f} A "
        "(the terminals' current, + charging)",
    )


def busbar_compensation(rig: Rig, m: Measurement) -> None:
    """P84-P87 both ways: the reading of the cell at the compensation ``position`` is
    corrected by I x R (reported = sensed - I x R, I + charging: higher while discharging,
    lower while charging; BEHAVIOUR.md).

    The measured value is R = -(reported shift) / I in mOhm, with I the signed current at
    the terminals: a compensation with the wrong sign in the case's ``direction`` measures
    -R. The case gives ``position``, ``direction`` and ``current_a``."""
    position = rig.setup.count("position")
    direction = _direction(rig)
    amps = abs(rig.setup.num("current_a"))
    # A sample at rest first: a reading compensated for an earlier current can linger.
    rig.condition("standby")
    rig.wait(1.0)
    idle = rig.bench.bms.telemetry().cell_v
    with rig.rec.step(f"{direction} {amps:g} A: cell {position} reading compensated"):
        _flow(rig, direction, amps)
        rig.wait(1.5)
        loaded = rig.bench.bms.telemetry()
        obs = rig.observe(None)
    rig.condition("standby")
    if not 1 <= position <= min(len(idle), len(loaded.cell_v)):
        m.check(
            "compensated cell reported",
            False,
            f"{len(loaded.cell_v)} cells reported",
            f"cell {position} (the compensation position) is not in the telemetry",
        )
        return
    terminal = obs.terminal_a
    check_reported_current(rig, m, float(loaded.current_a), terminal)
    shift = loaded.cell_v[position - 1] - idle[position - 1]
    if abs(terminal) < 1.0:
        m.check(
            "current flows",
            False,
            f"terminal current {terminal:+.2f} A with {direction} asked at {amps:g} A",
            f"no current to compensate ({terminal:+.2f} A at the terminals, below 1 A)",
        )
        return
    m.measured = round(-shift / terminal * 1000.0, 3)
    sign = "lower" if terminal > 0 else "higher"
    m.check(
        f"reading {sign} while {direction}",
        (shift < 0) == (terminal > 0) and shift != 0,
        f"cell {position} moved {shift * 1000:+.1f} mV at {terminal:+.1f} A ({direction})",
        f"cell {position} moved {shift * 1000:+.1f} mV at {terminal:+.1f} A: it should read "
        f"{sign} while {direction}",
    )
    m.note = f"cell {position} moved {shift * 1000:+.1f} mV at {terminal:+.1f} A"


def coulomb_counting(rig: Rig, m: Measurement) -> None:
    """P59/P60 both ways: the remaining capacity follows the charge that flowed, up while
    charging, down while discharging.

    The current of the case's ``direction`` flows at ``current_a`` for ``duration_s``; the
    measured value is the signed change of the reported remaining capacity (Ah, + up),
    against the case's expected charge. The charge the terminals saw is checked against the
    same value, and the current the BMS reports against the terminals.

    With ``start_ah`` the remaining capacity is written first (0x49) and ``charge_ah`` is the
    charge the terminals carry; the expected change may then differ from it: charging past
    full, the counter stops at the full capacity (and SOC at 100 %)."""
    direction = _direction(rig)
    amps = abs(rig.setup.num("current_a"))
    duration = rig.setup.num("duration_s")
    if "start_ah" in rig.params:
        start_ah = rig.setup.num("start_ah")
        with rig.rec.step(f"remaining capacity to {start_ah:g} Ah"):
            rig.bench.bms.set_remaining_capacity(start_ah)
    carried = rig.setup.num("charge_ah") if "charge_ah" in rig.params else m.expected
    before = rig.bench.bms.telemetry()
    with rig.rec.step(f"{direction} {amps:g} A for {duration:g} s: coulomb counting"):
        start = _flow(rig, direction, amps)
        t0 = rig.now()
        mid = rig.bench.bms.telemetry()
        rig.wait(duration)
        end = rig.observe(None)
        elapsed = rig.now() - t0
        rig.condition("standby")
    after = rig.bench.bms.telemetry()
    terminal_mean = (start.terminal_a + end.terminal_a) / 2.0
    check_reported_current(rig, m, float(mid.current_a), start.terminal_a)
    flowed = terminal_mean * elapsed / 3600.0
    if carried is not None and m.tolerance is not None:
        m.check(
            "charge at the terminals",
            abs(flowed - carried) <= m.tolerance,
            f"{flowed:+.3f} Ah at the terminals ({start.terminal_a:+.2f} -> "
            f"{end.terminal_a:+.2f} A for {elapsed:g} s)",
            f"the terminals carried {flowed:+.3f} Ah, the case expects {carried:+g} Ah: "
            "the stimulus, not the counter, is off",
        )
    if "start_ah" in rig.params:
        m.check(
            "SOC at most 100 %",
            after.soc_pct <= 100.0,
            f"SOC {after.soc_pct:g} %, remaining {after.remaining_ah:g} of {after.full_ah:g} Ah",
            f"SOC {after.soc_pct:g} % reported: beyond full",
        )
    m.measured = round(after.remaining_ah - before.remaining_ah, 3)
    m.note = (
        f"remaining {before.remaining_ah:g} -> {after.remaining_ah:g} Ah of "
        f"{after.full_ah:g} Ah ({direction})"
    )
