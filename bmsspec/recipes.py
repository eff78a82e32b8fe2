"""Row recipes: how each parameter and switch is tested, written beside the row.

A ``recipe:`` mapping on a row of ``parameters.yaml`` or ``switches.yaml`` says what the test
plan makes of it (``harness/plan/``): the stimulus and the channels it drives, the operating
condition, what acts (flag; FETs that open), the search bounds, the isolation overrides, the
flags expected alongside (couplings), the suites, the hand-steps and, where the row cannot
be tested, why. The plan holds no per-row table; a new row needs a recipe, not code.

Values that depend on another row are written relative to it, so a device configuration
that moves that row moves them too (:class:`Ref`)::

    stop: {below: P5, by: 0.03}          # 0.03 below P5's configured value
    level: {of: P56, times: 1.1, round: 2}
    tolerance: {band_of: P79, at: 0.0}   # P79's tolerance band at 0
    expected: {of: 30.0, times: 100, per: P59, round: 1}   # 30 Ah as % of P59

Validated on load (``bmsspec.tables.load_spec``); every error names the file, the row, the
key and the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bmsspec.capabilities import CAPABILITIES
from bmsspec.couplings import Coupling, CouplingEntry

Suite = Literal["smoke", "regression", "soak"]
Fets = Literal["charge", "discharge", "both", "none"]
BenchCondition = Literal["charging", "discharging", "standby", "charger", "any"]
#: Hand-steps a case may ask for (``harness/procedures/hands.py`` knows how to do each).
HandStep = Literal[
    "button", "bms_power", "power_switch", "secondary_trip", "short_circuit", "connection_fault"
]
#: Channels of the bench a stimulus may drive.
Channel = Literal["cells", "supply", "load", "ntc", "bms_link"]
#: What the rig observes beyond the 0x44 status flags (``Rig.observe``): a cell balancing,
#: the heater drawing current.
OBSERVED_STATES = ("balancing", "heater")
ITEM_PATTERN = r"^[PS][1-9][0-9]?$"
PROCEDURE_PATTERN = r"^[a-z_]+(\.[a-z_]+)?$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ref(_Model):
    """A value computed from the configured value of another row.

    ``base`` is ``of`` (its value, or a number given as is), or ``below``/``above`` it
    ``by`` an amount, or the tolerance band of ``band_of`` at ``at`` (default: at its value);
    then ``times`` (a number or an item), divided by ``per`` (an item), ``plus``, clamped to
    ``at_least``/``at_most`` and rounded to ``round`` decimals.
    """

    of: str | float | None = None
    below: str | None = Field(default=None, pattern=ITEM_PATTERN)
    above: str | None = Field(default=None, pattern=ITEM_PATTERN)
    by: float = 0.0
    band_of: str | None = Field(default=None, pattern=ITEM_PATTERN)
    at: float | None = None
    times: float | str = 1.0
    per: str | None = Field(default=None, pattern=ITEM_PATTERN)
    plus: float = 0.0
    at_least: float | None = None
    at_most: float | None = None
    round: int | None = Field(default=None, ge=0, le=9)

    @model_validator(mode="after")
    def _one_base(self) -> Ref:
        bases = [k for k in ("of", "below", "above", "band_of") if getattr(self, k) is not None]
        if len(bases) != 1:
            raise ValueError(f"give exactly one of of/below/above/band_of, not {bases or 'none'}")
        if isinstance(self.times, str) and not _is_item(self.times):
            raise ValueError(f"times must be a number or an item like P66, not {self.times!r}")
        if isinstance(self.of, str) and not _is_item(self.of):
            raise ValueError(f"of must be a number or an item like P59, not {self.of!r}")
        if not isinstance(self.of, str) and self.of is not None and self.per is None:
            raise ValueError("a number as base (of) needs per: an item it is relative to")
        return self

    def items(self) -> list[str]:
        """The rows this value depends on."""
        out = [getattr(self, k) for k in ("of", "below", "above", "band_of", "per")]
        if isinstance(self.times, str):
            out.append(self.times)
        return [i for i in out if isinstance(i, str)]

    def evaluate(self, value_of: Callable[[str], float], band: Callable[[str, float], float]):
        """The number, given the configured value of an item and a row's tolerance band."""
        if self.band_of is not None:
            at = value_of(self.band_of) if self.at is None else self.at
            base = band(self.band_of, at)
        elif self.below is not None:
            base = value_of(self.below) - self.by
        elif self.above is not None:
            base = value_of(self.above) + self.by
        elif isinstance(self.of, str):
            base = value_of(self.of)
        else:
            base = float(self.of or 0.0)
        times = value_of(self.times) if isinstance(self.times, str) else self.times
        out = base * times
        if self.per is not None:
            divisor = value_of(self.per)
            if divisor == 0:
                raise ValueError(f"per {self.per}: its configured value is 0")
            out = out / divisor
        out = out + self.plus
        if self.at_least is not None:
            out = max(out, self.at_least)
        if self.at_most is not None:
            out = min(out, self.at_most)
        return round(out, self.round) if self.round is not None else out


Value = float | Ref


def _is_item(text: str) -> bool:
    import re

    return re.match(ITEM_PATTERN, text) is not None


def is_ref(raw: Any) -> bool:
    """True for a mapping that is a :class:`Ref` (in a free-form ``params`` mapping)."""
    return isinstance(raw, Mapping) and bool({"of", "below", "above", "band_of"} & set(raw))


class ChannelSweep(_Model):
    """The channels of a per-channel stimulus (16 cells, four cell NTCs): a trip found on the
    reference channel is then proven on each other channel by a go/no-go pair, ``margin``
    short of the measured trip (must not act) and ``margin`` beyond it (must act).

    ``stimulus`` names the rig stimulus of channel ``{n}`` (``'ntc:cell{n}'``); without it
    every channel is the stimulus itself driven on cell ``n`` (``rig.apply(name, v, cell=n)``:
    one cell's voltage, the moving cell of a difference)."""

    #: How a channel is named in checks and records: ``"cell"`` -> "cell 16".
    label: str = Field(min_length=1)
    count: int = Field(ge=2)
    #: How far short of / beyond the measured trip the pair probes (the stimulus's unit).
    margin: float = Field(gt=0)
    stimulus: str | None = Field(default=None, pattern=r"^[a-z_]+:[a-z_]*\{n\}[a-z0-9_]*$")

    def name(self, n: int) -> str:
        return f"{self.label} {n}"

    def stimulus_of(self, n: int) -> str | None:
        """The rig stimulus of channel ``n`` (None: the stimulus itself on cell ``n``)."""
        return None if self.stimulus is None else self.stimulus.format(n=n)


class Stimulus(_Model):
    """A stimulus the rig can apply (``harness/procedures/rig.py`` ``apply``) and how a
    search over it is sized. Declared once in ``parameters.yaml`` ``stimuli:`` and used by
    reference (``stimulus: *cell``)."""

    name: str = Field(pattern=r"^[a-z_]+(:[a-z0-9]+)?$")
    channels: list[Channel] = Field(min_length=1)
    resolution: float = Field(gt=0)
    #: How far beyond the threshold a search goes: ``max(beyond, beyond_rel * |trip|)``.
    beyond: float = Field(gt=0)
    beyond_rel: float = Field(default=0.0, ge=0)
    #: Where nothing acts: a value, or a fraction of the trip (currents).
    quiet: float | None = None
    quiet_fraction: float | None = Field(default=None, gt=0, lt=1)
    #: Searched in magnitude: the spec gives the value negative (discharge currents).
    negative: bool = False
    category: str = Field(min_length=1)
    #: Bench capability -> why the stimulus cannot be applied without it.
    needs: dict[str, str] = Field(default_factory=dict)
    #: A per-channel stimulus: its channels and the go/no-go margin (:class:`ChannelSweep`).
    every_channel: ChannelSweep | None = None

    @model_validator(mode="after")
    def _quiet_given(self) -> Stimulus:
        if (self.quiet is None) == (self.quiet_fraction is None):
            raise ValueError("give exactly one of quiet / quiet_fraction")
        return self

    @field_validator("every_channel")
    @classmethod
    def _named_channel(cls, sweep: ChannelSweep | None, info: ValidationInfo) -> Any:
        name = info.data.get("name")
        if sweep is not None and sweep.stimulus is not None and name is not None:
            if all(sweep.stimulus_of(n) != name for n in range(1, sweep.count + 1)):
                raise ValueError(
                    f"stimulus {name!r} is none of the channels {sweep.stimulus!r} 1..{sweep.count}"
                )
        return sweep

    def reference(self, cell: int) -> int | None:
        """The channel a search on this stimulus drives (``cell``: the recipe's cell), or
        None when the stimulus has no channels."""
        sweep = self.every_channel
        if sweep is None:
            return None
        if sweep.stimulus is None:
            return cell
        return next(
            (n for n in range(1, sweep.count + 1) if sweep.stimulus_of(n) == self.name), None
        )


class Acts(_Model):
    """What acts when the row's threshold is crossed: the flag and the FETs that open."""

    flag: str | None
    fets: Fets


class Isolation(_Model):
    """Overrides that isolate a case (parameter values, switch states), keyed by item."""

    overrides: dict[str, Value] = Field(default_factory=dict)
    switch_overrides: dict[str, bool] = Field(default_factory=dict)


class QuietRecipe(Isolation):
    """The quiet case of a row evaluated in one operating condition (its ``condition`` is
    charging or discharging): the stimulus beyond its trip in the other condition, held for
    the dwell, must neither set the row's flag nor open its FET. ``expect``: the flags the
    other condition's rows set at that value (declared, recorded beside the verdict);
    ``overrides`` move another row out of the way so the other condition's current keeps
    flowing. ``reason``: the row gets no quiet case, and why (nothing else given then)."""

    expect: list[str] = Field(default_factory=list)
    reason: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _reason_alone(self) -> QuietRecipe:
        if self.reason is not None and (self.expect or self.overrides or self.switch_overrides):
            raise ValueError("a reason (no quiet case) takes no expect or overrides")
        return self


class HoldRecipe(_Model):
    """Why a trip/recovery pair gets no hold case (the state held inside its band)."""

    reason: str = Field(min_length=1)


class ThresholdRecipe(Isolation):
    """A trip case (and a recovery case when the row has a partner)."""

    stimulus: Stimulus
    condition: BenchCondition
    acts: Acts
    start: Value | None = None
    stop: Value | None = None
    recovery_stop_at_least: float | None = None
    #: Seconds per probe; default the confirmation dwell plus the row's delay.
    dwell_s: float | None = Field(default=None, gt=0)
    #: How long a reset may take for the function to clear (seconds).
    reset_timeout_s: Value = 15.0
    #: The level of the other cells while one moves (a cell-difference stimulus).
    base_v: Value | None = None
    cell: int = Field(default=1, ge=1)
    #: The channels beyond the reference one a trip is proven on (go/no-go pairs); default
    #: every channel of a per-channel stimulus (``stimulus.every_channel``), ``[]`` none.
    channels: list[int] | None = None
    category: str | None = None
    #: Flags expected alongside the target flag (a name, or gated on a switch).
    couplings: list[CouplingEntry] = Field(default_factory=list)
    #: Hardware capabilities the function needs (the reason names the row's switch).
    needs: list[str] = Field(default_factory=list)
    #: Capability -> extra params when the bench lacks it.
    without: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: The quiet case outside the row's operating condition (``harness/plan/conditions.py``).
    quiet: QuietRecipe | None = None
    #: Opting a trip/recovery pair out of its hold case (``harness/plan/bands.py``).
    hold: HoldRecipe | None = None

    @field_validator("cell")
    @classmethod
    def _cell_is_a_channel(cls, cell: int, info: ValidationInfo) -> int:
        stim = info.data.get("stimulus")
        sweep = stim.every_channel if stim is not None else None
        if sweep is not None and sweep.stimulus is None and cell > sweep.count:
            raise ValueError(
                f"stimulus {stim.name!r} has {sweep.label} 1..{sweep.count}, not {cell}"
            )
        return cell

    @field_validator("channels")
    @classmethod
    def _other_channels(cls, channels: list[int] | None, info: ValidationInfo) -> Any:
        stim = info.data.get("stimulus")
        if channels is None or stim is None:
            return channels
        sweep = stim.every_channel
        if sweep is None:
            if channels:
                raise ValueError(
                    f"stimulus {stim.name!r} has no channels (its every_channel is not given)"
                )
            return channels
        ref = stim.reference(int(info.data.get("cell", 1)))
        for n in channels:
            if not 1 <= n <= sweep.count or n == ref:
                raise ValueError(
                    f"{n} is not another channel of stimulus {stim.name!r} "
                    f"({sweep.label} 1..{sweep.count} but the reference {ref})"
                )
        if len(set(channels)) != len(channels):
            raise ValueError("a channel is listed twice")
        return channels

    def swept_channels(self) -> list[int]:
        """The channels the go/no-go pairs drive (all but the reference by default)."""
        sweep = self.stimulus.every_channel
        if sweep is None:
            return []
        if self.channels is not None:
            return list(self.channels)
        ref = self.stimulus.reference(self.cell)
        return [n for n in range(1, sweep.count + 1) if n != ref]


class CaseRecipe(Isolation):
    """One explicitly listed case of a row: a delay, a function or a read-back variant."""

    kind: Literal["delay", "function", "readback"]
    procedure: str = Field(pattern=PROCEDURE_PATTERN)
    suffix: str | None = Field(default=None, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    params: dict[str, Any] = Field(default_factory=dict)
    expected: Value | None = None
    tolerance: Value | None = None
    unit: str | None = None
    category: str | None = None
    quantity: str | None = None
    flag: str | None = None
    condition: BenchCondition | None = None
    #: A long delay tested with this configured value instead (the expected value).
    shortened_to: float | None = Field(default=None, gt=0)
    suites: list[Suite] = Field(default_factory=lambda: ["regression"])
    #: Bench seconds beyond the case setup; default per kind (harness/plan/common.py).
    est_s: Value | None = None
    hand_steps: list[HandStep] = Field(default_factory=list)
    hand_prompts: dict[str, int] = Field(default_factory=dict)
    needs: dict[str, str] = Field(default_factory=dict)
    without: dict[str, dict[str, Any]] = Field(default_factory=dict)
    reason: str | None = None


class ParameterRecipe(_Model):
    """``recipe:`` of a parameters.yaml row."""

    threshold: ThresholdRecipe | None = None
    cases: list[CaseRecipe] = Field(default_factory=list)
    #: The device moves this value itself (the remaining capacity follows the current): a
    #: comparison of the block before and after a write skips it.
    live: bool = False
    #: Why the row's read-back case is all that can be done (the function is not exercised).
    readback_only: str | None = None
    #: Values every case's nominal state uses, by name (``harness/procedures/runner.py``
    #: ``Nominal``), computed with the case's overrides in force: the remaining capacity a
    #: live row is brought to, the waits for a latched state to clear. A live row's values
    #: are left out of a case that overrides the row (its override is written instead).
    nominal: dict[str, Value] = Field(default_factory=dict)
    #: Suites of this row's cases by case kind (trip, recovery, readback), beyond the default.
    suites: dict[Literal["trip", "recovery", "readback"], list[Suite]] = Field(default_factory=dict)


class SwitchState(_Model):
    """What one switch state's case needs beyond the recipe's common part."""

    hand_steps: list[HandStep] = Field(default_factory=list)
    hand_prompts: dict[str, int] = Field(default_factory=dict)
    #: Hand-steps in force for the case's nominal state.
    nominal_steps: list[HandStep] = Field(default_factory=list)
    suites: list[Suite] | None = None
    #: A case of the plan whose verdict proves this state too (same switch state and
    #: overrides): this state's case reads that verdict instead of repeating its wait.
    evidence: str | None = Field(default=None, pattern=r"^[PS][0-9]{2}-[a-z0-9]+(-[a-z0-9]+)*$")
    #: The check of that case that proves this state, when the case proves it with one of
    #: its checks rather than with its verdict (the check's own outcome decides).
    evidence_check: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check_needs_evidence(self) -> SwitchState:
        if self.evidence_check is not None and self.evidence is None:
            raise ValueError("evidence_check needs evidence (the case whose check it is)")
        return self


class SwitchRecipe(Isolation):
    """``recipe:`` of a switches.yaml row. Without one a switch that governs a threshold is
    tested beyond that threshold's trip, any other by writing and reading back its bit."""

    procedure: str | None = Field(default=None, pattern=PROCEDURE_PATTERN)
    params: dict[str, Any] = Field(default_factory=dict)
    #: The governed threshold to drive beyond its trip (default: the first alarm or
    #: protection of ``governs``).
    trip: str | None = Field(default=None, pattern=r"^P[1-9][0-9]?$")
    on: SwitchState = Field(default_factory=SwitchState)
    off: SwitchState = Field(default_factory=SwitchState)
    suites: list[Suite] = Field(default_factory=lambda: ["regression"])
    est_s: float | None = Field(default=None, ge=0)
    #: Switching this protection off is only safe on a cell simulator.
    protection: bool = False
    needs: dict[str, str] = Field(default_factory=dict)


def check_items(
    label: str,
    refs: list[tuple[str, str]],
    exists: Callable[[str], bool],
) -> None:
    """Raise ValueError naming ``label``, the key and the item for a reference to no row."""
    for key, item in refs:
        if not exists(item):
            raise ValueError(f"{label}: key '{key}' value {item!r}: no such row")


def references(recipe: ParameterRecipe | SwitchRecipe) -> list[tuple[str, str]]:
    """(key, item) of every row a recipe refers to, for the loader's cross-check."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Ref):
            out.extend((prefix, item) for item in value.items())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(f"{prefix}.{name}" if prefix else name, getattr(value, name))
        elif isinstance(value, Mapping):
            for k, v in value.items():
                if prefix.endswith("overrides") and isinstance(k, str):
                    out.append((f"{prefix}.{k}", k))
                if is_ref(v):
                    v = Ref.model_validate(v)
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)

    walk("recipe", recipe)
    t = recipe.threshold if isinstance(recipe, ParameterRecipe) else None
    for i, c in enumerate(t.couplings if t is not None else ()):
        if isinstance(c, Coupling):
            out.append((f"recipe.threshold.couplings.{i}.when", c.when))
    if isinstance(recipe, SwitchRecipe) and recipe.trip is not None:
        out.append(("recipe.trip", recipe.trip))
    return out


def flags_named(recipe: ParameterRecipe | SwitchRecipe) -> list[tuple[str, str]]:
    """(key, flag) of every status flag a recipe names."""
    out: list[tuple[str, str]] = []
    if isinstance(recipe, ParameterRecipe):
        t = recipe.threshold
        if t is not None:
            if t.acts.flag is not None:
                out.append(("recipe.threshold.acts.flag", t.acts.flag))
            for i, c in enumerate(t.couplings):
                key = f"recipe.threshold.couplings.{i}"
                out.append((key, c) if isinstance(c, str) else (f"{key}.flag", c.flag))
            if t.quiet is not None:
                out += [
                    (f"recipe.threshold.quiet.expect.{i}", f) for i, f in enumerate(t.quiet.expect)
                ]
        out += [(f"recipe.cases.{i}.flag", c.flag) for i, c in enumerate(recipe.cases) if c.flag]
    return out


def capabilities_named(recipe: ParameterRecipe | SwitchRecipe) -> list[tuple[str, str]]:
    """(key, capability) of every bench capability a recipe names."""
    out: list[tuple[str, str]] = []
    parts: list[tuple[str, Any]] = [("recipe", recipe)]
    if isinstance(recipe, ParameterRecipe):
        if recipe.threshold is not None:
            parts = [("recipe.threshold", recipe.threshold)]
            out += [
                (f"recipe.threshold.stimulus.needs.{i}", c)
                for i, c in enumerate(recipe.threshold.stimulus.needs)
            ]
        parts += [(f"recipe.cases.{i}", c) for i, c in enumerate(recipe.cases)]
    for prefix, part in parts:
        for attr in ("needs", "without"):
            for cap in getattr(part, attr, {}) or {}:
                out.append((f"{prefix}.{attr}.{cap}", cap))
    return out


def known_capability(name: str) -> bool:
    return name in CAPABILITIES


def item_number(item: str) -> int:
    """``"P5"`` -> 5."""
    return int(item[1:])
