"""Power-cycling the BMS through the ``bms_power`` relay, and waiting for it to boot.

A latched protection or a lock-out that no block write clears is cleared the way a person
would clear it: cut the BMS's supply, wait, restore it, and wait until it answers again.
How long the supply stays cut and how long the boot may take are bounded waits on the
bench's clock (virtual on the simulator), never the simulator's constants: the BMS is
polled (device info, 0x51) until it answers or the bound has passed.

While the BMS boots its link is silent by design, so the polls run with no link retries
and the link's count of failed exchanges is reset after each one: a boot is not a lost
bench. Only a BMS still silent at the bound is (``BenchLost``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from instruments.errors import BenchError, BenchLost

#: How long the supply stays cut (bench seconds): long enough for the board to drop out.
POWER_OFF_S = 2.0
#: How long a BMS may take to answer after its supply is restored (bench seconds).
BOOT_TIMEOUT_S = 30.0
#: First wait before the first poll; each later wait doubles, up to ``MAX_POLL_S``.
FIRST_POLL_S = 0.5
MAX_POLL_S = 4.0


@contextlib.contextmanager
def _quiet(link: Any) -> Iterator[None]:
    """No retries while the BMS boots (a silent link costs one timeout per poll, not four)."""
    retries = getattr(link, "retries", None)
    if retries is not None:
        link.retries = 0
    try:
        yield
    finally:
        if retries is not None:
            link.retries = retries
        if hasattr(link, "consecutive_failures"):
            link.consecutive_failures = 0


def wait_for_bms(link: Any, clock: Any, timeout_s: float = BOOT_TIMEOUT_S) -> float:
    """Poll the BMS's device info until it answers; return the bench seconds waited.

    Raises ``BenchLost`` when it has not answered within ``timeout_s`` bench seconds."""
    t0 = float(clock.now())
    wait = FIRST_POLL_S
    last = "no poll yet"
    with _quiet(link):
        while True:
            clock.sleep(wait)
            try:
                link.device_info()
                return float(clock.now()) - t0
            except BenchError as exc:  # BmsLinkError, or BenchLost from the silent count
                last = str(exc)
                if hasattr(link, "consecutive_failures"):
                    link.consecutive_failures = 0
            waited = float(clock.now()) - t0
            if waited >= timeout_s:
                raise BenchLost(
                    "BMS",
                    f"no answer {waited:g} s after its supply was restored "
                    f"(bound {timeout_s:g} s); the last poll: {last}",
                )
            wait = min(MAX_POLL_S, wait * 2, max(timeout_s - waited, 0.05))


def can_power_cycle(bench: Any) -> bool:
    relays = getattr(bench, "relays", None)
    return relays is not None and relays.has("bms_power")


def power_cycle(rig: Any, why: str, off_s: float = POWER_OFF_S) -> float:
    """Cut the BMS's supply through the ``bms_power`` relay, wait ``off_s``, restore it and
    wait for the BMS to answer (bounded). Recorded as one step; returns the boot time."""
    relays = rig.bench.relays
    with rig.rec.step(f"power-cycle the BMS through the bms_power relay ({why})"):
        relays.activate("bms_power")
        try:
            rig.wait(off_s)
        finally:
            relays.release("bms_power")
        booted = wait_for_bms(rig.bench.bms, rig.bench.clock, BOOT_TIMEOUT_S)
    rig.forget_parameters()
    with rig.rec.step(f"the BMS answered {booted:g} s after its supply was restored"):
        pass
    return booted


def power_cycle_by_hands(rig: Any, why: str, off_s: float = POWER_OFF_S) -> float:
    """Power-cycle with the case's ``bms_power`` hand-step: the relay (``power_cycle``), or
    the operator switching the supply off and on; then wait for the BMS (bounded)."""
    hands = rig.hands
    if hands is None or hands.by_relay("bms_power"):
        return power_cycle(rig, why, off_s)
    with rig.rec.step(f"power-cycle the BMS by hand ({why})"):
        hands.activate("bms_power", why)
        try:
            rig.wait(off_s)
        finally:
            hands.release("bms_power", why)
        booted = wait_for_bms(rig.bench.bms, rig.bench.clock, BOOT_TIMEOUT_S)
    rig.forget_parameters()
    return booted
