"""State of every simulated instrument: the contract between the SCPI front ends and the World.

The SCPI simulators (``bmssim/instruments``) only read and write these dataclasses; the
``World`` (``bmssim/world.py``) reads them to compute what physically happens, and writes the
measured values back through its own methods. Keeping the state plain makes ``*RST`` a
matter of constructing a fresh object and the snapshot a matter of ``asdict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NOMINAL_CELL_V = 3.300
NTC_R25_OHM = 10_000.0
CELLS = 16
NTC_CHANNELS = 6  # cell1..cell4, ambient, power


@dataclass
class SupplyState:
    """Keysight N5700-style charger supply on P+/P-."""

    voltage_set_v: float = 0.0
    current_limit_a: float = 0.0
    output: bool = False
    ovp_level_v: float = 66.0
    ocp_enabled: bool = False
    protection_tripped: bool = False  # OVP/OCP latched; cleared by OUTP:PROT:CLE


@dataclass
class LoadState:
    """ITECH IT8500+-style electronic load on P+/P- (constant-current mode)."""

    remote: bool = False
    function: str = "CURR"
    current_set_a: float = 0.0
    input_on: bool = False
    slew_a_per_us: float = 1.0
    # Transient operation: levels A/B with widths in seconds, started by a trigger.
    transient_on: bool = False
    transient_mode: str = "CONT"  # CONT | PULS | TOGG
    transient_a_a: float = 0.0
    transient_b_a: float = 0.0
    transient_a_width_s: float = 0.001
    transient_b_width_s: float = 0.001
    trigger_source: str = "BUS"  # BUS | EXT | IMM
    # Set by the World when a trigger starts a transient; None when no transient runs.
    transient_started_ms: int | None = None
    transient_toggled_to_b: bool = False


@dataclass
class CellChannel:
    """One channel of a Bloomy ABS-style cell simulator."""

    voltage_set_v: float = NOMINAL_CELL_V
    output: bool = True
    source_limit_a: float = 0.5
    sink_limit_a: float = 0.5
    fault: str = "NONE"  # NONE | OPEN | SHORT


@dataclass
class ResistorChannel:
    """One channel of the programmable resistor module emulating an NTC."""

    ohms: float = NTC_R25_OHM
    state: str = "NORMAL"  # NORMAL | OPEN | SHORT


@dataclass
class ScopeState:
    """Keysight InfiniiVision-style scope: acquisition state and measurement definitions."""

    running: bool = True
    armed_ms: int | None = None  # virtual time of :SINGle; the capture window starts there
    acquired: bool = False
    delay_edges: tuple[int, int] = (1, -1)  # :MEASure:DEFine DELay,+1,-1
    timebase_range_s: float = 0.5
    waveform_source: int = 1
    waveform_format: str = "BYTE"
    waveform_points_mode: str = "RAW"


@dataclass
class ScopeTrace:
    """Edges seen by the scope probes: (t_ms, signal, value).

    Signals: ``current`` (pack current, A, + = charging), ``discharge_fet`` and
    ``charge_fet`` (gate drive, 1 = closed/conducting, 0 = open). The World appends an
    entry whenever a value changes; the scope derives edges and waveforms from it.
    """

    events: list[tuple[int, str, float]] = field(default_factory=list)
    max_events: int = 200_000

    def record(self, t_ms: int, signal: str, value: float) -> None:
        last = self.last(signal)
        if last is not None and last == value:
            return
        self.events.append((t_ms, signal, value))
        if len(self.events) > self.max_events:
            del self.events[: len(self.events) - self.max_events]

    def last(self, signal: str) -> float | None:
        for _t, s, v in reversed(self.events):
            if s == signal:
                return v
        return None

    def value_at(self, signal: str, t_ms: int) -> float:
        value = 0.0
        for t, s, v in self.events:
            if t > t_ms:
                break
            if s == signal:
                value = v
        return value


#: Channels of the relay card: a 34903A actuator module in slot 1 of a 34972A.
RELAY_SLOT = 1
RELAY_FIRST = 101
RELAY_COUNT = 20


@dataclass
class RelayCardState:
    """Keysight 34972A with a 34903A 20-channel actuator in slot 1 (channels 101..120).

    ``closed[k]`` is channel ``101 + k``: True = COM-NO connected (the hand-step it wires is
    active), False = open (every channel's safe position; ``*RST``). The bench wiring of each
    channel is the World's (``bmssim/world.py`` ``RELAY_CHANNELS``).
    """

    closed: list[bool] = field(default_factory=lambda: [False] * RELAY_COUNT)

    @staticmethod
    def valid(channel: int) -> bool:
        return RELAY_FIRST <= channel < RELAY_FIRST + RELAY_COUNT

    def is_closed(self, channel: int) -> bool:
        return self.closed[channel - RELAY_FIRST]

    def set(self, channel: int, closed: bool) -> None:
        if not self.valid(channel):
            raise ValueError(f"relay channel {channel}: the card has 101..120")
        self.closed[channel - RELAY_FIRST] = bool(closed)

    def closed_channels(self) -> list[int]:
        return [RELAY_FIRST + k for k, c in enumerate(self.closed) if c]


@dataclass
class BenchState:
    """Everything on the bench side of the wire, gathered for the World."""

    supply: SupplyState = field(default_factory=SupplyState)
    load: LoadState = field(default_factory=LoadState)
    cells: list[CellChannel] = field(default_factory=lambda: [CellChannel() for _ in range(CELLS)])
    ntc: list[ResistorChannel] = field(
        default_factory=lambda: [ResistorChannel() for _ in range(NTC_CHANNELS)]
    )
    scope: ScopeState = field(default_factory=ScopeState)
    trace: ScopeTrace = field(default_factory=ScopeTrace)
    relays: RelayCardState = field(default_factory=RelayCardState)
