"""NTC thermistor models: temperature <-> resistance for the programmable resistors.

The BMS reads 10 kOhm B=3435 NTCs (DOMAIN.md), so the harness sets a temperature by setting
the resistance the sensor would have. A measured table can replace the B-equation when a
bench uses a different sensor; interpolation is linear in ln(R) against 1/T, which is exact
for a B-equation sensor and close for real ones between table points.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

KELVIN_OFFSET = 273.15
T25_K = 298.15


@dataclass(frozen=True)
class BetaNtc:
    """R(T) = R25 * exp(B * (1/T - 1/T25)), T in kelvin.

    >>> round(BetaNtc().ohm_at(0.0))
    28704
    >>> round(BetaNtc().temperature_c(10_000.0), 6)
    25.0
    """

    r25_ohm: float = 10_000.0
    beta_k: float = 3435.0

    def ohm_at(self, celsius: float) -> float:
        """Resistance at ``celsius``."""
        t_k = celsius + KELVIN_OFFSET
        if t_k <= 0:
            raise ValueError(f"temperature {celsius} °C is below absolute zero")
        return self.r25_ohm * math.exp(self.beta_k * (1.0 / t_k - 1.0 / T25_K))

    def temperature_c(self, ohm: float) -> float:
        """Temperature at which the sensor reads ``ohm``."""
        if ohm <= 0:
            raise ValueError(f"resistance {ohm} Ohm has no temperature")
        inv_t = 1.0 / T25_K + math.log(ohm / self.r25_ohm) / self.beta_k
        return 1.0 / inv_t - KELVIN_OFFSET


@dataclass(frozen=True)
class TableNtc:
    """A sensor given as (°C, Ohm) points, ascending in temperature."""

    points: Sequence[tuple[float, float]]

    def __post_init__(self) -> None:
        temps = [t for t, _ in self.points]
        if len(temps) < 2 or temps != sorted(temps) or len(set(temps)) != len(temps):
            raise ValueError("an NTC table needs two or more points in ascending temperature")

    def ohm_at(self, celsius: float) -> float:
        """Resistance at ``celsius``, refusing to extrapolate beyond the table."""
        temps = [t for t, _ in self.points]
        if not temps[0] <= celsius <= temps[-1]:
            raise ValueError(f"{celsius} °C is outside the NTC table {temps[0]}..{temps[-1]} °C")
        i = max(1, bisect_left(temps, celsius))
        (t0, r0), (t1, r1) = self.points[i - 1], self.points[i]
        x0, x1, x = (1.0 / (t + KELVIN_OFFSET) for t in (t0, t1, celsius))
        frac = (x - x0) / (x1 - x0)
        return math.exp(math.log(r0) + frac * (math.log(r1) - math.log(r0)))


NtcModel = BetaNtc | TableNtc
