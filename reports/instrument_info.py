"""The bench's instruments as a run recorded them: identity strings (``*IDN?``) parsed into
manufacturer, model, serial and firmware, with the calibration record from the bench file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass
class Instrument:
    """One instrument identity as recorded in ``run.json`` (fields may be missing), with its
    calibration record from the bench file: ``calibration_due`` and ``calibrated_on`` as
    ISO dates (``YYYY-MM-DD``), ``calibration_certificate`` the certificate id."""

    name: str
    manufacturer: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    address: str = ""
    calibration_due: str = ""
    calibration_certificate: str = ""
    calibrated_on: str = ""

    def overdue_on(self, day: str) -> bool:
        """Whether the calibration was past due on ``day`` (an ISO date or date-time; only
        its date counts). False when either date is missing or not a date."""
        import datetime as dt

        try:
            due = dt.date.fromisoformat(self.calibration_due[:10])
            then = dt.date.fromisoformat(str(day)[:10])
        except ValueError:
            return False
        return due < then


_IDENTITY_RE = re.compile(r"(\w+)=(?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"|([^,)]+))")

_INSTRUMENT_FIELDS = (
    "manufacturer",
    "model",
    "serial",
    "firmware",
    "address",
    "calibration_due",
    "calibration_certificate",
    "calibrated_on",
)


def parse_instruments(value: Any) -> list[Instrument]:
    """Instrument identities in any of the shapes ``run.json`` may hold.

    The harness writes ``bench.identities``; depending on the bench that is a list or a
    mapping of identities, and an ``Identity`` dataclass that the JSON writer did not know
    arrives as its ``repr`` (``Identity(name='supply', ..., calibration_due=datetime.date(
    2027, 6, 30), calibration_certificate='C-1', calibrated_on=datetime.date(2026, 6, 30))``).
    All three are read so the signed header never loses a calibration date or certificate.
    """
    if not value:
        return []
    items: list[tuple[str | None, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = [(None, v) for v in value]
    else:
        items = [(None, value)]
    out = []
    for key, raw in items:
        fields: dict[str, str] = {}
        if isinstance(raw, dict):
            fields = {k: "" if v is None else str(v) for k, v in raw.items()}
        elif isinstance(raw, str):
            text = re.sub(
                r"datetime\.date\((\d+),\s*(\d+),\s*(\d+)\)",
                lambda m: f"'{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}'",
                raw,
            )
            for m in _IDENTITY_RE.finditer(text):
                val = next((g for g in m.groups()[1:] if g is not None), "")
                fields[m.group(1)] = "" if val == "None" else val.strip()
            if not fields:
                fields = {"model": raw}
        name = fields.get("name") or (str(key) if key is not None else "")
        out.append(Instrument(name=name, **{k: fields.get(k, "") for k in _INSTRUMENT_FIELDS}))
    return out
