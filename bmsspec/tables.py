"""The spec tables (``test_plans/*.yaml``) as typed, validated objects.

Everything downstream (the test plan, the procedures, the BMS twin, the protocol codecs)
reads the 87 parameters and 64 switches through :func:`load_spec`, so a table error must be
caught here, once, with a message that says where it is: file, row (number and id), key and
value. The loader is cached per directory because several components load it at start-up.

Units are the spec's; ``raw = round(value / scale) + offset`` (two's complement when signed).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bmsspec.models import _NEEDS_RE as _NEEDS_RE
from bmsspec.models import (
    FLAGS_FILE,
    N_PARAMETERS,
    N_SWITCHES,
    PARAMETERS_FILE,
    REPORTED_FILE,
    SECONDS_PER_UNIT,
    SWITCHES_FILE,
    TABLE_FILES,
    TOLERANCES_FILE,
    Encoding,
    Parameter,
    Range,
    Spec,
    SpecError,
    StatusFlag,
    Switch,
    Tolerance,
    ToleranceOverride,
    _ToleranceRow,
    iter_items,
)
from bmsspec.models import Condition as Condition
from bmsspec.models import Direction as Direction
from bmsspec.models import Kind as Kind
from bmsspec.models import Quantity as Quantity
from bmsspec.models import Unit as Unit
from bmsspec.models import _bound_problems as _bound_problems
from bmsspec.models import _item_number as _item_number
from bmsspec.models import _Model as _Model
from bmsspec.paths import PROJECT_ROOT, TEST_PLANS_DIR
from bmsspec.reported import load_reported
from bmsspec.validation import _check_encoding_fits as _check_encoding_fits
from bmsspec.validation import (
    _check_flags,
    _check_numbering,
    _check_parameters,
    _check_recipes,
    _check_switches,
    _p_fail,
    _validate_rows,
)
from bmsspec.validation import _check_pair as _check_pair
from bmsspec.validation import _check_range as _check_range
from bmsspec.validation import _fail as _fail
from bmsspec.validation import _resolve_range as _resolve_range
from bmsspec.validation import _row_label as _row_label

# --------------------------------------------------------------------------- loading

#: libyaml's loader when present (ten times faster than the pure-Python one; same result).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CACHE: dict[tuple[Any, ...], Spec] = {}
_CACHE_LOCK = threading.Lock()


def load_spec(directory: Path | str = TEST_PLANS_DIR) -> Spec:
    """Load and validate the tables of ``directory`` (default: the repo's test_plans/).

    Cached per directory and file stamp (mtime, size), so repeated calls are free and an
    edited table is re-read. Raises :class:`SpecError` naming file, row, key and value.
    """
    directory = Path(directory).resolve()
    key = (str(directory), *(_stamp(directory / name) for name in TABLE_FILES))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    spec = _load(directory)
    with _CACHE_LOCK:
        _CACHE[key] = spec
    return spec


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise SpecError(f"{path.name}: file missing in {path.parent}")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path.name}: not valid YAML: {exc}") from exc


def _load(directory: Path) -> Spec:
    p_doc = _read_yaml(directory / PARAMETERS_FILE)
    s_doc = _read_yaml(directory / SWITCHES_FILE)
    t_doc = _read_yaml(directory / TOLERANCES_FILE)
    f_doc = _read_yaml(directory / FLAGS_FILE)
    for name, doc, top in (
        (PARAMETERS_FILE, p_doc, "parameters"),
        (SWITCHES_FILE, s_doc, "switches"),
        (TOLERANCES_FILE, t_doc, "quantities"),
        (FLAGS_FILE, f_doc, "flags"),
    ):
        if not isinstance(doc, dict) or top not in doc:
            raise SpecError(f"{name}: key '{top}' value None: the file must map '{top}' to rows")

    flags = _validate_rows(FLAGS_FILE, f_doc["flags"], StatusFlag, "flags")
    params = _validate_rows(PARAMETERS_FILE, p_doc["parameters"], Parameter, "parameters")
    switches = _validate_rows(SWITCHES_FILE, s_doc["switches"], Switch, "switches")

    tol_doc = t_doc["quantities"]
    if not isinstance(tol_doc, dict):
        raise SpecError(f"{TOLERANCES_FILE}: key 'quantities' value {tol_doc!r}: not a mapping")
    tolerances: dict[str, _ToleranceRow] = {}
    for q, raw in tol_doc.items():
        try:
            tolerances[q] = _ToleranceRow.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(part) for part in err["loc"])
            raise SpecError(
                f"{TOLERANCES_FILE} row {q}: key '{loc}' value {err.get('input')!r}: {err['msg']}"
            ) from None

    _check_flags(flags)
    _check_numbering(PARAMETERS_FILE, params, N_PARAMETERS, p_doc["parameters"])
    _check_numbering(SWITCHES_FILE, switches, N_SWITCHES, s_doc["switches"])
    _check_parameters(params, {s.number for s in switches}, {f.name for f in flags}, tolerances)
    _check_switches(switches, {p.number for p in params}, {f.name for f in flags})
    governed = {s.number: set(s.governs) for s in switches}
    for p in params:
        if p.switch is not None and p.number not in governed[p.switch]:
            raise _p_fail(p, "switch", p.switch, f"S{p.switch} does not govern P{p.number}")
    _check_recipes(params, switches, {f.name for f in flags})
    items = {p.item for p in params} | {s.item for s in switches}
    reported = load_reported(
        _read_yaml(directory / REPORTED_FILE),
        items.__contains__,
        {q: row.unit for q, row in tolerances.items()},
    )

    source_text = p_doc.get("source")
    source = (PROJECT_ROOT / source_text).resolve() if isinstance(source_text, str) else None
    digest = hashlib.sha256()
    for name in TABLE_FILES:
        digest.update(name.encode() + b"\0" + (directory / name).read_bytes() + b"\0")
    if source is not None and source.is_file():
        digest.update(b"source\0" + source.read_bytes())
    return Spec(
        directory, source, params, switches, flags, tolerances, digest.hexdigest(), reported
    )


__all__ = [
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
    "SECONDS_PER_UNIT",
]
