"""No import cycle in src/mechscope, counting imports inside functions too (a function-level
import is how a cycle hides), and leaving out those under ``if TYPE_CHECKING:`` (never run)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """Modules of the package imported by ``tree``, outside ``if TYPE_CHECKING:`` blocks."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mechscope"):
            for alias in node.names:  # ``from mechscope.data import stats`` imports a module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mechscope"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_the_package_has_no_import_cycle() -> None:
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {m: _imports(ast.parse(p.read_text()), set(files)) - {m} for m, p in files.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            # A module inside a package may import its own package's names (the package is
            # already being imported): kinds/neuron.py -> kinds/base.py is not a cycle with kinds/.
            if m.startswith(n + "."):
                continue
            if state.get(n) == 1:
                return [*path[path.index(n) :], n]
            if n not in state and (cycle := dfs(n)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = dfs(m)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_notebook_views_import_only_engine_types() -> None:
    """The engine's results import ``mechscope.notebook`` inside ``_repr_html_``; the views import
    the engine's types under ``TYPE_CHECKING`` only, so the two never form a cycle."""
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    for name, path in files.items():
        if name.startswith("mechscope.notebook"):
            found = _imports(ast.parse(path.read_text()), set(files))
            assert not [m for m in found if m.startswith(("mechscope.engine", "mechscope.server"))], name
