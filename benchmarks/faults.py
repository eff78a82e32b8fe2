"""Fault matrix: does a run ever report better than what happened?

Runs ``bmshil run`` on the simulated bench (a conforming device) and hurts it on purpose:
kill -9 of the run at three points, SIGINT, SIGTERM, the simulator killed mid-run, and link
faults (dropped, corrupt, and late replies beyond the link timeout). After each run it reads
the results directory the way every report does (``reports.runs.load_run``) and counts:

- false PASS: a run whose verdict reads PASS although not every planned case has a final
  passing record (or that was hurt and still says complete);
- product failures on the conforming device (a bench fault reported as a device defect);
- records lost: records of cases finished before the fault that the directory no longer has;
- processes left behind: simulators or bench work directories still there after the run;
- resumed runs completed: after each cut run, ``bmshil run --resume`` must end with every
  planned case exactly once (results and JUnit) and PASS.

Usage: ``python benchmarks/faults.py [--select EXPR] [--link-select EXPR]``. The cut runs use
the full regression unless ``--select`` narrows them; the link-fault runs use a selection
(default below) because every lost reply costs real time on the line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reports.runs import load_run  # noqa: E402

LINK_SELECT = (
    "P01 or P02 or P05 or P06 or P07 or P08 or P13 or P14 or P25 or P26 or P67 or S10 or S13"
)


@dataclass
class Outcome:
    name: str
    exit_code: int | None = None
    verdict: str = ""
    status: str = ""
    planned: int = 0
    final: int = 0
    false_pass: int = 0
    product_failures: int = 0
    records_lost: int = 0
    left_behind: int = 0
    resumed: str = "-"
    stop_s: float | None = None
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(entry.name))
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Watch:
    """What one run started: its simulator children and their work directories, sampled
    while it runs (other runs on the machine are not counted)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.children: set[int] = set()
        self.dirs: set[str] = set()

    def sample(self) -> None:
        for child in _children(self.pid):
            cmd = _cmdline(child)
            if "bmssim" in cmd:
                self.children.add(child)
                if "--remove-on-exit" in cmd:
                    self.dirs.add(cmd[cmd.index("--remove-on-exit") + 1])

    def left_behind(self) -> int:
        return sum(1 for p in self.children if _alive(p)) + sum(
            1 for d in self.dirs if Path(d).exists()
        )


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def bmshil(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def scenario(
    name: str,
    work: Path,
    select: str | None,
    action: str | None = None,
    after_records: int = 0,
    faults: str | None = None,
    resume: bool = False,
) -> Outcome:
    out = work / name
    args = ["run", "--out", str(out), "--results-root", str(work / "root")]
    if select:
        args += ["-k", select]
    if faults:
        faults_file = work / f"{name}-faults.yaml"
        faults_file.write_text(faults, encoding="utf-8")
        args += ["--sim-faults", str(faults_file)]
    t0 = time.perf_counter()
    proc = bmshil(*args)
    watch = Watch(proc.pid)
    res = Outcome(name)
    before_ids: set[str] = set()
    hurt_at = None
    if action:
        while proc.poll() is None and len(_lines(out / "results.jsonl")) < after_records:
            watch.sample()
            time.sleep(0.05)
        watch.sample()
        before_ids = {r["test_id"] for r in _lines(out / "results.jsonl")}
        hurt_at = time.perf_counter()
        if proc.poll() is not None:
            res.notes.append("the run ended before the fault could be applied")
            action = None
        if action == "kill9":
            os.kill(proc.pid, signal.SIGKILL)
        elif action in ("SIGINT", "SIGTERM"):
            os.kill(proc.pid, getattr(signal, action))
        elif action == "kill-sim":
            for child in _children(proc.pid):
                os.kill(child, signal.SIGKILL)
    while proc.poll() is None:
        watch.sample()
        time.sleep(0.2)
    res.exit_code = proc.wait()
    if action == "kill-sim" and hurt_at is not None:
        res.stop_s = time.perf_counter() - hurt_at
    res.wall_s = time.perf_counter() - t0
    _judge(res, out, before_ids, hurt=action is not None)
    deadline = time.monotonic() + 15
    while watch.left_behind() and time.monotonic() < deadline:
        time.sleep(0.2)
    res.left_behind = watch.left_behind()
    if resume and action:
        again = bmshil("run", "--resume", str(out), "--results-root", str(work / "root"))
        again.wait(timeout=3600)
        data = load_run(out)
        comp = data.completion
        finals = _finals(data.records)
        junit = ET.parse(out / "junit.xml").getroot()
        names = [c.get("name") for c in junit.iter("testcase")]
        once = sorted(names) == sorted(set(names)) and set(names) == set(data.info["planned"])
        ok = comp.complete and comp.verdict == "PASS" and once and set(finals) >= set(names)
        res.resumed = "yes" if ok else "NO"
        if not ok:
            res.notes.append(f"resume: {comp.status} {comp.verdict} once={once}")
        res.product_failures += sum(1 for r in finals.values() if r["outcome"] == "failed")
    return res


def _finals(records: list[dict]) -> dict[str, dict]:
    finals: dict[str, dict] = {}
    for r in records:
        if r["outcome"] == "not_run":
            finals.pop(r["test_id"], None)
        else:
            finals[r["test_id"]] = r
    return finals


def _judge(res: Outcome, out: Path, before_ids: set[str], hurt: bool) -> None:
    data = load_run(out)
    comp = data.completion
    finals = _finals(data.records)
    res.verdict, res.status = comp.verdict, comp.status
    res.planned, res.final = comp.planned, len(finals)
    everything_passed = all(
        (finals.get(t) or {}).get("outcome") in ("passed", "skipped")
        for t in data.info.get("planned") or []
    )
    if comp.verdict == "PASS" and not (comp.complete and everything_passed):
        res.false_pass = 1
    if hurt and comp.verdict == "PASS" and res.name.startswith(("kill", "SIG", "sim")):
        res.false_pass = 1
    res.product_failures = sum(1 for r in finals.values() if r["outcome"] == "failed")
    kept = {r["test_id"] for r in data.records}
    res.records_lost = len(before_ids - kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--select", default=None, help="-k expression for the cut runs")
    parser.add_argument("--link-select", default=LINK_SELECT, help="-k for the link-fault runs")
    parser.add_argument("--keep", default=None, help="keep the results under this directory")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bmshil-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    n_cut = 20 if args.select else 60
    matrix = [
        ("kill9-early", dict(action="kill9", after_records=3, resume=True)),
        ("kill9-middle", dict(action="kill9", after_records=n_cut, resume=True)),
        (
            "kill9-late",
            dict(action="kill9", after_records=n_cut * 4 if not args.select else 32, resume=True),
        ),
        ("SIGINT", dict(action="SIGINT", after_records=n_cut, resume=True)),
        ("SIGTERM", dict(action="SIGTERM", after_records=n_cut, resume=True)),
        ("sim-killed", dict(action="kill-sim", after_records=n_cut, resume=True)),
    ]
    results = []
    for name, kw in matrix:
        results.append(scenario(name, work, args.select, **kw))
        _print_row(results[-1])
    link = [
        ("link-dropped", "link: {drop_every: 7}\n"),
        ("link-corrupt", "link: {corrupt_every: 11}\n"),
        ("link-late", "link: {late_every: 5, late_s: 0.6}\n"),
    ]
    for name, faults in link:
        results.append(scenario(name, work, args.link_select, faults=faults))
        _print_row(results[-1])
    print()
    print("| figure | count |")
    print("|---|---|")
    print(f"| runs | {len(results) + sum(1 for r in results if r.resumed != '-')} |")
    print(f"| false PASS reports | {sum(r.false_pass for r in results)} |")
    print(
        f"| product failures on a conforming device | {sum(r.product_failures for r in results)} |"
    )
    print(f"| records lost | {sum(r.records_lost for r in results)} |")
    print(f"| processes or work directories left behind | {sum(r.left_behind for r in results)} |")
    resumable = [r for r in results if r.resumed != "-"]
    done = sum(1 for r in resumable if r.resumed == "yes")
    print(f"| resumed runs completed | {done} of {len(resumable)} |")
    stops = [r.stop_s for r in results if r.stop_s is not None]
    if stops:
        print(f"| lost bench: seconds from the loss to the run's exit | {max(stops):.1f} |")
    print(f"\nresults kept in {work}")


def _print_row(r: Outcome) -> None:
    print(
        f"{r.name:<13} exit {r.exit_code!s:>4}  {r.status:<12} {r.verdict:<10} "
        f"final {r.final:>3}/{r.planned:<3} false-PASS {r.false_pass} product-fail "
        f"{r.product_failures} lost {r.records_lost} left {r.left_behind} resumed {r.resumed} "
        f"wall {r.wall_s:.1f} s"
        + (f" stop {r.stop_s:.1f} s" if r.stop_s is not None else "")
        + (f"  [{'; '.join(r.notes)}]" if r.notes else ""),
        flush=True,
    )


if __name__ == "__main__":
    main()
