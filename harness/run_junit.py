"""The run's JUnit XML (``junit.xml``), written from the final records for CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.results import final_records


def write_junit(out: Path, data: Any) -> Path:
    """``junit.xml`` from the final records: every planned case exactly once (a resumed run
    too), a case not run as an error saying why, and the run's end in the properties."""
    import xml.etree.ElementTree as ET

    finals = final_records(data.records)
    completion = data.completion
    planned = list(data.info.get("planned") or finals)
    suite = ET.Element("testsuite", name=f"bmshil.{data.info.get('suite') or 'run'}")
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", data.info.get("run_id")),
        ("end_status", completion.status),
        ("end_reason", completion.reason),
        ("complete", str(completion.complete).lower()),
        ("verdict", completion.verdict),
        ("bench_id", data.info.get("bench_id")),
        ("firmware", data.firmware),
    ):
        ET.SubElement(props, "property", name=name, value=str(value or ""))
    tally = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_s = 0.0
    for tid in planned:
        rec = finals.get(tid)
        tally["tests"] += 1
        wall = float((rec or {}).get("wall_s") or 0.0)
        total_s += wall
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"bmshil.{tid.split('-', 1)[0]}",
            name=tid,
            time=f"{wall:.3f}",
        )
        if rec is None:
            tally["errors"] += 1
            why = f"not run: {completion.status}: {completion.reason}"
            ET.SubElement(case, "error", type="not_run", message=why).text = why
        elif str(rec.get("decision") or "").startswith("conditional"):
            # Never green: a conditional decision is a failure of type "conditional" (its
            # message says which and why), whatever the rule made of the outcome.
            tally["failures"] += 1
            text = f"{rec['decision']} ({rec['outcome']}): {rec.get('message') or ''}"
            ET.SubElement(case, "failure", type="conditional", message=text).text = text
        elif rec["outcome"] == "failed":
            tally["failures"] += 1
            ET.SubElement(case, "failure", message=rec.get("message") or "").text = (
                rec.get("message") or ""
            )
        elif rec["outcome"] == "error":
            tally["errors"] += 1
            ET.SubElement(case, "error", type="bench_error", message=rec.get("message") or "")
        elif rec["outcome"] == "skipped":
            tally["skipped"] += 1
            ET.SubElement(case, "skipped", message=rec.get("message") or rec.get("reason") or "")
    for key, value in tally.items():
        suite.set(key, str(value))
    suite.set("time", f"{total_s:.3f}")
    suites = ET.Element("testsuites")
    suites.append(suite)
    path = out / "junit.xml"
    tmp = out / "junit.xml.tmp"
    ET.ElementTree(suites).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
    return path
