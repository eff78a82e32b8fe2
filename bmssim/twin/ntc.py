"""NTC thermistor conversion as the board does it: 10 kOhm at 25 C, B = 3435.

R(T) = R25 * exp(B * (1/T - 1/T25)), T in kelvin (DOMAIN.md "The bench"). The board reads the
resistance and inverts the formula; its lookup table ends at the NTC's rated range, so a
reading is clamped to [-40, 125] C the way a real table saturates.
"""

from __future__ import annotations

import math

R25_OHM = 10_000.0
B_K = 3435.0
T25_K = 298.15
KELVIN = 273.15
T_MIN_C = -40.0
T_MAX_C = 125.0


def ohms_at(temp_c: float) -> float:
    """Resistance of the NTC at ``temp_c`` (what a harness sets to emulate a temperature)."""
    t_k = temp_c + KELVIN
    return R25_OHM * math.exp(B_K * (1.0 / t_k - 1.0 / T25_K))


def temperature_c(ohms: float) -> float:
    """Temperature the board derives from ``ohms``, clamped to its table range.

    0 Ohm (short) saturates high and an open input (inf) saturates low, which is what a board
    without sensor-fault detection would act on.
    """
    if ohms <= 0.0:
        return T_MAX_C
    if math.isinf(ohms) or math.isnan(ohms):
        return T_MIN_C
    inv_t = 1.0 / T25_K + math.log(ohms / R25_OHM) / B_K
    if inv_t <= 0.0:
        return T_MAX_C
    t_c = 1.0 / inv_t - KELVIN
    return min(T_MAX_C, max(T_MIN_C, t_c))
