"""Run at the start of every Python process that has this folder on its PYTHONPATH.

Tests whose tasks now run in a run process of their own (training and tuning from the TUI) cannot
monkeypatch that process: ``tests_support.in_run_processes`` puts this folder on the PYTHONPATH and
names a function of ``tests_support`` in ``CNN_TUI_TEST_HOOK``, which is called here.
"""

import importlib
import os
import sys

_hook = os.environ.get("CNN_TUI_TEST_HOOK")
if _hook:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/
    _module, _, _name = _hook.partition(":")
    getattr(importlib.import_module(_module), _name)()
