"""Trace attachments of a case: the stimulus/response trace as CSV and as a plot (PNG)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


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
    """Stimulus against bench time with the flag and the terminal current, as PNG bytes."""
    frame = pd.DataFrame(rows)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    try:
        t = frame["t_s"] - frame["t_s"].iloc[0]
        if "stimulus" in frame and frame["stimulus"].notna().any():
            ax1.step(t, frame["stimulus"].astype(float), where="post", label="stimulus")
            if expected is not None:
                ax1.axhline(expected, color="green", linestyle="--", linewidth=0.8, label="spec")
                if tolerance:
                    ax1.axhspan(
                        expected - tolerance, expected + tolerance, color="green", alpha=0.1
                    )
            if measured is not None:
                ax1.axhline(measured, color="red", linewidth=0.8, label="measured")
            ax1.set_ylabel(unit or "stimulus")
            ax1.legend(loc="best", fontsize=7)
        if "flag" in frame:
            ax1b = ax1.twinx()
            ax1b.step(t, frame["flag"], where="post", color="orange", alpha=0.6)
            ax1b.set_ylabel("flag")
            ax1b.set_ylim(-0.1, 1.1)
        if "current_a" in frame:
            ax2.step(t, frame["current_a"], where="post", color="purple")
            ax2.set_ylabel("current at P+ (A)")
        ax2.set_xlabel("bench time (s)")
        ax1.set_title(title, fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        return buf.getvalue()
    finally:
        plt.close(fig)
