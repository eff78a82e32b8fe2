"""Wall time of typical simulated-bench scenarios (prints figures; asserts nothing).

    .venv/bin/python benchmarks/sim_speed.py

The World is event-driven: it stops only where the BMS twin can change something (a sample
after an input change, a running timer, the next SOC permille), so the cost of a scenario
follows its events, not its simulated length.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bmssim.twin import TwinConfig
from bmssim.world import World
from bmsspec import load_spec

HOUR_MS = 3_600_000


def _standby_48h(w: World) -> str:
    w.advance(48 * HOUR_MS + 1000)
    return f"flags={sorted(w.flags())}"


def _charge_overcurrent(w: World) -> str:
    block = w.twin.read_block()
    block.switches[56] = False
    w.twin.write_block(block)
    w.charge(110.0)
    w.advance(11_000)
    return f"charge_fet={w.twin.outputs().charge_fet}"


def _transient_lockout(w: World) -> str:
    block = w.twin.read_block()
    block.switches[39] = True
    w.twin.write_block(block)
    w.discharge(250.0)
    w.advance(10 * 62_030)
    return f"locked={w.twin.locked(57)}"


def _charge_one_hour(w: World) -> str:
    w.charge(50.0)
    w.advance(HOUR_MS)
    return f"soc={w.twin.measurements().soc_permille}"


def _discharge_to_cycle(w: World) -> str:
    w.twin.set_remaining_capacity(100.0)
    w.discharge(100.0)
    w.advance(48 * 60_000 + 100)
    return f"cycles={w.twin.measurements().cycles}"


def _noise_ten_minutes(w: World) -> str:
    w.advance(600_000)
    return f"cell1={w.twin.measurements().cell_v[0]}"


SCENARIOS: list[tuple[str, Callable[[World], str], TwinConfig | None]] = [
    ("48 h standby until shutdown", _standby_48h, None),
    ("110 A charge, 10 s overcurrent delay", _charge_overcurrent, None),
    ("250 A transient, 5 trips to lockout", _transient_lockout, None),
    ("1 h charging at 50 A", _charge_one_hour, None),
    ("48 min discharge at 100 A (one cycle)", _discharge_to_cycle, None),
    ("10 min at rest with 2 mV noise", _noise_ten_minutes, TwinConfig(noise_mv=2.0, seed=1)),
]


def main() -> None:
    spec = load_spec()
    print(f"{'scenario':42s} {'wall ms':>9s} {'steps':>7s}  result")
    for name, run, cfg in SCENARIOS:
        world = World(spec, cfg)
        steps0 = world.steps
        t = time.perf_counter()
        result = run(world)
        wall_ms = (time.perf_counter() - t) * 1000
        print(f"{name:42s} {wall_ms:9.1f} {world.steps - steps0:7d}  {result}")


if __name__ == "__main__":
    main()
