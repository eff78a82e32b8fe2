"""Trace attachments of a case: the stimulus/response trace as CSV and as a plot (PNG)."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def trace_csv(rows: list[dict[str, Any]]) -> bytes:
    """The trace as CSV, one row per observation, columns in first-seen order."""
    if not rows:
        return b""
    return pd.DataFrame(rows).to_csv(index=False).encode()


def trace_plot(
    rows: list[dict[str, Any]],
    title: str,
    unit: str,
    expected: float | None,
    tolerance: float | None,
    measured: float | None,
) -> bytes:
    """Stimulus against bench time with the flag and the terminal current, as PNG bytes.

    Built on a bare ``Figure`` with fixed margins: no pyplot state and no layout solver,
    which made plotting the largest cost of a simulated regression run."""
    frame = pd.DataFrame(rows)
    fig = Figure(figsize=(7, 4.2), dpi=72)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.1, right=0.9, top=0.92, bottom=0.11, hspace=0.12)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    t = (frame["t_s"] - frame["t_s"].iloc[0]).to_numpy()
    if "stimulus" in frame and frame["stimulus"].notna().any():
        ax1.step(t, frame["stimulus"].astype(float).to_numpy(), where="post", label="stimulus")
        if expected is not None:
            ax1.axhline(expected, color="green", linestyle="--", linewidth=0.8, label="spec")
            if tolerance:
                ax1.axhspan(expected - tolerance, expected + tolerance, color="green", alpha=0.1)
        if measured is not None:
            ax1.axhline(measured, color="red", linewidth=0.8, label="measured")
        ax1.set_ylabel(unit or "stimulus")
        ax1.legend(loc="upper left", fontsize=7)
    if "flag" in frame:
        flag_ax = ax1.twinx()
        flag_ax.step(t, frame["flag"].to_numpy(), where="post", color="orange", alpha=0.6)
        flag_ax.set_ylabel("flag")
        flag_ax.set_ylim(-0.1, 1.1)
    if "current_a" in frame:
        ax2.step(t, frame["current_a"].to_numpy(), where="post", color="purple")
        ax2.set_ylabel("current at P+ (A)")
    ax2.set_xlabel("bench time (s)")
    ax1.set_title(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
