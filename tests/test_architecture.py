"""The product's shape, checked from its source: no import cycles, nothing below the harness
imports it, no per-row branches in the plan or the procedures, small modules, procedures by
name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bmsspec import load_spec
from harness.plan import build_plan
from harness.procedures.registry import PROCEDURES

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("bmsspec", "harness", "instruments", "bmssim", "reports")
#: Packages the harness sits on: they may not import it.
BELOW_HARNESS = ("bmsspec", "instruments", "bmssim")
#: Where a branch on a row number is a per-row table in code.
NO_ROW_BRANCHES = ("harness/plan", "harness/procedures")
#: Names whose comparison with an integer literal is a branch on a row.
ROW_NAMES = {"number", "trip", "param", "switch", "item"}
MAX_LINES = 500
#: Cycles outside this work's scope, owned by the twin's split into features (issue 9 item
#: 3): listed so a new cycle fails here; remove an entry when its cycle is gone.
KNOWN_CYCLES = [["bmssim.twin.core", "bmssim.twin.history"]]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(packages=PRODUCT) -> dict[str, Path]:
    out = {}
    for pkg in packages:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the product modules it imports (anywhere in the file, lazy ones too)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, node, path.name == "__init__.py")
                targets.add(base)
                targets.update(f"{base}.{a.name}" for a in node.names)
        deps = set()
        for t in targets:
            # the longest product module the target names (a package counts as itself)
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                deps.add(t)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _is_package_edge(a: str, b: str) -> bool:
    """A package's ``__init__`` re-exporting its own submodules, and those submodules
    importing siblings through the package, is one package, not a cycle between layers."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_cycles_in_the_product():
    graph = _imports(_sources())
    # a package and its own submodules import each other through the package's __init__
    pruned = {m: {d for d in deps if not _is_package_edge(m, d)} for m, deps in graph.items()}
    found = _cycles(pruned)
    assert [c for c in found if c not in KNOWN_CYCLES] == []
    assert [c for c in KNOWN_CYCLES if c not in found] == [], "a known cycle is gone: unlist it"


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_below_the_harness_imports_it():
    graph = _imports(_sources())
    offenders = sorted(
        f"{m} imports {d}"
        for m, deps in graph.items()
        if m.split(".")[0] in BELOW_HARNESS
        for d in deps
        if d.split(".")[0] == "harness"
    )
    assert offenders == []


def _row_branches(tree: ast.AST) -> list[str]:
    """Comparisons of a row name with an integer literal, membership in a literal of
    integers, and dict literals keyed by integers (per-row tables)."""

    def is_int(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int)
            and not isinstance(node.value, bool)
        )

    def names_row(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr in ROW_NAMES
        if isinstance(node, ast.Name):
            return node.id in ROW_NAMES
        if isinstance(node, ast.Call) and node.args:  # int(params["trip"]) and the like
            return names_row(node.args[0])
        if isinstance(node, ast.Subscript):
            key = node.slice
            return isinstance(key, ast.Constant) and key.value in ROW_NAMES
        return False

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, sides, sides[1:], strict=False):
                pair = (left, right)
                if isinstance(op, (ast.Eq, ast.NotEq, ast.Lt, ast.Gt, ast.LtE, ast.GtE)):
                    if any(names_row(a) and is_int(b) for a, b in (pair, pair[::-1])):
                        found.append(f"line {node.lineno}: {ast.unparse(node)}")
                elif isinstance(op, (ast.In, ast.NotIn)):
                    if isinstance(right, (ast.Tuple, ast.List, ast.Set)) and any(
                        is_int(e) for e in right.elts
                    ):
                        found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Dict):
            if sum(1 for k in node.keys if k is not None and is_int(k)) >= 2:
                found.append(f"line {node.lineno}: a dict keyed by integers")
    return found


def _files(*dirs: str) -> list[Path]:
    out = []
    for d in dirs:
        base = ROOT / d
        out += sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    return [p for p in out if p.is_file()]


def test_no_branch_on_a_row_number_in_the_plan_or_the_procedures():
    found = {
        str(p.relative_to(ROOT)): hits
        for p in _files(*NO_ROW_BRANCHES, "harness/plan_view")
        if (hits := _row_branches(ast.parse(p.read_text(encoding="utf-8"))))
    }
    assert found == {}


@pytest.mark.parametrize(
    "source",
    [
        "if p.number == 57: pass",
        "if 10 == trip.number: pass",
        "x = p.number in (9, 63)",
        "T = {1: 3.62, 15: 58.2}",
        "if int(params['trip']) == 37: pass",
    ],
)
def test_the_row_branch_check_catches(source):
    assert _row_branches(ast.parse(source))


#: Reads of a device value by row: ``rig.parameter(70)``, ``spec.param(83)``, ``switch(54)``.
ROW_READS = {"parameter", "param", "switch"}


def _row_reads(tree: ast.AST) -> list[str]:
    """Calls of ``x.parameter`` / ``x.param`` / ``x.switch`` (or the bare names) with a row
    given as a literal: an integer, or an item name like ``"P83"``. A procedure reads such a
    value from its case's setup, which the plan computed from the recipe."""
    import re

    def literal_row(node: ast.AST) -> bool:
        if not isinstance(node, ast.Constant):
            return False
        if isinstance(node.value, bool):
            return False
        if isinstance(node.value, int):
            return True
        return isinstance(node.value, str) and re.match(r"^[PS][0-9]+$", node.value) is not None

    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name in ROW_READS and literal_row(node.args[0]):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_no_device_value_read_by_row_number_in_the_plan_or_the_procedures():
    found = {
        str(p.relative_to(ROOT)): hits
        for p in _files(*NO_ROW_BRANCHES)
        if (hits := _row_reads(ast.parse(p.read_text(encoding="utf-8"))))
    }
    assert found == {}


@pytest.mark.parametrize(
    "source",
    [
        "x = rig.parameter(51) + 5.0",
        "top = rig.spec.param(83).range",
        "on = spec.switch(54).default",
        "v = self.parameter(59)",
        "p = spec.param('P83')",
    ],
)
def test_the_row_read_check_catches(source):
    assert _row_reads(ast.parse(source))


@pytest.mark.parametrize(
    "source", ["x = rig.parameter(number)", "p = spec.param(case.number)", "s = spec.switch(n)"]
)
def test_the_row_read_check_lets_a_row_given_by_the_case_pass(source):
    assert _row_reads(ast.parse(source)) == []


def test_modules_of_the_plan_and_the_procedures_are_small():
    big = {
        str(p.relative_to(ROOT)): n
        for p in _files(
            "harness/plan", "harness/procedures", "harness/plan_view", "bmsspec/recipes"
        )
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert big == {}


def test_every_case_names_a_registered_procedure():
    from harness.plan import DEFAULT_CAPABILITIES

    spec = load_spec()
    for caps in (DEFAULT_CAPABILITIES, dict.fromkeys(DEFAULT_CAPABILITIES, True)):
        unknown = {c.procedure for c in build_plan(spec, caps)} - set(PROCEDURES)
        assert unknown == set()
