"""The gate's waivers: a YAML file of accepted regressions, each naming its item, the reason,
the owner and the date it expires, validated on load (file, entry and key in every message)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from reports.compliance_model import canonical_item
from reports.gate_model import _ITEM_RE, _TEST_ID_RE, Waiver
from reports.runs import ReportInputError

WAIVER_KEYS = ("item", "reason", "owner", "expires")


class _WaiverLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text: PyYAML turns ``2026-13-01`` into a bare
    ValueError with no position, so the date is parsed here, where the entry is known."""


_WaiverLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def load_waivers(path: Path | str, spec: Any | None = None) -> list[Waiver]:
    """Read and check a waiver file; anything malformed is refused with file, entry, key and
    value (a waiver that silently failed to parse would silently stop waiving, or worse)."""
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(f"--waivers {path}: file does not exist")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_WaiverLoader)
    except yaml.YAMLError as exc:
        raise ReportInputError(f"{path}: not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ReportInputError(f"{path}: not UTF-8 text: {exc}") from exc
    if data is None:
        return []
    if not isinstance(data, list):
        raise ReportInputError(
            f"{path}: expected a list of waivers ({{item, reason, owner, expires}}), "
            f"got {type(data).__name__}"
        )
    waivers = []
    for n, entry in enumerate(data, start=1):
        where = f"{path}: entry {n}"
        if not isinstance(entry, dict):
            raise ReportInputError(f"{where}: expected a mapping, got {entry!r}")
        unknown = sorted(set(map(str, entry)) - set(WAIVER_KEYS))
        if unknown:
            raise ReportInputError(
                f"{where}: unknown key {unknown[0]!r} (value {entry[unknown[0]]!r}); "
                f"allowed: {', '.join(WAIVER_KEYS)}"
            )
        for key in WAIVER_KEYS:
            if key not in entry:
                raise ReportInputError(f"{where}: key {key!r} is missing")
        for key in ("item", "reason", "owner"):
            value = entry[key]
            if not isinstance(value, str) or not value.strip():
                raise ReportInputError(
                    f"{where}: key {key!r}: expected a non-empty text, got {value!r}"
                )
        item = _waiver_item(entry["item"].strip(), spec, where)
        expires = entry["expires"]
        if isinstance(expires, dt.datetime) or not isinstance(expires, dt.date):
            if isinstance(expires, str):
                try:
                    expires = dt.date.fromisoformat(expires.strip())
                except ValueError:
                    expires = None
            else:
                expires = None
            if expires is None:
                raise ReportInputError(
                    f"{where}: key 'expires': {entry['expires']!r} is not a date YYYY-MM-DD"
                )
        waivers.append(
            Waiver(
                item=item,
                reason=entry["reason"].strip(),
                owner=entry["owner"].strip(),
                expires=expires,
                entry=n,
            )
        )
    return waivers


def _waiver_item(value: str, spec: Any | None, where: str) -> str:
    if _ITEM_RE.match(value.upper()):
        item = canonical_item(value.upper())
        if spec is not None:
            try:
                spec.item(item)
            except KeyError:
                raise ReportInputError(
                    f"{where}: key 'item': {value!r} is not a row of the spec"
                ) from None
        return item
    if _TEST_ID_RE.match(value):
        return value
    raise ReportInputError(
        f"{where}: key 'item': {value!r} is neither an item (P5, S10) nor a test id "
        "(P05-cell-overvoltage-protection-trip)"
    )
