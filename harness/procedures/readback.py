"""Parameter-block procedures: every value written and read back, out-of-range refused,
remaining capacity written alone.

The device only accepts the whole block (0xA1); the link does that as a read-modify-write.
A read-back case writes a value different from the configured one (so a device that ignores
writes cannot pass), reads the block again, compares within half a wire step, then restores.
"""

from __future__ import annotations

from harness.procedures.record import Measurement
from harness.procedures.rig import Rig


def write_and_read_back(rig: Rig, m: Measurement, number: int, value: float) -> None:
    """Write one parameter to the plan's new legal value, read the block back, restore."""
    param = rig.spec.param(number)
    block = rig.bench.bms.read_parameters()
    current = float(block.values[number])
    target = value
    m.expected = target
    m.tolerance = param.encoding.scale / 2
    with rig.rec.step(f"write P{number} = {target:g} {param.unit} (was {current:g}), read back"):
        rig.bench.bms.write_parameters({number: target})
        back = rig.bench.bms.read_parameters()
    m.measured = float(back.values[number])
    others = [
        n
        for n, v in block.values.items()
        if n not in (number, 60)
        and abs(float(back.values[n]) - float(v)) > rig.spec.param(n).encoding.scale / 2
    ]
    m.check(
        "other parameters unchanged", not others, f"changed: {', '.join(f'P{n}' for n in others)}"
    )
    with rig.rec.step(f"restore P{number} = {current:g}"):
        rig.bench.bms.write_parameters({number: current})


def out_of_range_refused(rig: Rig, m: Measurement, number: int, value: float) -> None:
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
    m.check("write refused", refused, f"P{number} = {value:g} was accepted")
    changed = [
        n
        for n, v in before.values.items()
        if n != 60 and abs(float(after.values[n]) - float(v)) > rig.spec.param(n).encoding.scale / 2
    ]
    m.check("block unchanged", not changed, f"changed: {', '.join(f'P{n}' for n in changed)}")
    m.note = detail
    if not refused:
        rig.bench.bms.write_parameters({number: float(before.values[number])})


def remaining_capacity_single_write(rig: Rig, m: Measurement, ah: float) -> None:
    """0x49 on index 0x3B: the one parameter written alone; telemetry follows it."""
    before = rig.bench.bms.read_parameters()
    with rig.rec.step(f"write remaining capacity {ah:g} Ah alone (0x49)"):
        rig.bench.bms.set_remaining_capacity(ah)
    tele = rig.bench.bms.telemetry()
    m.expected = ah
    m.tolerance = 0.005
    m.measured = float(tele.remaining_ah)
    rated = float(before.values[59])
    soc = float(tele.soc_pct)
    want_soc = int(1000 * ah / rated) / 10.0
    m.check("SOC follows", abs(soc - want_soc) <= 0.1, f"SOC {soc:g} %, expected {want_soc:g} %")
    after = rig.bench.bms.read_parameters()
    changed = [
        n
        for n, v in before.values.items()
        if n != 60 and abs(float(after.values[n]) - float(v)) > rig.spec.param(n).encoding.scale / 2
    ]
    m.check(
        "no other parameter changed", not changed, f"changed: {', '.join(f'P{n}' for n in changed)}"
    )
