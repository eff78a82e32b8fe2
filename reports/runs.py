"""A results directory as the reports read it: ``run.json`` plus ``results.jsonl``.

Every report (compliance HTML, Allure, history, gate) starts here, so a missing or corrupt
results directory is refused once, with a message naming the file, the line, the key and
the value, instead of surfacing later as a KeyError in a template. The format is the one
``harness/session.py`` writes (``CaseOutcome.record()`` and ``BenchSession._write_run_info``).

The harness's own ``read_results`` silently drops unparsable lines because it runs while a
bench may crash mid-write; a report that a lab signs must not, so only a truncated *last*
line (a crash during the final write) is tolerated here, and it is reported in ``warnings``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTCOMES = ("passed", "failed", "error", "skipped")
#: Keys every record must carry for any report to make sense of it.
REQUIRED_KEYS = ("test_id", "item", "outcome")
RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
PLOTS_DIR = "plots"


class ReportInputError(ValueError):
    """A results directory, waiver file or option that cannot be used; the message says where."""


@dataclass
class Instrument:
    """One instrument identity as recorded in ``run.json`` (fields may be missing)."""

    name: str
    manufacturer: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    address: str = ""
    calibration_due: str = ""


@dataclass
class RunData:
    """One results directory, loaded and checked."""

    directory: Path
    info: dict[str, Any]
    records: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    _allure_plots: dict[str, Path] | None = field(default=None, repr=False, compare=False)

    # -- run description, tolerant of a run that ended before the bench opened ----------
    @property
    def bench_id(self) -> str | None:
        return self.info.get("bench_id")

    @property
    def spec_sha256(self) -> str | None:
        return self.info.get("spec_sha256")

    @property
    def device(self) -> dict[str, Any]:
        dev = self.info.get("device")
        return dev if isinstance(dev, dict) else {}

    @property
    def device_name(self) -> str:
        return str(self.device.get("name") or "").strip()

    @property
    def device_manufacturer(self) -> str:
        return str(self.device.get("manufacturer") or "").strip()

    @property
    def firmware(self) -> str:
        return firmware_text(self.device.get("firmware"))

    @property
    def started_at(self) -> str:
        return str(self.info.get("started_at") or "")

    @property
    def instruments(self) -> list[Instrument]:
        return parse_instruments(self.info.get("instruments"))

    def counts(self) -> dict[str, int]:
        """Records per outcome, from the records (run.json's counts may be absent or stale)."""
        out = dict.fromkeys(OUTCOMES, 0)
        for r in self.records:
            out[r["outcome"]] = out.get(r["outcome"], 0) + 1
        return out

    def plot(self, test_id: str) -> Path | None:
        """The saved trace plot of a test: ``plots/<test_id>.png``, else the ``trace.png``
        the run attached to its Allure result (same image, see harness/allure_recorder.py)."""
        path = self.directory / PLOTS_DIR / f"{test_id}.png"
        if path.is_file():
            return path
        if self._allure_plots is None:
            self._allure_plots = allure_plots(self.directory / "allure-results")
        return self._allure_plots.get(test_id)


def allure_plots(results: Path) -> dict[str, Path]:
    """{test_id: trace.png} from an ``allure-results`` folder.

    Each case's Allure result carries a ``result`` JSON attachment (the record, with its
    ``test_id``) and, for thresholds and delays, a ``trace.png``; unreadable files are
    skipped, since a plot is an illustration, never part of the verdict.
    """
    plots: dict[str, Path] = {}
    if not results.is_dir():
        return plots
    for result_file in results.glob("*-result.json"):
        try:
            result = json.loads(result_file.read_text(encoding="utf-8"))
            attachments = {a["name"]: results / a["source"] for a in result.get("attachments", [])}
            png = attachments.get("trace.png")
            record = attachments.get("result")
            if png is None or record is None or not png.is_file():
                continue
            test_id = json.loads(record.read_text(encoding="utf-8"))["test_id"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        plots[str(test_id)] = png
    return plots


def firmware_text(value: Any) -> str:
    """The BMS firmware as people write it: ``(16, 4)`` / ``[16, 4]`` -> ``16.4``."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ".".join(str(v) for v in value)
    text = str(value).strip()
    m = re.fullmatch(r"[\[(]\s*(\d+)\s*,\s*(\d+)\s*[\])]", text)
    return f"{m.group(1)}.{m.group(2)}" if m else text


_IDENTITY_RE = re.compile(r"(\w+)=(?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"|([^,)]+))")
_INSTRUMENT_FIELDS = ("manufacturer", "model", "serial", "firmware", "address", "calibration_due")


def parse_instruments(value: Any) -> list[Instrument]:
    """Instrument identities in any of the shapes ``run.json`` may hold.

    The harness writes ``bench.identities``; depending on the bench that is a list or a
    mapping of identities, and an ``Identity`` dataclass that the JSON writer did not know
    arrives as its ``repr`` (``Identity(name='supply', ..., calibration_due=datetime.date(
    2027, 6, 30))``). All three are read so the signed header never loses a calibration date.
    """
    if not value:
        return []
    items: list[tuple[str | None, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = [(None, v) for v in value]
    else:
        items = [(None, value)]
    out = []
    for key, raw in items:
        fields: dict[str, str] = {}
        if isinstance(raw, dict):
            fields = {k: "" if v is None else str(v) for k, v in raw.items()}
        elif isinstance(raw, str):
            text = re.sub(
                r"datetime\.date\((\d+),\s*(\d+),\s*(\d+)\)",
                lambda m: f"'{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}'",
                raw,
            )
            for m in _IDENTITY_RE.finditer(text):
                val = next((g for g in m.groups()[1:] if g is not None), "")
                fields[m.group(1)] = "" if val == "None" else val.strip()
            if not fields:
                fields = {"model": raw}
        name = fields.get("name") or (str(key) if key is not None else "")
        out.append(Instrument(name=name, **{k: fields.get(k, "") for k in _INSTRUMENT_FIELDS}))
    return out


def load_run(directory: Path | str) -> RunData:
    """Load and check a results directory; raises :class:`ReportInputError` naming the problem."""
    directory = Path(directory)
    if not directory.exists():
        raise ReportInputError(f"{directory}: results directory does not exist")
    if not directory.is_dir():
        raise ReportInputError(f"{directory}: not a directory (expected a results directory)")
    info = _load_info(directory / RUN_FILE)
    records, warnings = _load_records(directory / RESULTS_FILE)
    return RunData(directory=directory, info=info, records=records, warnings=warnings)


def _load_info(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ReportInputError(f"{path}: missing (a results directory holds run.json)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ReportInputError(f"{path}: not UTF-8 text: {exc}") from exc
    if not isinstance(info, dict):
        raise ReportInputError(f"{path}: expected a JSON object, got {type(info).__name__}")
    for key in ("spec_sha256", "bench_id", "suite", "operator", "started_at", "finished_at"):
        value = info.get(key)
        if value is not None and not isinstance(value, str):
            raise ReportInputError(f"{path}: key {key!r}: expected a string, got {value!r}")
    if "device" in info and info["device"] is not None and not isinstance(info["device"], dict):
        raise ReportInputError(f"{path}: key 'device': expected an object, got {info['device']!r}")
    return info


def _load_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    if not path.exists():
        raise ReportInputError(f"{path}: missing (a results directory holds results.jsonl)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ReportInputError(f"{path}: not UTF-8 text: {exc}") from exc
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    records: list[dict[str, Any]] = []
    warnings: list[str] = []
    seen: dict[str, int] = {}
    for i, (n, line) in enumerate(numbered):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(numbered) - 1:
                warnings.append(f"{path}:{n}: truncated last record ignored ({exc.msg})")
                continue
            raise ReportInputError(f"{path}:{n}: not valid JSON: {exc.msg}") from exc
        if not isinstance(rec, dict):
            raise ReportInputError(f"{path}:{n}: expected a JSON object, got {rec!r}")
        for key in REQUIRED_KEYS:
            if not isinstance(rec.get(key), str) or not rec.get(key):
                raise ReportInputError(
                    f"{path}:{n}: key {key!r}: missing or not a string (value {rec.get(key)!r})"
                )
        if rec["outcome"] not in OUTCOMES:
            raise ReportInputError(
                f"{path}:{n}: key 'outcome': {rec['outcome']!r} is not one of {', '.join(OUTCOMES)}"
            )
        for key in ("expected", "measured", "uncertainty", "tolerance", "margin"):
            value = rec.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise ReportInputError(f"{path}:{n}: key {key!r}: not a number: {value!r}")
        if rec["test_id"] in seen:
            # A rerun of the same case appended to the file: the later record is the verdict.
            warnings.append(
                f"{path}:{n}: {rec['test_id']} recorded again (line {seen[rec['test_id']]}); "
                "the later record counts"
            )
            records = [r for r in records if r["test_id"] != rec["test_id"]]
        seen[rec["test_id"]] = n
        records.append(rec)
    return records, warnings
