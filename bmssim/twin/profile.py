"""Device profiles: how exactly the simulated board measures, confirms and answers.

``ideal`` (the default): every reading exact up to the protocol's quantization, the
confirmation time exact, no line errors; the regression's results are reproducible to the
millisecond and independent of any seed.

``realistic``, seeded (``--profile realistic --seed N``): a board whose front end has, per
channel, an offset and a gain error drawn once from the seed, and per sample a bounded noise;
a confirmation time with jitter; and line errors at a configurable rate. Every error source is
allocated a share of the device's stated accuracy (test_plans/tolerances.yaml), and the shares
add up to less than it, so the worst case of a realistic board still conforms:

| quantity | offset | gain | noise (triangular) | quantum | worst case | stated |
|---|---|---|---|---|---|---|
| cell voltage | ±2 mV | ±0.02 % | ±1 mV | 1 mV | 4.5 mV at 5 V | ±10 mV |
| cell difference | two cells | | | | 8.5 mV at 3.65 V | ±10 mV |
| temperature | ±0.5 °C | ±0.3 % of °C | ±0.2 °C | 0.1 K | 1.05 °C at 100 °C | ±2 °C |
| current | ±0.05 A | ±0.5 % | ±0.05 A | 10 mA | 0.6 A at 100 A | ±1 %, 0.5 A |

(Noise is drawn per 100 ms window; the worst case includes half a quantum.) The cell share
is set by the difference of two cells (tolerances.yaml: ±10 mV too), and the temperature
share by the difference of two NTC channels against the go/no-go margin (2 °C).

A current read below 0.15 A counts as zero (the firmware's deadband at rest).
Confirmation: the firmware's confirmation time plus 0..``confirm_jitter_ms`` (drawn per
100 ms window). Line errors: each Seplos reply is lost (half of them) or arrives with a bad
checksum (the other half) with probability ``line_error_rate``.

Noise, jitter and line errors are a pure function of (seed, channel, time window or reply
number), not a stream drawn in call order, so the same seed gives the same device whatever
the harness asked in between; offsets and gains come from ``random.Random(seed)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bmssim.twin.types import CELLS, TEMPERATURES

IDEAL = "ideal"
REALISTIC = "realistic"
PROFILES = (IDEAL, REALISTIC)
#: The default line error rate of the realistic profile (per reply).
DEFAULT_LINE_ERROR_RATE = 0.002

_MASK = (1 << 64) - 1


def _mix(*keys: int) -> float:
    """A uniform number in [0, 1) from integer keys (splitmix64 over their combination)."""
    x = 0x9E3779B97F4A7C15
    for k in keys:
        x = (x ^ (k & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        x ^= x >> 31
        x = x * 0x94D049BB133111EB & _MASK
        x ^= x >> 29
    return (x >> 11) / float(1 << 53)


def _tri(half: float, *keys: int) -> float:
    """Bounded noise in [-half, half], triangular (sum of two uniforms; sigma = half/sqrt 6)."""
    return (_mix(*keys, 1) + _mix(*keys, 2) - 1.0) * half


#: Key spaces of the noise streams.
_CELL, _TEMP, _CURRENT, _JITTER, _LINE = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Allocation:
    """The realistic profile's share of the stated accuracy per error source (module doc)."""

    cell_offset_v: float = 0.002
    cell_gain: float = 0.0002
    cell_noise_v: float = 0.001
    temp_offset_c: float = 0.5
    temp_gain: float = 0.003
    temp_noise_c: float = 0.2
    current_offset_a: float = 0.05
    current_gain: float = 0.005
    current_noise_a: float = 0.05
    confirm_jitter_ms: int = 150
    #: The firmware reads (and counts) a current below this as zero, so the offset and
    #: noise at rest neither show nor drain the charge count (as BMS firmware does).
    zero_deadband_a: float = 0.15


@dataclass(frozen=True)
class DeviceProfile:
    """One board's measurement errors (``make`` draws them from a profile name and seed)."""

    name: str = IDEAL
    seed: int = 0
    line_error_rate: float = 0.0
    allocation: Allocation = field(default_factory=Allocation)
    cell_offset: tuple[float, ...] = (0.0,) * CELLS
    cell_gain: tuple[float, ...] = (0.0,) * CELLS
    temp_offset: tuple[float, ...] = (0.0,) * TEMPERATURES
    temp_gain: tuple[float, ...] = (0.0,) * TEMPERATURES
    current_offset: float = 0.0
    current_gain: float = 0.0
    window_ms: int = 100

    @property
    def active(self) -> bool:
        """True when readings deviate (the board then samples every window: an event)."""
        return self.name != IDEAL

    def cell_v(self, i: int, v: float, t: int) -> float:
        """Cell ``i`` (0-based) as the ADC reads ``v`` volts in the window of ``t`` ms."""
        if not self.active:
            return v
        a = self.allocation
        w = t // self.window_ms
        return (
            v * (1.0 + self.cell_gain[i])
            + self.cell_offset[i]
            + _tri(a.cell_noise_v, self.seed, _CELL, i, w)
        )

    def temp_c(self, k: int, c: float, t: int) -> float:
        """Temperature channel ``k`` (0-based) as the NTC input reads ``c`` °C."""
        if not self.active:
            return c
        a = self.allocation
        w = t // self.window_ms
        return (
            c * (1.0 + self.temp_gain[k])
            + self.temp_offset[k]
            + _tri(a.temp_noise_c, self.seed, _TEMP, k, w)
        )

    def current_a(self, amps: float, t: int) -> float:
        """The shunt amplifier's reading of ``amps`` (noise held over one window)."""
        if not self.active:
            return amps
        a = self.allocation
        w = t // self.window_ms
        read = amps * (1.0 + self.current_gain) + self.current_offset
        read += _tri(a.current_noise_a, self.seed, _CURRENT, w)
        return 0.0 if abs(read) < a.zero_deadband_a else read

    def confirm_jitter_ms(self, t: int) -> int:
        """Extra confirmation time in the window of ``t`` (0 for the ideal profile)."""
        if not self.active:
            return 0
        span = self.allocation.confirm_jitter_ms + 1
        return int(_mix(self.seed, _JITTER, t // self.window_ms) * span)

    def line_error(self, reply: int) -> str | None:
        """``drop``, ``corrupt`` or None for the ``reply``-th reply of a link."""
        if self.line_error_rate <= 0:
            return None
        u = _mix(self.seed, _LINE, reply)
        if u >= self.line_error_rate:
            return None
        return "drop" if u < self.line_error_rate / 2 else "corrupt"

    def describe(self) -> dict[str, object]:
        """What run.json records of the profile in force."""
        return {"profile": self.name, "seed": self.seed, "line_error_rate": self.line_error_rate}


def make(name: str = IDEAL, seed: int = 0, line_error_rate: float | None = None) -> DeviceProfile:
    """The profile ``name`` drawn from ``seed``; raises ValueError for an unknown name or a
    rate outside [0, 1)."""
    if name not in PROFILES:
        raise ValueError(f"unknown device profile {name!r} (choose from {', '.join(PROFILES)})")
    if name == IDEAL:
        if line_error_rate:
            raise ValueError("the ideal profile has no line errors (line_error_rate must be 0)")
        return DeviceProfile(seed=int(seed))
    rate = DEFAULT_LINE_ERROR_RATE if line_error_rate is None else float(line_error_rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"line_error_rate {rate!r}: must lie in [0, 1)")
    a = Allocation()
    rng = random.Random(int(seed))

    def draw(half: float, n: int) -> tuple[float, ...]:
        return tuple(rng.uniform(-half, half) for _ in range(n))

    return DeviceProfile(
        name=REALISTIC,
        seed=int(seed),
        line_error_rate=rate,
        allocation=a,
        cell_offset=draw(a.cell_offset_v, CELLS),
        cell_gain=draw(a.cell_gain, CELLS),
        temp_offset=draw(a.temp_offset_c, TEMPERATURES),
        temp_gain=draw(a.temp_gain, TEMPERATURES),
        current_offset=draw(a.current_offset_a, 1)[0],
        current_gain=draw(a.current_gain, 1)[0],
    )
