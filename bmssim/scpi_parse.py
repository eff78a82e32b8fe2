"""SCPI parsing on the simulator's side: header patterns (``:SOURce:VOLTage[:LEVel]``) and
their matching, numbers with suffixes and MIN/MAX/DEF, channel lists, and the arguments of
one command as a handler sees them (``Args``)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bmssim.scpi_errors import (
    ScpiError,
    data_out_of_range,
    data_type_error,
    illegal_parameter,
    invalid_suffix,
    missing_parameter,
)

_KEYWORD_RE = re.compile(r"^(\*?[A-Za-z_][A-Za-z_0-9]*?)(\d*)$")


@dataclass(frozen=True)
class _Node:
    short: str  # upper case
    long: str  # upper case
    optional: bool
    suffix: bool  # accepts a numeric suffix (``OUTP3``)

    def match(self, token: str) -> tuple[bool, int | None]:
        """Whether ``token`` (one header keyword as written) is this node, and its suffix."""
        m = _KEYWORD_RE.match(token)
        if not m:
            return (False, None)
        word, digits = m.group(1).upper(), m.group(2)
        if digits and not self.suffix:
            # A keyword whose name itself ends in digits is not used in our trees.
            return (False, None)
        if word not in (self.short, self.long):
            return (False, None)
        return (True, int(digits) if digits else None)


def _parse_pattern(pattern: str) -> tuple[tuple[_Node, ...], bool]:
    """Compile ``[SOURce:]VOLTage[:LEVel]?`` into nodes and a query flag."""
    query = pattern.endswith("?")
    body = pattern[:-1] if query else pattern
    nodes: list[_Node] = []
    i = 0
    while i < len(body):
        optional = body[i] == "["
        if optional:
            end = body.index("]", i)
            part = body[i + 1 : end]
            i = end + 1
        else:
            end = body.find("[", i)
            end = len(body) if end < 0 else end
            part = body[i:end]
            i = end
        for word in part.split(":"):
            if not word:
                continue
            suffix = word.endswith("#")
            word = word.rstrip("#")
            short = "".join(ch for ch in word if ch.isupper() or ch == "*" or ch.isdigit())
            nodes.append(_Node(short or word.upper(), word.upper(), optional, suffix))
    return tuple(nodes), query


def _match_nodes(nodes: Sequence[_Node], tokens: Sequence[str]) -> list[int | None] | None:
    """Match header tokens against nodes (optional nodes may be skipped).

    Returns the numeric suffix of every node (None when skipped or not written), or None
    when the header does not match.
    """
    if not nodes:
        return [] if not tokens else None
    node = nodes[0]
    if tokens:
        ok, suffix = node.match(tokens[0])
        if ok:
            rest = _match_nodes(nodes[1:], tokens[1:])
            if rest is not None:
                return [suffix, *rest]
    if node.optional:
        rest = _match_nodes(nodes[1:], tokens)
        if rest is not None:
            return [None, *rest]
    return None


# SCPI suffix multipliers. "M" is milli; mega is "MA" (and the units MOHM / MHZ, handled
# where the unit is known), which is why the unit is stripped before the multiplier.
_MULTIPLIERS = {
    "": 1.0,
    "EX": 1e18,
    "PE": 1e15,
    "T": 1e12,
    "G": 1e9,
    "MA": 1e6,
    "K": 1e3,
    "M": 1e-3,
    "U": 1e-6,
    "N": 1e-9,
    "P": 1e-12,
    "F": 1e-15,
}

_NUMBER_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z/%]*)$")

_MIN_WORDS = ("MIN", "MINIMUM")

_MAX_WORDS = ("MAX", "MAXIMUM")

_DEF_WORDS = ("DEF", "DEFAULT")


def parse_number(text: str, unit: str | None = None) -> float:
    """Parse a decimal numeric parameter with an optional unit suffix and multiplier.

    ``unit`` is the base unit the command accepts (``V``, ``A``, ``S``, ``OHM``, ``A/US``);
    ``None`` means no suffix is allowed. Raises -104 when the text is not a number and -131
    when the suffix does not fit.
    """
    m = _NUMBER_RE.match(text.strip())
    if not m:
        raise data_type_error(text)
    value = float(m.group(1))
    suffix = m.group(2).upper()
    if not suffix:
        return value
    if unit is None:
        raise ScpiError(-138, "Suffix not allowed", text)
    base = unit.upper()
    if base == "OHM" and suffix in ("MOHM", "MEGOHM"):
        return value * 1e6
    if base == "HZ" and suffix == "MHZ":
        return value * 1e6
    if not suffix.endswith(base):
        raise invalid_suffix(text)
    prefix = suffix[: len(suffix) - len(base)]
    if prefix not in _MULTIPLIERS:
        raise invalid_suffix(text)
    return value * _MULTIPLIERS[prefix]


_CHANLIST_RE = re.compile(r"^\(\s*@\s*([0-9:,\s]+)\)$")


def parse_channel_list(text: str, channels: int | None = None) -> list[int]:
    """Parse ``(@1)``, ``(@1:8)``, ``(@1,3,5)``, ``(@1:3,5)`` into channel numbers.

    Channels outside ``1..channels`` raise -222 (the instrument has no such channel).
    """
    m = _CHANLIST_RE.match(text.strip())
    if not m:
        raise data_type_error(f"channel list expected: {text}")
    result: list[int] = []
    for item in m.group(1).split(","):
        item = item.strip()
        if not item:
            raise data_type_error(text)
        if ":" in item:
            lo_s, hi_s = (p.strip() for p in item.split(":", 1))
            if not lo_s.isdigit() or not hi_s.isdigit():
                raise data_type_error(text)
            lo, hi = int(lo_s), int(hi_s)
            step = 1 if hi >= lo else -1
            result.extend(range(lo, hi + step, step))
        else:
            if not item.isdigit():
                raise data_type_error(text)
            result.append(int(item))
    if channels is not None:
        for ch in result:
            if not 1 <= ch <= channels:
                raise data_out_of_range(f"channel {ch}")
    return result


def is_channel_list(text: str) -> bool:
    return text.strip().startswith("(")


def match_keyword(text: str, options: Sequence[str]) -> str:
    """Match character data against keyword options given as ``CONTinuous``.

    Returns the option's short form in upper case (``CONT``); -224 when none matches.
    """
    word = text.strip().upper()
    for option in options:
        short = "".join(ch for ch in option if ch.isupper() or ch.isdigit())
        if word in (short, option.upper()):
            return short
    raise illegal_parameter(text)


def split_outside(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes, parentheses and arbitrary blocks.

    A definite-length block ``#<n><length><data>`` is skipped whole (its data may hold any
    byte, ``;`` and ``,`` included); an indefinite one (``#0``) runs to the end of the text.
    """
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and i + 1 < len(text) and text[i + 1].isdigit():
            digits = int(text[i + 1])
            if digits == 0:
                break  # indefinite-length block: the rest of the message
            count = text[i + 2 : i + 2 + digits]
            if len(count) == digits and count.isdigit():
                i += 2 + digits + int(count)
                continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


@dataclass
class Args:
    """What a handler receives: the raw parameters and the header's numeric suffixes."""

    params: list[str]
    suffixes: list[int | None] = field(default_factory=list)

    def suffix(self, index: int = 0, default: int = 1) -> int:
        """The ``index``-th numeric suffix written in the header (``OUTP3`` -> 3)."""
        written = [s for s in self.suffixes if s is not None]
        if index < len(written):
            return written[index]
        return default

    def has(self, index: int) -> bool:
        return index < len(self.params) and self.params[index].strip() != ""

    def raw(self, index: int) -> str:
        if not self.has(index):
            raise missing_parameter()
        return self.params[index].strip()

    def number(
        self,
        index: int = 0,
        unit: str | None = None,
        low: float | None = None,
        high: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        default: float | None = None,
    ) -> float:
        """A numeric parameter in base units, range-checked against ``low..high``.

        ``minimum``/``maximum``/``default`` are what ``MIN``/``MAX``/``DEF`` mean for this
        command (when None the keyword is illegal, -224).
        """
        text = self.raw(index)
        word = text.upper()
        keyword_value: float | None
        if word in _MIN_WORDS:
            keyword_value = minimum
        elif word in _MAX_WORDS:
            keyword_value = maximum
        elif word in _DEF_WORDS:
            keyword_value = default
        else:
            value = parse_number(text, unit)
            if math.isnan(value) or math.isinf(value):
                raise data_out_of_range(text)
            if (low is not None and value < low - 1e-12) or (
                high is not None and value > high + 1e-12
            ):
                raise data_out_of_range(text)
            return value
        if keyword_value is None:
            raise illegal_parameter(text)
        return keyword_value

    def integer(self, index: int = 0, low: int | None = None, high: int | None = None) -> int:
        value = parse_number(self.raw(index))
        if value != int(value):
            raise data_type_error(self.raw(index))
        n = int(value)
        if (low is not None and n < low) or (high is not None and n > high):
            raise data_out_of_range(self.raw(index))
        return n

    def boolean(self, index: int = 0) -> bool:
        text = self.raw(index).upper()
        if text == "ON":
            return True
        if text == "OFF":
            return False
        try:
            value = parse_number(text)
        except ScpiError:
            raise illegal_parameter(text) from None
        return round(value) != 0

    def keyword(self, index: int, options: Sequence[str]) -> str:
        return match_keyword(self.raw(index), options)

    def channels(self, index: int, count: int | None = None) -> list[int]:
        return parse_channel_list(self.raw(index), count)

    def min_max(self, index: int = 0) -> str | None:
        """An optional ``MIN``/``MAX`` query parameter: ``"MIN"``, ``"MAX"`` or None."""
        if not self.has(index):
            return None
        word = self.raw(index).upper()
        if word in _MIN_WORDS:
            return "MIN"
        if word in _MAX_WORDS:
            return "MAX"
        raise illegal_parameter(word)
