"""The engine imports no Textual, and nothing heavy at import time (so the UI's first frame is fast)."""

import ast
import pkgutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import cnn_tui.core


def test_core_imports_neither_textual_nor_keras():
    modules = [m.name for m in pkgutil.walk_packages(cnn_tui.core.__path__, "cnn_tui.core.")]
    code = (
        "import sys\n"
        f"for name in {modules!r}: __import__(name)\n"
        "heavy = sorted(m for m in ('textual', 'keras', 'tensorflow', 'matplotlib', 'sklearn', 'scikeras') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
    assert len(modules) >= 40


def test_the_cli_modules_do_not_import_their_package():
    """``cnn_tui/cli/__init__.py`` imports the command modules; one importing back from the package
    (``from cnn_tui.cli import ...``) would be a cycle that breaks as soon as either moves."""
    import ast
    from pathlib import Path

    import cnn_tui.cli

    folder = Path(cnn_tui.cli.__file__).parent
    offenders = []
    for path in sorted(folder.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "cnn_tui.cli" and node.level == 0:
                offenders.append(f"{path.name}:{node.lineno}")
            elif isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
                offenders.append(f"{path.name}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(a.name == "cnn_tui.cli" for a in node.names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders


def _import_circles(src: Path) -> list[list[str]]:
    """Groups of cnn_tui modules under ``src`` that import one another in a circle, counting imports
    inside functions too (the strongly connected components of the import graph)."""
    modules = {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p
               for p in Path(src).rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnn_tui"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    edges[name].add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name.startswith("cnn_tui"))
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(modules)))

    def visit(module: str) -> None:  # Tarjan's algorithm
        order[module] = low[module] = len(order)
        stack.append(module)
        for target in edges.get(module, ()):
            if target not in modules:
                continue
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            group = []
            while (member := stack.pop()) != module:
                group.append(member)
            group.append(module)
            if len(group) > 1:
                circles.append(sorted(group))

    for module in sorted(modules):
        if module not in order:
            visit(module)
    return circles


def test_no_module_imports_a_module_that_imports_it_back():
    """At module level or inside a function: a circle hides the layering and breaks as soon as one
    of its modules moves (the import-linter contracts hold the layers between packages)."""
    assert _import_circles(Path(cnn_tui.__file__).parents[1]) == []


def test_the_circle_finder_finds_a_circle_through_a_function_level_import(tmp_path):
    package = tmp_path / "cnn_tui"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cnn_tui.b import f\n")
    (package / "b.py").write_text("def f():\n    from cnn_tui import a\n")
    (package / "c.py").write_text("from cnn_tui import a\n")
    assert _import_circles(tmp_path) == [["cnn_tui.a", "cnn_tui.b"]]
