"""Which firmware deviation kinds make sense for which parameter, from the twin's own tables.

``bmssim/faults.py`` refuses a kind on an item it cannot apply to with the reason
:func:`refusal` gives, so a faults file never asks for a deviation the twin would ignore.
The functions a parameter belongs to are the rows of ``rows.ROWS`` (trip, recovery), the
overcurrent rows (trip, delay), balancing (P9, P63, P64) and heating (P37, P38).
"""

from __future__ import annotations

from bmssim.twin.rows import (
    BOTH,
    CELL_DIFF,
    CELL_MAX,
    CELL_MIN,
    CHARGE,
    DISCHARGE,
    OVERCURRENT_ROWS,
    ROWS,
    TCELL_MAX,
    TCELL_MIN,
)

#: Kinds that act on one function of a parameter (not on a switch).
FUNCTION_KINDS = (
    "channel_ignored",
    "condition_ignored",
    "extra_action",
    "wrong_fet",
    "no_hysteresis",
    "timer_not_reset",
)
#: FET values: extra_action takes charge | discharge | both, wrong_fet charge | discharge.
EXTRA_ACTIONS = (CHARGE, DISCHARGE, BOTH)
WRONG_FETS = (CHARGE, DISCHARGE)

BALANCING_PARAMS = (9, 63, 64)
HEATING_PARAMS = (37, 38)
CELLS = 16
CELL_NTCS = 4

CELL_SOURCES = (CELL_MAX, CELL_MIN, CELL_DIFF)
NTC_SOURCES = (TCELL_MAX, TCELL_MIN)


def sides(action: str | None) -> frozenset[str]:
    """The FETs an action opens."""
    if action is None:
        return frozenset()
    return frozenset((CHARGE, DISCHARGE)) if action == BOTH else frozenset((action,))


def channels_of(n: int) -> tuple[str, int] | None:
    """(``cell`` | ``cell NTC``, how many) for a parameter on a per-channel quantity."""
    for row in ROWS:
        if n in row.params:
            if row.source in CELL_SOURCES:
                return "cell", CELLS
            if row.source in NTC_SOURCES:
                return "cell NTC", CELL_NTCS
            return None
    if n in BALANCING_PARAMS:
        return "cell", CELLS
    if n in HEATING_PARAMS:
        return "cell NTC", CELL_NTCS
    return None


def refusal(kind: str, n: int, value: object = None, channel: object = None) -> str | None:
    """Why ``kind`` cannot apply to parameter ``n`` (None: it applies)."""
    row = next((r for r in ROWS if n in r.params), None)
    oc = next((r for r in OVERCURRENT_ROWS if n in (r.trip, r.delay)), None)
    if kind == "channel_ignored":
        family = channels_of(n)
        if family is None:
            return "its function watches no per-channel quantity (cells 1-16, cell NTCs 1-4)"
        name, count = family
        if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= count:
            return f"needs 'channel' {name} 1..{count}, got {channel!r}"
        return None
    if channel is not None:
        return f"takes no 'channel', got {channel!r}"
    if kind == "condition_ignored":
        if row is None or row.condition == "any":
            return "its function has no operating condition (it acts in any already)"
        return None
    if kind in ("extra_action", "wrong_fet"):
        own = sides(row.action) if row is not None else sides(oc.action) if oc else None
        if own is None:
            return "it belongs to no protection or alarm row"
        allowed = EXTRA_ACTIONS if kind == "extra_action" else WRONG_FETS
        if value not in allowed:
            return f"needs 'value' one of {list(allowed)}, got {value!r}"
        if kind == "wrong_fet" and not own:
            return "an alarm opens no FET, so none can be the wrong one"
        if kind == "extra_action" and sides(str(value)) <= own:
            return f"it opens {value} already"
        if kind == "wrong_fet" and own == sides(str(value)):
            return f"{value} is its own FET"
        return None
    if kind == "no_hysteresis":
        if row is None or (row.recovery is None and row.trip != 10):
            return "its function has no recovery value (it recovers at the trip already)"
        return None
    if kind == "timer_not_reset":
        if row is None and oc is None:
            return "its function has no confirmation or delay timer"
        return None
    return f"unknown kind {kind!r}"
