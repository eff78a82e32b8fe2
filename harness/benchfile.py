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
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)

from bmsspec.capabilities import DEFAULTS as CAPABILITY_DEFAULTS
from harness import FIXTURES_DIR
from instruments.registry import DRIVERS
from instruments.relays import RELAY_NAMES

SCHEMA_PATH = FIXTURES_DIR / "bench.schema.json"


class BenchFileError(ValueError):
    """A bench file that must not be used; the message names file, key and value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Launch(_Strict):
    """A command that brings the bench up and writes the resolved bench file.

    ``{python}`` is replaced by the running interpreter, ``{bench_out}`` by the path the
    harness waits for.
    """

    command: list[str] = Field(min_length=1)
    ready_timeout_s: float = Field(default=30.0, gt=0)


class Clock(_Strict):
    """``real``: wall clock. ``sim``: the simulator's virtual clock at ``address`` (host:port)."""

    kind: Literal["real", "sim"]
    address: str | None = Field(default=None, pattern=r"^[^:\s]+:\d+$")

    @model_validator(mode="after")
    def _address_for_sim(self) -> Clock:
        if self.kind == "sim" and not self.address:
            raise ValueError("a sim clock needs an address (host:port)")
        return self


class Idn(_Strict):
    """Expected ``*IDN?`` manufacturer and model fields."""

    manufacturer: str = Field(min_length=1)
    model: str = Field(min_length=1)


class Instrument(_Strict):
    """One instrument: its driver (dialect), VISA address, expected identity, and its
    calibration as on the lab's certificate (due date, certificate id, calibration date),
    which every run records next to the identity and the compliance report prints."""

    driver: str
    address: str = Field(min_length=1)
    idn: Idn | None = None
    calibration_due: date | None = Field(
        default=None,
        description="Next calibration due (YYYY-MM-DD). A run refuses an instrument past it "
        "unless --allow-overdue (recorded in run.json and the report).",
    )
    calibration_certificate: str | None = Field(
        default=None,
        min_length=1,
        description="Id of the calibration certificate in force (as printed on it); "
        "recorded with the run and shown in the compliance report.",
    )
    calibrated_on: date | None = Field(
        default=None,
        description="Date of the calibration that certificate records (YYYY-MM-DD); "
        "must not be after calibration_due.",
    )
    timeout_s: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _known_driver(self) -> Instrument:
        if self.driver not in DRIVERS:
            raise ValueError(f"unknown driver {self.driver!r}; known: {', '.join(sorted(DRIVERS))}")
        return self

    @model_validator(mode="after")
    def _calibration_dates(self) -> Instrument:
        if (
            self.calibrated_on is not None
            and self.calibration_due is not None
            and self.calibrated_on > self.calibration_due
        ):
            raise ValueError(
                f"calibrated_on {self.calibrated_on} is after calibration_due "
                f"{self.calibration_due}"
            )
        return self

    @property
    def role(self) -> str:
        return DRIVERS[self.driver].role


CellChannel = Annotated[
    tuple[str, Annotated[int, Field(ge=1)]], Field(description="[unit, channel]")
]


class Channels(_Strict):
    """Logical channels -> physical ones."""

    cells: dict[Annotated[int, Field(ge=1, le=16)], CellChannel]
    ntc: dict[str, Annotated[int, Field(ge=1)]]
    scope: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> Channels:
        if sorted(self.cells) != list(range(1, 17)):
            missing = sorted(set(range(1, 17)) - set(self.cells))
            raise ValueError(f"cells must map 1..16; missing {missing}")
        if len(set(self.cells.values())) != 16:
            raise ValueError("two cells map to the same unit channel")
        wanted = {"cell1", "cell2", "cell3", "cell4", "ambient", "power"}
        if missing := wanted - set(self.ntc):
            raise ValueError(f"ntc must map {sorted(wanted)}; missing {sorted(missing)}")
        return self


class Bms(_Strict):
    """The BMS link: protocol, port (any pyserial URL, or host:port for Modbus TCP)."""

    protocol: Literal["seplos_v2", "modbus_rtu", "modbus_tcp"]
    port: str = Field(min_length=1)
    baud: Literal[9600, 19200] = 19200
    address: int = Field(default=0, ge=0, le=0xFF)
    timeout_s: float = Field(
        default=0.1,
        gt=0,
        le=5,
        description="The device's turnaround margin beyond the line time: an exchange times "
        "out after (request + longest expected answer characters) x 10 bits / baud + "
        "timeout_s (Modbus TCP: timeout_s alone), so a lost reply costs its line time plus "
        "this margin (0.17 s for a 0x44 status at 19200 baud with 0.1).",
    )
    retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Extra attempts after a dropped, late, corrupt or ambiguous answer.",
    )
    late_guard_s: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="After a timeout, how long the line is drained (read and discarded) for "
        "a late answer before the retry; must exceed the line's worst lateness so a stale "
        "answer is never taken for a later request's (0 only for a device never late beyond "
        "timeout_s). A refused answer is retried at once: it was the answer owed.",
    )
    lost_after: int = Field(
        default=3,
        ge=1,
        description="Consecutive exchanges without a valid answer (each after all its "
        "retries) after which the bench is lost (BenchLost: the run stops).",
    )


class SupplyEnvelope(_Strict):
    max_voltage_v: float = Field(gt=0)
    max_current_a: float = Field(gt=0)


class LoadEnvelope(_Strict):
    max_current_a: float = Field(gt=0)


class CellsEnvelope(_Strict):
    min_voltage_v: float = Field(ge=0)
    max_voltage_v: float = Field(gt=0)


class ResistorsEnvelope(_Strict):
    min_ohm: float = Field(ge=0)
    max_ohm: float = Field(gt=0)


class Envelope(_Strict):
    """What the bench may apply. Setpoints outside are refused, never clamped."""

    supply: SupplyEnvelope
    load: LoadEnvelope
    cells: CellsEnvelope
    resistors: ResistorsEnvelope


#: The fields and their defaults are ``bmsspec.capabilities.DEFAULTS`` (declared once there).
Capabilities = create_model(  # type: ignore[call-overload]
    "Capabilities",
    __base__=_Strict,
    __doc__=(
        "Hardware the bench has; tests needing what it lacks are reported as not testable.\n\n"
        "The hand-step capabilities (``button``, ``switch``, ``secondary_trip``,\n"
        "``short_circuit``, ``bms_power``, ``connection_fault``) say the hardware is there; a\n"
        "``relays`` entry of the same name says a relay works it, otherwise a person does (the\n"
        "case prompts an operator, and an unattended run skips it)."
    ),
    **{name: (bool, default) for name, default in CAPABILITY_DEFAULTS.items()},
)


RelayName = Literal[
    "button", "bms_power", "power_switch", "secondary_trip", "short_circuit", "connection_fault"
]
assert tuple(RelayName.__args__) == RELAY_NAMES  # type: ignore[attr-defined]


class Relay(_Strict):
    """A hand-step wired to a relay: closed = the step is in force unless ``safe`` says the
    safe position is closed (then open = in force)."""

    instrument: str = Field(min_length=1, description="an instrument with a relay driver")
    channel: StrictInt = Field(ge=1, description="the card's channel number (34903A: 101..120)")
    safe: Literal["open", "closed"] = Field(
        default="open", description="the position the bench leaves the relay in on every exit"
    )
    ohm: float | None = Field(
        default=None, gt=0, description="connection_fault: the series resistance it inserts"
    )
    cell: int | None = Field(
        default=None, ge=1, le=16, description="connection_fault: the cell whose lead it is in"
    )


class Settle(_Strict):
    """Waits after a setpoint and between polls."""

    setpoint_s: float = Field(default=0.0, ge=0)
    poll_interval_s: float = Field(default=0.05, gt=0)


class BenchFile(_Strict):
    """A whole bench file: everything needed to open the bench."""

    bench: str = Field(min_length=1)
    description: str = ""
    visa_library: str = "@py"
    clock: Clock
    instruments: dict[str, Instrument]
    channels: Channels
    bms: Bms
    #: Other endpoints where the same BMS answers (a simulator offers ``seplos_tcp``,
    #: ``modbus_tcp``, ``modbus_rtu``); lets one bench test every link. Not used by ``Bench``.
    bms_endpoints: dict[str, str] = Field(default_factory=dict)
    envelope: Envelope
    capabilities: Capabilities = Field(default_factory=Capabilities)
    settle: Settle = Field(default_factory=Settle)
    #: Hand-steps wired to relays (``instruments/relays.py``); without one a person does it.
    relays: dict[RelayName, Relay] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _wiring(self) -> BenchFile:
        for role in ("supply", "load", "resistors"):
            if role not in self.instruments:
                raise ValueError(f"instruments.{role} is missing")
            if (got := self.instruments[role].role) != role:
                raise ValueError(f"instruments.{role} uses driver for a {got}")
        if "scope" in self.instruments and self.instruments["scope"].role != "scope":
            raise ValueError("instruments.scope does not use a scope driver")
        units = {unit for unit, _ in self.channels.cells.values()}
        for unit in sorted(units):
            if unit not in self.instruments:
                raise ValueError(f"channels.cells names instrument {unit!r}, not in instruments")
            if self.instruments[unit].role != "cells":
                raise ValueError(f"channels.cells names {unit!r}, which is not a cell simulator")
        for name, inst in self.instruments.items():
            if inst.role == "cells" and name not in units:
                raise ValueError(f"instruments.{name} is a cell simulator no cell maps to")
        if self.channels.scope and "scope" not in self.instruments:
            raise ValueError("channels.scope is given but instruments.scope is missing")
        return self

    def instruments_of(self, role: str) -> dict[str, Instrument]:
        return {n: i for n, i in self.instruments.items() if i.role == role}


class LaunchFile(_Strict):
    """A bench that is brought up by a command (e.g. the simulator): the command writes the
    resolved ``BenchFile``, which is what gets opened. ``capabilities`` may be declared here
    so a plan can be made without launching, and ``relays`` (names only: the resolved file
    gives instrument and channel) so the plan knows which hand-steps need no person."""

    bench: str = Field(min_length=1)
    description: str = ""
    launch: Launch
    capabilities: Capabilities | None = None
    relays: list[RelayName] | None = None
    #: What the launched bench may apply, declared so a plan knows its reach without
    #: launching it (the resolved file's envelope is what the instruments are held to).
    envelope: Envelope | None = None


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
