"""``builder`` is plain Python: it imports neither Django, Celery nor the app, and its modules form no circle.

Read from the source (``ast``), so an import inside a function counts as much as one at the top:
dodging a circle with a late import is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

BUILDER = Path(__file__).resolve().parents[2] / "builder"
#: Top-level packages ``builder`` must never import (DESIGN.md: imports flow ``worker_shell -> gallery -> builder``).
FORBIDDEN = ("django", "celery", "kombu", "billiard", "gallery", "worker_shell")


def module_name(path: Path) -> str:
    parts = path.relative_to(BUILDER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, wherever the statement is (relative imports resolved)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from builder import wheels`
    return names


def builder_graph() -> dict[str, set[str]]:
    """``{builder module: builder modules it imports}``."""
    modules = {module_name(path): path for path in BUILDER.rglob("*.py")}
    return {name: {other for other in imported(path) if other in modules and other != name} for name, path in modules.items()}


def test_builder_imports_neither_django_nor_celery_nor_the_app() -> None:
    offenders = {
        f"{module_name(path)} imports {name}"
        for path in BUILDER.rglob("*.py")
        for name in imported(path)
        if name.split(".")[0] in FORBIDDEN
    }
    assert not offenders


def test_builders_modules_import_each_other_without_a_circle() -> None:
    graph = builder_graph()
    circles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        for other in sorted(graph[name]):
            if other in path:
                circles.append([*path[path.index(other) :], other])
            elif other not in done:
                visit(other, [*path, other])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert not circles, " ; ".join(" -> ".join(circle) for circle in circles)
    assert graph["builder.csp"] >= {"builder.catalog"}, "the check sees the modules' imports"
