"""``python -m bmssim``: start the simulated bench and serve it until SIGINT/SIGTERM.

Everything runs in one asyncio loop (the model needs no locks). Once every endpoint
listens, the resolved bench file is written (``--bench-out``), atomically, so a harness
waiting for the file can open the bench the moment the file appears.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from bmssim.bench import SimBench, SimOptions


def parse_args(argv: list[str] | None = None) -> SimOptions:
    parser = argparse.ArgumentParser(
        prog="python -m bmssim",
        description="Simulated BMS bench: Seplos V2 twin, SCPI instruments, virtual clock.",
    )
    parser.add_argument("--bench-out", type=Path, help="write the resolved bench file here")
    parser.add_argument("--faults", type=Path, help="faults YAML (firmware deviations, link)")
    parser.add_argument(
        "--realtime", action="store_true", help="run the clock in real time (default: virtual)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the measurement noise")
    parser.add_argument(
        "--noise", action="store_true", help="add measurement noise (1 mV cells, 0.1 °C)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("-v", "--verbose", action="store_true", help="log protocol details")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="bmssim %(levelname)s %(name)s: %(message)s",
    )
    return SimOptions(
        bench_out=args.bench_out,
        faults_file=args.faults,
        realtime=args.realtime,
        seed=args.seed,
        noise=args.noise,
        host=args.host,
    )


async def run(options: SimOptions) -> None:
    """Start, announce, serve until a signal or a control-channel shutdown, close."""
    bench = SimBench(options)
    await bench.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, bench.request_stop)
    try:
        for name, where in bench.endpoints().items():
            print(f"bmssim: {name:<11} {where}", flush=True)
        if options.bench_out is not None:
            bench.write_bench_file(options.bench_out)
            print(f"bmssim: bench file  {options.bench_out}", flush=True)
        print("bmssim: ready (Ctrl-C to stop)", flush=True)
        await bench.serve_until_stopped()
    finally:
        await bench.stop()
        print("bmssim: stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``bmssim``)."""
    options = parse_args(argv)
    try:
        asyncio.run(run(options))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        sys.exit(130)


if __name__ == "__main__":
    main()
