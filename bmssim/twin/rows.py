"""The threshold rows of the spec as the board evaluates them (docs/BEHAVIOUR.md "Rows").

Each row names its trip parameter, its recovery, the measured quantity it watches, the
switch that enables it, the 0x44 flag it raises and the FET it opens. The behaviour is keyed
by spec item number; the operating condition is taken from the spec tables when they carry
one (``condition`` in test_plans/parameters.yaml) so that plan and twin cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

# Quantities a row can watch (computed at each sample by the twin).
CELL_MAX = "cell_max"
CELL_MIN = "cell_min"
CELL_DIFF = "cell_diff"
PACK = "pack"
PORT = "port"
TCELL_MAX = "tcell_max"
TCELL_MIN = "tcell_min"
AMBIENT = "ambient"
POWER = "power"
CURRENT = "current"
SOC = "soc"

VT = "vt"  # sampled with the voltage/temperature period (100 ms)
CUR = "cur"  # sampled with the current period (10 ms)

CHARGE = "charge"
DISCHARGE = "discharge"
BOTH = "both"


@dataclass(frozen=True)
class Row:
    """One trip/recovery pair.

    ``recovery`` None: the row's recovery is special (P10: trip + hysteresis; P79/P80: the
    flag clears as soon as SOC is back above the threshold).
    """

    trip: int
    recovery: int | None
    source: str
    direction: str  # high | low
    switch: int
    flag: str
    action: str | None  # None (alarm) | charge | discharge | both
    condition: str = "any"  # any | charging | discharging (default when the spec has none)
    period: str = VT

    @property
    def params(self) -> tuple[int, ...]:
        return (self.trip,) if self.recovery is None else (self.trip, self.recovery)


def _r(trip, recovery, source, direction, switch, flag, action=None, condition="any", period=VT):
    return Row(trip, recovery, source, direction, switch, flag, action, condition, period)


# fmt: off
ROWS: tuple[Row, ...] = (
    _r(1, 2, CELL_MAX, "high", 9, "cell_high_voltage_alarm"),
    _r(3, 4, CELL_MIN, "low", 11, "cell_low_voltage_alarm"),
    _r(5, 6, CELL_MAX, "high", 10, "cell_overvoltage_protection", CHARGE),
    _r(7, 8, CELL_MIN, "low", 12, "cell_undervoltage_protection", DISCHARGE),
    _r(10, None, CELL_MIN, "low", 45, "low_voltage_charge_prohibition", CHARGE, "charging"),
    _r(11, 12, PACK, "high", 13, "pack_high_voltage_alarm"),
    _r(13, 14, PACK, "low", 15, "pack_low_voltage_alarm"),
    _r(15, 16, PACK, "high", 14, "pack_overvoltage_protection", CHARGE),
    _r(17, 18, PACK, "low", 16, "pack_undervoltage_protection", DISCHARGE),
    _r(19, 20, PORT, "high", 41, "charger_overvoltage_protection", CHARGE),
    _r(21, 22, TCELL_MAX, "high", 17, "charge_high_temperature_alarm", None, "charging"),
    _r(23, 24, TCELL_MIN, "low", 19, "charge_low_temperature_alarm", None, "charging"),
    _r(25, 26, TCELL_MAX, "high", 18, "charge_overtemperature_protection", CHARGE, "charging"),
    _r(27, 28, TCELL_MIN, "low", 20, "charge_undertemperature_protection", CHARGE, "charging"),
    _r(29, 30, TCELL_MAX, "high", 21, "discharge_high_temperature_alarm", None, "discharging"),
    _r(31, 32, TCELL_MIN, "low", 23, "discharge_low_temperature_alarm", None, "discharging"),
    _r(33, 34, TCELL_MAX, "high", 22, "discharge_overtemperature_protection", DISCHARGE,
       "discharging"),
    _r(35, 36, TCELL_MIN, "low", 24, "discharge_undertemperature_protection", DISCHARGE,
       "discharging"),
    _r(39, 40, AMBIENT, "high", 25, "ambient_high_temperature_alarm"),
    _r(41, 42, AMBIENT, "low", 27, "ambient_low_temperature_alarm"),
    _r(43, 44, AMBIENT, "high", 26, "ambient_overtemperature_protection", BOTH),
    _r(45, 46, AMBIENT, "low", 28, "ambient_undertemperature_protection", BOTH),
    _r(47, 48, POWER, "high", 30, "power_high_temperature_alarm"),
    _r(49, 50, POWER, "high", 29, "power_overtemperature_protection", BOTH),
    _r(51, 52, CURRENT, "high", 33, "charge_overcurrent_alarm", None, "charging", CUR),
    _r(53, 54, CURRENT, "low", 35, "discharge_overcurrent_alarm", None, "discharging", CUR),
    _r(61, 62, CELL_DIFF, "high", 5, "cell_difference_fault"),
    _r(79, None, SOC, "low", 43, "remaining_capacity_alarm"),
    _r(80, None, SOC, "low", 44, "remaining_capacity_protection", DISCHARGE, "discharging"),
)

# fmt: on

ROW_BY_TRIP: dict[int, Row] = {r.trip: r for r in ROWS}


@dataclass(frozen=True)
class OvercurrentRow:
    """A delayed overcurrent protection with P70 recovery and P71 lockout."""

    trip: int
    delay: int  # parameter holding the delay (its spec unit gives the time scale)
    switch: int
    flag: str
    action: str
    direction: str  # high (charge) | low (discharge, negative currents)
    period: str  # CUR: 10 ms samples; "cmp": the 1 ms transient comparator
    lock_switch: int | None  # None: always locks after P71 trips
    lock_flag: str | None


# fmt: off
OVERCURRENT_ROWS: tuple[OvercurrentRow, ...] = (
    OvercurrentRow(55, 67, 34, "charge_overcurrent_protection", CHARGE, "high", CUR,
                   None, None),
    OvercurrentRow(56, 68, 36, "discharge_overcurrent_protection", DISCHARGE, "low", CUR,
                   None, None),
    OvercurrentRow(57, 69, 37, "transient_overcurrent_protection", DISCHARGE, "low", "cmp",
                   39, "transient_overcurrent_lockout"),
)
# fmt: on


@dataclass
class Hysteresis:
    """Confirmation state of one condition: ``active`` once the trip condition held for the
    confirmation time; back to inactive once the clear condition held as long."""

    active: bool = False
    pending_since: int | None = None
    changed_at: int | None = None

    def step(
        self, t: int, trip: bool, clear: bool, confirm_ms: int, keep_pending: bool = False
    ) -> bool:
        """Advance to ``t``; return True when ``active`` flipped. ``keep_pending``: a
        condition that falls back does not restart the confirmation (``timer_not_reset``)."""
        want = clear if self.active else trip
        if not want:
            if not keep_pending:
                self.pending_since = None
            return False
        if self.pending_since is None:
            self.pending_since = t
        if t - self.pending_since >= confirm_ms:
            self.active = not self.active
            self.pending_since = None
            self.changed_at = t
            return True
        return False

    def force(self, active: bool, t: int | None = None) -> bool:
        changed = self.active != active
        self.active = active
        self.pending_since = None
        if changed:
            self.changed_at = t
        return changed

    def deadline(self, confirm_ms: int) -> int | None:
        return None if self.pending_since is None else self.pending_since + confirm_ms
