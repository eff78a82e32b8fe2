"""The data the twin exchanges with the World and the protocol servers (the "Twin contract"
of docs/ARCHITECTURE.md). Plain dataclasses so a snapshot is ``asdict`` away from JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

CELLS = 16
TEMPERATURES = 6  # T1..T4 cell, ambient, power


@dataclass(frozen=True)
class TwinConfig:
    """How the simulated board measures and decides, beyond the spec parameters.

    ``confirm_s``: a voltage/temperature/SOC/cell-difference condition must hold this long
    before its flag sets or clears (firmware waits about a second; DOMAIN.md).
    ``noise_mv`` / ``noise_c``: standard deviation of seeded Gaussian measurement noise on each
    cell-voltage / temperature sample (0 = exact). With noise on, every 100 ms sample is an
    event, so long advances cost proportionally more wall time.
    """

    confirm_s: float = 1.0
    noise_mv: float = 0.0
    noise_c: float = 0.0
    seed: int = 0
    #: Device profile (bmssim/twin/profile.py): ``ideal`` or ``realistic`` (seeded by
    #: ``seed``); ``line_error_rate`` None: the profile's default.
    profile: str = "ideal"
    line_error_rate: float | None = None
    voltage_period_ms: int = 100
    current_period_ms: int = 10
    comparator_period_ms: int = 1
    model_name: str = "1101-HIL1 "
    version: tuple[int, int] = (16, 4)
    manufacturer: str = "bms-hil twin"
    #: Passive/active limiting holds the charge current at this value (spec S55/S56: 10 A).
    limit_current_a: float = 10.0
    #: Soft start (P58, S48) holds the discharge current at or below this value.
    soft_start_current_a: float = 1.0
    #: Clean running that resets the overcurrent trip count (BEHAVIOUR.md P71).
    clean_run_s: float = 60.0
    #: Charging-activation pulse length (S53: "forcibly output for 60 seconds").
    activation_pulse_s: float = 60.0
    #: Hysteresis of the low-voltage charge prohibition (BEHAVIOUR.md P10: clears >= P10 + 0.1 V).
    charge_prohibition_hysteresis_v: float = 0.1
    #: Most history records kept (oldest dropped first, as a ring buffer in EEPROM would).
    history_capacity: int = 4096
    #: Power-up (the supply back after a cut): the firmware boots this long before it answers
    #: any link or closes a FET. Choice: 2.0 s, the order of an MCU start-up plus the analog
    #: front end's first full conversion round on boards of this class.
    boot_s: float = 2.0
    #: S4: the reset/activation button held continuously this long is "stuck" (button_fault
    #: until released). Choice: 10 s, well beyond any deliberate press (a wake/activation
    #: press is a second or two) and short enough for a bench to test.
    button_stuck_s: float = 10.0
    #: A press shorter than this is contact bounce and ignored. Choice: 50 ms, the usual
    #: firmware debounce (a relay's contacts settle within a few ms).
    button_debounce_ms: int = 50
    #: S38: the hardware short-circuit comparator trips at a discharge current beyond this.
    #: Choice: 800 A, far above anything the electronic load can sink (300 A envelope) and
    #: above P57's range (-327.68 A), so only a real short reaches it.
    short_circuit_trip_a: float = 800.0
    #: Short-circuit reaction (comparator + gate driver): hundreds of µs on a real board; the
    #: model works in ms, so the discharge FET opens 1 ms after the current first exceeds the
    #: threshold.
    short_circuit_reaction_ms: int = 1
    #: P83/S47: the connection impedance is estimated at a current step at least this large
    #: (ΔV / ΔI; at 1 mV resolution 5 A resolves 0.2 mΩ, a tenth of P83's step).
    connection_step_min_a: float = 5.0


@dataclass
class ParameterBlock:
    """The whole parameter set as 0x47 reads it and 0xA1 writes it: values in spec units by
    spec number (1..87), switches by spec number (1..64, True = enabled) and the model name."""

    values: dict[int, float]
    switches: dict[int, bool]
    model_name: str = "1101-HIL1 "


@dataclass(frozen=True)
class SenseInputs:
    """What the board's front end sees at one instant (set by the World).

    ``cell_v``: voltage at each of the 16 sense inputs (0.0 when disconnected).
    ``cell_disconnected``: sense wire open (channel off or OPEN fault).
    ``ntc_ohm`` / ``ntc_state``: the six NTC inputs (T1..T4, ambient, power); state
    ``NORMAL`` | ``OPEN`` | ``SHORT``.
    ``current_a``: pack current through the shunt, + = charging.
    ``port_v``: voltage at P+/P-. ``charger_present``: a charger drives the port.
    The hand-step inputs (relay card on the simulated bench): ``powered`` (the board's own
    supply; False = cut), ``button`` (the reset/activation button held), ``power_switch``
    (the external self-locking switch ON, S57), ``secondary_trip`` (the secondary-trip input
    asserted, S32). A short circuit and a connection fault reach the board only through the
    current and the cell voltages, as they would on a real pack.
    """

    cell_v: tuple[float, ...]
    cell_disconnected: tuple[bool, ...]
    ntc_ohm: tuple[float, ...]
    ntc_state: tuple[str, ...]
    current_a: float = 0.0
    port_v: float = 0.0
    charger_present: bool = False
    powered: bool = True
    button: bool = False
    power_switch: bool = False
    secondary_trip: bool = False

    @classmethod
    def nominal(cls) -> SenseInputs:
        """Cells 3.300 V, NTCs 10 kOhm (25 C), no current, no charger."""
        return cls(
            cell_v=(3.3,) * CELLS,
            cell_disconnected=(False,) * CELLS,
            ntc_ohm=(10_000.0,) * TEMPERATURES,
            ntc_state=("NORMAL",) * TEMPERATURES,
        )


@dataclass(frozen=True)
class TwinOutputs:
    """What the board drives: the World turns these into currents.

    ``charge_limit_a``: the current-limit FET is on and holds charging to this value.
    ``discharge_limit_a``: soft start holds the discharge current to this value.
    """

    charge_fet: bool
    discharge_fet: bool
    current_limit_fet: bool
    heater: bool
    charge_limit_a: float | None
    discharge_limit_a: float | None


@dataclass
class Measurements:
    """0x42 telemetry content. ``cell_v`` has P66 entries (the configured series count)."""

    cell_v: list[float]
    temps_c: list[float]
    current_a: float
    pack_v: float
    port_v: float
    remaining_ah: float
    full_ah: float
    rated_ah: float
    soc_permille: int
    cycles: int
    soh_permille: int


@dataclass
class Status:
    """0x44 content: alarm levels (0 normal, 1 below, 2 above, 0xF0 fault), the names of every
    set flag of ``status_flags.yaml`` (events, FETs, system state), balancing and sense-wire
    disconnection per cell."""

    cell_levels: list[int]
    temp_levels: list[int]
    current_level: int
    voltage_level: int
    flags: set[str] = field(default_factory=set)
    balancing: list[bool] = field(default_factory=lambda: [False] * CELLS)
    disconnected: list[bool] = field(default_factory=lambda: [False] * CELLS)


@dataclass(frozen=True)
class DeviceInfo:
    """0x51 content."""

    name: str = "1101-HIL1 "
    version: tuple[int, int] = (16, 4)
    manufacturer: str = "bms-hil twin"
