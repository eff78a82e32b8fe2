"""Parameter-block procedures: every value written and read back, out-of-range refused,
remaining capacity written alone.

The device only accepts the whole block (0xA1); the link does that as a read-modify-write.
A read-back case writes a value different from the configured one (so a device that ignores
writes cannot pass), reads the block again, compares within half a wire step, then restores.
"""

from __future__ import annotations

from typing import Any

from harness.procedures.record import Measurement
from harness.procedures.rig import Rig


def _changed(rig: Rig, before: Any, after: Any, skip: tuple[int, ...]) -> list[str]:
    """Parameters (other than ``skip``: the one written and the live ones the device moves
    itself) whose read-back moved by more than half a wire step, as ``P3 3.5 -> 3.6``."""
    return [
        f"P{n} {float(v):g} -> {float(after.values[n]):g}"
        for n, v in before.values.items()
        if n not in skip
        and abs(float(after.values[n]) - float(v)) > rig.spec.param(n).encoding.scale / 2
    ]


def _compared(before: Any, changed: list[str], skip: tuple[int, ...], what: str) -> str:
    """What the comparison of the read-back block saw (true whether anything moved or not)."""
    compared = len([n for n in before.values if n not in skip])
    return f"{compared} {what} read back: {', '.join(changed) if changed else 'none changed'}"


def write_and_read_back(
    rig: Rig, m: Measurement, number: int, value: float, live: tuple[int, ...] = ()
) -> None:
    """Write one parameter to the plan's new legal value, read the block back, restore."""
    param = rig.spec.param(number)
    block = rig.bench.bms.read_parameters()
    current = float(block.values[number])
    target = value
    with rig.rec.step(f"write P{number} = {target:g} {param.unit} (was {current:g}), read back"):
        rig.bench.bms.write_parameters({number: target})
        back = rig.bench.bms.read_parameters()
    m.measured = float(back.values[number])
    others = _changed(rig, block, back, (number, *live))
    m.check(
        "other parameters unchanged",
        not others,
        _compared(block, others, (number, *live), "other parameters"),
        f"writing P{number} changed {', '.join(others)}",
    )
    with rig.rec.step(f"restore P{number} = {current:g}"):
        rig.bench.bms.write_parameters({number: current})


def out_of_range_refused(
    rig: Rig, m: Measurement, number: int, value: float, live: tuple[int, ...] = ()
) -> None:
    """A block carrying an out-of-range value is refused and nothing changes."""
    before = rig.bench.bms.read_parameters()
    refused = False
    detail = ""
    with rig.rec.step(f"write P{number} = {value:g} (outside its range)"):
        try:
            rig.bench.bms.write_parameters({number: value})
        except Exception as exc:  # the link raises BmsRejected (or a range error) on refusal
            refused = True
            detail = str(exc)
    after = rig.bench.bms.read_parameters()
    # The measured value is what the device holds afterwards: its configured value if the
    # write was refused, the out-of-range value if it was wrongly accepted.
    m.measured = float(after.values[number])
    m.check(
        "write refused",
        refused,
        f"P{number} = {value:g} {f'refused ({detail})' if refused else 'accepted'}; "
        f"P{number} reads {m.measured:g} afterwards",
        f"P{number} = {value:g} was accepted",
    )
    changed = _changed(rig, before, after, live)
    m.check(
        "block unchanged",
        not changed,
        _compared(before, changed, live, "parameters"),
        f"the out-of-range write changed {', '.join(changed)}",
    )
    m.note = detail
    if not refused:
        rig.bench.bms.write_parameters({number: float(before.values[number])})


def remaining_capacity_single_write(
    rig: Rig, m: Measurement, ah: float, live: tuple[int, ...] = ()
) -> None:
    """0x49 on index 0x3B: the one parameter written alone; telemetry follows it."""
    before = rig.bench.bms.read_parameters()
    with rig.rec.step(f"write remaining capacity {ah:g} Ah alone (0x49)"):
        rig.bench.bms.set_remaining_capacity(ah)
    tele = rig.bench.bms.telemetry()
    m.measured = float(tele.remaining_ah)
    rated = float(before.values[59])
    soc = float(tele.soc_pct)
    want_soc = int(1000 * ah / rated) / 10.0
    m.check(
        "SOC follows",
        abs(soc - want_soc) <= 0.1,
        f"SOC {soc:g} % reported for {ah:g} Ah of {rated:g} Ah rated ({want_soc:g} % by ratio)",
        f"SOC {soc:g} %, expected {want_soc:g} %",
    )
    after = rig.bench.bms.read_parameters()
    changed = _changed(rig, before, after, live)
    m.check(
        "no other parameter changed",
        not changed,
        _compared(before, changed, live, "parameters"),
        f"the remaining-capacity write changed {', '.join(changed)}",
    )
