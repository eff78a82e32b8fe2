"""Allure HTML from a run's ``allure-results/``, through the real Allure command line.

Tool choice: Allure 2 (npm ``allure-commandline@2.46.1``, a Java program; Java 17 is on the
machines). Allure 3 (npm ``allure``) is a rewrite whose history is a JSONL file configured in
``allurerc`` and whose classic report handles ``categories.json``/``environment.properties``
differently; allure-pytest 2.16 writes results for Allure 2, and Allure 2's ``history/``
folder, ``categories.json`` and ``environment.properties`` are exactly the three things this
command has to provide. ``scripts/setup-reports.sh`` installs the pinned package into
``<project>/.tools``.

The run's own ``allure-results/`` is never modified: it is copied into a temporary folder
inside the results directory (removed afterwards), and the command line runs on the copy,
into which this module writes:

* ``environment.properties``: bench, device, firmware, spec hash, and how the run ended
  (end status, planned and not-run counts, verdict) (Allure's Environment box);
* ``categories.json``: product defects (``CaseFailed``) apart from bench errors
  (``BenchError``), untestable (skipped) cases, planned cases the run did not get to
  (``not run (incomplete run)``), and anything else (a harness defect);
* one ``skipped`` result per planned case that was not run or has no record at all (message
  ``NotRun: <why>``), so an incomplete run shows its gap in the report;
* ``executor.json``: the run's name and a build number, so the trend charts are labelled;
* ``history/``: the previous report's history for the same bench, so trends carry across runs.

After generating, the new report's ``history/`` is stored back under
``<history root>/<bench_id>/``; the history root is ``<results root>/allure-history``
(``results_root=``, default the results directory's parent), or ``history_root=`` itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.runs import ReportInputError, RunData, load_run, plan_cases

ALLURE_VERSION = "2.46.1"
ALLURE_RESULTS = "allure-results"
HISTORY_DIR = "allure-history"
BUILD_ORDER_FILE = "build-order"
#: Files of ``allure-results`` this module writes itself (in the copy the CLI runs on).
METADATA_FILES = ("environment.properties", "categories.json", "executor.json")
#: Start of the status message of a planned case the run did not get to.
NOT_RUN_PREFIX = "NotRun:"
NOT_RUN_CATEGORY = "Not run (incomplete run)"

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
        "name": "Conditional verdicts (uncertainty interval straddles a limit)",
        "description": "The measured value lies within U of a limit: conditional pass or "
        "conditional fail under the run's decision rule (CaseConditional). Never a plain pass.",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": r"(?s).*\bCaseConditional\b.*",
    },
    {
        "name": NOT_RUN_CATEGORY,
        "description": "Planned, but the run ended (interrupted, bench lost, crashed) before "
        "the case ran: no verdict. The run is INCOMPLETE.",
        "matchedStatuses": ["skipped", "broken", "unknown"],
        "messageRegex": rf"(?s){NOT_RUN_PREFIX}.*",
    },
    {
        "name": "Not testable on this bench",
        "description": "Skipped with the plan's reason (missing hardware, read-back only).",
        "matchedStatuses": ["skipped"],
        "messageRegex": rf"(?s)(?!{NOT_RUN_PREFIX}).*",
    },
    {
        "name": "Harness defects",
        "description": "Failed or broken for any other reason: a bug in the harness itself.",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": rf"(?s)(?!{NOT_RUN_PREFIX})"
        r"(?!.*\b(?:CaseFailed|BenchError|CaseConditional)\b).*",
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
    done = run.completion
    env["run_end"] = done.status + (f" ({done.signal})" if done.signal else "")
    env["run_end_reason"] = done.reason
    env["run_complete"] = "yes" if done.complete else "NO (INCOMPLETE)"
    env["planned"] = str(done.planned)
    env["not_run"] = str(done.not_run_count)
    env["verdict"] = done.verdict
    env["run_id"] = done.run_id or "not recorded"
    env["sessions"] = str(done.sessions) + (" (resumed)" if done.resumed else "")
    if run.sim_faults_in_force is not None:
        active = run.active_sim_faults
        env["sim_faults_in_force"] = (
            json.dumps(active, sort_keys=True, default=str) if active else "none"
        )
    if run.overdue_accepted:
        env["calibration_overdue_accepted"] = "; ".join(
            f"{o['instrument']} (due {o['calibration_due']})" for o in run.overdue_accepted
        )
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


def default_history_root(results_root: Path) -> Path:
    """``<results root>/allure-history``: where a results root keeps its benches' histories."""
    return Path(results_root) / HISTORY_DIR


def generate(
    results_dir: Path,
    out: Path | None = None,
    history_root: Path | None = None,
    allure: Path | None = None,
    timeout_s: float = 300.0,
    *,
    results_root: Path | None = None,
) -> AllureReport:
    """Copy the run's ``allure-results`` (never changed), write the metadata files and the
    results of the planned cases that were not run into the copy, carry the bench's history
    in, run ``allure generate`` on the copy, and store the new history.

    The history store is ``<history_root>/<bench>``; ``history_root`` defaults to
    ``<results_root>/allure-history``, and ``results_root`` to the results directory's
    parent (``bmshil allure DIR``). Raises ReportInputError (bad results dir) or AllureError.
    """
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
    if history_root is None:
        history_root = default_history_root(
            Path(results_root) if results_root is not None else run.directory.parent
        )
    store = history_store(Path(history_root), run.bench_id)
    order = _next_build_order(store)

    # The CLI runs on a copy inside the results directory, so the run's own results stay as
    # the run wrote them and nothing of this run is written outside its directory or root.
    with tempfile.TemporaryDirectory(prefix=".allure-input-", dir=run.directory) as tmp:
        work = Path(tmp) / ALLURE_RESULTS
        shutil.copytree(results, work, ignore=shutil.ignore_patterns("history", *METADATA_FILES))
        write_environment(work, environment(run))
        write_categories(work)
        write_not_run_results(work, run)
        (work / "executor.json").write_text(
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
        if (store / "history").is_dir():
            shutil.copytree(store / "history", work / "history")

        cmd = [str(allure), "generate", str(work), "-o", str(out), "--clean"]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
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


# --------------------------------------------------------------------------- not run


def _result_test_id(results: Path, result: dict[str, Any]) -> str | None:
    """The test id of an Allure result: its ``result`` attachment's record, else the part of
    ``fullName`` after ``#`` (allure-pytest writes ``<package>#<item name>``)."""
    for att in result.get("attachments") or []:
        if isinstance(att, dict) and att.get("name") == "result" and att.get("source"):
            try:
                rec = json.loads((results / att["source"]).read_text(encoding="utf-8"))
                return str(rec["test_id"])
            except (OSError, ValueError, KeyError, TypeError):
                break
    full = result.get("fullName")
    if isinstance(full, str) and "#" in full:
        return full.rsplit("#", 1)[1]
    return None


def _millis(text: str | None) -> int:
    try:
        t = dt.datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return 0
    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def write_not_run_results(results: Path, run: RunData) -> list[Path]:
    """In ``results`` (a copy of the run's ``allure-results``): one ``skipped`` result with the
    message ``NotRun: <why>`` per planned case that was not run or has no record, so the
    report shows an incomplete run's gap under "Not run (incomplete run)". A case that
    already has a result in the folder (the harness may have reported it) gets that result's
    status and message replaced instead. Returns the files written or changed."""
    done = run.completion
    if not done.not_run_reasons:
        return []
    final = {r["test_id"]: r for r in run.records}
    existing: dict[str, Path] = {}
    package = "test_plans.parameters.yaml"
    for path in results.glob("*-result.json"):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(result, dict):
            continue
        full = result.get("fullName")
        if isinstance(full, str) and "#" in full:
            package = full.rsplit("#", 1)[0]
        test_id = _result_test_id(results, result)
        if test_id:
            existing[test_id] = path
    plan = plan_cases()
    when = _millis(done.at or run.info.get("finished_at") or run.started_at)
    written = []
    for test_id, why in done.not_run_reasons.items():
        message = f"{NOT_RUN_PREFIX} {why} (run {done.status}: {done.reason or 'no reason'})"
        details = {"message": message, "trace": message}
        if test_id in existing:
            path = existing[test_id]
            result = json.loads(path.read_text(encoding="utf-8"))
            result["status"], result["statusDetails"] = "skipped", details
            path.write_text(json.dumps(result), encoding="utf-8")
            written.append(path)
            continue
        rec = final.get(test_id) or {}
        case = plan.get(test_id)
        item = rec.get("item") or getattr(case, "item", None) or test_id.split("-", 1)[0]
        kind = rec.get("kind") or getattr(case, "kind", None) or ""
        category = rec.get("category") or getattr(case, "category", None) or kind or "not run"
        name = rec.get("name") or getattr(case, "name", None) or test_id
        full_name = f"{package}#{test_id}"
        labels = [
            {"name": "epic", "value": "BMS spec compliance"},
            {"name": "feature", "value": str(category)},
            {"name": "story", "value": str(kind or "not run")},
            {"name": "item", "value": str(item)},
            {"name": "tag", "value": "not-run"},
            {"name": "framework", "value": "bmshil"},
        ]
        uid = uuid.uuid4().hex
        case_id = hashlib.md5(full_name.encode("utf-8"), usedforsecurity=False).hexdigest()
        result = {
            "uuid": uid,
            "historyId": case_id,
            "testCaseId": case_id,
            "fullName": full_name,
            "name": f"{item} {name} ({kind})" if kind and name != test_id else test_id,
            "status": "skipped",
            "statusDetails": details,
            "stage": "finished",
            "start": when,
            "stop": when,
            "labels": labels,
            "parameters": [],
        }
        path = results / f"{uid}-result.json"
        path.write_text(json.dumps(result), encoding="utf-8")
        written.append(path)
    return written


def _next_build_order(store: Path) -> int:
    try:
        return int((store / BUILD_ORDER_FILE).read_text(encoding="utf-8").strip()) + 1
    except (OSError, ValueError):
        return 1
