"""The engine imports no Textual, and nothing heavy at import time (so the UI's first frame is fast)."""

import pkgutil
import subprocess
import sys

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
