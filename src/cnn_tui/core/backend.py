"""Lazy, quiet access to Keras and facts about the backend and devices.

Importing Keras (and TensorFlow under it) takes seconds, so nothing imports it
at module level: callers use ``load_keras()`` when they need it. TensorFlow's
C++ and Python logging is turned down first, because its start-up chatter on
stderr would garble a terminal UI and bury the CLI's one-line messages.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import tempfile
import threading
from functools import lru_cache
from importlib import metadata
from typing import Any

from cnn_tui import __version__
from cnn_tui.core.errors import UserError, disk_problem

_lock = threading.Lock()


def _quiet_environment() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # Take GPU memory as needed instead of all of it up front, so two runs can share a GPU.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def backend_name() -> str:
    """The backend Keras will use, known without importing it."""
    _quiet_environment()
    return os.environ["KERAS_BACKEND"]


def load_keras() -> Any:
    """Import Keras once (thread-safe) and return the module."""
    with _lock:
        return _load_keras()


@lru_cache(maxsize=1)
def _load_keras() -> Any:
    _quiet_environment()
    name = os.environ["KERAS_BACKEND"]
    try:
        with native_stderr_muted():
            import keras  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up
    except ModuleNotFoundError as exc:
        missing = exc.name or name
        hint = {
            "tensorflow": "pip install 'cnn-tui[cpu]' (or '[gpu]'), or set KERAS_BACKEND=jax",
            "jax": "pip install 'cnn-tui[jax]', or set KERAS_BACKEND=tensorflow",
            "torch": "pip install torch, or set KERAS_BACKEND=tensorflow",
        }.get(name, "install it or choose another KERAS_BACKEND")
        raise UserError(f"the Keras backend '{name}' is not installed (no module {missing!r}): {hint}") from None
    if keras.backend.backend() == "tensorflow":
        for logger in ("tensorflow", "absl"):
            logging.getLogger(logger).setLevel(logging.ERROR)
    return keras


class native_stderr_muted:  # noqa: N801 - a context manager, named like one
    """TensorFlow's C++ libraries log as they load ("oneDNN custom operations are on", absl's
    "before InitializeLog" notice) straight to descriptor 2, where TF_CPP_MIN_LOG_LEVEL cannot
    reach them: into a terminal that garbles the CLI's output. Descriptor 2 points at /dev/null
    while the backend imports; Python's own errors are exceptions, not lost."""

    def __enter__(self) -> None:
        self.saved = None
        if os.environ.get("CNN_TUI_DEBUG_IMPORT"):
            return
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            self.saved = None

    def __exit__(self, *exc: Any) -> None:
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)


class native_stderr_filtered:  # noqa: N801 - a context manager, named like one
    """Descriptor 2 into a temporary file while native code runs (TensorFlow Lite's C++ writes
    "Created TensorFlow Lite XNNPACK delegate for CPU." there as an interpreter starts), then every
    line but those containing one of ``noise`` is written back: real errors still reach the terminal."""

    def __init__(self, *noise: str) -> None:
        self.noise = noise
        self.saved: int | None = None

    def __enter__(self) -> None:
        try:
            sys.stderr.flush()
            self.capture = tempfile.TemporaryFile()
            self.saved = os.dup(2)
            os.dup2(self.capture.fileno(), 2)
        except (OSError, ValueError, AttributeError):
            self.saved = None

    def __exit__(self, *exc: Any) -> None:
        if self.saved is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.saved = None
        with self.capture:
            self.capture.seek(0)
            kept = [line for line in self.capture.read().splitlines(keepends=True)
                    if not any(n.encode() in line for n in self.noise)]
        if kept:
            try:
                os.write(2, b"".join(kept))
            except OSError:
                pass


def is_loaded() -> bool:
    return _load_keras.cache_info().currsize > 0


def set_seed(seed: int) -> None:
    load_keras().utils.set_random_seed(seed)


def clear_session() -> None:
    """Reset Keras's global state and collect the previous fit's garbage (between tuning fits).
    The collection is cheap while a search runs: ``tuning.tune`` freezes the heap first, so it
    walks only what the search itself allocated. Skipping it (``free_memory=False``) saved
    ~0.1 s a fit but let RSS grow 11 % over 12 fits in a process that had run other work."""
    load_keras().backend.clear_session()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def accelerators() -> tuple[str, ...]:
    """GPU names as the active backend sees them (empty on a CPU-only machine)."""
    name = load_keras().backend.backend()
    try:
        if name == "tensorflow":
            import tensorflow as tf  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up

            gpus = tf.config.list_physical_devices("GPU")
            return tuple(
                tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus
            )
        if name == "jax":
            import jax  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up

            return tuple(d.device_kind for d in jax.devices() if d.platform != "cpu")
        if name == "torch":
            import torch  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up

            if torch.cuda.is_available():
                return tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # a broken driver must not stop a CPU run  # noqa: BLE001
        return ()
    return ()


@lru_cache(maxsize=1)
def devices() -> tuple[str, ...]:
    """Every device the active backend sees, CPUs included, as ``KIND:index`` and the GPU's name
    where there is one: ('CPU:0', 'GPU:0 NVIDIA H100 80GB HBM3'). JAX's virtual CPU devices
    (``--xla_force_host_platform_device_count``) and TensorFlow's logical ones show too."""
    name = load_keras().backend.backend()
    try:
        if name == "tensorflow":
            import tensorflow as tf  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up

            found = []
            for kind in ("CPU", "GPU"):
                physical = tf.config.list_physical_devices(kind)
                for i, device in enumerate(tf.config.list_logical_devices(kind) or physical):
                    label = f"{kind}:{device.name.rsplit(':', 1)[-1] if ':' in device.name else i}"
                    if kind == "GPU" and i < len(physical):
                        label += f" {tf.config.experimental.get_device_details(physical[i]).get('device_name', '')}"
                    found.append(label.strip())
            return tuple(found)
        if name == "jax":
            import jax  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up

            return tuple(f"{d.platform.upper()}:{d.id}" + (f" {d.device_kind}" if d.platform != "cpu" else "")
                         for d in jax.devices())
        if name == "torch":
            import torch  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up

            gpus = range(torch.cuda.device_count()) if torch.cuda.is_available() else ()
            return ("CPU:0", *(f"GPU:{i} {torch.cuda.get_device_name(i)}" for i in gpus))
    except Exception:  # a broken driver must not stop `info`  # noqa: BLE001
        return ()
    return ("CPU:0",)


def device_label() -> str:
    """A short label for headers: 'TensorFlow · CPU' or 'JAX · NVIDIA H100'."""
    pretty = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch", "numpy": "NumPy"}
    name = backend_name()
    gpus = accelerators() if is_loaded() else ()
    return f"{pretty.get(name, name)} · {gpus[0] if gpus else 'CPU'}"


def info() -> dict[str, Any]:
    """Versions, backend and devices: what ``cnn-tui info`` prints."""
    keras = load_keras()
    name = keras.backend.backend()
    backend_package = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(name, name)
    backend_version = _version(backend_package) or _version(f"{backend_package}-cpu")
    return {
        "cnn_tui": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keras": keras.__version__,
        "backend": name,
        "backend_version": backend_version,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpus": list(accelerators()),
        "devices": list(devices()),
        "device": device_label(),
        "packages": {
            pkg: _version(pkg)
            for pkg in ("numpy", "pillow", "scikit-learn", "scikeras", "matplotlib", "textual", "rich")
        },
    }


def is_out_of_memory(exc: BaseException) -> bool:
    """Recognise out-of-memory errors by type (not by matching message text); a full disk is
    never one, though TensorFlow reports a file written to a full disk as RESOURCE_EXHAUSTED."""
    if disk_problem(exc):
        return False
    if isinstance(exc, MemoryError):
        return True
    # getattr: TensorFlow may be half-imported (the TUI imports it in a background thread)
    exhausted = getattr(getattr(sys.modules.get("tensorflow"), "errors", None), "ResourceExhaustedError", ())
    if isinstance(exc, exhausted):
        return True
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    # JAX raises a generic XlaRuntimeError whose status code leads the message.
    return type(exc).__name__ == "XlaRuntimeError" and str(exc).startswith("RESOURCE_EXHAUSTED")


def describe_failure(exc: BaseException) -> str:
    """One line saying why a fit failed, with advice where there is some."""
    if isinstance(exc, UserError):  # already one line (training's OutOfMemory names the batch sizes tried)
        return str(exc)
    if is_out_of_memory(exc):
        return "out of memory: try a smaller batch_size, num_units, num_filters or image_size"
    disk = disk_problem(exc)
    if disk:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return f"{disk}: {detail}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
