"""Import Keras in the background after the first frame, without stalling the UI.

A background import still competes with the UI thread for the GIL, and two steps of it
hold the GIL for long stretches: loading TensorFlow's 800 MB shared library (the dynamic
loader runs under the GIL, 0.3–0.7 s on a small machine), and full garbage collections
over the hundreds of thousands of objects the import creates (0.1–0.2 s each). So the
libraries are loaded first through a plain C call (ctypes releases the GIL around it),
the collector waits until the import is done, and what the import made is then frozen
out of later collections (which also shortens the pauses while training).
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnn_tui.core import backend
from cnn_tui.core.errors import UserError
from cnn_tui.tui import terminal

log = logging.getLogger("cnn_tui.tui")

TENSORFLOW_LIBRARIES = ("libtensorflow_framework.so.*", "libtensorflow_cc.so.*")
_handles: list[int] = []  # kept open for the life of the process


def preload_tensorflow() -> None:
    """Load TensorFlow's shared libraries without holding the GIL (Linux, TensorFlow backend only).
    Importing TensorFlow afterwards finds them loaded. Never raises: it is only an optimisation."""
    if not sys.platform.startswith("linux") or "tensorflow" in sys.modules:
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    try:
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or not spec.submodule_search_locations:
            return
        folder = Path(next(iter(spec.submodule_search_locations)))
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
        dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
        for pattern in TENSORFLOW_LIBRARIES:
            for library in sorted(folder.glob(pattern))[:1]:
                # RTLD_LOCAL, as the extension modules load it: RTLD_GLOBAL makes TensorFlow crash
                handle = dlopen(os.fsencode(library), os.RTLD_LAZY | os.RTLD_LOCAL)
                if handle:
                    _handles.append(handle)
    except Exception:  # noqa: BLE001
        log.debug("preloading TensorFlow's libraries failed", exc_info=True)


def import_without_collections(load: Callable[[], Any]) -> Any:
    """Run an import with the cyclic garbage collector paused, then freeze what it created."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return load()
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


def warm_up(ready: Callable[[str, str | None], None]) -> None:
    """Import Keras (and what the first tasks need), then call ``ready(label, error)``. In a daemon
    thread, not a Textual worker: thread workers run in asyncio's default executor, which
    ``asyncio.run`` joins on exit, so quitting during the import would hang for seconds."""

    def load() -> None:
        try:
            backend.backend_name()  # sets TensorFlow's log level before it is imported
            preload_tensorflow()
            import_without_collections(backend.load_keras)
            label, error = backend.device_label(), None
        except UserError as exc:
            label, error = "Keras unavailable", str(exc)
        except Exception as exc:  # noqa: BLE001 - a broken install must still leave a usable UI
            log.exception("importing Keras failed")
            label, error = "Keras unavailable", backend.describe_failure(exc)
        ready(label, error)
        warm_the_rest()

    threading.Thread(target=load, name="keras-warm-up", daemon=True).start()


def warm_the_rest() -> None:
    """The engine's task modules, the image previews and the decoding processes, so the first
    load and the first samples shown do not pay for them."""
    try:
        import_without_collections(lambda: importlib.import_module("cnn_tui.core.runs.steps"))
        from cnn_tui.core.data import pool  # noqa: PLC0415 — numpy: warmed here, in this thread, after Keras

        if os.environ.get("CNN_TUI_IMAGES", "auto").lower() != "none":
            import_without_collections(terminal.image_module)
        pool.warm_up_pool()
    except Exception:  # noqa: BLE001 - the tasks themselves report real problems
        log.debug("warming up failed", exc_info=True)
