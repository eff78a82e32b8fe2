"""Allure HTML from a run's ``allure-results/``, through the real Allure command line.

Tool choice: Allure 2 (npm ``allure-commandline@2.46.1``, a Java program; Java 17 is on the
machines). Allure 3 (npm ``allure``) is a rewrite whose history is a JSONL file configured in
``allurerc`` and whose classic report handles ``categories.json``/``environment.properties``
differently; allure-pytest 2.16 writes results for Allure 2, and Allure 2's ``history/``
folder, ``categories.json`` and ``environment.properties`` are exactly the three things this
command has to provide. ``scripts/setup-reports.sh`` installs the pinned package into
``<project>/.tools``.

Before generating, this module writes into ``allure-results/``:

* ``environment.properties``: bench, device, firmware, spec hash (Allure's Environment box);
* ``categories.json``: product defects (``CaseFailed``) apart from bench errors
  (``BenchError``), untestable (skipped) cases, and anything else (a harness defect);
* ``executor.json``: the run's name and a build number, so the trend charts are labelled;
* ``history/``: the previous report's history for the same bench, so trends carry across runs.

After generating, the new report's ``history/`` is stored back under
``<history root>/<bench_id>/`` (default ``results/allure-history/<bench_id>/``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from reports.runs import ReportInputError, RunData, load_run

ALLURE_VERSION = "2.46.1"
ALLURE_RESULTS = "allure-results"
HISTORY_DIR = "allure-history"
BUILD_ORDER_FILE = "build-order"

#: Allure matches ``messageRegex`` against the whole message (Java ``matches``), hence ``.*``
#: on both sides and DOTALL. allure-pytest reports an exception that is not an
#: AssertionError as ``broken`` with the message ``module.ClassName: text``.
CATEGORIES = [
    {
        "name": "Product defects (device out of spec)",
        "description": "The BMS did not meet its spec: the case raised CaseFailed.",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": r"(?s).*\bCaseFailed\b.*",
    },
    {
        "name": "Bench errors (no verdict)",
        "description": "The bench, not the device, failed the case: BenchError. Rerun it.",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": r"(?s).*\bBenchError\b.*",
    },
    {
        "name": "Not testable on this bench",
        "description": "Skipped with the plan's reason (missing hardware, read-back only).",
        "matchedStatuses": ["skipped"],
    },
    {
        "name": "Harness defects",
        "description": "Failed or broken for any other reason: a bug in the harness itself.",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": r"(?s)(?!.*\b(?:CaseFailed|BenchError)\b).*",
    },
]


class AllureError(RuntimeError):
    """The Allure command line is missing or failed."""


@dataclass
class AllureReport:
    """Where the report went and where its history is kept."""

    report_dir: Path
    index: Path
    history_store: Path
    build_order: int


def find_allure(project_root: Path | None = None) -> Path | None:
    """The Allure 2 launcher: ``BMSHIL_ALLURE``, else the project's ``.tools`` install, else
    ``allure`` on PATH. None when there is none."""
    override = os.environ.get("BMSHIL_ALLURE")
    if override:
        found = shutil.which(override) or (override if Path(override).exists() else None)
        return Path(found) if found else None
    if project_root is None:
        import harness

        project_root = harness.PROJECT_ROOT
    local = (
        project_root / ".tools" / "node_modules" / "allure-commandline" / "dist" / "bin" / "allure"
    )
    if local.is_file():
        return local
    on_path = shutil.which("allure")
    return Path(on_path) if on_path else None


def _escape_property(text: str, key: bool = False) -> str:
    """Java .properties escaping (Allure reads the file with java.util.Properties)."""
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    out = out.replace("=", "\\=").replace(":", "\\:").replace("#", "\\#").replace("!", "\\!")
    if key:
        out = out.replace(" ", "\\ ")
    elif out.startswith(" "):
        out = "\\" + out
    # Properties files are ISO-8859-1: anything else as \\uXXXX.
    return "".join(ch if ord(ch) < 0x7F else f"\\u{ord(ch):04x}" for ch in out)


def environment(run: RunData) -> dict[str, str]:
    """The Environment box of the report: what a reader needs to know which run this was."""
    info = run.info
    env = {
        "bench": run.bench_id or "not opened",
        "bench_file": str(info.get("bench_file") or ""),
        "device": run.device_name or "not read",
        "firmware": run.firmware or "not read",
        "spec_sha256": run.spec_sha256 or "not recorded",
        "suite": str(info.get("suite") or ""),
        "operator": str(info.get("operator") or ""),
        "harness_version": str(info.get("harness_version") or ""),
        "started_at": run.started_at,
    }
    for inst in run.instruments:
        env[f"instrument.{inst.name}"] = " ".join(
            p for p in (inst.manufacturer, inst.model, inst.serial) if p
        ) + (f" (calibration due {inst.calibration_due})" if inst.calibration_due else "")
    if info.get("sim_faults"):
        env["sim_faults"] = str(info["sim_faults"])
    return env


def write_environment(results: Path, env: dict[str, str]) -> Path:
    """``environment.properties`` in ``results`` (overwritten)."""
    path = results / "environment.properties"
    lines = [f"{_escape_property(k, key=True)}={_escape_property(v)}" for k, v in env.items()]
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


def write_categories(results: Path) -> Path:
    """``categories.json`` in ``results`` (overwritten)."""
    path = results / "categories.json"
    path.write_text(json.dumps(CATEGORIES, indent=2), encoding="utf-8")
    return path


def _safe_name(text: str) -> str:
    """A bench id as a single path component (no traversal out of the history root)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return name or "unknown-bench"


def history_store(history_root: Path, bench_id: str | None) -> Path:
    """Where the history of a bench's Allure reports is kept between runs."""
    return history_root / _safe_name(bench_id or "unknown-bench")


def generate(
    results_dir: Path,
    out: Path | None = None,
    history_root: Path | None = None,
    allure: Path | None = None,
    timeout_s: float = 300.0,
) -> AllureReport:
    """Write the metadata files, carry the bench's history in, run ``allure generate``, and
    store the new history. Raises ReportInputError (bad results dir) or AllureError."""
    run = load_run(results_dir)
    results = run.directory / ALLURE_RESULTS
    if not results.is_dir():
        raise ReportInputError(f"{results}: missing (the run wrote no Allure results)")
    if not any(results.glob("*-result.json")):
        raise ReportInputError(f"{results}: holds no *-result.json (no test reached Allure)")
    allure = allure or find_allure()
    if allure is None:
        raise AllureError(
            f"the Allure command line (allure-commandline@{ALLURE_VERSION}) is not installed: "
            "run scripts/setup-reports.sh (or set BMSHIL_ALLURE)"
        )
    out = Path(out) if out else run.directory / "allure-report"
    history_root = Path(history_root) if history_root else run.directory.parent / HISTORY_DIR
    store = history_store(history_root, run.bench_id)

    write_environment(results, environment(run))
    write_categories(results)
    order = _next_build_order(store)
    (results / "executor.json").write_text(
        json.dumps(
            {
                "name": "bmshil",
                "type": "bmshil",
                "buildName": f"{run.directory.name} ({run.device_name} {run.firmware})".strip(),
                "buildOrder": order,
                "reportName": f"bms-hil {run.bench_id or ''} {run.directory.name}".strip(),
            }
        ),
        encoding="utf-8",
    )
    carried = results / "history"
    if carried.exists():
        shutil.rmtree(carried)
    if (store / "history").is_dir():
        shutil.copytree(store / "history", carried)

    cmd = [str(allure), "generate", str(results), "-o", str(out), "--clean"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except OSError as exc:
        raise AllureError(f"cannot start {allure}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise AllureError(f"allure generate did not finish in {timeout_s:g} s") from exc
    index = out / "index.html"
    if proc.returncode != 0 or not index.is_file():
        detail = (proc.stderr or proc.stdout).strip()[-800:] or "(no output)"
        raise AllureError(f"allure generate exited {proc.returncode}: {detail}")

    if (out / "history").is_dir():
        store.mkdir(parents=True, exist_ok=True)
        if (store / "history").exists():
            shutil.rmtree(store / "history")
        shutil.copytree(out / "history", store / "history")
        (store / BUILD_ORDER_FILE).write_text(str(order), encoding="utf-8")
    return AllureReport(report_dir=out, index=index, history_store=store, build_order=order)


def _next_build_order(store: Path) -> int:
    try:
        return int((store / BUILD_ORDER_FILE).read_text(encoding="utf-8").strip()) + 1
    except (OSError, ValueError):
        return 1
