"""The bench file's schema as typed models: launch, clock, instruments with their calibration
record, channels, BMS link, envelope, capabilities, relays and settle times. Loading and the
checks across keys are ``harness.benchfile``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, create_model, model_validator

from bmsspec.capabilities import DEFAULTS as CAPABILITY_DEFAULTS
from instruments.registry import DRIVERS
from instruments.relays import RELAY_NAMES


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
    """``real``: wall clock. ``sim``: the simulator's virtual clock at ``address`` (host:port);
    ``shared``, if given, is the simulator's shared clock page on this machine (read instead
    of asking the control channel for the time)."""

    kind: Literal["real", "sim"]
    address: str | None = Field(default=None, pattern=r"^[^:\s]+:\d+$")
    shared: str | None = None

    @model_validator(mode="after")
    def _address_for_sim(self) -> Clock:
        if self.kind == "sim" and not self.address:
            raise ValueError("a sim clock needs an address (host:port)")
        return self


class Idn(_Strict):
    """Expected ``*IDN?`` manufacturer and model fields."""

    manufacturer: str = Field(min_length=1)
    model: str = Field(min_length=1)


class Accuracy(_Strict):
    """The accuracy of one function of an instrument over one range, as its datasheet or
    calibration certificate states it: ``+-(of_reading x |value| + offset)`` for a value
    within ``[min, max]`` (the function's unit: V, A, ohm, s). The uncertainty budget
    (``harness/procedures/budget.py``) takes the smallest range that holds the value."""

    function: Literal["voltage", "current", "resistance", "time"]
    min: float = Field(default=0.0, ge=0, description="range start (magnitude)")
    max: float = Field(gt=0, description="range end (magnitude)")
    of_reading: float = Field(
        default=0.0, ge=0, description="share of the value (0.0005 = 0.05 % of reading)"
    )
    offset: float = Field(default=0.0, ge=0, description="absolute part, in the unit")
    distribution: Literal["rectangular", "normal"] = Field(
        default="rectangular",
        description="rectangular: a limit (datasheet); normal: a certificate's expanded "
        "uncertainty at coverage factor k",
    )
    k: float = Field(default=2.0, gt=0, description="coverage factor of a normal figure")
    source: str = Field(
        min_length=1, description="where the figure comes from (datasheet page, certificate)"
    )

    @model_validator(mode="after")
    def _range(self) -> Accuracy:
        if self.min >= self.max:
            raise ValueError(f"min {self.min:g} is not below max {self.max:g}")
        if self.of_reading == 0 and self.offset == 0:
            raise ValueError("an accuracy of zero (of_reading and offset both 0) is not a figure")
        return self


class Instrument(_Strict):
    """One instrument: its driver (dialect), VISA address, expected identity, and its
    calibration as on the lab's certificate (due date, certificate id, calibration date),
    which every run records next to the identity and the compliance report prints; its
    accuracy per function and range (``accuracy``, for the uncertainty budget: without it
    that contribution is "not given")."""

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
    accuracy: list[Accuracy] = Field(
        default_factory=list,
        description="Accuracy per function and range (datasheet or calibration certificate); "
        "a function or value without an entry is 'not given' in the uncertainty budget.",
    )

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
    #: The protocol of the resolved file's BMS link, declared so a plan knows what the link
    #: reports without launching (a Modbus bench: the Seplos V3 layout's coverage).
    bms_protocol: Literal["seplos_v2", "modbus_rtu", "modbus_tcp"] | None = None
