"""Rendering of the test plan for ``bmshil plan``: a rich table or JSON, then the totals.

Kept out of cli.py so the command stays a few lines and the view can be tested alone.

The table follows the console width (rich takes it from the terminal, or ``COLUMNS``):

- below :data:`COMPACT_BELOW` columns (an 80-column terminal, a CI log) a compact table:
  id, kind, expected with its unit, suites, bench time; a case's testability, reason and
  parameter overrides go on a line under its id;
- from :data:`COMPACT_BELOW` columns on the full table (tolerance, unit and note columns too);
- ``wide=True`` (``bmshil plan --wide``): the full table at its natural width, nothing wrapped,
  whatever the console width (:func:`wide_width` gives the console width it needs).

Case ids wrap only after a hyphen (:class:`HyphenWrap`), never inside a word, and other cells
wrap at spaces; the totals below the table break only between their items.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.constrain import Constrain
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from harness import FIXTURES_DIR
from harness.plan import DEFAULT_CAPABILITIES, SUITES, Case, kind_counts, suite_estimates

DEFAULT_BENCH_FILE = FIXTURES_DIR / "sim.yaml"


def bench_capabilities(path: Path | None = None) -> tuple[dict[str, bool], str]:
    """The capabilities of a bench file, and where they came from.

    The file is loaded with the same loader as ``bmshil run`` (``load_bench_file``), so a
    typo'd key or a YAML error is refused with file, key and value instead of silently
    changing the plan. Without a bench file (the default fixtures/sim.yaml absent) the plan
    assumes a simulated bench.
    """
    from harness.benchfile import load_bench_file

    explicit = path is not None
    path = Path(path) if path is not None else DEFAULT_BENCH_FILE
    if not path.is_file():
        if explicit:
            raise FileNotFoundError(f"bench file {path} not found")
        return dict(DEFAULT_CAPABILITIES), "defaults (no fixtures/sim.yaml)"
    bench = load_bench_file(path)
    if bench.capabilities is None:
        from harness.benchfile import Capabilities

        return Capabilities().model_dump(), f"defaults ({path.name} declares no capabilities)"
    return bench.capabilities.model_dump(), str(path)


def format_duration(seconds: float) -> str:
    """``1 h 05 min`` / ``12 min 30 s`` / ``45 s``: bench time at a glance."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {(s % 3600) // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


#: Consoles narrower than this get the compact table (an 80-column terminal, a CI log).
COMPACT_BELOW = 140
#: Indent of the continuation lines of a case id folded after a hyphen.
_INDENT = "  "
#: Indent of the note lines under a case in the compact table.
_NOTE_INDENT = 4
#: Characters between two columns: one of padding, one of the (blank) divider.
_GAP = 2


def plan_json(cases: Sequence[Case]) -> str:
    """The plan as a JSON list of case dicts."""
    return json.dumps([c.to_dict() for c in cases], ensure_ascii=False, indent=1)


class HyphenWrap:
    """Text that wraps only after a hyphen, continuation lines indented.

    A case id in a narrow cell stays readable and no word of it is cut: rich itself wraps at
    spaces only and would fold an id anywhere (``P05-cell-overvolta`` / ``ge-protection``).
    Here ``P05-cell-overvoltage-protection-trip`` at 24 columns is ``P05-cell-overvoltage-`` /
    ``  protection-trip``. Only a piece longer than the whole cell is folded, as a last resort.
    """

    def __init__(self, text: str, style: str = "", indent: str = _INDENT) -> None:
        self.text = text
        self.style = style
        self.indent = indent

    def pieces(self) -> list[str]:
        return [p for p in re.split(r"(?<=-)", self.text) if p]

    def lines(self, width: int) -> list[str]:
        """The text broken after hyphens into lines of at most ``width`` cells."""
        width = max(1, width)
        indent = self.indent if width >= 2 * cell_len(self.indent) + 8 else ""
        out: list[str] = []
        line = ""
        for piece in self.pieces():
            lead = indent if out else ""
            if not line:
                line = lead
            if line != lead and cell_len(line + piece) > width:
                out.append(line)
                line = indent
            line += piece
            while cell_len(line) > width:  # no hyphen to break at: fold
                out.append(line[:width])
                line = indent + line[width:]
        if line.strip() or not out:
            out.append(line)
        return out

    def least_width(self) -> int:
        """The narrowest width at which no piece is folded."""
        pieces = self.pieces() or [""]
        return max([cell_len(pieces[0])] + [cell_len(self.indent + p) for p in pieces[1:]])

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        least = self.least_width()
        return Measurement(least, max(least, cell_len(self.text)))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text("\n".join(self.lines(options.max_width)), style=self.style, no_wrap=True)


def _note(c: Case) -> Text:
    """Testability, reason and parameter overrides of a case (plain text, never markup)."""
    note = Text()
    if not c.testable:
        note.append("not testable: ", style="yellow")
    note.append(c.reason or "")
    if c.overrides:
        if c.reason or not c.testable:
            note.append("; ")
        note.append(", ".join(f"P{k}={v:g}" for k, v in c.overrides.items()))
    if getattr(c, "needs_operator", None):
        if len(note):
            note.append("; ")
        wait = getattr(c, "operator_wait_s", None) or 0
        note.append(f"needs an operator (prompts wait up to {format_duration(wait)})")
    return note


def _expected_with_unit(c: Case) -> str:
    return f"{_fmt(c.expected)} {c.unit}".strip()


def short_duration(seconds: float) -> str:
    """``1h05m`` / ``12m30s`` / ``45s``: :func:`format_duration` for a narrow column."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def _bench(c: Case, short: bool = False) -> str:
    if not c.testable:
        return "-"
    return (short_duration if short else format_duration)(c.est_bench_s)


def _bench_width(cases: Iterable[Case], short: bool = False) -> int:
    return _longest((_bench(c, short) for c in cases), "bench")


def _longest(texts: Iterable[str], header: str) -> int:
    return max([cell_len(header)] + [cell_len(t) for t in texts])


def _longest_word(texts: Iterable[str], header: str) -> int:
    return max([cell_len(header)] + [cell_len(w) for t in texts for w in t.split()])


def _allocate(width: int, least: dict[str, int], grow: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Column widths: every column its least width, then what is left of ``width`` (less
    the gaps between columns) to the columns of ``grow`` in order, each up to its target."""
    widths = dict(least)
    left = width - sum(widths.values()) - _GAP * (len(widths) - 1)
    for name, target in grow:
        if left <= 0:
            break
        add = min(left, max(0, target - widths[name]))
        widths[name] += add
        left -= add
    return widths


def _full_widths(cases: Sequence[Case], width: int | None) -> dict[str, int]:
    """Widths of the full table; ``width=None``: every column its natural width."""
    ids = [c.id for c in cases]
    suites = [", ".join(c.suites) for c in cases]
    notes = [_note(c).plain for c in cases]
    fixed = {
        "kind": _longest((c.kind for c in cases), "kind"),
        "expected": _longest((_fmt(c.expected) for c in cases), "expected"),
        "tol": _longest((_fmt(c.tolerance) for c in cases), "tol"),
        "unit": _longest((c.unit for c in cases), "unit"),
        "bench": _bench_width(cases),
    }
    natural = {
        "id": _longest(ids, "id"),
        "suites": _longest(suites, "suites"),
        "note": _longest(notes, "note"),
    }
    if width is None:
        return {**natural, **fixed}
    id_least = max(HyphenWrap(i).least_width() for i in ids)
    least = {
        "id": id_least,
        **fixed,
        "suites": _longest_word(suites, "suites"),
        "note": min(natural["note"], max(24, _longest_word(notes, "note"))),
    }
    grow = [("id", natural["id"]), ("suites", natural["suites"]), ("note", natural["note"])]
    return _allocate(width, least, grow)


def _compact_widths(cases: Sequence[Case], width: int) -> dict[str, int]:
    """Widths of the compact table: the id column gets what the others leave."""
    ids = [c.id for c in cases]
    suites = [", ".join(c.suites) for c in cases]
    least = {
        "id": max(HyphenWrap(i).least_width() for i in ids),
        "kind": _longest((c.kind for c in cases), "kind"),
        "expected": _longest((_expected_with_unit(c) for c in cases), "expected"),
        "suites": _longest_word(suites, "suites"),
        "bench": _bench_width(cases, short=True),
    }
    grow = [
        ("id", _longest(ids, "id")),
        ("bench", _bench_width(cases)),
        ("suites", _longest(suites, "suites")),
    ]
    return _allocate(width, least, grow)


def wide_width(cases: Sequence[Case]) -> int:
    """The console width at which the full table has every cell on one line (``--wide``)."""
    widths = _full_widths(cases, None)
    return sum(widths.values()) + _GAP * (len(widths) - 1)


def _table(title: str) -> Table:
    # A rule under the header and blank dividers: the most room for the cells.
    return Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        expand=False,
    )


def _full_table(cases: Sequence[Case], title: str, width: int | None) -> Table:
    w = _full_widths(cases, width)
    table = _table(title)
    table.add_column("id", width=w["id"])
    table.add_column("kind", width=w["kind"], no_wrap=True)
    table.add_column("expected", width=w["expected"], justify="right", no_wrap=True)
    table.add_column("tol", width=w["tol"], justify="right", no_wrap=True)
    table.add_column("unit", width=w["unit"], no_wrap=True)
    table.add_column("suites", width=w["suites"])
    table.add_column("bench", width=w["bench"], justify="right")
    table.add_column("note", width=w["note"])
    for c in cases:
        table.add_row(
            HyphenWrap(c.id),
            c.kind,
            _fmt(c.expected),
            _fmt(c.tolerance),
            c.unit,
            ", ".join(c.suites),
            _bench(c),
            _note(c),
        )
    return table


def _compact_view(cases: Sequence[Case], title: str, width: int) -> Group:
    """The compact table: one grid a case, all with the same column widths so they line up,
    and a case's note (testability, reason, overrides) on the lines under it, indented, the
    whole width of the table wide rather than squeezed into a cell."""
    w = _compact_widths(cases, width)
    total = sum(w.values()) + _GAP * (len(w) - 1)
    short = w["bench"] < _bench_width(cases)  # no room for "1 min 05 s": "1m05s"

    def grid(**style: str) -> Table:
        g = Table.grid(padding=(0, _GAP, 0, 0), pad_edge=False)
        g.add_column(width=w["id"], **style)
        g.add_column(width=w["kind"], no_wrap=True, **style)
        g.add_column(width=w["expected"], justify="right", no_wrap=True, **style)
        g.add_column(width=w["suites"], **style)
        g.add_column(width=w["bench"], justify="right", **style)
        return g

    head = grid(style="table.header")
    head.add_row("id", "kind", "expected", "suites", "bench")
    parts: list[RenderableType] = [
        Constrain(Text(title, style="table.title", justify="center"), total),
        head,
        Text("\u2500" * min(total, width), style="table.header"),
    ]
    for c in cases:
        row = grid()
        row.add_row(
            HyphenWrap(c.id), c.kind, _expected_with_unit(c), ", ".join(c.suites), _bench(c, short)
        )
        parts.append(row)
        note = _note(c)
        if note.plain:
            parts.append(Constrain(Padding(note, (0, 0, 0, _NOTE_INDENT)), total))
    return Group(*parts)


def render_table(
    cases: Sequence[Case],
    console: Console,
    *,
    all_cases: Sequence[Case] | None = None,
    source: str = "",
    suite: str | None = None,
    wide: bool = False,
) -> None:
    """One row per case, then counts per kind and the estimated bench time per suite.

    The layout follows ``console.width``: compact below :data:`COMPACT_BELOW` columns, the full
    table from there on; ``wide`` the full table at its natural width (print it to a console
    at least :func:`wide_width` wide, or it is cut to the console).
    """
    title = f"Test plan ({suite or 'all suites'}; {len(cases)} cases; capabilities: {source})"
    if not cases:
        console.print(title, highlight=False)
    elif wide:
        console.print(_full_table(cases, title, None))
    elif console.width < COMPACT_BELOW:
        console.print(_compact_view(cases, title, console.width))
    else:
        console.print(_full_table(cases, title, console.width))
    render_summary(cases, console, all_cases=all_cases)


def _wrap_items(head: str, items: Sequence[str], width: int) -> list[str]:
    """``head`` and the items, space separated, broken into lines of at most ``width`` only
    between two items (an item such as ``regression 7 h 09 min`` stays on one line);
    continuation lines indented."""
    lines: list[str] = []
    line = head
    for item in items:
        if line.strip() and cell_len(f"{line} {item}") > width:
            lines.append(line)
            line = _INDENT + item
        else:
            line = f"{line} {item}" if line else item
    lines.append(line)
    return lines


def _with_commas(items: Sequence[str]) -> list[str]:
    return [f"{item}," for item in items[:-1]] + list(items[-1:])


def render_summary(
    cases: Sequence[Case], console: Console, *, all_cases: Sequence[Case] | None = None
) -> None:
    """Counts per kind of the listed cases and bench time per suite of the whole plan."""
    counts = kind_counts(cases)
    untestable = sum(1 for c in cases if not c.testable)
    kinds = _with_commas([f"{k} {n}" for k, n in counts.items()])
    kinds += [f"(total {len(cases)},", f"not testable here {untestable})"]
    estimates = suite_estimates(all_cases if all_cases is not None else cases)
    times = _with_commas([f"{name} {format_duration(estimates[name])}" for name in SUITES])
    for line in _wrap_items("cases per kind:", kinds, console.width) + _wrap_items(
        "estimated real-bench time:", times, console.width
    ):
        console.print(Text(line), no_wrap=True, overflow="ignore")


def summary_dict(cases: Sequence[Case], all_cases: Sequence[Case]) -> Mapping[str, Any]:
    """The totals as data (for scripts that want them without parsing the table)."""
    return {"kinds": kind_counts(cases), "est_bench_s": suite_estimates(all_cases)}
