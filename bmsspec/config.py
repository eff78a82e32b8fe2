"""The device configuration under test: which values the device's parameter block holds.

A lab validates the configuration its packs ship with, not only the factory defaults. A
configuration file is a YAML mapping of spec items to values::

    P55: 160.0     # rated capacity, Ah
    S31: false     # heating off

Items it does not name keep the spec's default. :func:`load_configuration` refuses, with
one message naming the file, the key and the value, an unknown item, a value of the wrong
type, a value the wire field cannot hold (outside it, or between two of its counts), and a
block the device would refuse (ranges, bounds given by other parameters, trip/recovery
order: :meth:`bmsspec.Spec.block_violations`). :func:`configured` gives the Spec whose
``default`` values are the configured ones, so everything built from it (the plan, the
procedures' nominal block, the verdicts) judges the device against that configuration.

The configuration's identity (``sha256``) is the hash of its canonical text: every one of
the 87 parameters and 64 switches with its configured value, in spec order, one line each
(:func:`canonical_text`). So a file listing only what differs and a full read-back of the
same device block name the same configuration, however they are formatted or ordered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bmsspec.tables import Parameter, Spec, SpecError, Switch

#: What run.json, the reports and the gate say when no configuration file was given.
SPEC_DEFAULTS = "spec defaults"

_ITEM_RE = re.compile(r"^([PS])([1-9]\d*)$")


class ConfigurationError(SpecError):
    """A configuration file that must not be used; the message names file, key and value."""


@dataclass(frozen=True)
class Configuration:
    """A validated configuration: the values it sets (by number) and where it came from.

    ``values``/``switches`` hold only the items the file names; :meth:`block` gives the
    whole block (the rest at the spec default)."""

    values: dict[int, float] = field(default_factory=dict)
    switches: dict[int, bool] = field(default_factory=dict)
    #: The file it was read from; None for the spec defaults.
    path: Path | None = None
    sha256: str = ""

    @property
    def name(self) -> str:
        """The file name, or ``spec defaults``."""
        return self.path.name if self.path is not None else SPEC_DEFAULTS

    def describe(self) -> dict[str, Any]:
        """What run.json records: file (None for the spec defaults), name, sha256 and the
        items the configuration sets."""
        return {
            "file": str(self.path) if self.path is not None else None,
            "name": self.name,
            "sha256": self.sha256,
            "items": [f"P{n}" for n in sorted(self.values)]
            + [f"S{n}" for n in sorted(self.switches)],
        }


def canonical_text(spec: Spec, values: Mapping[int, float], switches: Mapping[int, bool]) -> str:
    """Every item of the block in spec order, ``P1: 3.550`` / ``S1: true``, the configured
    value where given, the spec default otherwise (the text the sha256 is taken of)."""
    lines = []
    for p in spec.parameters:
        lines.append(f"P{p.number}: {format_value(p, values.get(p.number, p.default))}")
    for s in spec.switches:
        lines.append(f"S{s.number}: {'true' if switches.get(s.number, s.default) else 'false'}")
    return "\n".join(lines) + "\n"


def format_value(p: Parameter, value: float) -> str:
    """``value`` at the parameter's resolution (``3.500``, ``160.00``, ``-10.0``)."""
    return f"{float(value):.{max(p.encoding.decimals, 1)}f}"


def spec_defaults(spec: Spec) -> Configuration:
    """The configuration of a run given no file: the spec's defaults."""
    return Configuration(sha256=_digest(canonical_text(spec, {}, {})))


def configured_spec(spec: Spec, parameters: Path | str | None) -> tuple[Spec, Configuration]:
    """The Spec a run judges against and its configuration: the file ``parameters`` applied
    over ``spec``'s defaults, or the defaults alone (None). Raises ConfigurationError."""
    if parameters is None:
        return spec, spec_defaults(spec)
    configuration = load_configuration(parameters, spec)
    return configured(spec, configuration=configuration), configuration


def load_configuration(path: Path | str, spec: Spec) -> Configuration:
    """Read and validate a configuration file against ``spec``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from None
    return parse_configuration(data, spec, path)


def parse_configuration(data: Any, spec: Spec, path: Path) -> Configuration:
    """Validate already-loaded YAML (``path`` is for messages and the record)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{path}: a configuration is a mapping of items to values (P55: 160.0), "
            f"got {type(data).__name__}"
        )
    values: dict[int, float] = {}
    switches: dict[int, bool] = {}
    problems: list[str] = []
    for key, value in data.items():
        m = _ITEM_RE.match(key) if isinstance(key, str) else None
        if m is None:
            problems.append(
                f"{path}: key {key!r} = {value!r}: not a spec item (P1..P{len(spec.parameters)}"
                f" or S1..S{len(spec.switches)})"
            )
            continue
        number = int(m.group(2))
        if m.group(1) == "P":
            try:
                p = spec.param(number)
            except KeyError:
                problems.append(f"{path}: key {key} = {value!r}: no such parameter")
                continue
            why = _parameter_problem(p, value)
            if why:
                problems.append(f"{path}: key {key} = {value!r}: {why}")
            else:
                values[number] = float(value)
        else:
            try:
                s = spec.switch(number)
            except KeyError:
                problems.append(f"{path}: key {key} = {value!r}: no such switch")
                continue
            if not isinstance(value, bool):
                problems.append(
                    f"{path}: key {key} = {value!r}: a switch is true (enabled) or false ({s.id})"
                )
            else:
                switches[number] = value
    if not problems:
        problems = _block_problems(spec, values, path, data)
    if problems:
        raise ConfigurationError("\n".join(problems))
    return Configuration(
        values=values,
        switches=switches,
        path=path,
        sha256=_digest(canonical_text(spec, values, switches)),
    )


def _parameter_problem(p: Parameter, value: Any) -> str | None:
    """Why ``value`` cannot be this parameter's value on the wire, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"a number in {p.unit} is expected ({p.id})"
    lo, hi = p.encodable_range
    if not lo - 1e-9 <= value <= hi + 1e-9:
        return (
            f"does not fit the wire field ({p.encoding.bytes} byte(s), "
            f"{format_value(p, lo)} .. {format_value(p, hi)} {p.unit})"
        )
    if abs(p.decode(p.encode(value)) - value) > p.resolution * 1e-3:
        return (
            f"not a multiple of the resolution {p.resolution:g} {p.unit} the device stores "
            f"(nearest {format_value(p, p.decode(p.encode(value)))})"
        )
    return None


def _block_problems(
    spec: Spec, values: Mapping[int, float], path: Path, data: Mapping[Any, Any]
) -> list[str]:
    """The whole block (configured values over the defaults) against the spec's ranges and
    trip/recovery pairs; each violation is named by the configured item it involves."""
    block = {**spec.defaults(), **values}
    out = []
    for violation in spec.block_violations(block):
        involved = [f"P{n}" for n in re.findall(r"\bP(\d+)\b", violation)]
        key = next((k for k in involved if int(k[1:]) in values), None)
        if key is None:  # cannot happen: the spec defaults alone are a valid block
            out.append(f"{path}: {violation}")
        else:
            out.append(f"{path}: key {key} = {data[key]!r}: {violation}")
    return out


def configured(
    spec: Spec,
    values: Mapping[int, float] | None = None,
    switches: Mapping[int, bool] | None = None,
    configuration: Configuration | None = None,
) -> Spec:
    """A new Spec whose ``Parameter.default`` / ``Switch.default`` are the configured values
    (``configuration``'s, or ``values``/``switches``). The given Spec (the loader's cached
    one) is not changed. The new Spec's ``configuration`` names what was applied."""
    if configuration is not None:
        values, switches = configuration.values, configuration.switches
    values = dict(values or {})
    switches = dict(switches or {})
    params = [
        _with_default(p, values[p.number]) if p.number in values else p for p in spec.parameters
    ]
    sws = [
        _switch_with(s, switches[s.number]) if s.number in switches else s for s in spec.switches
    ]
    new = Spec(
        spec.directory,
        spec.source,
        params,
        sws,
        spec.flags,
        spec._tolerances,  # noqa: SLF001 - the same tolerance rows, shared read-only
        spec.sha256,
        spec.reported,
    )
    new.configuration = configuration or Configuration(
        values=values, switches=switches, sha256=_digest(canonical_text(spec, values, switches))
    )
    return new


def _with_default(p: Parameter, value: float) -> Parameter:
    decimals = len(p.default_text.split(".", 1)[1])
    return p.model_copy(update={"default": float(value), "default_text": f"{value:.{decimals}f}"})


def _switch_with(s: Switch, on: bool) -> Switch:
    return s.model_copy(update={"default": bool(on), "default_text": "Open" if on else "Close"})


def configuration_text(
    spec: Spec, values: Mapping[int, float], switches: Mapping[int, bool], header: str
) -> str:
    """A configuration file of a whole block (``bmshil config read``): every parameter and
    switch, each with its name as a comment, below ``header`` (comment lines)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for p in spec.parameters:
        value = format_value(p, values[p.number])
        lines.append(f"P{p.number}: {value}  # {p.name}, {p.unit}")
    for s in spec.switches:
        lines.append(f"S{s.number}: {'true' if switches[s.number] else 'false'}  # {s.name}")
    return "\n".join(lines) + "\n"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
