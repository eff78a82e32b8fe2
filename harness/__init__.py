"""bms-hil harness: test plan, procedures, pytest plugin and CLI (the spec is ``bmsspec``)."""

from bmsspec.paths import FIXTURES_DIR, PROJECT_ROOT, TEST_PLANS_DIR

__version__ = "0.1.0"

__all__ = ["FIXTURES_DIR", "PROJECT_ROOT", "TEST_PLANS_DIR", "__version__"]
