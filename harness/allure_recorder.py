"""A procedure recorder that also writes Allure: steps, labels from the spec, parameters and
the trace attachments (CSV and a plot for every threshold and delay case).

The trace attachments are drawn off the case loop by the session's plot worker
(``harness.plots``). At finish time the recorder registers each of them on the running
Allure test under the file name allure-pytest itself would give it
(``ATTACHMENT_PATTERN``: ``<uuid>-attachment.<ext>``, in the directory of the active
``AllureFileLogger``), so the test's result JSON, written when the test closes, already
refers to it; the worker then writes that file (atomically) into allure-results. Allure
has no way to add an attachment to a test once its result is written, so registering
first is the robust order: the reference is always there, and the file follows within
the session (the session waits for it on every exit path, or says which one is missing).
Without a file logger (an in-memory Allure logger) the plot is drawn here and attached
as bytes, as before."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import allure

from harness import plots
from harness.procedures.record import Recorder

TRACE_PLOT_KINDS = {"trip", "recovery", "delay"}


class AllureRecorder(Recorder):
    """Records like ``Recorder`` and mirrors every step into the running Allure test."""

    def __init__(self, case: Any) -> None:
        super().__init__()
        self.case = case
        #: The trace attachments handed to the plot worker at finish (``harness.plots``).
        self.render_job: plots.RenderJob | None = None
        self._label()

    def _label(self) -> None:
        from harness.benches import bench_label as _bench_label

        c = self.case
        with contextlib.suppress(Exception):
            category = getattr(c, "category", None) or c.kind
            allure.dynamic.epic("BMS spec compliance")
            allure.dynamic.feature(str(category))
            allure.dynamic.story(c.kind)
            allure.dynamic.label("item", c.item)
            bench = _bench_label()
            if bench is not None:  # several benches in one run: which one ran the case
                allure.dynamic.label("bench", bench)
                allure.dynamic.tag(f"bench {bench.split()[0]}")
            if getattr(c, "quantity", None):
                allure.dynamic.label("quantity", str(c.quantity))
                allure.dynamic.tag(str(c.quantity))
            allure.dynamic.title(f"{c.item} {getattr(c, 'name', '') or c.id} ({c.kind})")
            allure.dynamic.parameter("expected", f"{c.expected} {c.unit or ''}".strip())
            allure.dynamic.parameter("tolerance", f"{c.tolerance} {c.unit or ''}".strip())
            if getattr(c, "condition", None):
                allure.dynamic.parameter("condition", c.condition)
            if getattr(c, "overrides", None):
                allure.dynamic.parameter(
                    "overrides", ", ".join(f"P{k}={v}" for k, v in c.overrides.items())
                )
            if getattr(c, "switch_overrides", None):
                allure.dynamic.parameter(
                    "switch overrides",
                    ", ".join(
                        f"S{k}={'on' if v else 'off'}" for k, v in c.switch_overrides.items()
                    ),
                )

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.steps.append(title)
        with allure.step(title):
            yield

    def finish(self, result: Any) -> None:
        """Attach the measurement; hand the trace CSV and, for thresholds and delays, the
        plot to the plot worker (``render_job``; the session adds ``plots/<id>.png``)."""
        m = result.measurement
        record = result.record()
        allure.attach(
            json.dumps(record, indent=2, default=str),
            name="result",
            attachment_type=allure.attachment_type.JSON,
        )
        if not self.trace:
            return
        plot = self.case.kind in TRACE_PLOT_KINDS
        job = plots.RenderJob(
            test_id=self.case.id,
            plot=plot,
            rows=list(self.trace),
            title=f"{self.case.id}",
            unit=self.case.unit or "",
            expected=m.expected if m else None,
            tolerance=m.tolerance if m else None,
            measured=m.measured if m else None,
        )
        target = _allure_files()
        if target is _NO_FILES:
            # An Allure logger that keeps attachments in memory: draw here, attach bytes.
            from harness.artifacts import trace_csv, trace_plot

            allure.attach(
                trace_csv(self.trace), name="trace.csv", attachment_type=allure.attachment_type.CSV
            )
            if plot:
                png = trace_plot(
                    job.rows, job.title, job.unit, job.expected, job.tolerance, job.measured
                )
                allure.attach(png, name="trace.png", attachment_type=allure.attachment_type.PNG)
                self.attachments.append(("trace.png", png, "image/png"))
            return
        if target is not None:
            job.csv_targets.append(target("trace.csv", allure.attachment_type.CSV))
            if plot:
                job.png_targets.append(target("trace.png", allure.attachment_type.PNG))
        self.render_job = job
        plots.worker().stage(job)


#: ``_allure_files()`` when Allure is active but writes no files.
_NO_FILES: Any = object()


def _allure_files() -> Any:
    """A function registering an attachment of the running Allure test whose file is
    written later (returns the file's path), or None when Allure is not active, or
    ``_NO_FILES`` when it is active without a file logger."""
    try:
        from allure_commons import plugin_manager
        from allure_commons.logger import AllureFileLogger
        from allure_commons.model2 import ATTACHMENT_PATTERN, Attachment
        from allure_commons.reporter import AllureReporter
    except ImportError:
        return None
    directory = None
    reporter = None
    for plugin in plugin_manager.get_plugins():
        if isinstance(plugin, AllureFileLogger):
            directory = getattr(plugin, "_report_dir", None)
        elif isinstance(getattr(plugin, "allure_logger", None), AllureReporter):
            reporter = plugin.allure_logger
    test = reporter.get_test(None) if reporter is not None else None
    if test is None:
        return None
    if directory is None:
        return _NO_FILES

    def register(name: str, kind: Any) -> str:
        file_name = ATTACHMENT_PATTERN.format(prefix=uuid.uuid4(), ext=kind.extension)
        test.attachments.append(Attachment(source=file_name, name=name, type=kind.mime_type))
        return str(Path(directory) / file_name)

    return register
