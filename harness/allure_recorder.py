"""A procedure recorder that also writes Allure: steps, labels from the spec, parameters and
the trace attachments (CSV and a plot for every threshold and delay case)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import allure

from harness.artifacts import trace_csv, trace_plot
from harness.procedures.record import Recorder

TRACE_PLOT_KINDS = {"trip", "recovery", "delay"}


class AllureRecorder(Recorder):
    """Records like ``Recorder`` and mirrors every step into the running Allure test."""

    def __init__(self, case: Any) -> None:
        super().__init__()
        self.case = case
        self._label()

    def _label(self) -> None:
        c = self.case
        with contextlib.suppress(Exception):
            category = getattr(c, "category", None) or c.kind
            allure.dynamic.epic("BMS spec compliance")
            allure.dynamic.feature(str(category))
            allure.dynamic.story(c.kind)
            allure.dynamic.label("item", c.item)
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
        """Attach the measurement, the trace CSV and, for thresholds and delays, the plot."""
        m = result.measurement
        record = result.record()
        allure.attach(
            json.dumps(record, indent=2, default=str),
            name="result",
            attachment_type=allure.attachment_type.JSON,
        )
        if self.trace:
            allure.attach(
                trace_csv(self.trace), name="trace.csv", attachment_type=allure.attachment_type.CSV
            )
            if self.case.kind in TRACE_PLOT_KINDS:
                png = trace_plot(
                    self.trace,
                    f"{self.case.id}",
                    self.case.unit or "",
                    m.expected if m else None,
                    m.tolerance if m else None,
                    m.measured if m else None,
                )
                allure.attach(png, name="trace.png", attachment_type=allure.attachment_type.PNG)
                self.attachments.append(("trace.png", png, "image/png"))
