"""The spec kernel: the tables under ``test_plans/`` loaded and validated into typed models.

Everything that needs the spec imports it from here: the harness, the instrument drivers,
the simulated bench and the reports. This package imports none of them.
"""

from bmsspec.paths import FIXTURES_DIR, PROJECT_ROOT, TEST_PLANS_DIR
from bmsspec.tables import (
    SECONDS_PER_UNIT,
    TABLE_FILES,
    Encoding,
    Parameter,
    Range,
    Spec,
    SpecError,
    StatusFlag,
    Switch,
    Tolerance,
    ToleranceOverride,
    iter_items,
    load_spec,
)

__all__ = [
    "FIXTURES_DIR",
    "PROJECT_ROOT",
    "TEST_PLANS_DIR",
    "SECONDS_PER_UNIT",
    "TABLE_FILES",
    "Encoding",
    "Parameter",
    "Range",
    "Spec",
    "SpecError",
    "StatusFlag",
    "Switch",
    "Tolerance",
    "ToleranceOverride",
    "iter_items",
    "load_spec",
]
