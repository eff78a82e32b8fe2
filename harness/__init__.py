"""bms-hil harness: spec tables, test plan, procedures, pytest plugin and CLI."""

from pathlib import Path

__version__ = "0.1.0"

#: The project's root (holds test_plans/ and fixtures/); the package is installed editable.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_PLANS_DIR = PROJECT_ROOT / "test_plans"
FIXTURES_DIR = PROJECT_ROOT / "fixtures"
