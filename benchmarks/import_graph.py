"""The package's import graph: cycles, private names imported across modules, lines per layer.

    python benchmarks/import_graph.py [SRC]     # SRC: a src/stargan folder (default: this tree's)

Every ``import``/``from ... import`` of a ``stargan`` module counts, at module level or inside
functions (a lazy import is still a dependency), but those under ``if TYPE_CHECKING:``. A
cycle is a strongly connected set of modules; a private import is ``from stargan.x import
_name`` in another module.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import print_report  # noqa: E402


def module_name(src: Path, path: Path) -> str:
    parts = ["stargan", *path.relative_to(src).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def scan(src: Path) -> tuple[dict[str, set[str]], list[str], dict[str, int]]:
    modules = {module_name(src, p): p for p in sorted(src.rglob("*.py"))}
    edges: dict[str, set[str]] = defaultdict(set)
    private: list[str] = []
    for name, path in modules.items():
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from stargan import synthesis`` depends on the submodule, not the package
                submodules = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t for t in submodules if t in modules] or [node.module]
                private += [
                    f"{name} <- {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and node.module.startswith("stargan")
                ]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges, private, {n: len(p.read_text().splitlines()) for n, p in modules.items()}


def _imports(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (annotations, not dependencies)."""
    skip = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    return [n for n in ast.walk(tree) if id(n) not in skip]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "top level"


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "src/stargan"
    edges, private, lines = scan(src)
    found = cycles(edges)
    rows = [
        (f"cycle of {len(c)}", ", ".join(m.removeprefix("stargan.") for c2 in [c] for m in c2))
        for c in found
    ]
    rows.append(("modules in cycles", str(sum(len(c) for c in found))))
    rows += [("private import", p) for p in private]
    rows.append(("private imports across modules", str(len(private))))
    per_layer: dict[str, int] = defaultdict(int)
    for module, n in lines.items():
        per_layer[layer(module)] += n
    rows += [(f"lines: {name}", str(n)) for name, n in sorted(per_layer.items())]
    print_report(
        rows,
        {"cycles": len(found), "in_cycles": sum(len(c) for c in found), "private": len(private)},
    )


if __name__ == "__main__":
    main()
