"""The layer order of design.md, checked on the source: imports run downwards only, products never import
each other, and no two modules import each other at import time.

Every ``import``/``from … import`` statement of every module under ``src/featstat`` counts — at module level,
inside functions and under ``TYPE_CHECKING`` — and so does ``importlib.import_module("featstat.…")`` (or
``__import__``) with a string literal. Old module names (``featstat.MOVED``) count as the module they now are,
and ``from featstat import Name`` as the module ``featstat._LAZY`` takes ``Name`` from.

Layer order, lowest first (a module may import its own layer and the layers below it)::

    _checks, _atomic, registry → io, ops → features → nets → losses → objective → metrics → engine
    → products (texture, prior, restoration, adversarial: never each other) → cli

``featstat/__init__.py`` and ``featstat/__main__.py`` are exempt: they re-export lazily from every layer.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import featstat

SRC = Path(__file__).resolve().parents[1] / "src" / "featstat"

#: rank of each top-level name under featstat (equal rank: same layer, may import each other)
LAYERS: dict[str, int] = {
    "_checks": 0, "_atomic": 0, "registry": 0,
    "io": 1, "ops": 1,
    "features": 2,
    "nets": 3,
    "losses": 4,
    "objective": 5,
    "metrics": 6,
    "engine": 7,
    "texture": 8, "prior": 8, "restoration": 8, "adversarial": 8,
    "cli": 9,
}  # fmt: skip
PRODUCTS = frozenset(name for name, rank in LAYERS.items() if rank == LAYERS["texture"])
EXEMPT = frozenset({"featstat", "featstat.__main__"})

#: Violations that exist today in files other engineers are rewriting for issue 10 (engine, products, cli,
#: metrics/deep.py). Each entry is (importing module, imported module). The test fails when one of them is
#: gone, so that the entry is deleted here and the set only shrinks; a new violation is never added here.
KNOWN: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "featstat.losses.gram"
    target: str  # the imported featstat module, e.g. "featstat.objective.core"
    line: int
    deferred: bool  # inside a function (runs after both modules are initialised)
    typing_only: bool  # under ``if TYPE_CHECKING:``


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _all_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


MODULES = _all_modules()


def _canonical(name: str) -> str:
    """An imported name as the module it is: old names through featstat.MOVED, deepest existing module."""
    for old, new in sorted(featstat.MOVED.items(), key=lambda kv: -len(kv[0])):
        if name == old or name.startswith(old + "."):
            name = new + name[len(old):]
            break
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _from_target(base: str, alias: str) -> str:
    """The module that ``from base import alias`` loads: the submodule if there is one, else base (or, for
    the lazy root package, the module its _LAZY table takes the name from)."""
    base = _canonical(base)
    if f"{base}.{alias}" in MODULES or f"{base}.{alias}" in featstat.MOVED:
        return _canonical(f"{base}.{alias}")
    if base == "featstat" and alias in featstat._LAZY:
        where = featstat._LAZY[alias]
        return _canonical(f"featstat.{where or alias}")
    return base


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]

    def visit(node: ast.AST, deferred: bool, typing_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            d, t = deferred, typing_only
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                d = True
            if isinstance(node, ast.If) and _is_type_checking(node.test) and child in node.body:
                t = True
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "featstat":
                        yield Import(module, _canonical(alias.name), child.lineno, d, t)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[: len(base_parts) - (child.level - 1)]
                    base = ".".join(base_parts + ([child.module] if child.module else []))
                else:
                    base = child.module or ""
                if base.split(".")[0] == "featstat":
                    for alias in child.names:
                        yield Import(module, _from_target(base, alias.name), child.lineno, d, t)
            elif isinstance(child, ast.Call):
                func = child.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if (name in ("import_module", "__import__") and child.args
                        and isinstance(child.args[0], ast.Constant) and isinstance(child.args[0].value, str)
                        and child.args[0].value.split(".")[0] == "featstat"):
                    yield Import(module, _canonical(child.args[0].value), child.lineno, d, t)
            yield from visit(child, d, t)

    yield from visit(tree, False, False)


ALL_IMPORTS = [imp for module, path in MODULES.items() for imp in _imports(module, path)]


def _layer(module: str) -> str:
    return module.split(".")[1]


def _violation(imp: Import) -> str | None:
    """Why this import breaks the layer order, or None."""
    if imp.module in EXEMPT or imp.target == imp.module:
        return None
    if imp.target in EXEMPT:
        return "imports the featstat package itself (name the module instead)"
    src, dst = _layer(imp.module), _layer(imp.target)
    for layer in (src, dst):
        if layer not in LAYERS:
            return f"featstat.{layer} is in no layer: add it to LAYERS in tests/test_architecture.py"
    if LAYERS[dst] > LAYERS[src]:
        return f"upward import: {src} (layer {LAYERS[src]}) imports {dst} (layer {LAYERS[dst]})"
    if src != dst and src in PRODUCTS and dst in PRODUCTS:
        return f"product {src} imports product {dst}"
    return None


def _violations() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for imp in ALL_IMPORTS:
        why = _violation(imp)
        if why:
            kind = " (in a function)" if imp.deferred else " (TYPE_CHECKING)" if imp.typing_only else ""
            found.setdefault((imp.module, imp.target), []).append(
                f"{MODULES[imp.module].relative_to(SRC.parent)}:{imp.line}{kind}: {why}")
    return found


def test_the_scan_sees_imports() -> None:
    """The parser finds what is there (a broken scan would pass every check below)."""
    targets = {(i.module, i.target) for i in ALL_IMPORTS}
    assert ("featstat.objective.config", "featstat.objective.core") in targets  # relative, module level
    assert ("featstat.losses.gram", "featstat._checks") in targets
    assert any(i.deferred for i in ALL_IMPORTS)
    assert len(MODULES) > 50


def test_scan_resolves_every_import_form(tmp_path: Path) -> None:
    source = (
        "import featstat.losses.gram\n"
        "from featstat.runs import Checkpoint\n"  # an old name (featstat.MOVED)
        "from .. import objective\n"
        "from ..engine import runs\n"
        "from featstat import Objective\n"  # a lazy name of the root package
        "if TYPE_CHECKING:\n"
        "    from ..metrics.deep import x\n"
        "def f():\n"
        "    importlib.import_module('featstat.cli.texture')\n"
    )
    path = tmp_path / "gram.py"
    path.write_text(source)
    found = [(i.target, i.deferred, i.typing_only) for i in _imports("featstat.losses.gram", path)]
    assert found == [
        ("featstat.losses.gram", False, False),
        ("featstat.engine.runs", False, False),
        ("featstat.objective", False, False),
        ("featstat.engine.runs", False, False),
        ("featstat.objective", False, False),
        ("featstat.metrics.deep", False, True),
        ("featstat.cli.texture", True, False),
    ]
    reasons = [_violation(Import("featstat.losses.gram", t, 1, d, ty)) for t, d, ty in found]
    assert reasons[0] is None and all(r and "upward" in r for r in reasons[1:])
    assert "product prior imports product texture" in str(
        _violation(Import("featstat.prior.engine", "featstat.texture.synthesis", 1, False, False)))
    assert _violation(Import("featstat.cli.texture", "featstat.texture.synthesis", 1, False, False)) is None
    assert _violation(Import("featstat.io", "featstat._checks", 1, False, False)) is None
    assert "no layer" in str(_violation(Import("featstat.io", "featstat.newthing", 1, False, False)))


def test_imports_run_downwards_and_products_stay_apart() -> None:
    found = _violations()
    new = {key: lines for key, lines in found.items() if key not in KNOWN}
    assert not new, "imports against the layer order (design.md, Layers):\n" + "\n".join(
        line for lines in new.values() for line in lines)


def test_known_exceptions_are_still_needed() -> None:
    """KNOWN only shrinks: an entry whose import is gone must be deleted from it."""
    gone = sorted(KNOWN - set(_violations()))
    assert not gone, f"KNOWN entries that no longer occur (delete them from this file): {gone}"


def _import_time_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in ALL_IMPORTS:
        if not imp.deferred and not imp.typing_only and imp.target != imp.module:
            graph[imp.module].add(imp.target)
            # importing a submodule runs its packages' __init__ first
            parts = imp.target.split(".")
            for i in range(2, len(parts)):
                if ".".join(parts[:i]) != imp.module and not imp.module.startswith(".".join(parts[:i]) + "."):
                    graph[imp.module].add(".".join(parts[:i]))
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    """No modules import each other at import time (module-level imports; a function-level import runs after
    both modules are initialised, and the layer test above already keeps those downward or in one layer)."""
    graph = {m: {t for t in ts if m not in EXEMPT and t not in EXEMPT}
             for m, ts in _import_time_graph().items()}
    cycles = _cycles(graph)
    assert not cycles, f"import cycles: {cycles}"


def test_objective_core_does_not_import_config() -> None:
    """The old objective ↔ objective_config cycle stays broken: config builds on core, never the reverse, not
    even inside a function (Objective.from_config reaches the builder through the package)."""
    back = [i for i in ALL_IMPORTS
            if i.module == "featstat.objective.core" and i.target == "featstat.objective.config"]
    assert not back, back


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_every_layer_name_is_a_real_folder_or_module_or_planned(layer: str) -> None:
    planned = {"registry", "ops", "adversarial"}  # named in design.md, not written yet
    assert layer in planned or (SRC / layer).is_dir() or (SRC / f"{layer}.py").is_file()


def test_every_top_level_module_is_in_a_layer() -> None:
    tops = {_layer(m) for m in MODULES if m not in EXEMPT}
    assert tops <= set(LAYERS), f"featstat.{sorted(tops - set(LAYERS))} in no layer: add to LAYERS"
