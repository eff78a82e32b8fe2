"""The compliance report's PDF: headless Chromium prints the HTML (found on the PATH or named by
``BMSHIL_CHROMIUM``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Flags from the brief: no network, no first-run work, no GPU; a private profile per call.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ChromiumError(RuntimeError):
    """Headless Chromium is missing or failed to print/dump a page."""


def find_chromium() -> str | None:
    """Path of a Chromium for headless printing (``BMSHIL_CHROMIUM`` overrides), or None."""
    override = os.environ.get("BMSHIL_CHROMIUM")
    if override:
        return override if Path(override).exists() else shutil.which(override)
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run_chromium(args: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    exe = find_chromium()
    if exe is None:
        raise ChromiumError(
            "chromium not found (install it with scripts/setup-reports.sh, or set BMSHIL_CHROMIUM)"
        )
    with tempfile.TemporaryDirectory(prefix="bmshil-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise ChromiumError(f"chromium did not finish in {timeout_s:g} s: {cmd}") from exc
    if proc.returncode != 0:
        raise ChromiumError(
            f"chromium exited {proc.returncode}: {proc.stderr.strip()[-800:] or '(no output)'}"
        )
    return proc


def print_pdf(html_file: Path, pdf_file: Path, timeout_s: float = 120.0) -> Path:
    """Print an HTML file to PDF with headless Chromium (the page's @page CSS sets A4)."""
    html_file, pdf_file = Path(html_file).resolve(), Path(pdf_file).resolve()
    pdf_file.parent.mkdir(parents=True, exist_ok=True)
    pdf_file.unlink(missing_ok=True)
    _run_chromium(
        ["--no-pdf-header-footer", f"--print-to-pdf={pdf_file}", html_file.as_uri()], timeout_s
    )
    if not pdf_file.is_file() or pdf_file.stat().st_size == 0:
        raise ChromiumError(f"chromium wrote no PDF at {pdf_file}")
    return pdf_file


def dump_dom(html_file: Path, timeout_s: float = 120.0) -> str:
    """The DOM of a page as headless Chromium rendered it (for checks on what a reader sees)."""
    return _run_chromium(["--dump-dom", Path(html_file).resolve().as_uri()], timeout_s).stdout
