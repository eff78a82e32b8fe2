"""``python -m bmssim``: start the simulated bench and serve it until SIGINT/SIGTERM.

Everything runs in one asyncio loop (the model needs no locks). Once every endpoint
listens, the resolved bench file is written (``--bench-out``), atomically, so a harness
waiting for the file can open the bench the moment the file appears.

It ends on SIGINT/SIGTERM, on a control-channel ``shutdown``, and, with a parent to watch
(``--parent-pid PID``, default ``$BMSHIL_PARENT_PID``), when that process is gone or this
process's parent pid changes (checked every 0.5 s). On any of these, ``--remove-on-exit DIR``
removes DIR (only a directory named ``bmshil-bench-*``) and the bench file. A start-up
failure leaves them (the harness that is waiting reads the logs there), unless the parent is
gone too. Signals that arrive while the program is still importing are held and honoured as
soon as the bench is up, so a harness dying early cannot leave a simulator behind.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bmssim.bench import ParentWatch, SimOptions

#: The parent pid this process had when it started (before the heavy imports).
_PPID_AT_START = os.getppid()


def parse_args(argv: list[str] | None = None) -> SimOptions:
    from bmssim.bench import PARENT_PID_ENV, SimOptions

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
    parser.add_argument(
        "--profile",
        choices=("ideal", "realistic"),
        default="ideal",
        help="device profile: ideal (exact readings) or realistic (per-channel offset, gain "
        "and noise within the stated accuracy, confirmation jitter, line errors; seeded by "
        "--seed)",
    )
    parser.add_argument(
        "--line-error-rate",
        type=float,
        default=None,
        metavar="RATE",
        help="realistic profile: probability that a reply is lost or corrupted (default 0.002)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument(
        "--parent-pid",
        type=int,
        metavar="PID",
        help=f"stop when process PID is gone or this process's parent changes (default: "
        f"${PARENT_PID_ENV} when set; 0: do not watch)",
    )
    parser.add_argument(
        "--remove-on-exit",
        type=Path,
        metavar="DIR",
        help="on exit remove DIR (only a directory named bmshil-bench-*) and the bench file",
    )
    parser.add_argument(
        "--no-relays",
        action="store_true",
        help="no relay card (Keysight 34972A): the bench file has neither the card, the relays "
        "mapping nor the hand-step capabilities",
    )
    parser.add_argument(
        "--bms-protocol",
        choices=("seplos_v2", "modbus_rtu", "modbus_tcp"),
        default="seplos_v2",
        help="the BMS link the bench file names (every endpoint is served either way)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log protocol details")
    args = parser.parse_args(argv)
    parent_pid = args.parent_pid
    if parent_pid is None and os.environ.get(PARENT_PID_ENV, "").strip():
        try:
            parent_pid = int(os.environ[PARENT_PID_ENV])
        except ValueError:
            parser.error(f"${PARENT_PID_ENV}={os.environ[PARENT_PID_ENV]!r} is not a pid")
    from bmssim.twin.profile import make

    try:
        make(args.profile, args.seed, args.line_error_rate)
    except ValueError as exc:
        parser.error(f"--profile {args.profile} --line-error-rate {args.line_error_rate}: {exc}")
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
        profile=args.profile,
        line_error_rate=args.line_error_rate,
        host=args.host,
        parent_pid=parent_pid if parent_pid is not None and parent_pid > 0 else None,
        remove_on_exit=args.remove_on_exit,
        relays=not args.no_relays,
        bms_protocol=args.bms_protocol,
    )


async def run(
    options: SimOptions,
    parent_watch: ParentWatch | None = None,
    held_signals: list[int] | None = None,
) -> None:
    """Start, announce, serve until a signal, a control-channel shutdown or the parent's
    end, close; then remove the ``--remove-on-exit`` files."""
    from bmssim.bench import SimBench

    bench = SimBench(options, parent_watch=parent_watch)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, bench.request_stop)
    if held_signals:
        bench.request_stop()
    started = False
    try:
        await bench.start()
        started = True
        if not bench.stopping:
            for name, where in bench.endpoints().items():
                print(f"bmssim: {name:<11} {where}", flush=True)
            if options.bench_out is not None:
                bench.write_bench_file(options.bench_out)
                print(f"bmssim: bench file  {options.bench_out}", flush=True)
            print("bmssim: ready (Ctrl-C to stop)", flush=True)
            await bench.serve_until_stopped()
        if bench.stop_reason:
            print(f"bmssim: {bench.stop_reason}; stopping", flush=True)
    finally:
        try:
            await bench.stop()
        finally:
            # A failed start keeps the logs for the harness waiting on them, unless nobody
            # is left to read them. The loop's signal handlers are still in place here, so
            # a late SIGTERM cannot cut the clean-up short.
            if started or bench.parent_gone():
                bench.remove_run_files()
        print("bmssim: stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``bmssim``)."""
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    options = parse_args(argv)
    from bmssim.bench import ParentWatch

    watch = (
        ParentWatch(options.parent_pid, ppid=_PPID_AT_START)
        if options.parent_pid is not None
        else None
    )
    try:
        asyncio.run(run(options, watch, held))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        sys.exit(130)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    main()
