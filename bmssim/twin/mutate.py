"""Putting a mutant of ``bmssim/twin/mutants.py`` in force on one twin, and taking it away.

Each ``Edit`` names ``module.Class.method``; the method's source (``inspect.getsource``) gets
the edit (its fragment must occur exactly once, so a mutant cannot silently drift when the
code it mutates changes), is compiled in its module's namespace, and is bound to the one
object of that class in the twin (the ``Board``, a feature, or the ``BmsTwin`` itself) as an
instance attribute: that object alone runs the mutated method. Removing the mutant deletes
the attributes. The twin then binds its phase calls again (``BmsTwin._bind``), and the
board's row listeners are pointed at the method now in force.
"""

from __future__ import annotations
import __future__

import importlib
import inspect
import textwrap
from collections.abc import Callable
from types import MethodType, ModuleType
from typing import Any

from bmssim.twin.mutants import BY_NAME, Edit, Mutant

#: The twin's modules a mutant may edit, by their short name.
MODULES: dict[str, ModuleType] = {
    name: importlib.import_module(f"bmssim.twin.{name}")
    for name in (
        "activation",
        "balancing",
        "board",
        "busbar",
        "contract",
        "coulomb",
        "heating",
        "limiting",
        "overcurrent",
        "power",
        "recording",
        "softstart",
        "thresholds",
    )
}


class MutantError(ValueError):
    """A mutant that no longer fits the code it mutates (the fragment is not there once)."""


def _target(target: str) -> tuple[ModuleType, type, str]:
    module_name, _, rest = target.partition(".")
    class_name, _, method = rest.partition(".")
    module = MODULES.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    if module is None or not isinstance(cls, type) or method not in vars(cls):
        raise MutantError(f"{target}: no such method in bmssim/twin")
    return module, cls, method


def compile_edits(name: str, target: str, edits: list[Edit]) -> Callable[..., Any]:
    """The method ``target`` with ``edits`` applied, compiled in its module's namespace."""
    module, cls, method = _target(target)
    source = textwrap.dedent(inspect.getsource(vars(cls)[method]))
    for edit in edits:
        found = source.count(edit.old)
        if found != 1:
            raise MutantError(
                f"mutant {name}: {target} holds {edit.old!r} {found} times (needs exactly once)"
            )
        source = source.replace(edit.old, edit.new)
    flags = __future__.annotations.compiler_flag
    code = compile(source, f"<mutant {name}: {module.__file__}>", "exec", flags, True)
    namespace: dict[str, Any] = {}
    exec(code, vars(module), namespace)  # noqa: S102 - the registry's own edits
    return namespace[method]


def functions(mutant: Mutant) -> dict[str, Callable[..., Any]]:
    """target -> the mutated function, every edit of ``mutant`` applied."""
    by_target: dict[str, list[Edit]] = {}
    for edit in mutant.edits:
        by_target.setdefault(edit.target, []).append(edit)
    return {t: compile_edits(mutant.name, t, edits) for t, edits in by_target.items()}


def _owner(twin: Any, cls: type, target: str) -> Any:
    candidates = [twin, twin.board, *twin.features]
    found = [obj for obj in candidates if isinstance(obj, cls)]
    if len(found) != 1:
        raise MutantError(f"{target}: {len(found)} objects of that class in the twin (needs one)")
    return found[0]


def install(twin: Any, name: str | None) -> None:
    """Put mutant ``name`` in force on ``twin`` (None: none), replacing the one in force."""
    patches: list[tuple[Any, str, Callable[..., Any]]] = []
    if name is not None:
        mutant = BY_NAME.get(name)
        if mutant is None:
            raise MutantError(f"unknown mutant {name!r}")
        for target, fn in functions(mutant).items():
            _, cls, method = _target(target)
            patches.append((_owner(twin, cls, target), method, fn))
    for obj, method in twin._mutated:
        vars(obj).pop(method, None)
    twin._mutated = []
    for obj, method, fn in patches:
        setattr(obj, method, MethodType(fn, obj))
        twin._mutated.append((obj, method))
    twin.mutant = name
    listeners = twin.board.row_listeners
    for i, listener in enumerate(listeners):
        owner = getattr(listener, "__self__", None)
        if owner is not None:
            listeners[i] = getattr(owner, listener.__func__.__name__)
    twin._bind()
