"""Decisions that survive noise: the two edges of a threshold search, each repeated until it
is stable (issue 11 item 8).

A bisection takes one decision per value. On a device whose reading is noisy, a value near
the threshold acts on one probe and not on the next: the bisection's last "acted" can lie
inside the band where the function chatters, and a single confirming probe then fails a
conforming device (P31, P37 measured with ``--noise``). So once the bisection has bracketed
the threshold, each edge is probed ``repeats`` times from a clean approach:

- the acting edge (trip: acts; recovery: clears) must act in every probe; if it does not,
  it moves one resolution step further out and is probed again;
- the quiet edge (trip: stays quiet; recovery: stays active) must stay quiet in every probe;
  if not, it moves one step further in.

The reported value is the stable acting edge; the band between the two stable edges is the
method's contribution to the uncertainty budget (it is wider than one step exactly when the
function chattered). Every value whose decisions disagreed is reported in the check
"decision stable" with its counts (acted k of n), not averaged away. When an edge is not
stable within ``chatter_steps`` steps the function is reported as unstable: the check fails
naming the band where it chatters.

``repeats`` and ``chatter_steps`` are the plan's (``harness/plan/thresholds.py``); their
probes are in the case's estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.procedures.record import Measurement
from harness.procedures.rig import Observation

#: One decision at a value from a clean approach: (acted, observation).
Decide = Callable[[float], tuple[bool, Observation]]


@dataclass
class Edges:
    """The stable edges (``acting`` is the reported value) and what every value showed."""

    quiet: float
    acting: float
    final: Observation | None
    #: value -> [times acted, probes], for every value the stabilisation probed
    seen: dict[float, list[int]] = field(default_factory=dict)
    unstable: str | None = None

    def chattered(self) -> list[tuple[float, int, int]]:
        return [(v, a, n) for v, (a, n) in sorted(self.seen.items()) if 0 < a < n]


def _fmt(v: float) -> str:
    return f"{v:g}"


def stabilise(
    decide: Decide,
    quiet: float,
    acting: float,
    step: float,
    repeats: int,
    chatter_steps: int,
) -> Edges:
    """The stable edges around the bracket (``quiet``, ``acting``) the search ended on; its
    own last decisions there (quiet once, acted once, each from a clean approach) count as
    the first of the ``repeats``. ``step`` is one resolution step from quiet towards acting
    (signed). ``decide(value)`` probes from a clean approach and says whether the function
    acted (for a recovery: cleared)."""
    edges = Edges(quiet=quiet, acting=acting, final=None)
    edges.seen = {quiet: [0, 1], acting: [1, 1]}

    def stable(value: float, want: bool) -> bool:
        counts = edges.seen.setdefault(value, [0, 0])
        while counts[1] < repeats:
            acted, obs = decide(value)
            counts[0] += int(acted)
            counts[1] += 1
            if acted != want:
                return False
            if acted:
                edges.final = obs
        return counts[0] == (counts[1] if want else 0)

    q = quiet
    for moved in range(chatter_steps + 1):
        if stable(q, False):
            break
        if moved == chatter_steps:
            edges.unstable = f"quiet edge not found within {chatter_steps} steps of {quiet:g}"
            return edges
        q = round(q - step, 10)
    a = acting
    for moved in range(chatter_steps + 1):
        if stable(a, True) and edges.final is not None:
            break
        if stable(a, True):  # decided by the search alone (repeats 1): probe it for the verdict
            edges.final = decide(a)[1]
            break
        if moved == chatter_steps:
            edges.unstable = f"acting edge not found within {chatter_steps} steps of {acting:g}"
            return edges
        a = round(a + step, 10)
    edges.quiet, edges.acting = q, a
    return edges


def report(m: Measurement, edges: Edges, repeats: int, acted_word: str = "acted") -> bool:
    """The check "decision stable" (False: unstable) and, when stable, the measured value
    and the band as the method's contribution. Returns whether the edges are stable."""
    counts = ", ".join(
        f"{acted_word} {a} of {n} at {_fmt(v)} {m.unit}" for v, a, n in edges.chattered()
    )
    if edges.unstable is not None:
        band = sorted(edges.seen)
        m.check(
            "decision stable",
            False,
            f"{edges.unstable}; {counts or 'no value decided twice the same'}",
            f"unstable: chatters over {_fmt(band[0])}..{_fmt(band[-1])} {m.unit} ({counts})",
        )
        return False
    band = abs(edges.acting - edges.quiet)
    where = f"stable {acted_word} at {_fmt(edges.acting)} and quiet at {_fmt(edges.quiet)} {m.unit}"
    detail = f"{where}, each {repeats} times from a clean approach"
    if counts:
        detail += f"; chatters in between: {counts}"
    m.check("decision stable", True, detail, detail)
    m.measured = edges.acting
    m.bracket(band, f"search bracket and chatter band ({repeats} repeats per edge)")
    return True
