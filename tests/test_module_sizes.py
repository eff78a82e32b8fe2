"""No product module is over 500 lines (issue 9 item 8): a module that size holds more than
one responsibility, and the fix is to split it by responsibility, not to raise the limit."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("bmsspec", "harness", "instruments", "bmssim", "reports")
MAX_LINES = 500


def _line_counts() -> dict[str, int]:
    return {
        str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
        for pkg in PRODUCT
        for p in sorted((ROOT / pkg).rglob("*.py"))
    }


def test_no_product_module_is_over_the_limit():
    counts = _line_counts()
    offenders = {path: n for path, n in counts.items() if n > MAX_LINES}
    listing = ", ".join(f"{path} ({n} lines)" for path, n in sorted(offenders.items()))
    assert not offenders, f"modules over {MAX_LINES} lines: {listing}"
