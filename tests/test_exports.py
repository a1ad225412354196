"""The public surface, in the manner of trio's ``_tests/test_exports.py``.

Public modules only re-export what ``_private`` modules implement; each name is
exported once, documented, and counted against the budget (at most 20 names at
the top level, at most 100 over every public module); no private module imports a
public one; the import graph has no cycles.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import sockshock

SRC = Path(sockshock.__file__).parent
TOP_LEVEL_BUDGET = 20
TOTAL_BUDGET = 100
# CPython-shaped: its names, layout and docstrings are the standard module's.
DROP_IN = "sockshock.socketserver"


def _public_modules() -> list[str]:
    names = ["sockshock"]
    for info in pkgutil.iter_modules([str(SRC)], prefix="sockshock."):
        leaf = info.name.rsplit(".", 1)[1]
        if not leaf.startswith("_"):
            names.append(info.name)
    return sorted(names)


PUBLIC = _public_modules()


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def test_the_public_modules_are_the_documented_ones() -> None:
    assert PUBLIC == [
        "sockshock",
        "sockshock.checks",
        "sockshock.clients",
        "sockshock.errors",
        "sockshock.faults",
        "sockshock.handlers",
        "sockshock.layer",
        "sockshock.pytest_plugin",
        "sockshock.scenarios",
        "sockshock.scripts",
        "sockshock.socketserver",
        "sockshock.strategies",
        "sockshock.tls",
    ]


def test_the_surface_stays_within_its_budget() -> None:
    sizes = {name: len(_module(name).__all__) for name in PUBLIC}
    assert sizes["sockshock"] <= TOP_LEVEL_BUDGET, sizes
    assert sum(sizes.values()) <= TOTAL_BUDGET, sizes


@pytest.mark.parametrize("name", PUBLIC)
def test_every_exported_name_exists_once_and_is_public(name: str) -> None:
    module = _module(name)
    assert module.__doc__, f"{name} has no docstring"
    exports = module.__all__
    assert len(set(exports)) == len(exports), f"{name} exports a name twice"
    for export in exports:
        assert not export.startswith("_"), f"{name}.{export} is private"
        assert hasattr(module, export), f"{name}.{export} does not exist"


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != DROP_IN])
def test_public_modules_only_re_export(name: str) -> None:
    """Each exported name comes from an import of a private module (the top level's
    from its lazy table); none is defined in the public module itself. (Not read from
    ``__module__``: that names the public module, see tests/test_public_names.py.)"""
    module = _module(name)
    source = Path(module.__file__ or "")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = node.module
    if name == "sockshock":
        imported.update(getattr(module, "_HOMES", {}))
    for export in module.__all__:
        home = imported.get(export)
        assert home is not None, f"{name}.{export} is not imported from a private module"
        private = any(part.startswith("_") for part in home.split(".")[1:])
        assert home.startswith("sockshock."), f"{name}.{export} comes from {home}"
        assert private, f"{name}.{export} comes from {home}"


def test_each_object_has_one_public_home() -> None:
    homes: dict[int, str] = {}
    for name in PUBLIC:
        module = _module(name)
        for export in module.__all__:
            obj = getattr(module, export)
            where = f"{name}.{export}"
            assert homes.setdefault(id(obj), where) == where, (
                f"{where} is also exported as {homes[id(obj)]}"
            )


def _documented(obj: object) -> bool:
    doc = inspect.getdoc(obj)
    return bool(doc and doc.strip())


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != DROP_IN])
def test_every_public_function_class_and_method_has_a_docstring(name: str) -> None:
    module = _module(name)
    missing = []
    for export in module.__all__:
        obj = getattr(module, export)
        if not (inspect.isclass(obj) or callable(obj)):
            continue
        if not _documented(obj):
            missing.append(f"{name}.{export}")
        if not inspect.isclass(obj):
            continue
        for attr in dir(obj):
            if attr.startswith("_"):
                continue
            owner = next(k for k in obj.__mro__ if attr in vars(k))
            if not owner.__module__.startswith("sockshock.") or owner.__module__ == DROP_IN:
                continue  # inherited from the standard library, documented there
            value = vars(owner)[attr]
            member = value.fget if isinstance(value, property) else value
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if (inspect.isfunction(member) or isinstance(value, property)) and not _documented(
                getattr(obj, attr) if not isinstance(value, property) else value
            ):
                missing.append(f"{name}.{export}.{attr}")
    assert not missing, "undocumented: " + ", ".join(sorted(set(missing)))


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "sockshock":  # from sockshock import faults
                found.extend((node.lineno, f"sockshock.{a.name}") for a in node.names)
            else:
                found.append((node.lineno, node.module))
                package = SRC.joinpath(*node.module.split(".")[1:])
                for alias in node.names:  # from sockshock._pkg import _module
                    if (package / f"{alias.name}.py").exists():
                        found.append((node.lineno, f"{node.module}.{alias.name}"))
    return found


def _is_public(module: str) -> bool:
    parts = module.split(".")
    if parts[0] != "sockshock" or module == DROP_IN:
        return False
    if len(parts) == 1:
        return True
    return not parts[1].startswith("_")


def test_no_private_module_imports_a_public_one() -> None:
    offences = []
    for path in sorted(SRC.rglob("_*/*.py")):
        for line, module in _imports(path):
            if _is_public(module):
                offences.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not offences, offences


def test_the_import_graph_has_no_cycles() -> None:
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("sockshock")
    modules = sorted(graph.modules)
    index = {m: i for i, m in enumerate(modules)}
    edges = {
        m: sorted(
            n
            for n in graph.find_modules_directly_imported_by(m)
            # a package's doorway importing its own modules is how doorways work
            if not n.startswith(m + ".")
        )
        for m in modules
    }
    # Tarjan's strongly connected components.
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        order[v] = low[v] = len(order)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component, key=index.__getitem__))

    for module in modules:
        if module not in order:
            visit(module)
    assert not cycles, cycles


def test_packages_are_entered_through_their_doorway() -> None:
    """A module outside ``sockshock._pkg`` imports ``sockshock._pkg`` (its
    ``__init__``), never ``sockshock._pkg._module``."""
    offences = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).parts
        own = rel[0] if len(rel) > 1 else None
        for line, module in _imports(path):
            parts = module.split(".")
            if (
                len(parts) >= 3
                and parts[0] == "sockshock"
                and parts[1].startswith("_")
                and parts[1] != own
            ):
                offences.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not offences, offences
