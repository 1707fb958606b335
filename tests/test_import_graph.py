"""No import circle between the project's modules, and each floor imports only the floors below it.

Late imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.processes import REPO_ROOT

PACKAGES = ("alcance", "connectors", "processors", "schemas", "infra", "web", "directory")

# What each package may import besides itself: `schemas` and `infra` are the foundation, `alcance` (the
# command and the run orchestration) the top floor that assembles the rest.
ALLOWED = {
    "schemas": set(),
    "infra": {"schemas"},
    "connectors": {"schemas", "infra"},
    "processors": {"schemas", "infra"},
    "directory": {"schemas", "infra", "connectors"},
    "web": {"schemas", "infra", "connectors", "processors", "directory"},
    "alcance": {"schemas", "infra", "connectors", "processors", "web", "directory"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (REPO_ROOT / package).rglob("*.py")}


class _Imports(ast.NodeVisitor):
    """Every module a file imports at run time: at the top, inside functions, anywhere but TYPE_CHECKING."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.is_package = is_package
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            package = self.module.split(".")
            base = package if self.is_package else package[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        self.found.add(source)
        # `from package import module` imports that module too.
        self.found.update(f"{source}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        visitor = _Imports(name, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        graph[name] = {found for found in visitor.found if found in modules and found != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_project_imports_itself_through_others() -> None:
    graph = import_graph()
    assert len(graph) > 50, "the project's modules were found"
    assert circles(graph) == []


def test_the_check_finds_a_circle_closed_by_a_late_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    late = ast.parse("def f():\n    from pkg.b import thing\n")
    visitor = _Imports("pkg.a", is_package=False)
    visitor.visit(late)
    assert "pkg.b" in visitor.found
    hidden = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import T\n")
    visitor = _Imports("pkg.a", is_package=False)
    visitor.visit(hidden)
    assert "pkg.b" not in visitor.found


def floor_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a package that its floor does not allow, as "importer -> imported"."""
    return sorted(
        f"{importer} -> {target}"
        for importer, targets in graph.items()
        for target in targets
        if (home := importer.split(".")[0]) != (other := target.split(".")[0]) and other not in ALLOWED[home]
    )


def test_each_package_imports_only_the_floors_below_it() -> None:
    assert floor_violations(import_graph()) == []


def test_the_floor_check_finds_the_foundation_importing_upwards() -> None:
    graph = {"infra.cli": {"processors.read", "infra.settings"}, "processors.read": {"infra.settings"}}
    assert floor_violations(graph) == ["infra.cli -> processors.read"]
