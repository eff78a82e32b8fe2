"""The scenarios of ``sim_speed.py``, each repeated, best CPU time (prints; asserts nothing).

    .venv/bin/python benchmarks/sim_speed_min.py [REPEATS]

On a shared machine one wall-clock run per scenario is mostly noise; the minimum process
time over a few repeats is what the code costs, so two versions of the twin can be compared
(run it with each on ``PYTHONPATH``, alternating).
"""

from __future__ import annotations

import sys
import time

from sim_speed import SCENARIOS  # beside this script (sys.path[0] when run as one)

from bmssim.world import World
from bmsspec import load_spec


def main(repeats: int = 5) -> None:
    spec = load_spec()
    print(f"{'scenario':42s} {'best cpu ms':>11s}  (of {repeats})")
    for name, run, cfg in SCENARIOS:
        best = float("inf")
        for _ in range(repeats):
            world = World(spec, cfg)
            t = time.process_time()
            run(world)
            best = min(best, time.process_time() - t)
        print(f"{name:42s} {best * 1000:11.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
