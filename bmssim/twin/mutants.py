"""Mutants of the twin's firmware logic: plausible firmware mistakes, one name each, for the
mutation benchmark (``benchmarks/mutation.py``).

A mutant is a small, named change to the source of one or two methods of the twin's feature
modules (``bmssim/twin/*.py``): an ``Edit`` names the method (``module.Class.method``), a
fragment of its source that occurs there exactly once, and what the mistake puts there
instead. ``bmssim/twin/mutate.py`` compiles the edited method and binds it to the one
instance of that class in a twin (the board, a feature or the twin itself), so the mutant
lives and dies with the twin's faults and changes no module, no class and no other twin.

It is selected like any other fault of the simulated bench: ``mutant: NAME`` in the faults
YAML (``--sim-faults``, or the control channel's ``faults``); an unknown name is refused
with the file, the key and the value (``bmssim/faults.py``).

Why no mutation-testing library: mutmut (3.x) and cosmic-ray were considered. Both generate
their mutants mechanically from operators (every comparison, constant, boolean ... of the
selected files): thousands for the twin, against a regression that takes about a minute
each, and most of them are not mistakes a firmware writer makes (the issue asks for the
plausible ones: a scan that skips cell 16, a FET table entry, a unit). mutmut runs the
tests in its own process and decides which tests to run from the coverage it records
there; the code under test here runs in another process (the simulator the harness
launches, talking over sockets), which it does not see. cosmic-ray rewrites the module
files on disk for each mutant, so two mutants cannot run at once from one work tree, and a
crashed run leaves a mutated file behind. A short list of named source edits applied in
the simulator's process, chosen from the faults file, fits the two-process bench and
keeps each mutant readable.

``kills`` names the regression case(s) meant to kill the mutant (for a survivor of the
benchmark: the case that would); ``equivalent`` says why no conforming test can tell the
mutant from the twin, when that is so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """``old`` (a fragment occurring exactly once in the method's source) becomes ``new``."""

    target: str  # "module.Class.method", module under bmssim/twin
    old: str
    new: str


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    edits: tuple[Edit, ...]
    kills: str
    equivalent: str | None = None


def _m(name: str, description: str, *edits: Edit, kills: str, equivalent: str | None = None):
    return Mutant(name, description, tuple(edits), kills, equivalent)


E = Edit
Q = "board.Board.quantities"
ROWS_EVAL = "thresholds.ThresholdRows._eval"
ROWS_HOLDS = "thresholds.ThresholdRows.holds"
OWN_SIDES = "acts = acting_sides(b, ROW_SIDES[row.trip], row.params)"
OC_EVAL = "overcurrent.Overcurrent._eval"
OC_NEXT = "overcurrent.Overcurrent.next_event_ms"

# fmt: off
MUTANTS: tuple[Mutant, ...] = (
    # ------------------------------------------------------------------ the board's scans
    _m("scan_skips_cell16", "the highest-cell scan stops at cell 15: cell 16 never counts "
       "for the cell high-voltage rows",
       E(Q, "CELL_MAX: max(cells),", "CELL_MAX: max(cells[:15]),"),
       kills="P01/P05 trip, every channel: 'cell 16 acts'"),
    _m("cell_ntc4_ignored", "the cell temperature scan reads NTCs 1-3 only",
       E(Q, "for k in range(4) if use[k]]", "for k in range(3) if use[k]]"),
       kills="P21-P36 trip, every channel: 'cell NTC 4 acts'"),
    _m("pack_sum_skips_last_cell", "the pack voltage the rows watch sums cells 1-15",
       E(Q, "PACK: round(sum(cells), 3),", "PACK: round(sum(cells[:-1]), 3),"),
       kills="P11-P18 trip/recovery"),
    _m("state_band_5a", "charging/discharging decided beyond +-5 A instead of +-0.5 A",
       E("board.Board.sample_current", "if self.i_ca > STATE_THRESHOLD_CA:",
         "if self.i_ca > 10 * STATE_THRESHOLD_CA:"),
       E("board.Board.sample_current", "elif self.i_ca < -STATE_THRESHOLD_CA:",
         "elif self.i_ca < -10 * STATE_THRESHOLD_CA:"),
       kills="a case holding a current between 0.5 A and 5 A"),
    _m("minutes_counted_as_seconds", "time parameters in minutes are timed as seconds "
       "(P72, P73, P76, P77)",
       E("board.Board.ms", "MS_PER_UNIT.get(unit, 1000.0)",
         "(1000.0 if unit == 'minute' else MS_PER_UNIT.get(unit, 1000.0))"),
       kills="P72/P73/P76/P77 delay"),
    # ------------------------------------------------------------------ threshold rows
    _m("high_trip_strict", "high-side rows trip above the trip value, not at it (> for >=)",
       E(ROWS_EVAL, "trip_c = v >= trip - EPS", "trip_c = v > trip + EPS"),
       kills="a probe exactly at a high-side trip value",
       equivalent="at the spec's tolerance: the trip moves one resolution step (1 mV, 10 mA, "
       "0.1 degC); the regression measures it (P01 3.552 V for 3.55 V, P21 50.2 degC for 50) "
       "but the tolerances (10 mV, 2 degC, 1 %) admit it: a conforming verdict cannot fail it"),
    _m("low_recovery_strict", "low-side rows recover above the recovery value, not at it",
       E(ROWS_EVAL, "clear_c = v > rec + EPS if strict else v >= rec - EPS",
         "clear_c = v > rec + EPS"),
       kills="a probe exactly at a low-side recovery value",
       equivalent="at the spec's tolerance: the recovery moves one resolution step; the "
       "regression measures it (P04 3.102 V for 3.10 V, P24 5.2 degC for 5) within the "
       "tolerances (10 mV, 2 degC): a conforming verdict cannot fail it"),
    _m("cell_protection_recovers_at_trip", "P5/P7 recover at their trip value, not at P6/P8",
       E("thresholds.ThresholdRows._thresholds", "return trip, b.eff(row.recovery), False",
         "return trip, b.eff(row.trip if row.trip in (5, 7) else row.recovery), False"),
       kills="P06/P08 recovery, P05/P07 hold"),
    _m("prohibition_without_hysteresis", "P10 clears at P10 instead of P10 + 0.1 V",
       E("thresholds.ThresholdRows._thresholds",
         "return trip, trip + b.config.charge_prohibition_hysteresis_v, False",
         "return trip, trip, False"),
       kills="a P10 recovery or hold case",
       equivalent="for the spec: it gives P10 no recovery value; the 0.1 V hysteresis is the "
       "twin's own choice (docs/BEHAVIOUR.md), so a device clearing at P10 conforms"),
    _m("charge_rows_act_discharging", "the charge-only rows (P10, P21-P28) act in any state",
       E(ROWS_EVAL, "trip_c = trip_c and cond == b.state",
         "trip_c = trip_c and (cond == b.state or cond == CHARGING)"),
       kills="P21-P27 quiet (outside their condition)"),
    _m("discharge_rows_act_charging", "the discharge-only rows (P29-P36, P80) act in any state",
       E(ROWS_EVAL, "trip_c = trip_c and cond == b.state",
         "trip_c = trip_c and (cond == b.state or cond == DISCHARGING)"),
       kills="P29-P35, P80 quiet (outside their condition)"),
    _m("pack_uv_released_while_waiting", "with S54 waiting for manual activation, the pack "
       "undervoltage (P17) is still released by voltage",
       E(ROWS_EVAL, "if row.trip in MANUAL_ROWS and b.waiting_manual:",
         "if row.trip == MANUAL_ROWS[0] and b.waiting_manual:"),
       kills="P73 delay after a pack undervoltage"),
    _m("cell_difference_latched", "the cell-difference fault never recovers",
       E(ROWS_EVAL, 'if b.fault("latch", row.params, row.switch):',
         'if b.fault("latch", row.params, row.switch) or row.trip == 61:'),
       kills="P62 recovery, P61 hold"),
    _m("s13_ignored", "switch S13 (pack high-voltage alarm) is not looked at",
       E(ROWS_EVAL, "if not b.sw(row.switch):", "if not b.sw(row.switch) and row.switch != 13:"),
       kills="S13 switch-off"),
    _m("row_confirmation_not_restarted", "a row's confirmation timer is not restarted when "
       "its condition falls back",
       E(ROWS_EVAL, 'keep = not b.healthy and b.deviation("timer_not_reset", row.params) '
         "is not None", "keep = True"),
       E("thresholds.ThresholdRows.next_event_ms",
         'if d <= now and not b.healthy and b.deviation("timer_not_reset", row.params):',
         "if d <= now:"),
       kills="a row excursion shorter than the confirmation time, twice"),
    _m("p53_raises_charge_bit", "the discharge overcurrent alarm raises the charge "
       "overcurrent alarm's bit (wrong flag bit)",
       E("thresholds.ThresholdRows.flags", "row.flag\n",
         "('charge_overcurrent_alarm' if row.trip == 53 else row.flag)\n"),
       kills="P53 trip"),
    _m("cell_alarm_opens_charge_fet", "the cell high-voltage alarm (P1) also opens the "
       "charge FET", E(ROWS_HOLDS, OWN_SIDES, "acts = acting_sides(b, ROW_SIDES[row.trip] or "
                       "frozenset({CHARGE} if row.trip == 1 else ()), row.params)"),
       kills="P01 trip (an alarm leaves the current flowing)"),
    _m("ambient_power_protections_discharge_only", "the ambient and power protections "
       "(P43, P45, P49) open only the discharge FET",
       E(ROWS_HOLDS, OWN_SIDES, "acts = acting_sides(b, ROW_SIDES[row.trip] - "
         "({CHARGE} if row.trip in (43, 45, 49) else set()), row.params)"),
       kills="P43/P45/P49 trip"),
    _m("soc_alarm_reads_p80", "the remaining-capacity alarm compares SOC with P80 (the "
       "protection value) instead of P79",
       E("thresholds.ThresholdRows._thresholds", "trip = b.eff(row.trip)",
         "trip = b.eff(80 if row.trip == 79 else row.trip)"),
       kills="P79 trip"),
    _m("gap_only_after_pack_ov", "P81 gap compensation follows only the pack overvoltage "
       "recovery, not the cell one",
       E("thresholds.GapCompensation._row_changed", "if row.trip in (5, 15) and",
         "if row.trip == 15 and"),
       kills="P81 function, S42"),
    # ------------------------------------------------------------------ overcurrent
    _m("overcurrent_timer_not_reset", "the overcurrent delay timer keeps running when the "
       "current falls back (P55-P57)",
       E(OC_EVAL, 'if b.deviation("timer_not_reset", (row.trip, row.delay)) is None:',
         "if False:"),
       E(OC_NEXT, 'if d <= now and b.deviation("timer_not_reset", (row.trip, row.delay)):',
         "if d <= now:"),
       kills="P67/P68 delay restart"),
    _m("lockout_count_off_by_one", "the overcurrent lockout comes one trip late (P71 + 1)",
       E(OC_EVAL, "if locks and st.count >= lock_count(b):",
         "if locks and st.count > lock_count(b):"),
       kills="P71 lockout count"),
    _m("discharge_delay_from_p67", "the discharge overcurrent times its delay with P67 (the "
       "charge delay) instead of P68",
       E("overcurrent.Overcurrent._delay_ms", "return self.board.ms(row.delay)",
         "return self.board.ms(67 if row.trip == 56 else row.delay)"),
       kills="P68 delay (P68 set apart from P67)"),
    _m("recovery_fixed_60s", "the overcurrent output retry comes after a fixed 60 s, not P70",
       E(OC_EVAL, "t >= st.tripped_at + b.ms(70)", "t >= st.tripped_at + 60_000"),
       E(OC_NEXT, "c.append(max(st.tripped_at + b.ms(70), now + 1))",
         "c.append(max(st.tripped_at + 60_000, now + 1))"),
       kills="P70 delay with P70 set apart from 60 s"),
    _m("transient_lockout_ignores_s39", "the transient overcurrent locks out whatever S39 says",
       E(OC_EVAL, "locks = row.lock_switch is None or b.sw(row.lock_switch)", "locks = True"),
       kills="S39 switch-off"),
    _m("transient_on_sampled_current", "the transient comparator reads the 10 ms current "
       "sample instead of the 1 ms comparator",
       E("overcurrent.Overcurrent.comparator",
         "current_a = round(self.board.inputs.current_a, 2)",
         "current_a = self.board.i_ca / 100.0"),
       kills="P69 timed at several phases of the 10 ms current sampling (the step repeated "
       "after each P70 recovery): up to 10 ms late against +-3 ms; the regression's one step "
       "came 2 ms late (32 ms), inside the tolerance"),
    _m("lockout_survives_block_write", "a block write releases no overcurrent lockout",
       E("overcurrent.Overcurrent.block_written", "for st in self.states.values():",
         "for st in ():"),
       kills="P71 lockout (cleared by the block write)"),
    _m("short_lockout_ignores_s40", "the short-circuit lockout acts whatever S40 says",
       E("overcurrent.ShortCircuit.comparator", "if b.sw(40) and st.count >= lock_count(b):",
         "if st.count >= lock_count(b):"),
       kills="S40 switch-off"),
    _m("secondary_trip_charge_only", "the secondary trip opens only the charge FET",
       E("overcurrent.SecondaryTrip.holds", "return held, held", "return held, False"),
       kills="S32 switch-on"),
    # ------------------------------------------------------------------ balancing, heating
    _m("balancing_stops_at_start_difference", "balancing stops at the start difference P63 "
       "instead of the stop difference P64",
       E("balancing.Balancing.vt", "stop = diff <= b.eff(64) + EPS",
         "stop = diff <= b.eff(63) + EPS"),
       kills="P64 trip, P63 hold"),
    _m("static_timer_not_restarted_by_charge", "a brief charge does not restart the "
       "static-balancing timer (only a discharge does)",
       E("balancing.Balancing.sample", "if b.state_changed and b.state != STANDBY:",
         "if b.state_changed and b.state not in (STANDBY, CHARGING):"),
       kills="P65 delay (the brief charge after the timed stop)"),
    _m("balancing_ignores_s52", "balancing goes on at or above the ambient alarm value with S52 on",
       E("balancing.Balancing.vt", "if b.sw(52) and amb is not None",
         "if False and amb is not None"),
       kills="S52 switch-on"),
    _m("heating_start_stop_swapped", "the heater starts at P38 and stops at P37",
       E("heating.Heating.vt", "tmin <= b.eff(37) + EPS, tmin >= b.eff(38) - EPS",
         "tmin <= b.eff(38) + EPS, tmin >= b.eff(37) - EPS"),
       kills="P37 trip, P38 recovery"),
    _m("heating_without_charger", "the heater runs without a charger present",
       E("heating.Heating.vt", "if not b.sw(31) or not b.inputs.charger_present or tmin is None:",
         "if not b.sw(31) or tmin is None:"),
       kills="P37 quiet (no charger)"),
    # ------------------------------------------------------------------ limiting, activation
    _m("passive_limit_starts_at_p52", "passive current limiting starts at P52 instead of P51",
       E("limiting.CurrentLimiting.current", "beyond = b.i_ca / 100.0 >= b.eff(51) - EPS",
         "beyond = b.i_ca / 100.0 >= b.eff(52) - EPS"),
       kills="P51 limit onset"),
    _m("limit_time_in_seconds", "the P72 limiting time is counted in seconds, not minutes",
       E("limiting.CurrentLimiting.current", "self.until = t + b.ms(72)",
         "self.until = t + int(b.eff(72) * 1000)"),
       kills="P72 delay"),
    _m("active_limit_never_engages", "S55 active current limiting never engages",
       E("limiting.CurrentLimiting.on", "if b.sw(55) and b.inputs.charger_present:",
         "if False and b.inputs.charger_present:"),
       kills="S55 switch-on"),
    _m("activation_delay_in_seconds", "the P73 activation delay is counted in seconds",
       E("activation.ChargeActivation.press", "self.manual_due = b.t + b.ms(73)",
         "self.manual_due = b.t + int(b.eff(73) * 1000)"),
       kills="P73 delay"),
    _m("auto_activation_ignores_soc", "S53 automatic activation waits only after P7/P17, not "
       "after the SOC protection P80",
       E("activation.ChargeActivation.waiting_auto", "for n in PULSE_ROWS", "for n in MANUAL_ROWS"),
       kills="P74 delay after the remaining-capacity protection"),
    # ------------------------------------------------------------------ capacity, busbar
    _m("coulomb_counts_down_charging", "the coulomb counter counts down while charging",
       E("coulomb.CoulombCounter.integrate", "before + b.i_ca * dt", "before - abs(b.i_ca) * dt"),
       kills="P60 coulomb counting while charging"),
    _m("soc_not_clamped", "remaining capacity and SOC are not clamped at full",
       E("coulomb.CoulombCounter.integrate", "after = min(full, max(0, before + b.i_ca * dt))",
         "after = max(0, before + b.i_ca * dt)"),
       E("board.Board.soc_permille", "return min(1000, (1000 * self.remaining_u) // full)",
         "return (1000 * self.remaining_u) // full"),
       kills="P60 coulomb counting charging past full"),
    _m("cycle_at_full_capacity", "a cycle is counted per full capacity discharged, not P82 %",
       E("coulomb.CoulombCounter._threshold_u",
         "int(self.board.full_u() * self.board.eff(82) / 100.0)", "int(self.board.full_u())"),
       kills="P82 function"),
    _m("busbar_sign_wrong_charging", "busbar compensation adds |I| x R while charging too",
       E("busbar.BusbarCompensation.compensate", "cells[pos - 1] - i_a * r_ohm",
         "cells[pos - 1] + abs(i_a) * r_ohm"),
       kills="P85/P87 while charging"),
    _m("busbar_position_off_by_one", "busbar compensation corrects the cell after P84/P86",
       E("busbar.BusbarCompensation.compensate", "pos = int(round(b.values[pos_n]))",
         "pos = int(round(b.values[pos_n])) + 1"),
       kills="P84/P86 function, P85/P87"),
    # ------------------------------------------------------------------ power, soft start
    _m("standby_shutdown_ignores_s58", "the standby shutdown cannot be switched off (S58)",
       E("power.PowerState.due", "if b.shutdown or not b.sw(58) or b.inputs.charger_present:",
         "if b.shutdown or b.inputs.charger_present:"),
       kills="S58 switch-off (the check 'stays awake (S58 off)' of P65's restart case, whose "
       "hour of rest runs with S58 off and P78 at 1 h)"),
    _m("power_switch_ignored", "with S57 on, the external power switch has no effect",
       E("power.PowerState.switched_off",
         "return b.sw(57) and (not b.inputs.power_switch or self.switch_latched_off)",
         "return b.sw(57) and self.switch_latched_off"),
       kills="S57 switch-on"),
    _m("soft_start_ignores_s48", "the P58 soft start runs whatever S48 says",
       E("softstart.SoftStart.fets_set", "if b.dsg_fet and not was_dsg and b.sw(48):",
         "if b.dsg_fet and not was_dsg:"),
       kills="S48 switch-off"),
    _m("soft_start_in_ticks", "the P58 soft-start time is counted in 10 ms ticks as ms",
       E("softstart.SoftStart.fets_set", "delay = b.ms(58)", "delay = b.ms(58) // 10"),
       kills="P58 delay"),
    _m("history_intervals_swapped", "history records use P77 while working and P76 at rest",
       E("recording.HistoryRecorder.due",
         "interval = b.ms(76) if self.mode != STANDBY else b.ms(77)",
         "interval = b.ms(77) if self.mode != STANDBY else b.ms(76)"),
       kills="P76/P77 delay"),
    _m("reported_current_sign", "the reported current has the wrong sign (0x42, Modbus)",
       E("contract.TwinContract.measurements", "current, pack = b.i_ca / 100.0,",
         "current, pack = -b.i_ca / 100.0,"),
       kills="P60 coulomb counting while charging, P85/P87 while charging: the reported "
       "current against the terminals (also the report cases of issue 10 item 7)"),
)
# fmt: on

BY_NAME: dict[str, Mutant] = {m.name: m for m in MUTANTS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
