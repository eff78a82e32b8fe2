"""Bench files (``fixtures/*.yaml``): what is on the bench, where, and what it may do.

Validated before anything touches an instrument (a typo'd key, a missing instrument, an
unknown driver, an envelope whose minimum is not below its maximum): ``BenchFileError``
names the file, the key and the value. An envelope smaller than the spec asks is accepted:
what it cannot reach is decided case by case (``harness.reach``). The format is
docs/ARCHITECTURE.md "Bench files"; the JSON schema for editors
(``fixtures/bench.schema.json``) is generated from these models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    TypeAdapter,
    ValidationError,
)

from harness import FIXTURES_DIR
from harness.benchfile_model import BenchFile, Capabilities, Envelope, LaunchFile
from harness.benchfile_model import Bms as Bms
from harness.benchfile_model import CellChannel as CellChannel
from harness.benchfile_model import CellsEnvelope as CellsEnvelope
from harness.benchfile_model import Channels as Channels
from harness.benchfile_model import Clock as Clock
from harness.benchfile_model import Idn as Idn
from harness.benchfile_model import Instrument as Instrument
from harness.benchfile_model import Launch as Launch
from harness.benchfile_model import LoadEnvelope as LoadEnvelope
from harness.benchfile_model import Relay as Relay
from harness.benchfile_model import RelayName as RelayName
from harness.benchfile_model import ResistorsEnvelope as ResistorsEnvelope
from harness.benchfile_model import Settle as Settle
from harness.benchfile_model import SupplyEnvelope as SupplyEnvelope
from harness.benchfile_model import _Strict as _Strict
from instruments.registry import DRIVERS

SCHEMA_PATH = FIXTURES_DIR / "bench.schema.json"


class BenchFileError(ValueError):
    """A bench file that must not be used; the message names file, key and value."""


# -- loading -----------------------------------------------------------------------------


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _value_at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, dict) and str(part) in data:
            data = data[str(part)]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _from_validation(path: Path, data: Any, exc: ValidationError) -> BenchFileError:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = _key_path(loc)
        if loc and loc[-1] == "[key]":
            lines.append(f"{path}: unknown key {_key_path(loc[:-1])}: {err['msg']}")
        elif err["type"] == "extra_forbidden":
            lines.append(
                f"{path}: unknown key {key} (value {err.get('input')!r}); check the spelling"
            )
        elif err["type"] == "missing":
            lines.append(f"{path}: key {key} is missing")
        else:
            value = _value_at(data, loc)
            lines.append(f"{path}: key {key} = {value!r}: {err['msg']}")
    return BenchFileError("\n".join(lines))


def check_envelope(envelope: Envelope, path: Path) -> None:
    """Refuse an envelope whose minimum is not below its maximum. One smaller than the spec
    asks is accepted: a case beyond it becomes untestable with its numbers (``Reach``)."""
    problems = []
    if envelope.cells.min_voltage_v >= envelope.cells.max_voltage_v:
        problems.append(
            f"{path}: key envelope.cells.min_voltage_v = "
            f"{envelope.cells.min_voltage_v:g} is not below max_voltage_v"
        )
    if envelope.resistors.min_ohm >= envelope.resistors.max_ohm:
        problems.append(
            f"{path}: key envelope.resistors.min_ohm = "
            f"{envelope.resistors.min_ohm:g} is not below max_ohm"
        )
    if problems:
        raise BenchFileError("\n".join(problems))


def check_relays(bench: BenchFile, path: Path) -> None:
    """Refuse a ``relays`` entry that cannot work: an instrument that is not there or not a
    relay card, a channel the card does not have or that two relays share, a connection
    fault without its resistance and cell."""
    problems = []
    used: dict[tuple[str, int], str] = {}
    for name, relay in bench.relays.items():
        key = f"relays.{name}"
        inst = bench.instruments.get(relay.instrument)
        if inst is None:
            known = ", ".join(n for n, i in bench.instruments.items() if i.role == "relays")
            problems.append(
                f"{path}: key {key}.instrument = {relay.instrument!r}: not in instruments "
                f"(relay instruments: {known or 'none'})"
            )
        elif inst.role != "relays":
            problems.append(
                f"{path}: key {key}.instrument = {relay.instrument!r}: a {inst.role} "
                f"(driver {inst.driver}), not a relay card"
            )
        other = used.get((relay.instrument, relay.channel))
        if other is not None:
            problems.append(
                f"{path}: key {key}.channel = {relay.channel}: already used by relays.{other}"
            )
        used[(relay.instrument, relay.channel)] = name
        if name == "connection_fault":
            for field in ("ohm", "cell"):
                if getattr(relay, field) is None:
                    problems.append(
                        f"{path}: key {key}.{field} is missing (the connection fault needs the "
                        "series resistance it inserts and the cell whose lead it is in)"
                    )
        elif relay.ohm is not None or relay.cell is not None:
            problems.append(
                f"{path}: key {key} = {relay.model_dump(exclude_none=True)!r}: ohm and cell "
                "belong to relays.connection_fault only"
            )
    if problems:
        raise BenchFileError("\n".join(problems))


def parse_bench(data: Any, path: Path) -> BenchFile | LaunchFile:
    """Validate already-loaded YAML data (``path`` is for messages). A file with ``launch``
    is a ``LaunchFile``; anything else must be a complete ``BenchFile``."""
    if not isinstance(data, dict):
        raise BenchFileError(f"{path}: a bench file is a mapping, got {type(data).__name__}")
    if "launch" in data:
        try:
            launch = LaunchFile.model_validate(data)
        except ValidationError as exc:
            raise _from_validation(path, data, exc) from None
        if launch.envelope is not None:
            check_envelope(launch.envelope, path)
        return launch
    try:
        bench = BenchFile.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(path, data, exc) from None
    check_relays(bench, path)
    check_envelope(bench.envelope, path)
    return bench


def load_bench_file(path: Path | str) -> BenchFile | LaunchFile:
    """Read and validate a bench file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchFileError(f"{path}: cannot read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BenchFileError(f"{path}: not valid YAML: {exc}") from exc
    return parse_bench(data, path)


def read_capabilities(path: Path | str) -> dict[str, bool]:
    """The bench's capabilities without opening it (for planning): only the
    ``capabilities`` section is read and validated, so a launch file with placeholder
    addresses can be planned against."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BenchFileError(f"{path}: cannot read: {exc}") from exc
    try:
        caps = Capabilities.model_validate(data.get("capabilities") or {})
    except ValidationError as exc:
        raise _from_validation(path, data, _prefix(exc, "capabilities")) from None
    return caps.model_dump()


def bench_capabilities(path: Path | str) -> dict[str, bool]:
    """The bench's capabilities, read with the same loader as ``bmshil run`` (the whole file
    is validated: a typo or a YAML error is refused here too, never silently planned
    around). A launch file that declares none gets the model's defaults."""
    bench = load_bench_file(path)
    caps = bench.capabilities if bench.capabilities is not None else Capabilities()
    return caps.model_dump()


def bench_relays(path: Path | str) -> list[str] | None:
    """The hand-steps a bench wires to relays, for planning: a bench file's ``relays``
    keys, a launch file's declared ``relays`` list; None when a launch file declares
    none (not known until the bench is up)."""
    bench = load_bench_file(path)
    if isinstance(bench, LaunchFile):
        return None if bench.relays is None else list(bench.relays)
    return list(bench.relays)


def _prefix(exc: ValidationError, key: str) -> ValidationError:
    """Re-root a section's validation errors under its key for the message."""
    return ValidationError.from_exception_data(
        exc.title,
        [{**e, "loc": (key, *e["loc"])} for e in exc.errors()],  # type: ignore[typeddict-item]
    )


def json_schema() -> dict[str, Any]:
    """The JSON schema of bench files, for editors (``fixtures/bench.schema.json``)."""
    schema = TypeAdapter(BenchFile | LaunchFile).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "bms-hil bench file"
    # The driver check is a validator in Python; give editors the list as an enum.
    schema["$defs"]["Instrument"]["properties"]["driver"]["enum"] = sorted(DRIVERS)
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> None:
    """Regenerate the editor schema (``python -m harness.benchfile``)."""
    path.write_text(schema_text(), encoding="utf-8")


if __name__ == "__main__":
    write_schema()
    print(f"wrote {SCHEMA_PATH}")
