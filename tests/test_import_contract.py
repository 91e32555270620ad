"""The engine imports no Textual, and nothing heavy at import time (so the UI's first frame is fast)."""

import pkgutil
import subprocess
import sys

import cnn_tui.core


def test_core_imports_neither_textual_nor_keras():
    modules = [f"cnn_tui.core.{m.name}" for m in pkgutil.iter_modules(cnn_tui.core.__path__)]
    code = (
        "import sys\n"
        f"for name in {modules!r}: __import__(name)\n"
        "heavy = sorted(m for m in ('textual', 'keras', 'tensorflow', 'matplotlib', 'sklearn', 'scikeras') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
    assert len(modules) >= 12
