"""The gate's Markdown: the verdict, the regressions, coverage gaps and drift, as a pull-request
comment or a CI job summary."""

from __future__ import annotations

from reports.gate_model import EXIT_PASS, Finding, GateResult
from reports.runs import RunData


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _describe(run: RunData, label: str) -> list[str]:
    c = run.counts()
    done = run.completion
    end = done.status if done.complete else f"**INCOMPLETE** ({done.status})"
    return [
        _md(label),
        _md(run.bench_id or "-"),
        _md(f"{run.device_name} {run.firmware}".strip()),
        f"`{(run.spec_sha256 or '-')[:12]}`",
        _md(run.configuration_name),
        run.started_at or "-",
        f"{end}, {done.final - len(done.not_run)}/{done.planned} run",
        f"{c['passed']} / {c['failed']} / {c['error']} / {c['skipped']} / {done.not_run_count}",
    ]


#: At most this many not-run cases are listed in the Markdown (the rest are counted).
NOT_RUN_LISTED = 40


def markdown(result: GateResult) -> str:
    """The summary CI shows (e.g. appended to ``$GITHUB_STEP_SUMMARY``)."""
    verdict = "PASS" if result.exit_code == EXIT_PASS else "FAIL"
    out = [f"## Release gate: {verdict}", ""]
    if result.incomplete:
        out += [f"**{_md(result.incomplete)}**", ""]
    out += [
        "| run | bench | device firmware | spec | configuration | started | end | "
        "passed / failed / error / skipped / not run |",
        "|---|---|---|---|---|---|---|---|",
        "| baseline: " + " | ".join(_describe(result.baseline, result.baseline_label)) + " |",
        "| candidate: " + " | ".join(_describe(result.candidate, result.candidate_label)) + " |",
        "",
        f"Coverage: {result.covered}/{result.required} spec rows executed or skipped with a "
        f"reason. Drift limit: {result.drift_share:g} x tolerance.",
        "",
    ]
    for note in result.notes:
        out.append(f"> note: {_md(note)}")
    if result.notes:
        out.append("")

    def table(title: str, findings: list[Finding], waived: bool = False) -> None:
        if not findings:
            return
        out.extend([f"### {title} ({len(findings)})", ""])
        head = "| rule | item | test | detail |" + (" waiver |" if waived else "")
        out.extend([head, "|---" * (5 if waived else 4) + "|"])
        for f in findings:
            row = f"| {f.rule} | {f.item} | {_md(f.test_id) or '-'} | {_md(f.detail)} |"
            if waived and f.waived_by is not None:
                w = f.waived_by
                row += f" {_md(w.owner)} until {w.expires}: {_md(w.reason)} |"
            out.append(row)
        out.append("")

    done = result.candidate.completion
    if not done.complete and done.not_run_reasons:
        listed = list(done.not_run_reasons.items())[:NOT_RUN_LISTED]
        out.extend([f"### Not run in the candidate ({done.not_run_count})", ""])
        out += [f"- {_md(t)}: {_md(why)}" for t, why in listed]
        if done.not_run_count > len(listed):
            out.append(f"- ... and {done.not_run_count - len(listed)} more")
        out.append("")
    table("Failures", result.failures)
    table("Waived", result.waived, waived=True)
    table("Known failures (also failed in the baseline)", result.known_failures)
    if result.expired_waivers:
        out.extend([f"### Expired waivers, not applied ({len(result.expired_waivers)})", ""])
        out += [
            f"- entry {w.entry}: {w.item} ({_md(w.owner)}) expired {w.expires}: {_md(w.reason)}"
            for w in result.expired_waivers
        ]
        out.append("")
    if result.unused_waivers:
        out.extend([f"### Waivers that matched nothing ({len(result.unused_waivers)})", ""])
        out += [
            f"- entry {w.entry}: {w.item} ({_md(w.owner)}, until {w.expires})"
            for w in result.unused_waivers
        ]
        out.append("")
    if not result.findings and not result.incomplete:
        out.extend(["No regression, no coverage gap, no drift.", ""])
    return "\n".join(out)
