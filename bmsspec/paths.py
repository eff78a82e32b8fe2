"""Where the project's tables and bench files are (the packages are installed editable)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_PLANS_DIR = PROJECT_ROOT / "test_plans"
FIXTURES_DIR = PROJECT_ROOT / "fixtures"
